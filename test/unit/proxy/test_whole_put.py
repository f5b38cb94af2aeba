"""A small body sent whole to every replica: handoffs and quorum."""
import hashlib

import pytest

from objstore.common.timestamp import Timestamp
from objstore.proxy.fanout import statuses
from objstore.proxy.nodes import NodeSlots
from objstore.proxy.whole_put import WHOLE_BODY_LIMIT, put_whole

BODY = b'small object body\n' * 200


def put(backends, name, body=BODY, timestamp=None, post_quorum=0.5):
    part = backends.ring.get_part('a', 'c', name)
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    headers = {'X-Timestamp': timestamp or Timestamp.now().internal,
               'Content-Type': 'application/x-test'}
    return put_whole(backends.client, slots, '/a/c/' + name,
                     lambda index: headers, body, post_quorum)


def stored(backends, node, name):
    part = backends.ring.get_part('a', 'c', name)
    reply = backends.client.request(node, part, 'GET', '/a/c/' + name, {})
    return reply.body if reply is not None and reply.status == 200 else None


def test_body_reaches_every_primary(backends):
    replies = put(backends, 'o')
    assert statuses(replies) == [201, 201, 201]
    assert {r.get('Etag') for r in replies} == {hashlib.md5(BODY).hexdigest()}
    for node in backends.ring.get_nodes('a', 'c', 'o')[1]:
        assert stored(backends, node, 'o') == BODY
        assert backends.node(node).switch.seen[-2] == ('PUT', None)


@pytest.mark.parametrize('body', [b'', b'x' * WHOLE_BODY_LIMIT])
def test_empty_and_largest_whole_bodies(backends, body):
    assert statuses(put(backends, 'edge', body)) == [201, 201, 201]
    node = backends.ring.get_nodes('a', 'c', 'edge')[1][1]
    assert stored(backends, node, 'edge') == body


@pytest.mark.parametrize('trouble', ['507', 'down'])
def test_refusing_or_dead_primary_is_replaced_by_a_handoff(backends,
                                                           trouble):
    part, primaries = backends.ring.get_nodes('a', 'c', 'h')
    bad = backends.node(primaries[1])
    if trouble == 'down':
        bad.stop()
    else:
        bad.fault = '507'
    assert statuses(put(backends, 'h')) == [201, 201, 201]
    handoff = next(backends.ring.get_more_nodes(part))
    assert stored(backends, handoff, 'h') == BODY
    if trouble == '507':
        assert backends.limiter.is_limited(primaries[1])


def test_a_hanging_node_does_not_hold_the_answer_past_quorum(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'slow')[1]
    backends.node(primaries[0]).fault = 'hang'
    replies = put(backends, 'slow', post_quorum=0.2)
    assert sorted(statuses(replies), key=str) == [201, 201, None]
    assert stored(backends, primaries[2], 'slow') == BODY


def test_an_older_timestamp_is_refused_by_every_node(backends):
    newer = Timestamp.now()
    assert statuses(put(backends, 'race', timestamp=newer.internal)) == \
        [201, 201, 201]
    older = Timestamp(float(newer) - 1).internal
    assert statuses(put(backends, 'race', b'old', timestamp=older)) == \
        [409, 409, 409]
    node = backends.ring.get_nodes('a', 'c', 'race')[1][0]
    assert stored(backends, node, 'race') == BODY


def test_no_node_at_all_gives_no_replies_but_none(backends):
    for node in backends.nodes:
        node.stop()
    assert statuses(put(backends, 'nowhere')) == [None, None, None]
