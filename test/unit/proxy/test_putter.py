"""Streaming one body to every replica: 100-continue, handoffs, quorum."""
import hashlib
import io
import os

import pytest

from objstore.common import body_checksums, concurrency
from objstore.common.http import HTTPError
from objstore.common.timestamp import Timestamp
from objstore.proxy.fanout import statuses
from objstore.proxy.nodes import NodeSlots
from objstore.proxy.putter import Upload, client_chunks

BODY = os.urandom(300000)


def upload(backends, name, body=BODY, chunked=False, extra=None):
    """(Upload, replies or the HTTPError raised while sending)."""
    part = backends.ring.get_part('a', 'c', name)
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    headers = {'X-Timestamp': Timestamp.now().internal,
               'Content-Type': 'application/x-test'}
    headers.update(extra or {})
    up = Upload(backends.client, slots, '/a/c/' + name,
                lambda index: headers, None if chunked else len(body))
    up.connect()
    try:
        for chunk in client_chunks(io.BytesIO(body),
                                   None if chunked else len(body), 5):
            up.send(chunk)
        return up, up.finish(5)
    except HTTPError as e:
        up.abort()
        return up, e


def stored(backends, node, name):
    part = backends.ring.get_part('a', 'c', name)
    reply = backends.client.request(node, part, 'GET', '/a/c/' + name, {})
    return reply.body if reply is not None and reply.status == 200 else None


def test_body_reaches_every_primary(backends):
    up, replies = upload(backends, 'o')
    assert statuses(replies) == [201, 201, 201]
    assert {r.get('Etag') for r in replies} == {hashlib.md5(BODY).hexdigest()}
    for node in backends.ring.get_nodes('a', 'c', 'o')[1]:
        assert stored(backends, node, 'o') == BODY


def test_chunked_body(backends):
    up, replies = upload(backends, 'chunky', chunked=True)
    assert statuses(replies) == [201, 201, 201]
    node = backends.ring.get_nodes('a', 'c', 'chunky')[1][2]
    assert stored(backends, node, 'chunky') == BODY


def test_empty_chunks_do_not_end_a_chunked_body(backends):
    part = backends.ring.get_part('a', 'c', 'gaps')
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    headers = {'X-Timestamp': Timestamp.now().internal,
               'Content-Type': 'application/x-test'}
    up = Upload(backends.client, slots, '/a/c/gaps', lambda index: headers,
                None)
    up.connect()
    for piece in (b'', BODY[:1000], b'', BODY[1000:], b''):
        up.send(piece)
    assert statuses(up.finish(5)) == [201, 201, 201]
    for node in backends.ring.get_nodes('a', 'c', 'gaps')[1]:
        assert stored(backends, node, 'gaps') == BODY


def test_checksums_in_the_trailer_of_a_sized_body(backends):
    """What the proxy's object controller does for a streamed upload:
    the nodes get a chunked body with the length announced, and store
    the proxy's MD5 after checking its CRC-32C."""
    sums = body_checksums.BodyChecksums()
    sums.update(BODY)
    part = backends.ring.get_part('a', 'c', 'summed')
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    headers = {'X-Timestamp': Timestamp.now().internal,
               'Content-Type': 'application/x-test',
               body_checksums.HEADER: 'true',
               body_checksums.LENGTH_HEADER: str(len(BODY))}
    up = Upload(backends.client, slots, '/a/c/summed', lambda index: headers,
                len(BODY), chunked=True)
    up.connect()
    for chunk in client_chunks(io.BytesIO(BODY), len(BODY), 5,
                               chunk_size=65536):
        up.send(chunk)
    replies = up.finish(5, trailer=sums.trailer())
    assert statuses(replies) == [201, 201, 201]
    assert {r.get('Etag') for r in replies} == {hashlib.md5(BODY).hexdigest()}
    for node in backends.ring.get_nodes('a', 'c', 'summed')[1]:
        assert stored(backends, node, 'summed') == BODY


@pytest.mark.parametrize('trouble', ['507', 'down'])
def test_refusing_or_dead_primary_is_replaced_by_a_handoff(backends,
                                                           trouble):
    part, primaries = backends.ring.get_nodes('a', 'c', 'h')
    bad = backends.node(primaries[1])
    if trouble == 'down':
        bad.stop()
    else:
        bad.fault = '507'
    up, replies = upload(backends, 'h')
    assert statuses(replies) == [201, 201, 201]
    handoff = next(backends.ring.get_more_nodes(part))
    assert stored(backends, handoff, 'h') == BODY


def test_node_dying_mid_body_leaves_a_quorum(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'mid')[1]
    backends.node(primaries[0]).fault = 'cut-put'
    up, replies = upload(backends, 'mid')
    assert sorted(statuses(replies), key=str) == [201, 201, None]
    assert stored(backends, primaries[0], 'mid') is None
    assert stored(backends, primaries[2], 'mid') == BODY


def test_losing_the_quorum_mid_body_is_503_and_stores_nothing(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'lost')[1]
    for node in primaries[:2]:
        backends.node(node).fault = 'cut-put'
    up, result = upload(backends, 'lost', body=BODY * 4)
    assert isinstance(result, HTTPError) and result.status == 503
    concurrency.sleep(0.1)
    for node in primaries:
        backends.node(node).fault = None
        assert stored(backends, node, 'lost') is None


def test_early_refusals_are_kept(backends):
    upload(backends, 'exists', body=b'x')
    part = backends.ring.get_part('a', 'c', 'exists')
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    headers = {'X-Timestamp': Timestamp.now().internal,
               'Content-Type': 'a/b', 'If-None-Match': '*'}
    up = Upload(backends.client, slots, '/a/c/exists', lambda i: headers, 1)
    assert up.connect() == 0
    assert statuses(up.early) == [412, 412, 412]
    up.abort()


def test_client_chunks():
    assert list(client_chunks(io.BytesIO(b'abcdef'), 6, 1,
                              chunk_size=4)) == [b'abcd', b'ef']
    assert list(client_chunks(io.BytesIO(b'abcdef'), 3, 1)) == [b'abc']
    assert list(client_chunks(io.BytesIO(b''), 0, 1)) == []
    with pytest.raises(HTTPError) as err:
        list(client_chunks(io.BytesIO(b'ab'), 5, 1))
    assert err.value.status == 499
    with pytest.raises(HTTPError) as err:
        list(client_chunks(io.BytesIO(b'x' * 10), None, 1, chunk_size=4,
                           limit=8))
    assert err.value.status == 413

    class Stalling:
        def read(self, size):
            concurrency.sleep(1)
            return b'late'
    with pytest.raises(HTTPError) as err:
        list(client_chunks(Stalling(), 4, 0.05))
    assert err.value.status == 408

    class Broken:
        def read(self, size):
            raise OSError('reset')
    with pytest.raises(HTTPError) as err:
        list(client_chunks(Broken(), None, 1))
    assert err.value.status == 499


def test_abort_after_the_answers_leaves_pooled_connections_alone(backends):
    """Once a node answered, its connection went back to the pool and may
    serve another request: dropping the upload then must not close it
    (closing a socket another green thread waits on kills the worker)."""
    up, replies = upload(backends, 'pooled')
    assert statuses(replies) == [201, 201, 201]
    idle = [conn for conns in backends.client.pool._idle.values()
            for conn, _ in conns]
    assert len(idle) >= 3
    up.abort()
    assert all(conn.sock is not None for conn in idle)
    # and they still work
    node = backends.ring.get_nodes('a', 'c', 'pooled')[1][0]
    assert stored(backends, node, 'pooled') == BODY


def test_an_empty_body_answered_at_once_is_stored_not_refused(backends):
    """With nothing to send after 100-continue the object server answers
    201 straight away; that waiting answer is not a node giving up."""
    part = backends.ring.get_part('a', 'c', 'empty')
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    headers = {'X-Timestamp': Timestamp.now().internal,
               'Content-Type': 'application/x-test'}
    up = Upload(backends.client, slots, '/a/c/empty', lambda index: headers,
                0)
    assert up.connect() == 3
    concurrency.sleep(0.3)   # every node has answered by now
    replies = up.finish(5)
    assert statuses(replies) == [201, 201, 201]
    for node in backends.ring.get_nodes('a', 'c', 'empty')[1]:
        assert stored(backends, node, 'empty') == b''
        assert not backends.limiter.is_limited(node)
