"""backend.request over pooled keep-alive connections, against a real
HTTP/1.1 server on loopback that records which connection (client port)
carried each request."""
import http.server
import os
import socket
import threading

import pytest

from objstore.common import backend

SECRET = b'cluster-secret'


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers every method; the path picks how:

    /ok     200 with a body
    /close  200 saying ``Connection: close``, yet keeps the connection
    /hang   answers only once the test is over
    and when ``server.drop_next`` is set, reads a request and closes the
    connection without answering (what a server closing an idle
    connection looks like to a client whose request crossed it).
    """
    protocol_version = 'HTTP/1.1'

    def setup(self):
        super().setup()
        self.server.connections.append(self.connection)

    def log_message(self, *args):
        pass

    def answer(self):
        self.rfile.read(int(self.headers.get('Content-Length') or 0))
        self.server.seen.append((self.path, self.client_address[1]))
        if self.server.drop_next:
            self.server.drop_next -= 1
            self.close_connection = True
            return
        if self.path == '/hang':
            self.server.release.wait(10)
        self.send_response(200)
        if self.path == '/close':
            self.send_header('Connection', 'close')
        self.send_header('Content-Length', '2')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(b'ok')
        self.close_connection = False

    do_GET = do_HEAD = do_PUT = do_DELETE = answer


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(('127.0.0.1', 0), Handler)
        self.port = self.server_address[1]
        self.seen = []          # (path, client port) per request
        self.connections = []   # server side of every accepted connection
        self.drop_next = 0
        self.release = threading.Event()

    def handle_error(self, request, client_address):
        pass    # a client that gave up on /hang: expected here

    def ports(self, path='/ok'):
        return [port for seen, port in self.seen if seen == path]

    def close_connections(self):
        """Close every connection from the server's side, as an idle
        timeout would."""
        for sock in self.connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def server():
    backend.close_idle()
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,),
                              daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    backend.close_idle()
    srv.shutdown()
    srv.server_close()


def call(server, path='/ok', method='GET', timeout=5.0, body=b''):
    return backend.request(SECRET, '127.0.0.1', server.port, method, path,
                           headers={'X-Timestamp': '1700000000.00000'},
                           body=body, timeout=timeout)


def test_sequential_requests_share_one_connection(server):
    assert call(server, method='PUT', body=b'data')[0] == 200
    status, headers, body = call(server)
    assert (status, headers['content-length'], body) == (200, '2', b'ok')
    assert call(server, method='HEAD')[2] == b''
    first, second, third = server.ports()
    assert first == second == third


def test_connection_closed_by_the_server_while_idle(server):
    call(server)
    server.close_connections()
    assert call(server)[0] == 200
    first, second = server.ports()
    assert first != second


def test_reused_connection_closed_as_the_request_arrives_is_retried(server):
    call(server)
    server.drop_next = 1
    assert call(server)[:3:2] == (200, b'ok')
    pooled, dropped, retried = server.ports()
    assert dropped == pooled and retried != pooled


def test_fresh_connection_failing_is_not_retried(server):
    server.drop_next = 1
    with pytest.raises(backend.BackendError):
        call(server)
    assert len(server.ports()) == 1


def test_timeout_bounds_a_reused_connection_and_is_not_retried(server):
    call(server, timeout=30.0)
    with pytest.raises(backend.BackendError):
        call(server, '/hang', timeout=0.2)
    assert server.ports('/hang') == server.ports('/ok')


def test_connection_close_answer_is_not_pooled(server):
    call(server, '/close')
    call(server)
    # the server kept the connection open: had the client pooled it, the
    # second request would have come on the same one
    assert server.ports('/close') != server.ports('/ok')


def test_connections_idle_too_long_are_dropped(server, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(backend._POOL, 'clock', lambda: now[0])
    call(server)
    now[0] += 49
    call(server)
    now[0] += 51
    call(server)
    first, second, third = server.ports()
    assert first == second != third


def test_close_idle_closes_pooled_connections(server):
    call(server)
    backend.close_idle()
    call(server)
    first, second = server.ports()
    assert first != second


def test_unreachable_node_raises_backend_error():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))     # bound, not listening: refused
        port = sock.getsockname()[1]
        with pytest.raises(backend.BackendError, match='127.0.0.1:%d'
                           % port):
            backend.request(SECRET, '127.0.0.1', port, 'GET', '/a',
                            timeout=2.0)


def test_threads_never_share_a_connection(server):
    threads, each = 6, 15
    results = []

    def work():
        results.extend(call(server)[:3:2] for _ in range(each))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert results == [(200, b'ok')] * threads * each
    # a connection is made only when none is idle, so never more than
    # one per thread
    assert len(set(server.ports())) <= threads


def test_forked_child_does_not_use_the_parents_connection(server):
    call(server)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            report = str(call(server)[0])
        except BaseException as e:
            report = repr(e)
        finally:
            os.write(write_end, report.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, 'rb') as pipe:
        report = pipe.read().decode()
    os.waitpid(pid, 0)
    assert report == '200'
    call(server)
    parent, child, parent_again = server.ports()
    assert child != parent
    assert parent_again == parent    # the child left the parent's alone
