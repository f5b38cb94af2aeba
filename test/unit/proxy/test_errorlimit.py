"""Skipping storage nodes that keep failing."""
from objstore.proxy.errorlimit import ErrorLimiter

NODE = {'ip': '10.0.0.1', 'port': 6200, 'device': 'sda'}
OTHER = dict(NODE, device='sdb')


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_limited_after_more_than_limit_errors_until_interval_passes():
    clock = Clock()
    limiter = ErrorLimiter(limit=3, interval=60, clock=clock)
    for _ in range(3):
        limiter.error(NODE)
    assert not limiter.is_limited(NODE)
    limiter.error(NODE)
    assert limiter.is_limited(NODE) and not limiter.is_limited(OTHER)
    clock.now += 59
    assert limiter.is_limited(NODE)
    clock.now += 2
    assert not limiter.is_limited(NODE)


def test_errors_far_apart_do_not_add_up():
    clock = Clock()
    limiter = ErrorLimiter(limit=2, interval=10, clock=clock)
    for _ in range(10):
        limiter.error(NODE)
        clock.now += 11
    assert not limiter.is_limited(NODE)


def test_limit_now():
    clock = Clock()
    limiter = ErrorLimiter(limit=10, interval=5, clock=clock)
    limiter.limit_now(NODE, 'device unavailable')
    assert limiter.is_limited(NODE)
    clock.now += 6
    assert not limiter.is_limited(NODE)
