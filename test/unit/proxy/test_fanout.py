"""Asking replicas all at once (fan_out) or one by one (one_by_one)."""
import pytest

from objstore.common.timestamp import Timestamp
from objstore.proxy import fanout
from objstore.proxy.nodes import NodeSlots


@pytest.fixture(autouse=True)
def ring_order(monkeypatch):
    """one_by_one shuffles the primaries; tests want the ring's order."""
    monkeypatch.setattr(fanout.random, 'shuffle', lambda nodes: None)


def put_on(backends, name, nodes):
    part = backends.ring.get_part('a', 'c', name)
    for node in nodes:
        reply = backends.client.request(node, part, 'PUT', '/a/c/' + name, {
            'X-Timestamp': Timestamp.now().internal,
            'Content-Type': 'text/plain'}, body=b'body')
        assert reply.status == 201


def ask(backends, name, how=fanout.one_by_one):
    """(replies' statuses, which of the 4 nodes saw a request)."""
    part = backends.ring.get_part('a', 'c', name)
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    for node in backends.nodes:
        node.switch.seen.clear()
    replies = how(backends.client, slots, 'GET', '/a/c/' + name, {})
    asked = [node.device for node in backends.nodes if node.switch.seen]
    return fanout.statuses(replies), asked


def devices(nodes):
    return sorted(node['device'] for node in nodes)


def test_one_by_one_stops_at_the_first_answer(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'o')[1]
    put_on(backends, 'o', primaries)
    assert ask(backends, 'o') == ([200], [primaries[0]['device']])


def test_a_404_moves_on_to_the_next_primary(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'o')[1]
    put_on(backends, 'o', primaries[2:])
    assert ask(backends, 'o') == ([404, 404, 200], devices(primaries))
    # nowhere: every primary says 404, and no handoff is asked
    primaries = backends.ring.get_nodes('a', 'c', 'gone')[1]
    assert ask(backends, 'gone') == ([404] * 3, devices(primaries))


def test_a_failed_primary_is_replaced_by_a_handoff_last(backends):
    part, primaries = backends.ring.get_nodes('a', 'c', 'o')
    put_on(backends, 'o', primaries[2:])
    put_on(backends, 'o', [next(backends.ring.get_more_nodes(part))])
    backends.node(primaries[2]).fault = '507'
    # primaries first (404, 404, 507), then the one handoff: found there
    statuses, asked = ask(backends, 'o')
    assert statuses == [404, 404, 507, 200] and len(asked) == 4


def test_fan_out_asks_every_replica_at_once(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'o')[1]
    put_on(backends, 'o', primaries[:1])

    def everyone(client, slots, method, path, headers):
        return fanout.fan_out(client, slots, method, path,
                              lambda i: headers)
    assert ask(backends, 'o', everyone) == ([200, 404, 404],
                                            devices(primaries))
