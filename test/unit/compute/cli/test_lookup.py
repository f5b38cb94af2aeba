"""Naming servers and images by id or unique name; waiting for a state."""
import pytest

from compute.cli.client import CLIError
from compute.cli.lookup import looks_like_id, resolve, wait_for

ID1 = '11111111-1111-4111-8111-111111111111'
ID2 = '22222222-2222-4222-8222-222222222222'
ID3 = '33333333-3333-4333-8333-333333333333'


def test_looks_like_id():
    assert looks_like_id(ID1)
    assert looks_like_id(ID1.replace('-', ''))
    assert not looks_like_id('web-1')
    assert not looks_like_id('')
    assert not looks_like_id(None)


def test_resolve_by_id_and_by_unique_name():
    servers = [{'id': ID1, 'name': 'web'}, {'id': ID2, 'name': 'db'}]
    assert resolve(servers, ID2)['name'] == 'db'
    assert resolve(servers, 'web')['id'] == ID1


def test_resolve_id_match_wins_over_a_name_match():
    servers = [{'id': ID1, 'name': ID2}, {'id': ID2, 'name': 'db'}]
    assert resolve(servers, ID2)['name'] == 'db'


def test_resolve_names_are_exact():
    servers = [{'id': ID1, 'name': 'web-1'}, {'id': ID2, 'name': 'Web'}]
    with pytest.raises(CLIError, match="no server with id or name 'web'"):
        resolve(servers, 'web')


def test_resolve_ambiguous_name_lists_the_ids():
    servers = [{'id': ID2, 'name': 'web', 'status': 'ACTIVE'},
               {'id': ID1, 'name': 'web', 'status': 'ERROR'}]
    with pytest.raises(CLIError) as info:
        resolve(servers, 'web')
    message = str(info.value)
    assert message.startswith("2 servers are named 'web'")
    assert '(%s, %s)' % (ID1, ID2) in message
    assert message.endswith('give an id')


def test_resolve_ignores_deleted_namesakes_of_a_live_server():
    servers = [{'id': ID1, 'name': 'web', 'status': 'DELETED'},
               {'id': ID2, 'name': 'web', 'status': 'ACTIVE'},
               {'id': ID3, 'name': 'web', 'status': 'DELETED'}]
    assert resolve(servers, 'web')['id'] == ID2


def test_resolve_a_name_only_deleted_servers_carry():
    one = [{'id': ID1, 'name': 'old', 'status': 'DELETED'}]
    assert resolve(one, 'old')['id'] == ID1
    two = one + [{'id': ID2, 'name': 'old', 'status': 'DELETED'}]
    with pytest.raises(CLIError, match='2 servers'):
        resolve(two, 'old')


def test_resolve_names_the_kind_and_handles_an_empty_list():
    with pytest.raises(CLIError, match="no image with id or name 'cirros'"):
        resolve([], 'cirros', 'image')


class FakeTime:
    """A clock and a sleep that advances it, so waits take no time."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_for_polls_until_done():
    states = iter(['BUILD', 'BUILD', 'ACTIVE'])
    t = FakeTime()
    result = wait_for(lambda: {'status': next(states)},
                      lambda s: s['status'] == 'ACTIVE', timeout=10,
                      interval=2, clock=t.clock, sleep=t.sleep)
    assert result == {'status': 'ACTIVE'}
    assert t.sleeps == [2, 2]


def test_wait_for_gives_up_at_the_timeout_with_the_last_status():
    t = FakeTime()
    calls = []

    def fetch():
        calls.append(t.now)
        return {'status': 'BUILD'}

    with pytest.raises(CLIError) as info:
        wait_for(fetch, lambda s: False, timeout=5, interval=2,
                 clock=t.clock, sleep=t.sleep)
    assert str(info.value) == \
        'gave up after 5 s waiting (status is still BUILD)'
    # polled at 0, 2, 4 and once more at the deadline, never past it
    assert calls == [0, 2, 4, 5]


def test_wait_for_checks_once_even_with_a_result_already_done():
    t = FakeTime()
    assert wait_for(lambda: {'status': 'ERROR'}, lambda s: True, timeout=1,
                    clock=t.clock, sleep=t.sleep) == {'status': 'ERROR'}
    assert t.sleeps == []
