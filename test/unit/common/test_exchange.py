"""Whole request/answer exchanges, over a real socket pair."""
import http.client
import socket
import threading

import pytest

from objstore.common import exchange


class Conn:
    """What exchange needs of a pooled connection: a socket, its peer."""

    def __init__(self, sock):
        self.sock = sock
        self.host, self.port = '127.0.0.1', 6200

    def connect(self):
        raise AssertionError('already connected')


def serve(*pieces, close=False):
    """A Conn whose peer reads the request head and answers ``pieces``
    (bytes written one by one); returns (conn, what the peer read)."""
    ours, theirs = socket.socketpair()
    got = []

    def peer():
        data = b''
        while b'\r\n\r\n' not in data:
            more = theirs.recv(65536)
            if not more:
                break
            data += more
        got.append(data)
        for piece in pieces:
            theirs.sendall(piece)
        if close:
            theirs.close()
    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    return Conn(ours), got, thread


def ask(*pieces, method='GET', close=False, limit=None, body=b''):
    conn, got, thread = serve(*pieces, close=close)
    try:
        return exchange.exchange(conn, method, '/sda/1/a/c/o',
                                 {'X-Timestamp': '1.00000'}, body,
                                 limit=limit), got
    finally:
        thread.join(5)
        conn.sock.close()


def test_content_length_answer_in_pieces_keeps_the_connection():
    answer, got = ask(b'HTTP/1.1 201 Created\r\nContent-Le',
                      b'ngth: 11\r\nETag:  "abc"\r\n\r\nhello',
                      b' world')
    assert (answer.status, answer.reason) == (201, 'Created')
    assert answer.headers == [('Content-Length', '11'), ('ETag', '"abc"')]
    assert answer.body == b'hello world'
    assert answer.keep_alive
    head = got[0]
    assert head.startswith(b'GET /sda/1/a/c/o HTTP/1.1\r\n')
    assert b'\r\nHost: 127.0.0.1:6200\r\n' in head
    assert b'\r\nX-Timestamp: 1.00000\r\n' in head


def test_large_body_is_read_exactly():
    body = bytes(range(256)) * 8192        # 2 MiB
    answer, _ = ask(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n'
                    % len(body), body[:1000], body[1000:])
    assert answer.body == body and answer.keep_alive


def test_chunked_answer_with_extension_and_trailer():
    answer, _ = ask(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
                    b'5;x=y\r\nhello\r\n', b'1\r\n \r\n5\r\nworld\r\n'
                    b'0\r\nX-Trailer: 1\r\n\r\n')
    assert answer.body == b'hello world' and answer.keep_alive


def test_no_body_for_head_204_and_interim_100():
    answer, _ = ask(b'HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n',
                    method='HEAD')
    assert (answer.status, answer.body, answer.keep_alive) == \
        (200, b'', True)
    answer, _ = ask(b'HTTP/1.1 204 No Content\r\n\r\n', method='DELETE')
    assert (answer.status, answer.body, answer.keep_alive) == \
        (204, b'', True)
    answer, _ = ask(b'HTTP/1.1 100 Continue\r\n\r\n',
                    b'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n',
                    method='PUT', body=b'x')
    assert answer.status == 201 and answer.keep_alive


def test_answers_that_end_the_connection():
    answer, _ = ask(b'HTTP/1.1 200 OK\r\n\r\nuntil the end', close=True)
    assert answer.body == b'until the end' and not answer.keep_alive
    answer, _ = ask(b'HTTP/1.1 200 OK\r\nConnection: close\r\n'
                    b'Content-Length: 2\r\n\r\nok')
    assert answer.body == b'ok' and not answer.keep_alive
    answer, _ = ask(b'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok')
    assert not answer.keep_alive
    answer, _ = ask(b'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n'
                    b'Content-Length: 2\r\n\r\nok')
    assert answer.keep_alive
    # bytes beyond the answer: the connection cannot be trusted again
    answer, _ = ask(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA')
    assert answer.body == b'ok' and not answer.keep_alive


def test_folded_header_is_joined():
    answer, _ = ask(b'HTTP/1.1 200 OK\r\nX-Long: one\r\n two\r\n'
                    b'Content-Length: 0\r\n\r\n')
    assert answer.headers == [('X-Long', 'one two'),
                              ('Content-Length', '0')]


@pytest.mark.parametrize('pieces,error', [
    ((), http.client.RemoteDisconnected),
    ((b'HTTP/1.1 200 OK\r\nContent-',), http.client.IncompleteRead),
    ((b'garbage\r\n\r\n',), http.client.BadStatusLine),
    ((b'HTTP/1.1 2000 OK\r\n\r\n',), http.client.BadStatusLine),
    ((b'HTTP/1.1 200 OK\r\nno colon\r\n\r\n',), http.client.HTTPException),
    ((b'HTTP/1.1 200 OK\r\nX: ' + b'y' * 70000 + b'\r\n\r\n',),
     http.client.LineTooLong),
    ((b'HTTP/1.1 200 OK\r\nX: y\r\n' * 3 + b'y' * 300000,),
     http.client.LineTooLong),
    ((b'HTTP/1.1 200 OK\r\n' + b'X: y\r\n' * 300 + b'\r\n',),
     http.client.HTTPException),
    ((b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort',),
     http.client.IncompleteRead),
    ((b'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',),
     http.client.HTTPException),
    ((b'HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n',),
     http.client.HTTPException),
    ((b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',),
     http.client.HTTPException),
    ((b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
      b'2\r\nokXX0\r\n\r\n',), http.client.HTTPException),
])
def test_broken_answers_raise_what_http_client_raises(pieces, error):
    with pytest.raises(error):
        ask(*pieces, close=True)


def test_an_answer_beyond_the_limit_is_refused():
    for pieces in ((b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n',),
                   (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n'
                    b'\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n',),
                   (b'HTTP/1.1 200 OK\r\n\r\nhello world',)):
        with pytest.raises(ValueError):
            ask(*pieces, close=True, limit=10)


def test_small_body_goes_with_the_head_and_large_one_after_it():
    sent = []

    class Sock:
        def sendall(self, data):
            sent.append(bytes(data))

        def recv(self, size):
            return b'HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'
    conn = Conn(Sock())
    exchange.exchange(conn, 'PUT', '/x', {'Content-Length': '5'}, b'hello')
    assert len(sent) == 1 and sent[0].endswith(b'\r\n\r\nhello')
    del sent[:]
    big = b'z' * (exchange.ONE_SEND_LIMIT + 1)
    exchange.exchange(conn, 'PUT', '/x', {}, big)
    assert len(sent) == 2 and sent[1] is not None and sent[1] == big


def test_a_line_break_in_a_header_is_refused():
    for headers in ({'X-A': 'one\r\nX-Injected: 1'}, {'X-A': 'x\ny'},
                    {'X-A\r\nB': 'v'}, {'X:A': 'v'}):
        with pytest.raises(ValueError):
            exchange.request_head('PUT', '/x', 'h', 1, headers)
    assert exchange.request_head('PUT', '/x', '::1', 80, {'N': 5}) == \
        b'PUT /x HTTP/1.1\r\nHost: [::1]:80\r\nN: 5\r\n\r\n'
