"""Reading an object: first good node, failover in the middle of a body."""
import os

from objstore.common.timestamp import Timestamp
from objstore.obj.diskfile import READ_CHUNK_SIZE
from objstore.proxy.getter import ObjectReader, span_of
from objstore.proxy.nodes import NodeSlots

BODY = os.urandom(500000)
# more than two of the object server's read chunks, so a damaged copy
# sends whole chunks before its MD5 check fails on the last one
MULTI_CHUNK_BODY = os.urandom(2 * READ_CHUNK_SIZE + 500000)


def write(backends, name, nodes, body=BODY, timestamp=None):
    part = backends.ring.get_part('a', 'c', name)
    headers = {'X-Timestamp': (timestamp or Timestamp.now()).internal,
               'Content-Type': 'application/x-test'}
    for node in nodes:
        reply = backends.client.request(node, part, 'PUT', '/a/c/' + name,
                                        headers, body=body)
        assert reply.status == 201


def read(backends, name, method='GET', headers=None, newest=False):
    """(status, headers dict, body bytes) as the proxy would answer."""
    part = backends.ring.get_part('a', 'c', name)
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    answer = ObjectReader(backends.client, slots, method, '/a/c/' + name,
                          headers or {}).answer(newest)
    body = b''.join(answer.body)
    close = getattr(answer.body, 'close', None)
    if close:
        close()
    return answer.status, dict(answer.headers), body


def test_get_and_head_from_the_first_primary(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'o')[1]
    write(backends, 'o', primaries)
    status, headers, body = read(backends, 'o')
    assert (status, body) == (200, BODY)
    assert headers['Content-Length'] == str(len(BODY))
    assert [m for m, _ in backends.node(primaries[0]).switch.seen] == \
        ['PUT', 'GET']
    assert backends.node(primaries[1]).switch.seen == [('PUT', None)]
    status, headers, body = read(backends, 'o', 'HEAD')
    assert (status, body) == (200, b'')
    assert headers['Content-Length'] == str(len(BODY))


def test_missing_everywhere_is_404_and_nobody_home_is_503(backends):
    assert read(backends, 'nothing')[0] == 404
    part, primaries = backends.ring.get_nodes('a', 'c', 'nothing')
    backends.node(primaries[0]).stop()
    assert read(backends, 'nothing')[0] == 404    # three 404s of four
    backends.node(primaries[1]).stop()
    assert read(backends, 'nothing')[0] == 404    # two of four: a quorum
    backends.node(primaries[2]).stop()
    assert read(backends, 'nothing')[0] == 503    # one 404 is no verdict
    for node in backends.nodes:
        node.stop()
    assert read(backends, 'nothing')[0] == 503


def test_dead_primary_and_copy_on_a_handoff_only(backends):
    part, primaries = backends.ring.get_nodes('a', 'c', 'h')
    handoff = next(backends.ring.get_more_nodes(part))
    write(backends, 'h', [handoff])
    backends.node(primaries[0]).stop()
    status, _, body = read(backends, 'h')
    assert (status, body) == (200, BODY)


def test_body_cut_mid_stream_goes_on_at_the_next_node(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'cut')[1]
    write(backends, 'cut', primaries)
    backends.node(primaries[0]).fault = 'cut-get'
    status, _, body = read(backends, 'cut')
    assert status == 200 and body == BODY
    seen = backends.node(primaries[1]).switch.seen
    method, asked = seen[-2]
    assert method == 'GET' and asked.startswith('bytes=')
    assert asked.endswith('-%d' % (len(BODY) - 1))
    offset = int(asked[6:].split('-')[0])
    assert 0 < offset <= 100000
    # then the bytes already sent were checked against the new node's copy
    assert seen[-1] == ('GET', 'bytes=0-%d' % (offset - 1))


def test_damaged_bytes_sent_before_a_resume_cut_the_response(backends,
                                                             tmp_path):
    """The first node's copy rotted early on: it sends all but its last
    chunk before its MD5 check fails; the proxy must not complete those
    bytes with another node's into a whole, wrong 200 body."""
    import glob
    primaries = backends.ring.get_nodes('a', 'c', 'rot')[1]
    write(backends, 'rot', primaries, body=MULTI_CHUNK_BODY)
    first = backends.node(primaries[0])
    [data] = glob.glob(os.path.join(str(tmp_path), 'node*', first.device,
                                    'objects', '*', '*', '*', '*.data'))
    with open(data, 'r+b') as f:
        f.seek(10)
        good = f.read(1)
        f.seek(10)
        f.write(bytes([good[0] ^ 0xff]))
    status, _, body = read(backends, 'rot')
    assert status == 200
    assert len(body) < len(MULTI_CHUNK_BODY)
    assert body != MULTI_CHUNK_BODY[:len(body)]
    # the damaged copy went to quarantine; the next read is whole and good
    status, _, body = read(backends, 'rot')
    assert (status, body) == (200, MULTI_CHUNK_BODY)


def test_range_cut_mid_stream_keeps_the_range(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'rng')[1]
    write(backends, 'rng', primaries)
    backends.node(primaries[0]).fault = 'cut-get'
    status, headers, body = read(backends, 'rng',
                                 headers={'Range': 'bytes=1000-300999'})
    assert status == 206 and body == BODY[1000:301000]
    assert headers['Content-Range'] == 'bytes 1000-300999/%d' % len(BODY)


def test_a_different_version_is_never_spliced_in(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'ver')[1]
    write(backends, 'ver', primaries[:1])
    write(backends, 'ver', primaries[1:], body=os.urandom(len(BODY)))
    backends.node(primaries[0]).fault = 'cut-get'
    status, _, body = read(backends, 'ver')
    assert status == 200 and len(body) < len(BODY)
    assert body == BODY[:len(body)]


def test_hanging_node_times_out(backends):
    backends.pool.node_timeout = 0.3
    primaries = backends.ring.get_nodes('a', 'c', 'slow')[1]
    write(backends, 'slow', primaries)
    backends.node(primaries[0]).fault = 'hang'
    status, _, body = read(backends, 'slow')
    assert (status, body) == (200, BODY)


def test_newest_wins_with_x_newest(backends):
    primaries = backends.ring.get_nodes('a', 'c', 'new')[1]
    old = Timestamp(Timestamp.now().ticks * 1e-5 - 10)
    write(backends, 'new', primaries[:1], body=b'old', timestamp=old)
    write(backends, 'new', primaries[1:2], body=b'new')
    assert read(backends, 'new')[2] == b'old'
    assert read(backends, 'new', newest=True)[2] == b'new'
    part = backends.ring.get_part('a', 'c', 'new')
    reply = backends.client.request(primaries[2], part, 'DELETE',
                                    '/a/c/new', {'X-Timestamp':
                                                 Timestamp.now().internal})
    assert reply.status == 404      # a tombstone, newer than both
    assert read(backends, 'new')[2] == b'old'
    assert read(backends, 'new', newest=True)[0] == 404


def test_span_of():
    assert span_of(200, {'content-length': '10'}) == (0, 9)
    assert span_of(206, {'content-range': 'bytes 5-9/10'}) == (5, 9)
    assert span_of(206, {'content-type': 'multipart/byteranges'}) is None
    assert span_of(200, {}) is None
