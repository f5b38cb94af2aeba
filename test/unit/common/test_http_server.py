"""The lean HTTP/1.1 WSGI server, driven over real loopback sockets.

Every test starts ``http_server.serve`` in a green thread on a fresh
127.0.0.1:0 socket and talks to it with raw bytes from a green client socket,
so the exact framing on the wire (status line, chunking, keep-alive, errors)
is what gets checked, not what a forgiving client library would accept.
Reads carry a guard timeout so a server that hangs fails the test instead of
stalling the suite; no test asserts on how long anything took.
"""
import email.utils
import logging
import select
import socket
import sys

import pytest

from objstore.common import concurrency, http_server

GUARD = 5.0     # seconds before a read that should have finished is a failure


# ---------------------------------------------------------------- helpers --

def request(method='GET', target='/', headers=(), body=b'',
            version='HTTP/1.1', host=True):
    """Raw request bytes; headers are sent exactly as given, in order."""
    lines = ['%s %s %s' % (method, target, version)]
    if host and version == 'HTTP/1.1':
        lines.append('Host: localhost')
    lines.extend('%s: %s' % (name, value) for name, value in headers)
    head = ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1')
    return head + body


def chunked(*pieces, trailer=b''):
    """A chunked body made of ``pieces``, terminated (and maybe trailed)."""
    out = b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in pieces)
    return out + b'0\r\n' + trailer + b'\r\n'


class Response:
    """One parsed response: what the reader saw on the wire."""

    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers      # list of (name, value) as received
        self.body = body

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def header(self, name):
        values = self.all(name)
        assert len(values) <= 1, 'header %s sent %d times' % (name,
                                                              len(values))
        return values[0] if values else None


class Client:
    """A green client socket with a tiny HTTP/1.1 response reader."""

    def __init__(self, port):
        self.sock = concurrency.connect(('127.0.0.1', port))
        self.sock.settimeout(GUARD)
        self.buf = b''

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError('server closed the connection')
        self.buf += data

    def read_line(self):
        while b'\r\n' not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_until_close(self):
        """Everything left until the server closes (or resets) the socket."""
        while True:
            try:
                self._fill()
            except (EOFError, ConnectionResetError):
                break
        data, self.buf = self.buf, b''
        return data

    def read_head(self):
        """Status line and headers of the next response."""
        version, status, reason = (
            self.read_line().decode('latin-1').split(' ', 2) + [''])[:3]
        headers = []
        while True:
            line = self.read_line()
            if not line:
                break
            name, value = line.decode('latin-1').split(':', 1)
            headers.append((name, value.strip()))
        return Response(version, int(status), reason, headers, None)

    def _read_chunked(self):
        body = b''
        while True:
            size = int(self.read_line().split(b';')[0], 16)
            if size == 0:
                break
            body += self.read_exact(size)
            assert self.read_exact(2) == b'\r\n', 'chunk not ended by CRLF'
        while self.read_line():         # trailers up to the blank line
            pass
        return body

    def read_body(self, resp, method='GET'):
        if (method == 'HEAD' or resp.status in (204, 304)
                or 100 <= resp.status < 200):
            return b''
        te = resp.header('Transfer-Encoding')
        if te is not None and te.lower() == 'chunked':
            return self._read_chunked()
        length = resp.header('Content-Length')
        if length is not None:
            return self.read_exact(int(length))
        return self.read_until_close()

    def read_response(self, method='GET'):
        resp = self.read_head()
        resp.body = self.read_body(resp, method)
        return resp

    def get(self, target='/', **kwargs):
        """Send one request and read its response."""
        method = kwargs.get('method', 'GET')
        self.send(request(target=target, **kwargs))
        return self.read_response(method)

    def is_closed(self):
        """True when the server closed its end (EOF or reset)."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b''
        except ConnectionResetError:
            return True

    def nothing_arrived(self):
        """No byte is waiting on the socket right now (no blocking)."""
        readable, _, _ = select.select([self.sock.fileno()], [], [], 0)
        return not self.buf and not readable


class Server:
    """serve() running in a green thread, with clients that follow it."""

    def __init__(self, app, **kwargs):
        self.sock = concurrency.listen(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.thread = concurrency.spawn(http_server.serve, self.sock, app,
                                        **kwargs)
        self.clients = []
        self.killed = False

    def client(self):
        c = Client(self.port)
        self.clients.append(c)
        return c

    def kill(self):
        """Ask serve() to stop, once: a second SystemExit thrown while it
        drains would (rightly) escape from it into the test."""
        if not self.killed and not self.thread.dead:
            self.killed = True
            concurrency.kill(self.thread, SystemExit)

    def stop(self):
        """Throw SystemExit into serve() and wait for it to return."""
        for c in self.clients:
            c.close()
        self.kill()
        with concurrency.Timeout(GUARD):
            try:
                self.thread.wait()
            except SystemExit:
                pass
        self.sock.close()


class ListHandler(logging.Handler):
    """Keeps every record so a test can look at levels and messages."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def at(self, level):
        return [r for r in self.records if r.levelno == level]


_logger_count = [0]


def make_logger():
    """A private logger (no propagation) and the handler collecting it."""
    _logger_count[0] += 1
    logger = logging.getLogger('test.http_server.%d' % _logger_count[0])
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = ListHandler()
    logger.addHandler(handler)
    return logger, handler


def wait_until(predicate):
    """Poll until ``predicate()`` holds; fail after GUARD seconds."""
    with concurrency.Timeout(GUARD):
        while not predicate():
            concurrency.sleep(0.01)


def wait_event(event):
    with concurrency.Timeout(GUARD):
        return event.wait()


def text_app(environ, start_response):
    """Answers with the request's PATH_INFO so order can be checked."""
    body = environ['PATH_INFO'].encode('latin-1')
    start_response('200 OK', [('Content-Length', str(len(body))),
                              ('Content-Type', 'text/plain')])
    return [body]


def echo_app(environ, start_response):
    """Reads the whole body and sends it back."""
    body = environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Length', str(len(body)))])
    return [body]


class Recorder:
    """An app that keeps each request's environ and runs ``body_fn`` on the
    input, so a test can look at what the app saw after the response."""

    def __init__(self, body_fn=None):
        self.environs = []
        self.results = []
        self.done = concurrency.Event()
        self.body_fn = body_fn

    def __call__(self, environ, start_response):
        self.environs.append(dict(environ))
        try:
            if self.body_fn is not None:
                self.results.append(self.body_fn(environ['wsgi.input']))
        except Exception as exc:    # the test looks at what was raised
            self.results.append(exc)
        if not self.done.ready():
            self.done.send(True)
        start_response('200 OK', [('Content-Length', '2')])
        return [b'ok']


@pytest.fixture
def start():
    """start(app, **serve_kwargs) -> Server; every server stops at the end."""
    servers = []

    def _start(app, **kwargs):
        srv = Server(app, **kwargs)
        servers.append(srv)
        return srv
    yield _start
    for srv in servers:
        srv.stop()


def assert_serves(srv):
    """The server still answers a fresh connection with a whole response
    (whatever the test's app makes of the path)."""
    c = srv.client()
    resp = c.get('/still-alive', headers=[('Connection', 'close')])
    assert 200 <= resp.status < 600
    assert c.is_closed()


# ---------------------------------------------------------------- environ --

def test_environ_request_line_and_addresses(start):
    app = Recorder()
    srv = start(app)
    c = srv.client()
    resp = c.get('/a%20b/c%2Fd?x=1&y=%20z')
    assert resp.status == 200 and resp.body == b'ok'
    env = app.environs[0]
    assert env['REQUEST_METHOD'] == 'GET'
    assert env['SCRIPT_NAME'] == ''
    assert env['RAW_PATH_INFO'] == '/a%20b/c%2Fd'
    assert env['PATH_INFO'] == '/a b/c/d'
    assert env['QUERY_STRING'] == 'x=1&y=%20z'
    assert env['SERVER_PROTOCOL'] == 'HTTP/1.1'
    assert env['SERVER_NAME'] == '127.0.0.1'
    assert env['SERVER_PORT'] == str(srv.port)
    client_host, client_port = c.sock.getsockname()
    assert env['REMOTE_ADDR'] == client_host
    assert str(env['REMOTE_PORT']) == str(client_port)


def test_environ_wsgi_keys(start):
    app = Recorder()
    srv = start(app)
    srv.client().get('/')
    env = app.environs[0]
    assert env['wsgi.version'] == (1, 0)
    assert env['wsgi.url_scheme'] == 'http'
    assert env['wsgi.multithread'] is True
    assert env['wsgi.multiprocess'] is True
    assert env['wsgi.run_once'] is False
    assert callable(env['wsgi.input'].read)
    assert callable(env['wsgi.errors'].write)


def test_environ_path_info_is_latin1_decoded(start):
    app = Recorder()
    srv = start(app)
    srv.client().get('/caf%C3%A9/%ff')
    env = app.environs[0]
    assert env['RAW_PATH_INFO'] == '/caf%C3%A9/%ff'
    assert env['PATH_INFO'] == '/caf\xc3\xa9/\xff'
    assert env['QUERY_STRING'] == ''


def test_environ_http_10_protocol(start):
    app = Recorder()
    srv = start(app)
    c = srv.client()
    c.send(request(target='/x', version='HTTP/1.0'))
    assert c.read_response().status == 200
    assert app.environs[0]['SERVER_PROTOCOL'] == 'HTTP/1.0'


def test_environ_content_type_and_length_have_no_prefix(start):
    app = Recorder(lambda inp: inp.read())
    srv = start(app)
    c = srv.client()
    c.get('/p', method='PUT', body=b'hello', headers=[
        ('Content-Type', 'text/plain'), ('Content-Length', '5')])
    c.get('/q')
    with_body, without = app.environs
    assert with_body['CONTENT_TYPE'] == 'text/plain'
    assert with_body['CONTENT_LENGTH'] == '5'
    assert 'HTTP_CONTENT_TYPE' not in with_body
    assert 'HTTP_CONTENT_LENGTH' not in with_body
    assert 'CONTENT_TYPE' not in without
    assert 'CONTENT_LENGTH' not in without
    assert app.results == [b'hello', b'']


def test_environ_headers_named_joined_and_stripped(start):
    app = Recorder()
    srv = start(app)
    srv.client().get('/', headers=[
        ('X-Object-Meta-Color', 'blue'),
        ('X-Twice', 'a'), ('X-Twice', 'b'),
        ('X-Padded', ' \t padded value\t ')])
    env = app.environs[0]
    assert env['HTTP_HOST'] == 'localhost'
    assert env['HTTP_X_OBJECT_META_COLOR'] == 'blue'
    assert env['HTTP_X_TWICE'] == 'a,b'
    assert env['HTTP_X_PADDED'] == 'padded value'


def test_environ_drops_underscore_header_names(start):
    """X_Auth_User must not be able to pose as X-Auth-User."""
    app = Recorder()
    srv = start(app)
    srv.client().get('/', headers=[
        ('X-Auth-User', 'good'), ('X_Auth_User', 'evil'),
        ('X_Only_Underscore', 'evil')])
    env = app.environs[0]
    assert env['HTTP_X_AUTH_USER'] == 'good'
    assert 'HTTP_X_ONLY_UNDERSCORE' not in env
    assert 'evil' not in [v for k, v in env.items()
                          if isinstance(v, str) and k.startswith('HTTP_')]


def test_environ_headers_raw_keeps_what_was_received(start):
    app = Recorder()
    srv = start(app)
    srv.client().get('/', headers=[
        ('X-Auth-User', 'good'), ('X_Auth_User', 'evil'), ('x-lower', 'v')])
    raw = app.environs[0]['headers_raw']
    assert isinstance(raw, tuple)
    assert ('X-Auth-User', 'good') in raw
    assert ('X_Auth_User', 'evil') in raw
    assert ('x-lower', 'v') in raw
    names = [n for n, _ in raw]
    assert names.index('X-Auth-User') < names.index('X_Auth_User')


# ------------------------------------------------------------- wsgi.input --

def test_input_read_n_then_rest_then_empty(start):
    app = Recorder(lambda inp: [inp.read(3), inp.read(4), inp.read(),
                                inp.read(), inp.read(5)])
    srv = start(app)
    srv.client().get('/', method='PUT', body=b'0123456789',
                     headers=[('Content-Length', '10')])
    assert app.results == [[b'012', b'3456', b'789', b'', b'']]


def test_input_read_minus_one_and_short_tail(start):
    app = Recorder(lambda inp: [inp.read(8), inp.read(-1), inp.read(-1)])
    srv = start(app)
    srv.client().get('/', method='PUT', body=b'abcdef',
                     headers=[('Content-Length', '6')])
    assert app.results == [[b'abcdef', b'', b'']]


def test_input_read_n_fills_across_tcp_segments(start):
    """read(n) may not return early just because fewer bytes arrived yet."""
    app = Recorder(lambda inp: inp.read(10))
    srv = start(app)
    c = srv.client()
    c.send(request(method='PUT', headers=[('Content-Length', '10')]) +
           b'01234')
    concurrency.sleep(0.01)
    c.send(b'56789')
    assert c.read_response().status == 200
    assert app.results == [b'0123456789']


def test_input_never_reads_past_the_body(start):
    srv = start(echo_app)
    c = srv.client()
    c.send(request(method='PUT', target='/1', body=b'first',
                   headers=[('Content-Length', '5')]) +
           request(method='PUT', target='/2', body=b'second!',
                   headers=[('Content-Length', '7')]))
    assert c.read_response().body == b'first'
    assert c.read_response().body == b'second!'


def test_input_client_closes_early_returns_what_arrived(start):
    app = Recorder(lambda inp: [inp.read(2), inp.read(10), inp.read()])
    srv = start(app)
    c = srv.client()
    c.send(request(method='PUT', headers=[('Content-Length', '10')]) +
           b'abcd')
    c.sock.shutdown(socket.SHUT_WR)
    wait_event(app.done)
    assert app.results == [[b'ab', b'cd', b'']]


def test_input_chunked_read_n_across_chunks(start):
    app = Recorder(lambda inp: [inp.read(5), inp.read(3), inp.read(),
                                inp.read(1)])
    srv = start(app)
    c = srv.client()
    resp = c.get('/', method='PUT', body=chunked(b'abc', b'defg', b'hi'),
                 headers=[('Transfer-Encoding', 'chunked')])
    assert resp.status == 200
    assert app.results == [[b'abcde', b'fgh', b'i', b'']]
    assert 'CONTENT_LENGTH' not in app.environs[0]


def test_input_chunked_extensions_and_trailers_then_next_request(start):
    body = (b'3;name=val\r\nabc\r\n'
            b'4;a=1;b="x y"\r\ndefg\r\n'
            b'0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n')
    srv = start(echo_app)
    c = srv.client()
    c.send(request(method='PUT', target='/1', body=body,
                   headers=[('Transfer-Encoding', 'chunked')]) +
           request(method='PUT', target='/2', body=b'next',
                   headers=[('Content-Length', '4')]))
    assert c.read_response().body == b'abcdefg'
    assert c.read_response().body == b'next'


def test_input_keeps_the_trailer_fields_once_the_body_is_read(start):
    app = Recorder(lambda inp: [inp.trailers, inp.read(), inp.trailers])
    srv = start(app)
    c = srv.client()
    trailer = b'X-Object-Etag:  abc \r\nbad line\r\nX-Two: 2\r\n'
    c.send(request(method='PUT', target='/1', body=chunked(b'xy', trailer=
                                                           trailer),
                   headers=[('Transfer-Encoding', 'chunked')]) +
           request(method='PUT', target='/2', body=chunked(b'z'),
                   headers=[('Transfer-Encoding', 'chunked')]) +
           request(method='PUT', target='/3', body=b'q',
                   headers=[('Content-Length', '1')]))
    for _ in range(3):
        assert c.read_response().status == 200
    assert app.results == [[None, b'xy', {'x-object-etag': 'abc',
                                          'x-two': '2'}],
                           [None, b'z', {}], [None, b'q', None]]


def test_input_chunked_transfer_encoding_is_case_insensitive(start):
    srv = start(echo_app)
    resp = srv.client().get('/', method='PUT', body=chunked(b'xy'),
                            headers=[('Transfer-Encoding', 'Chunked')])
    assert resp.status == 200 and resp.body == b'xy'


@pytest.mark.parametrize('body', [
    b'zz\r\nabc\r\n0\r\n\r\n',          # size is not hex
    b'\r\nabc\r\n0\r\n\r\n',            # size missing
    b'3\r\nabcX\r\n0\r\n\r\n',          # chunk not followed by CRLF
], ids=['not-hex', 'empty-size', 'no-crlf-after-chunk'])
def test_input_chunked_malformed_raises_value_error(start, body):
    app = Recorder(lambda inp: inp.read())
    srv = start(app)
    c = srv.client()
    c.send(request(method='PUT', body=body,
                   headers=[('Transfer-Encoding', 'chunked')]))
    wait_event(app.done)
    assert isinstance(app.results[0], ValueError), app.results


def test_input_chunked_connection_lost_raises_connection_error(start):
    app = Recorder(lambda inp: inp.read())
    srv = start(app)
    c = srv.client()
    c.send(request(method='PUT', headers=[('Transfer-Encoding', 'chunked')])
           + b'5\r\nab')
    c.sock.shutdown(socket.SHUT_WR)
    wait_event(app.done)
    assert isinstance(app.results[0], ConnectionError), app.results


def test_input_chunked_huge_chunk_size_then_close(start):
    """The chunk size comes from the client: read() must not trust it to
    size a buffer, and a cut body is still a ConnectionError."""
    app = Recorder(lambda inp: inp.read())
    srv = start(app)
    c = srv.client()
    c.send(request(method='PUT', headers=[('Transfer-Encoding', 'chunked')])
           + b'fffffffffffff\r\nabc')
    c.sock.shutdown(socket.SHUT_WR)
    wait_event(app.done)
    assert isinstance(app.results[0], ConnectionError), app.results


def test_input_huge_content_length_client_closes_early(start):
    """read() of a body announced as 4 PiB returns what arrived, without
    first asking for a buffer of the announced size."""
    app = Recorder(lambda inp: [inp.read(), inp.read()])
    srv = start(app)
    c = srv.client()
    c.send(request(method='PUT', headers=[('Content-Length', str(1 << 52))])
           + b'abcd')
    c.sock.shutdown(socket.SHUT_WR)
    wait_event(app.done)
    assert app.results == [[b'abcd', b'']]


def test_input_readline_content_length(start):
    app = Recorder(lambda inp: [inp.readline(), inp.readline(3),
                                inp.readline(), inp.readline(), inp.readline()])
    srv = start(app)
    body = b'line1\nline2\nrest'
    srv.client().get('/', method='PUT', body=body,
                     headers=[('Content-Length', str(len(body)))])
    assert app.results == [[b'line1\n', b'lin', b'e2\n', b'rest', b'']]


def test_input_readline_chunked_across_chunks(start):
    app = Recorder(lambda inp: [inp.readline(), inp.readline(),
                                inp.readline(), inp.readline()])
    srv = start(app)
    srv.client().get('/', method='PUT',
                     body=chunked(b'a', b'b\nc', b'd\n', b'e'),
                     headers=[('Transfer-Encoding', 'chunked')])
    assert app.results == [[b'ab\n', b'cd\n', b'e', b'']]


def test_input_get_socket_is_the_connection(start):
    app = Recorder(lambda inp: inp.get_socket().getpeername())
    srv = start(app)
    c = srv.client()
    c.get('/')
    assert tuple(app.results[0]) == c.sock.getsockname()


def test_input_no_length_no_encoding_is_empty(start):
    app = Recorder(lambda inp: [inp.read(), inp.read(10), inp.readline()])
    srv = start(app)
    c = srv.client()
    assert c.get('/', method='POST').status == 200
    assert c.get('/again').status == 200
    assert app.results[0] == [b'', b'', b'']


def _continue_app(entered, go):
    """Signals it was called, waits for ``go``, then reads the body."""
    def app(environ, start_response):
        if not entered.ready():
            entered.send(True)
        wait_event(go)
        body = environ['wsgi.input'].read()
        start_response('201 Created', [('Content-Length', str(len(body)))])
        return [body]
    return app


def test_expect_100_continue_sent_on_first_read_only(start):
    entered, go = concurrency.Event(), concurrency.Event()
    srv = start(_continue_app(entered, go))
    c = srv.client()
    c.send(request(method='PUT', headers=[('Content-Length', '5'),
                                          ('Expect', '100-continue')]))
    wait_event(entered)
    assert c.nothing_arrived(), '100 Continue sent before the app read'
    go.send(True)
    interim = c.read_head()
    assert (interim.version, interim.status) == ('HTTP/1.1', 100)
    assert interim.headers == []
    c.send(b'hello')
    final = c.read_response()
    assert final.status == 201 and final.body == b'hello'
    assert c.get('/next').status == 201


def test_expect_100_continue_exact_bytes(start):
    srv = start(echo_app)
    c = srv.client()
    c.send(request(method='PUT', headers=[('Content-Length', '2'),
                                          ('Expect', '100-continue')]))
    assert c.read_exact(len(b'HTTP/1.1 100 Continue\r\n\r\n')) == \
        b'HTTP/1.1 100 Continue\r\n\r\n'
    c.send(b'ok')
    assert c.read_response().body == b'ok'


def test_expect_100_without_read_sends_no_continue_and_closes(start):
    def refuse(environ, start_response):
        start_response('413 Request Entity Too Large',
                       [('Content-Length', '3')])
        return [b'big']
    srv = start(refuse)
    c = srv.client()
    c.send(request(method='PUT', headers=[('Content-Length', '10'),
                                          ('Expect', '100-continue')]))
    resp = c.read_response()
    assert resp.status == 413 and resp.body == b'big'
    assert c.is_closed()
    assert_serves(srv)


# --------------------------------------------------------------- responses --

def test_status_line_is_http_11_even_for_10_request(start):
    srv = start(text_app)
    c = srv.client()
    c.send(request(target='/x', version='HTTP/1.0'))
    resp = c.read_response()
    assert resp.version == 'HTTP/1.1'
    assert (resp.status, resp.reason) == (200, 'OK')
    assert resp.body == b'/x'


def test_date_header_added(start):
    srv = start(text_app)
    resp = srv.client().get('/')
    date = resp.header('Date')
    assert date is not None
    assert email.utils.parsedate_to_datetime(date).year >= 2024


def test_date_header_from_app_kept(start):
    date = 'Thu, 01 Jan 1970 00:00:00 GMT'

    def app(environ, start_response):
        start_response('200 OK', [('Date', date), ('Content-Length', '0')])
        return [b'']
    srv = start(app)
    resp = srv.client().get('/')
    assert resp.all('Date') == [date]


@pytest.mark.parametrize('make', [list, tuple])
def test_content_length_added_for_sized_result(start, make):
    def app(environ, start_response):
        start_response('200 OK', [])
        return make([b'ab', b'', b'cde'])
    srv = start(app)
    c = srv.client()
    resp = c.get('/')
    assert resp.header('Content-Length') == '5'
    assert resp.header('Transfer-Encoding') is None
    assert resp.body == b'abcde'
    assert c.get('/again').body == b'abcde'


def test_content_length_from_app_not_duplicated(start):
    def app(environ, start_response):
        start_response('200 OK', [('content-length', '3')])
        return (p for p in [b'a', b'bc'])
    srv = start(app)
    c = srv.client()
    resp = c.get('/')
    assert resp.all('Content-Length') == ['3']
    assert resp.header('Transfer-Encoding') is None
    assert resp.body == b'abc'
    assert c.get('/again').body == b'abc'


def _generator_app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])

    def body():
        yield b'hello '
        yield b''
        yield b'world'
    return body()


def test_unsized_body_is_chunked_on_http_11(start):
    srv = start(_generator_app)
    c = srv.client()
    c.send(request())
    resp = c.read_head()
    assert resp.header('Transfer-Encoding').lower() == 'chunked'
    assert resp.header('Content-Length') is None
    assert c._read_chunked() == b'hello world'
    assert c.get('/again').body == b'hello world'


def test_unsized_body_chunks_are_well_formed(start):
    """Raw check: no empty chunk before the end (it would end the body)."""
    srv = start(_generator_app)
    c = srv.client()
    c.send(request(headers=[('Connection', 'close')]))
    raw = c.read_until_close()
    body = raw.split(b'\r\n\r\n', 1)[1]
    assert body.endswith(b'0\r\n\r\n')
    assert body.count(b'0\r\n\r\n') == 1
    assert body.startswith(b'6\r\nhello \r\n')


@pytest.mark.parametrize('keep_alive', [False, True])
def test_unsized_body_on_http_10_runs_until_close(start, keep_alive):
    srv = start(_generator_app)
    c = srv.client()
    headers = [('Connection', 'keep-alive')] if keep_alive else []
    c.send(request(version='HTTP/1.0', headers=headers))
    resp = c.read_head()
    assert resp.header('Transfer-Encoding') is None
    assert resp.header('Content-Length') is None
    assert c.read_until_close() == b'hello world'


def _app_with_body(status):
    def app(environ, start_response):
        start_response(status, [('Content-Type', 'text/plain')])
        return (p for p in [b'should ', b'not be sent'])
    return app


@pytest.mark.parametrize('status,method', [
    ('200 OK', 'HEAD'), ('204 No Content', 'GET'),
    ('304 Not Modified', 'GET'), ('204 No Content', 'DELETE')])
def test_no_body_bytes_for_head_204_304(start, status, method):
    srv = start(_app_with_body(status))
    c = srv.client()
    c.send(request(method=method, target='/1') +
           request(method='HEAD', target='/2'))
    first = c.read_response(method)
    assert first.status == int(status.split()[0])
    second = c.read_head()      # bytes of a body would break this parse
    assert second.status == int(status.split()[0])
    c.send(request(method='HEAD', target='/3', headers=[
        ('Connection', 'close')]))
    c.read_head()
    assert c.read_until_close() == b''


def test_head_with_sized_result_keeps_connection(start):
    srv = start(text_app)
    c = srv.client()
    head = c.get('/abc', method='HEAD')
    assert head.status == 200 and head.body == b''
    assert head.header('Content-Length') == '4'
    assert c.get('/next').body == b'/next'


def test_write_callable_then_iterable(start):
    def app(environ, start_response):
        write = start_response('200 OK', [])
        write(b'ab')
        write(b'')
        return [b'cd', b'ef']
    srv = start(app)
    c = srv.client()
    assert c.get('/').body == b'abcdef'
    assert c.get('/again').body == b'abcdef'


def test_write_callable_with_content_length(start):
    def app(environ, start_response):
        write = start_response('200 OK', [('Content-Length', '4')])
        write(b'ab')
        return iter([b'cd'])
    srv = start(app)
    c = srv.client()
    resp = c.get('/')
    assert resp.header('Content-Length') == '4'
    assert resp.body == b'abcd'
    assert c.get('/again').body == b'abcd'


class ClosingResult:
    """An iterable result that notes when the server closes it."""

    def __init__(self, chunks, forever=False):
        self.chunks = chunks
        self.forever = forever
        self.closed = concurrency.Event()

    def __iter__(self):
        while True:
            yield from self.chunks
            if not self.forever:
                return

    def close(self):
        self.closed.send(True)


def test_result_close_called(start):
    result = ClosingResult([b'a', b'b'])

    def app(environ, start_response):
        start_response('200 OK', [])
        return result
    srv = start(app)
    assert srv.client().get('/').body == b'ab'
    assert wait_event(result.closed) is True


def test_result_close_called_when_client_leaves_mid_body(start):
    result = ClosingResult([b'x' * 65536], forever=True)

    def app(environ, start_response):
        if environ['PATH_INFO'] == '/still-alive':
            return text_app(environ, start_response)
        start_response('200 OK', [])
        return result
    srv = start(app)
    c = srv.client()
    c.send(request())
    assert c.read_head().status == 200
    c.read_exact(1000)
    c.close()
    assert wait_event(result.closed) is True
    assert not srv.thread.dead
    assert_serves(srv)


def test_start_response_again_with_exc_info_replaces_status(start):
    def app(environ, start_response):
        start_response('200 OK', [('X-First', 'yes')])
        try:
            raise ValueError('late failure')
        except ValueError:
            start_response('503 Service Unavailable',
                           [('Content-Length', '3')], sys.exc_info())
        return [b'err']
    srv = start(app)
    resp = srv.client().get('/')
    assert resp.status == 503 and resp.body == b'err'
    assert resp.header('X-First') is None


def test_app_headers_sent_as_given(start):
    def app(environ, start_response):
        start_response('201 Created', [('X-Object-Meta-A', 'one'),
                                       ('Set-Cookie', 'a=1'),
                                       ('Set-Cookie', 'b=2'),
                                       ('Content-Length', '0')])
        return []
    srv = start(app)
    resp = srv.client().get('/')
    assert (resp.status, resp.reason) == (201, 'Created')
    assert resp.header('X-Object-Meta-A') == 'one'
    assert resp.all('Set-Cookie') == ['a=1', 'b=2']


# -------------------------------------------------------------- keep-alive --

def test_http_11_keeps_connection(start):
    srv = start(text_app)
    c = srv.client()
    for path in ('/1', '/2', '/3'):
        resp = c.get(path)
        assert resp.body == path.encode()
        assert (resp.header('Connection') or '').lower() != 'close'


def test_http_11_connection_close(start):
    srv = start(text_app)
    c = srv.client()
    resp = c.get('/bye', headers=[('Connection', 'close')])
    assert resp.body == b'/bye'
    assert resp.header('Connection').lower() == 'close'
    assert c.is_closed()


def test_http_10_closes_by_default(start):
    srv = start(text_app)
    c = srv.client()
    c.send(request(target='/x', version='HTTP/1.0'))
    resp = c.read_response()
    assert resp.body == b'/x'
    assert (resp.header('Connection') or 'close').lower() == 'close'
    assert c.is_closed()


def test_http_10_keep_alive(start):
    srv = start(text_app)
    c = srv.client()
    for path in ('/1', '/2'):
        c.send(request(target=path, version='HTTP/1.0',
                       headers=[('Connection', 'keep-alive')]))
        resp = c.read_response()
        assert resp.body == path.encode()
        assert resp.header('Connection').lower() == 'keep-alive'


def test_pipelined_requests_answered_in_order(start):
    srv = start(text_app)
    c = srv.client()
    c.send(b''.join(request(target='/%d' % i) for i in range(5)))
    assert [c.read_response().body for _ in range(5)] == \
        [b'/%d' % i for i in range(5)]


def test_small_unread_body_is_discarded(start):
    srv = start(text_app)
    c = srv.client()
    body = b'z' * 1000
    c.send(request(method='PUT', target='/ignored', body=body,
                   headers=[('Content-Length', str(len(body)))]) +
           request(target='/next'))
    assert c.read_response().body == b'/ignored'
    assert c.read_response().body == b'/next'


def test_small_unread_chunked_body_is_discarded(start):
    srv = start(text_app)
    c = srv.client()
    c.send(request(method='PUT', target='/ignored',
                   body=chunked(b'a' * 100, b'b' * 200),
                   headers=[('Transfer-Encoding', 'chunked')]) +
           request(target='/next'))
    assert c.read_response().body == b'/ignored'
    assert c.read_response().body == b'/next'


def test_large_unread_body_closes_connection(start):
    srv = start(text_app)
    c = srv.client()
    c.send(request(method='PUT', target='/big',
                   headers=[('Content-Length', str(1 << 20))]) + b'y' * 100)
    assert c.read_response().body == b'/big'
    assert c.is_closed()
    assert_serves(srv)


def test_close_after_unread_body_is_announced(start):
    """When the server will close because the body was left unread (too
    big, or 100-continue never sent), the response says so (RFC 9110
    10.1.1), so a client does not reuse the connection for its next
    request or keep sending a body nobody reads."""
    srv = start(text_app)
    big = srv.client()
    big.send(request(method='PUT', target='/big',
                     headers=[('Content-Length', str(1 << 20))]) + b'y' * 100)
    resp = big.read_response()
    assert (resp.header('Connection') or '').lower() == 'close'
    waiting = srv.client()
    waiting.send(request(method='PUT', headers=[
        ('Content-Length', '10'), ('Expect', '100-continue')]))
    resp = waiting.read_response()
    assert (resp.header('Connection') or '').lower() == 'close'


def test_idle_connection_closed_after_socket_timeout(start):
    srv = start(text_app, socket_timeout=0.5)
    c = srv.client()
    assert c.get('/').status == 200
    assert c.is_closed()        # within GUARD: the server gave up on it
    silent = srv.client()
    assert silent.is_closed()


def test_slow_client_does_not_block_others(start):
    srv = start(text_app)
    slow = srv.client()
    slow.send(b'GET /slow HTTP/1.1\r\nHost: x\r\n')     # headers unfinished
    assert_serves(srv)
    slow.send(b'\r\n')
    assert slow.read_response().body == b'/slow'


# ------------------------------------------------------------------ errors --

def _bad_header_line():
    return request(headers=[('X-Big', 'a' * 9000)])


def _many_headers():
    return request(headers=[('X-H-%d' % i, 'v') for i in range(101)])


BAD_REQUESTS = [
    ('garbage-line', b'hello\r\n\r\n', {400}),
    ('http-2', b'GET / HTTP/2.0\r\n\r\n', {505}),
    ('long-request-line',
     b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\nHost: x\r\n\r\n', {414}),
    ('long-header-line', _bad_header_line(), {431, 400}),
    ('too-many-headers', _many_headers(), {431}),
    ('header-without-colon',
     b'GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n', {400}),
    ('obsolete-folding',
     b'GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n', {400}),
    ('tab-folding',
     b'GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n\ttwo\r\n\r\n', {400}),
    ('space-before-colon',
     b'GET / HTTP/1.1\r\nHost: x\r\nX-A : one\r\n\r\n', {400}),
    ('cl-negative', request(method='PUT', headers=[
        ('Content-Length', '-1')]), {400}),
    ('cl-plus', request(method='PUT', headers=[
        ('Content-Length', '+5')]) + b'12345', {400}),
    ('cl-underscore', request(method='PUT', headers=[
        ('Content-Length', '1_0')]) + b'0123456789', {400}),
    ('cl-letters', request(method='PUT', headers=[
        ('Content-Length', 'abc')]), {400}),
    ('cl-two-values', request(method='PUT', headers=[
        ('Content-Length', '5'), ('Content-Length', '6')]) + b'123456',
     {400}),
    ('cl-and-te', request(method='PUT', headers=[
        ('Content-Length', '5'), ('Transfer-Encoding', 'chunked')]) +
     chunked(b'12345'), {400}),
    ('te-gzip', request(method='PUT', headers=[
        ('Transfer-Encoding', 'gzip')]) + b'xxxx', {501}),
]


@pytest.mark.parametrize('raw,statuses', [b[1:] for b in BAD_REQUESTS],
                         ids=[b[0] for b in BAD_REQUESTS])
def test_bad_request_answered_and_closed(start, raw, statuses):
    logger, handler = make_logger()
    app = Recorder()
    srv = start(app, logger=logger)
    c = srv.client()
    c.send(raw)
    resp = c.read_response()
    assert resp.status in statuses
    assert resp.header('Connection').lower() == 'close'
    assert b'Traceback' not in resp.body
    assert c.is_closed()
    assert app.environs == [], 'the app must not see a bad request'
    assert_serves(srv)
    assert handler.at(logging.ERROR) == []


@pytest.mark.parametrize('with_logger', [True, False])
def test_app_error_before_headers_is_500(start, with_logger):
    logger, handler = make_logger()

    def app(environ, start_response):
        if environ['PATH_INFO'] == '/still-alive':
            return text_app(environ, start_response)
        raise RuntimeError('boom-secret-detail')
    srv = start(app, logger=logger if with_logger else None)
    c = srv.client()
    c.send(request())
    resp = c.read_response()
    assert resp.status == 500
    assert resp.body == b''
    assert resp.header('Connection').lower() == 'close'
    assert c.is_closed()
    assert_serves(srv)
    if with_logger:
        errors = handler.at(logging.ERROR)
        assert len(errors) == 1
        assert errors[0].exc_info is not None or \
            'boom-secret-detail' in errors[0].getMessage()


def test_app_error_after_start_response_before_body_is_500(start):
    logger, handler = make_logger()

    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])

        def body():
            raise RuntimeError('boom-secret-detail')
            yield b''   # pragma: no cover  (makes this a generator)
        return body()
    srv = start(app, logger=logger)
    c = srv.client()
    c.send(request())
    resp = c.read_response()
    assert resp.status == 500
    assert b'boom-secret-detail' not in resp.body
    assert c.is_closed()
    assert len(handler.at(logging.ERROR)) == 1


@pytest.mark.parametrize('sized', [True, False])
def test_app_error_after_headers_closes_connection(start, sized):
    logger, handler = make_logger()

    def app(environ, start_response):
        if environ['PATH_INFO'] == '/still-alive':
            return text_app(environ, start_response)
        headers = [('Content-Length', '100')] if sized else []
        start_response('200 OK', headers)

        def body():
            yield b'part'
            raise RuntimeError('boom-secret-detail')
        return body()
    srv = start(app, logger=logger)
    c = srv.client()
    c.send(request())
    resp = c.read_head()
    assert resp.status == 200
    rest = c.read_until_close()
    if sized:
        assert rest == b'part'
    else:
        assert resp.header('Transfer-Encoding').lower() == 'chunked'
        assert b'part' in rest
        assert not rest.endswith(b'0\r\n\r\n')
    assert b'boom-secret-detail' not in rest
    assert len(handler.at(logging.ERROR)) == 1
    assert_serves(srv)


def test_client_disconnect_mid_response_server_fine(start):
    def app(environ, start_response):
        if environ['PATH_INFO'] == '/still-alive':
            return text_app(environ, start_response)
        start_response('200 OK', [('Content-Length', str(1 << 30))])
        return iter(lambda: b'x' * 65536, None)
    srv = start(app)
    for _ in range(3):
        c = srv.client()
        c.send(request())
        assert c.read_head().status == 200
        c.read_exact(100)
        c.close()
    assert_serves(srv)
    assert not srv.thread.dead


def test_empty_connection_logs_nothing_bad(start):
    logger, handler = make_logger()
    srv = start(text_app, logger=logger)
    c = srv.client()
    c.close()
    half = srv.client()
    half.send(b'GET / HT')
    half.close()
    assert_serves(srv)
    srv.stop()
    assert handler.at(logging.ERROR) == []
    assert handler.at(logging.CRITICAL) == []


# ---------------------------------------------------------------- stopping --

def test_stop_closes_idle_and_finishes_in_flight(start):
    entered, release = concurrency.Event(), concurrency.Event()

    def app(environ, start_response):
        if environ['PATH_INFO'] == '/block':
            entered.send(True)
            release.wait()
            start_response('200 OK', [('Content-Length', '4')])
            return [b'done']
        return text_app(environ, start_response)
    srv = start(app)
    idle = srv.client()
    assert idle.get('/idle').body == b'/idle'
    busy = srv.client()
    busy.send(request(target='/block'))
    wait_event(entered)

    srv.kill()
    assert idle.is_closed()
    assert not srv.thread.dead, 'serve() returned with a request in flight'
    release.send(True)
    resp = busy.read_response()
    assert (resp.status, resp.body) == (200, b'done')
    assert busy.is_closed()
    with concurrency.Timeout(GUARD):
        srv.thread.wait()       # returns; SystemExit would fail the test
    assert srv.thread.dead


def test_stop_with_no_connections_returns(start):
    srv = start(text_app)
    assert srv.client().get('/', headers=[
        ('Connection', 'close')]).status == 200
    srv.kill()
    with concurrency.Timeout(GUARD):
        srv.thread.wait()
    assert srv.thread.dead


# -------------------------------------------------------------- access log --

def test_access_log_one_line_per_request(start):
    lines = []
    srv = start(text_app, access_log=lines.append)
    c = srv.client()
    c.get('/first?q=1')
    c.get('/second')
    wait_until(lambda: any('GET /second HTTP/1.1' in line for line in lines))
    first = [line for line in lines if 'GET /first?q=1 HTTP/1.1' in line]
    second = [line for line in lines if 'GET /second HTTP/1.1' in line]
    assert len(first) == 1 and len(second) == 1
    for line in first + second:
        assert line.startswith('127.0.0.1 - - [')
        assert '" 200 ' in line


def test_access_log_has_error_status(start):
    lines = []

    def app(environ, start_response):
        start_response('404 Not Found', [('Content-Length', '0')])
        return []
    srv = start(app, access_log=lines.append)
    srv.client().get('/missing')
    wait_until(lambda: any('GET /missing HTTP/1.1' in line
                           for line in lines))
    line = [line for line in lines if 'GET /missing' in line]
    assert len(line) == 1 and '" 404 ' in line[0]


def test_access_log_has_refused_requests_too(start):
    lines = []
    srv = start(text_app, access_log=lines.append)
    c = srv.client()
    c.send(b'GET / HTTP/2.0\r\n\r\n')
    assert c.read_response().status == 505
    wait_until(lambda: lines)
    assert '"GET / HTTP/2.0" 505 ' in lines[0]


def test_no_access_log_no_lines_on_the_logger(start):
    logger, handler = make_logger()
    srv = start(text_app, logger=logger)
    assert srv.client().get('/quiet').status == 200
    assert handler.records == []


# ------------------------------------------------- the head, without sockets --

def _rejected(func, *args):
    with pytest.raises(http_server._Reject) as info:
        func(*args)
    return info.value.code


def test_request_line_parts():
    assert http_server.parse_request_line(
        b'PUT /sda/1/a/c/o%20x?multipart=get HTTP/1.1\r\n') == (
        'PUT', '/sda/1/a/c/o%20x', 'multipart=get', 'HTTP/1.1')
    assert http_server.parse_request_line(b'REPLICATE /d/3 HTTP/1.0\n') == (
        'REPLICATE', '/d/3', '', 'HTTP/1.0')
    assert http_server.parse_request_line(
        b'GET /caf\xc3\xa9 HTTP/1.1\r\n')[1] == '/caf\xc3\xa9'


@pytest.mark.parametrize('line,code', [
    (b'GET / HTTP/1.1', 400),                 # no line end
    (b'GET  / HTTP/1.1\r\n', 400),
    (b'GET / HTTP/1.1 extra\r\n', 400),
    (b'G(T / HTTP/1.1\r\n', 400),
    (b'GET /\x01 HTTP/1.1\r\n', 400),
    (b'GET / HTTP/0.9\r\n', 505),
    (b'GET / HTTP/2.0\r\n', 505),
    (b'GET /' + b'a' * 8200 + b' HTTP/1.1\r\n', 414),
])
def test_bad_request_lines(line, code):
    assert _rejected(http_server.parse_request_line, line) == code


def test_header_lines():
    assert http_server.parse_header_line(b'X-Object-Meta-A:  b c \t\r\n') \
        == ('X-Object-Meta-A', 'b c')
    assert http_server.parse_header_line(b'Empty:\r\n') == ('Empty', '')
    assert http_server.parse_header_line(b'X-Utf8: caf\xc3\xa9\n') == (
        'X-Utf8', 'caf\xc3\xa9')
    for line, code in ((b' folded\r\n', 400), (b'\tfolded\r\n', 400),
                       (b'NoColon\r\n', 400), (b'Bad Name: v\r\n', 400),
                       (b': empty name\r\n', 400),
                       (b'X: ' + b'v' * 8200 + b'\r\n', 431)):
        assert _rejected(http_server.parse_header_line, line) == code, line


def test_headers_into_the_environ():
    env = {}
    http_server.add_headers(env, (
        ('Content-Length', '5'), ('Content-Type', 'a/b'), ('X-A', '1'),
        ('x-a', '2'), ('X-Auth_Token', 'spoof'), ('X-Auth-Token', 'real')))
    assert env == {'CONTENT_LENGTH': '5', 'CONTENT_TYPE': 'a/b',
                   'HTTP_X_A': '1,2', 'HTTP_X_AUTH_TOKEN': 'real'}


@pytest.mark.parametrize('version,connection,keep', [
    ('HTTP/1.1', '', True), ('HTTP/1.1', 'Close', False),
    ('HTTP/1.1', 'keep-alive', True), ('HTTP/1.0', '', False),
    ('HTTP/1.0', 'Keep-Alive', True), ('HTTP/1.0', 'close', False),
])
def test_keep_alive_rules(version, connection, keep):
    assert http_server.keeps_alive(version, connection) is keep


def test_body_framing():
    framing = http_server.body_framing
    assert framing({}) == (0, False)
    assert framing({'CONTENT_LENGTH': '42'}) == (42, False)
    assert framing({'HTTP_TRANSFER_ENCODING': ' Chunked '}) == (0, True)
    for env, code in (({'CONTENT_LENGTH': '4\u0662'}, 400),
                      ({'CONTENT_LENGTH': ''}, 400),
                      ({'CONTENT_LENGTH': '1,1'}, 400),
                      ({'CONTENT_LENGTH': '1',
                        'HTTP_TRANSFER_ENCODING': 'chunked'}, 400),
                      ({'HTTP_TRANSFER_ENCODING': 'gzip, chunked'}, 501)):
        assert _rejected(framing, env) == code, env
