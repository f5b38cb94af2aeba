"""Signed requests to storage nodes over pooled connections."""
import os

from objstore.common import concurrency
from objstore.common.timestamp import Timestamp
from objstore.proxy.nodeclient import Reply, read_body, read_chunk
from objstore.proxy.nodes import NodeSlots


def put(backends, node, part, path, body=b'hello'):
    headers = {'X-Timestamp': Timestamp.now().internal,
               'Content-Type': 'text/x-test'}
    return backends.client.request(node, part, 'PUT', path, headers,
                                   body=body)


def test_signed_request_and_reply(backends):
    part, nodes = backends.ring.get_nodes('a', 'c', 'o')
    reply = put(backends, nodes[0], part, '/a/c/o')
    assert reply.status == 201
    assert reply.get('etag') == reply.get('ETag') and reply.get('Etag')
    reply = backends.client.request(nodes[0], part, 'GET', '/a/c/o', {})
    assert (reply.status, reply.body) == (200, b'hello')
    assert reply.get('Content-Type') == 'text/x-test'
    assert 'Reply(127.0.0.1:' in repr(reply)


def test_small_body_goes_out_with_the_head_in_one_send(backends,
                                                      monkeypatch):
    """One send per small request: a second one for the body woke the
    server twice (exchange.exchange)."""
    from objstore.proxy import pool
    sent = []

    class Recording:
        def __init__(self, sock):
            self._sock = sock

        def sendall(self, data):
            sent.append(bytes(data))
            return self._sock.sendall(data)

        def __getattr__(self, name):
            return getattr(self._sock, name)
    real_connect = pool.BackendConnection.connect

    def connect(self):
        real_connect(self)
        self.sock = Recording(self.sock)
    monkeypatch.setattr(pool.BackendConnection, 'connect', connect)
    backends.pool.close_all()
    part, nodes = backends.ring.get_nodes('a', 'c', 'o')
    assert put(backends, nodes[0], part, '/a/c/o', b'x' * 5000).status \
        == 201
    assert len(sent) == 1
    head, body = sent[0].split(b'\r\n\r\n', 1)
    assert head.startswith(b'PUT /') and b'Content-Length: 5000' in head
    assert body == b'x' * 5000
    reply = backends.client.request(nodes[0], part, 'GET', '/a/c/o', {})
    assert reply.body == b'x' * 5000
    # a large body still goes in its own sends, never copied whole
    del sent[:]
    big = b'y' * (1 << 17)
    assert put(backends, nodes[0], part, '/a/c/o2', big).status == 201
    assert len(sent) >= 2 and b''.join(sent).endswith(big)


def test_connections_are_kept_and_reused(backends):
    part, nodes = backends.ring.get_nodes('a', 'c', 'o')
    node = nodes[0]
    put(backends, node, part, '/a/c/o')
    idle = backends.pool._idle[('127.0.0.1', node['port'])]
    assert len(idle) == 1
    first = idle[0][0]
    backends.client.request(node, part, 'HEAD', '/a/c/o', {})
    assert idle[0][0] is first and first.reused


def test_connection_closed_by_the_server_is_not_reused(backends):
    part, nodes = backends.ring.get_nodes('a', 'c', 'o')
    node = nodes[0]
    put(backends, node, part, '/a/c/o')
    conn = backends.pool._idle[('127.0.0.1', node['port'])][0][0]
    concurrency.sleep(1.3)          # the server's keepalive is 1 s
    assert conn.is_stale()
    reply = backends.client.request(node, part, 'GET', '/a/c/o', {})
    assert reply.status == 200
    assert backends.pool._idle[('127.0.0.1', node['port'])][0][0] \
        is not conn


def test_unreachable_node_is_none_and_counted(backends):
    part, nodes = backends.ring.get_nodes('a', 'c', 'o')
    node = nodes[0]
    backends.node(node).stop()
    for _ in range(11):
        assert backends.client.request(node, part, 'GET', '/a/c/o',
                                       {}) is None
    assert backends.limiter.is_limited(node)


def test_507_limits_the_node_at_once(backends):
    part, nodes = backends.ring.get_nodes('a', 'c', 'o')
    backends.node(nodes[1]).fault = '507'
    reply = backends.client.request(nodes[1], part, 'GET', '/a/c/o', {})
    assert reply.status == 507
    assert backends.limiter.is_limited(nodes[1])
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    assert nodes[1] not in list(slots.in_order())
    slots = NodeSlots(backends.ring, part, backends.limiter, 6)
    assert slots.first(1).get('handoff_index') == 0


def test_read_body_is_bounded(backends):
    part, nodes = backends.ring.get_nodes('a', 'c', 'big')
    put(backends, nodes[0], part, '/a/c/big', b'x' * 1000)
    opened = backends.client.open(nodes[0], part, 'GET', '/a/c/big', {})
    conn, resp = opened
    try:
        read_body(resp, limit=999)
    except ValueError as e:
        assert 'larger than 999' in str(e)
    else:
        raise AssertionError('no limit')
    conn.close()
    assert isinstance(Reply(nodes[0], 200, []).headers, list)


def garbling_node(answer):
    """A node (dict) whose server reads a request, sends ``answer`` and
    closes: what a confused or broken storage node might do."""
    sock = concurrency.listen(('127.0.0.1', 0))

    def serve():
        while True:
            conn, _addr = sock.accept()
            conn.recv(65536)
            conn.sendall(answer)
            conn.close()
    thread = concurrency.spawn(serve)
    node = {'id': 99, 'ip': '127.0.0.1', 'port': sock.getsockname()[1],
            'device': 'sdz', 'zone': 9, 'region': 1}
    return node, thread, sock


def test_a_garbled_answer_is_a_failed_node_not_an_exception(backends):
    for answer in (b'garbage\r\n\r\n', b'HTTP/1.1 200 OK\r\n'
                   b'Content-Length: 100\r\n\r\nshort',
                   b'HTTP/1.1 200 OK\r\nX: ' + b'y' * 70000 + b'\r\n\r\n'):
        node, thread, sock = garbling_node(answer)
        try:
            assert backends.client.request(node, 1, 'GET', '/a/c/o',
                                           {}) is None, answer[:20]
        finally:
            concurrency.kill(thread)
            sock.close()


def test_read_chunk_gives_the_body_in_pieces_and_ends_it(backends):
    part, nodes = backends.ring.get_nodes('a', 'c', 'pieces')
    body = os.urandom(10000)
    put(backends, nodes[0], part, '/a/c/pieces', body)
    conn, resp = backends.client.open(nodes[0], part, 'GET', '/a/c/pieces',
                                      {})
    pieces = []
    while True:
        piece = read_chunk(resp, 4096)
        if not piece:
            break
        assert isinstance(piece, bytes)
        pieces.append(piece)
    assert [len(p) for p in pieces] == [4096, 4096, 1808]
    assert b''.join(pieces) == body
    assert resp.isclosed() and resp.length == 0
    # the connection is whole: it goes back and serves the next request
    backends.client.release(conn, resp)
    reply = backends.client.request(nodes[0], part, 'GET', '/a/c/pieces', {})
    assert (reply.status, reply.body) == (200, body)
    # a HEAD's answer has no body to read
    conn, resp = backends.client.open(nodes[0], part, 'HEAD', '/a/c/pieces',
                                      {})
    assert read_chunk(resp, 4096) == b''
    conn.close()


def test_read_chunk_of_a_cut_body_ends_short(backends):
    """As with resp.read: the bytes that came, then b'' with the count of
    those missing still in resp.length, for the getter to notice."""
    node, thread, sock = garbling_node(
        b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012345')
    try:
        conn, resp = backends.client.open(node, 1, 'GET', '/a/c/o', {})
        assert read_chunk(resp, 8) == b'012345'
        assert read_chunk(resp, 8) == b''
        assert resp.length == 4
        conn.close()
    finally:
        concurrency.kill(thread)
        sock.close()


def test_read_chunk_of_a_chunked_body(backends):
    node, thread, sock = garbling_node(
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
        b'5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n')
    try:
        conn, resp = backends.client.open(node, 1, 'GET', '/a/c/o', {})
        got = b''
        while True:
            piece = read_chunk(resp, 4)
            if not piece:
                break
            got += piece
        assert got == b'hello world'
        conn.close()
    finally:
        concurrency.kill(thread)
        sock.close()
