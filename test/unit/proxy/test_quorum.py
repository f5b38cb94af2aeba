"""Deciding one answer from several replicas' answers."""
from objstore.proxy.nodeclient import Reply
from objstore.proxy.quorum import (best_status, newest, object_state_time,
                                   pair_updates, quorum_size, update_headers)

PRIMARY = {'ip': '10.0.0.1', 'port': 6201, 'device': 'sda'}
HANDOFF = dict(PRIMARY, handoff_index=0)


def reply(status, node=PRIMARY, **headers):
    pairs = [(k.replace('_', '-'), v) for k, v in headers.items()]
    return Reply(node, status, pairs)


def test_quorum_size():
    assert [quorum_size(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


def test_best_status_needs_a_quorum_of_one_class():
    assert best_status([201, 201, 201], 3) == 201
    assert best_status([201, 202, 202], 3) == 202
    assert best_status([201, None, 201], 3) == 201
    assert best_status([201, 503, None], 3) == 503
    assert best_status([404, 404, 204], 3) == 404
    assert best_status([204, 404, 409], 3) == 409    # 4xx quorum, tie
    assert best_status([409, 409, 404], 3) == 409
    assert best_status([507, 503, 201], 3) == 503
    assert best_status([], 3) == 503
    assert best_status([201, 201], 4) == 503          # 2 of 4 is no quorum


def test_newest_db_state_wins():
    old = reply(204, X_Backend_Put_Timestamp='0000000001.00000')
    deleted = reply(404, X_Backend_Put_Timestamp='0000000001.00000',
                    X_Backend_Delete_Timestamp='0000000002.00000')
    never = reply(404)
    assert newest([old, deleted, never]) is deleted
    assert newest([never, old, None]) is old
    assert newest([None, reply(503)]) is None


def test_newest_prefers_success_then_primaries_then_order():
    ts = '0000000005.00000'
    missing = reply(404, X_Backend_Put_Timestamp=ts)
    handoff = reply(204, HANDOFF, X_Backend_Put_Timestamp=ts)
    first = reply(204, X_Backend_Put_Timestamp=ts)
    second = reply(200, X_Backend_Put_Timestamp=ts)
    assert newest([missing, handoff, first, second]) is first


def test_newest_object_by_backend_timestamp():
    data = reply(200, X_Backend_Timestamp='0000000001.00000')
    tomb = reply(404, X_Backend_Timestamp='0000000002.00000')
    assert newest([data, tomb], object_state_time) is tomb
    assert newest([data, reply(404)], object_state_time) is data


def test_pair_updates_names_every_target_and_fills_every_slot():
    assert pair_updates(3, ['a', 'b', 'c']) == [['a'], ['b'], ['c']]
    assert pair_updates(3, ['a', 'b']) == [['a'], ['b'], ['a']]
    assert pair_updates(2, ['a', 'b', 'c']) == [['a', 'c'], ['b']]
    assert pair_updates(2, []) == [[], []]


def test_update_headers():
    nodes = [{'ip': '10.0.0.1', 'port': 6201, 'device': 'sda'},
             {'ip': 'fe80::1', 'port': 6201, 'device': 'sdb'}]
    assert update_headers('container', nodes, 7) == {
        'X-Container-Host': '10.0.0.1:6201,[fe80::1]:6201',
        'X-Container-Partition': '7',
        'X-Container-Device': 'sda,sdb'}
    assert update_headers('account', nodes[:1], 0)['X-Account-Host'] == \
        '10.0.0.1:6201'
    assert update_headers('account', [], 3) == {}
