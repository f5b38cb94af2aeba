"""What a worker remembers about accounts and containers, briefly."""
from objstore.proxy.infocache import InfoCache


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_entries_expire_and_can_be_forgotten():
    clock = Clock()
    cache = InfoCache(10, clock=clock)
    cache.set('a', {'status': 204})
    assert cache.get('a') == {'status': 204}
    clock.now = 9.9
    assert cache.get('a')
    clock.now = 10
    assert cache.get('a') is None
    cache.set('b', 1)
    cache.invalidate('b')
    assert cache.get('b') is None


def test_zero_ttl_remembers_nothing_and_size_is_bounded():
    assert InfoCache(0).set('a', 1) is None
    cache = InfoCache(0)
    cache.set('a', 1)
    assert cache.get('a') is None
    cache = InfoCache(10, max_entries=3)
    for key in range(10):
        cache.set(key, key)
    assert len(cache._entries) <= 3 and cache.get(9) == 9
