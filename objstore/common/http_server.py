"""A lean HTTP/1.1 server for WSGI apps: one green thread per connection.

Why not eventlet.wsgi: under a small-object PUT load the storage servers
spent 20-35% of their CPU inside eventlet.wsgi (BaseHTTPRequestHandler's
parsing, per-request closures, header encoding, an access line built
through several layers) rather than in their own code. This module reads
the request line and headers with plain bytes operations, builds the
environ directly, and sends each response's head together with its first
piece of body in one ``sendall``.

It speaks what our servers and their clients need and no more:
keep-alive and pipelining, Content-Length and chunked bodies both ways,
``Expect: 100-continue`` answered on the app's first read, no body for
HEAD/204/304, a clear 4xx (and a closed connection) for a malformed
request, and a graceful stop. The environ is PEP 3333's plus
``RAW_PATH_INFO`` (the undecoded path, for signatures) and ``headers_raw``
(the headers as received), the two extras eventlet.wsgi also gave.

The request head is read by pure functions of its bytes
(``parse_request_line``, ``parse_header_line``, ``add_headers``,
``keeps_alive``, ``body_framing``), testable without a socket; the
classes below only move bytes.
"""
import email.utils
import errno
import re
import socket
import sys
import time
import urllib.parse

from objstore.common import concurrency

MAX_REQUEST_LINE = 8192
MAX_HEADER_LINE = 8192
MAX_HEADERS = 100
MAX_CHUNK_LINE = 1024
# An unread request body up to this size is read and dropped so the
# connection can serve the next request; a bigger one closes it instead.
DISCARD_LIMIT = 65536
READ_BUFFER = 65536

_REQUEST_LINE = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e\x80-\xff]+) "
    rb"(HTTP/\d\.\d)\r?\n")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX = re.compile(rb'[0-9A-Fa-f]{1,15}')
_CONTINUE = b'HTTP/1.1 100 Continue\r\n\r\n'
_REASONS = {400: 'Bad Request', 408: 'Request Timeout',
            414: 'URI Too Long', 431: 'Request Header Fields Too Large',
            500: 'Internal Server Error', 501: 'Not Implemented',
            505: 'HTTP Version Not Supported'}


class _Reject(Exception):
    """A request we answer ourselves, without the app, then close."""

    def __init__(self, code, detail):
        super().__init__(detail)
        self.code = code
        self.detail = detail


class _ClientGone(ConnectionError):
    """Writing to the client failed: it went away. Nothing to answer.

    A ConnectionError, so an app that treats those as "client gone"
    (a 499) does so for a failed write or 100 Continue too.
    """


class _HttpDate:
    """The Date header's value, formatted once per second, not per reply."""

    def __init__(self):
        self.second = None
        self.value = ''

    def now(self):
        second = int(time.time())
        if second != self.second:
            self.value = email.utils.formatdate(second, usegmt=True)
            self.second = second
        return self.value


_date = _HttpDate()


class Input:
    """``wsgi.input``: the request body, no byte beyond it.

    ``read(n)`` returns n bytes unless the body ends first. A chunked body
    is decoded; bad chunk syntax raises ValueError and a connection lost
    inside a chunked body raises ConnectionError (so a cut upload is never
    taken for a complete one). A Content-Length body cut short just ends
    early; the apps compare what they got with the length. The first read
    sends ``100 Continue`` when the client asked for it. ``trailers``
    holds a chunked body's trailer fields (names lower-cased) once its
    end has been read, and is None until then.
    """

    def __init__(self, exchange, rfile, length, chunked):
        self._exchange = exchange
        self._rfile = rfile
        self._left = length       # Content-Length bytes not yet read
        self._chunked = chunked
        self._chunk_left = 0      # bytes left in the current chunk
        self._done = not chunked and length == 0
        self.expects_continue = False
        self.broken = False       # the stream cannot serve another request
        self.trailers = None

    def get_socket(self):
        return self._exchange.sock

    def read(self, size=-1):
        if self.expects_continue:
            self._send_continue()
        if self._done:
            return b''
        try:
            if self._chunked:
                return self._read_chunked(size)
            return self._read_length(size)
        except BaseException:
            self.broken = True
            raise

    def _send_continue(self):
        self.expects_continue = False
        if not self._exchange.started:
            self._exchange.send(_CONTINUE)

    def _read_length(self, size):
        left = self._left
        if size is None or size < 0 or size > left:
            size = left
        data = _read_upto(self._rfile, size)
        if len(data) < size:        # the client went away early
            self.broken = True
            self._done = True
            self._left = 0
        else:
            self._left = left - size
            self._done = self._left == 0
        return data

    def _read_chunked(self, size):
        want = None if size is None or size < 0 else size
        parts = []
        got = 0
        while want is None or got < want:
            if self._chunk_left == 0 and not self._next_chunk():
                break
            n = self._chunk_left if want is None \
                else min(self._chunk_left, want - got)
            data = _read_upto(self._rfile, n)
            if len(data) < n:
                raise ConnectionError('connection closed inside a chunk')
            self._chunk_left -= n
            if self._chunk_left == 0:
                self._end_chunk()
            parts.append(data)
            got += n
        return b''.join(parts)

    def _line(self, limit, what):
        line = self._rfile.readline(limit + 1)
        if not line.endswith(b'\n'):
            if len(line) > limit:
                raise ValueError('%s too long' % what)
            raise ConnectionError('connection closed in the chunked coding')
        return line

    def _next_chunk(self):
        """Read a chunk-size line; False (and the trailers read) at the end.
        """
        line = self._line(MAX_CHUNK_LINE, 'chunk size line')
        size = line.split(b';', 1)[0].strip()
        if not _HEX.fullmatch(size):
            raise ValueError('bad chunk size %r' % size[:20])
        self._chunk_left = int(size, 16)
        if self._chunk_left:
            return True
        trailers = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line(MAX_HEADER_LINE, 'trailer line')
            if line in (b'\r\n', b'\n'):
                self._done = True
                self.trailers = trailers
                return False
            name, colon, value = line.partition(b':')
            if colon and _TOKEN.fullmatch(name):
                trailers[name.decode('ascii').lower()] = \
                    value.strip().decode('latin-1')
        raise ValueError('too many trailer lines')

    def _end_chunk(self):
        end = self._rfile.read(2)
        if end != b'\r\n':
            if len(end) < 2:
                raise ConnectionError('connection closed after a chunk')
            raise ValueError('chunk not followed by CRLF')

    def readline(self, size=-1):
        if self._chunked or self.expects_continue:
            line = bytearray()
            while size is None or size < 0 or len(line) < size:
                byte = self.read(1)
                line += byte
                if not byte or byte == b'\n':
                    break
            return bytes(line)
        if self._done:
            return b''
        limit = self._left if size is None or size < 0 \
            else min(size, self._left)
        line = self._rfile.readline(limit)
        self._left -= len(line)
        self._done = self._left == 0
        return line

    def readlines(self, hint=-1):
        return list(self)

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def can_keep(self):
        """Whether what is left of the body is small enough to drop."""
        if self._done:
            return not self.broken
        if self.broken or self.expects_continue:
            return False
        return self._chunked or self._left <= DISCARD_LIMIT

    def discard(self):
        """Drop a small unread rest of the body; False if the connection
        cannot serve another request (too much left, or broken)."""
        if self._done or not self.can_keep():
            return self.can_keep()
        dropped = 0
        try:
            while not self._done and dropped <= DISCARD_LIMIT:
                dropped += len(self.read(READ_BUFFER))
        except (OSError, ValueError):
            return False
        return self._done and not self.broken


# -- the request head, as pure functions of its bytes ---------------------

def parse_request_line(line):
    """(method, path, query, version) of a request line (bytes, with its
    line end), or _Reject with the status to answer."""
    if len(line) > MAX_REQUEST_LINE:
        raise _Reject(414, 'request line too long')
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise _Reject(400, 'malformed request line')
    method, target, version = match.groups()
    if version not in (b'HTTP/1.1', b'HTTP/1.0'):
        raise _Reject(505, 'HTTP version not supported')
    path, _, query = target.decode('latin-1').partition('?')
    return method.decode('ascii'), path, query, version.decode('ascii')


def parse_header_line(line):
    """(name, value) of one header line (bytes, with its line end), the
    value trimmed; _Reject for what RFC 9112 says to refuse."""
    if len(line) > MAX_HEADER_LINE:
        raise _Reject(431, 'header line too long')
    if line[:1] in (b' ', b'\t'):
        raise _Reject(400, 'folded header line')
    name, sep, value = line.partition(b':')
    if not sep or not _TOKEN.fullmatch(name):
        raise _Reject(400, 'malformed header line')
    return (name.decode('latin-1'),
            value.strip(b' \t\r\n').decode('latin-1'))


def add_headers(env, headers):
    """Put (name, value) pairs into a WSGI environ: HTTP_<NAME>, except
    CONTENT_TYPE and CONTENT_LENGTH; a repeated header joined with ','.
    A name with '_' is left out: X-Auth_Token must not pass for
    X-Auth-Token."""
    for name, value in headers:
        if '_' in name:
            continue
        key = name.upper().replace('-', '_')
        if key != 'CONTENT_LENGTH' and key != 'CONTENT_TYPE':
            key = 'HTTP_' + key
        if key in env:
            env[key] += ',' + value
        else:
            env[key] = value


def keeps_alive(version, connection):
    """Whether the client wants the connection kept after this request."""
    connection = connection.lower()
    if version == 'HTTP/1.1':
        return 'close' not in connection
    return 'keep-alive' in connection


def body_framing(env):
    """(Content-Length, chunked) of the request body; _Reject when the
    framing headers are bad or contradict each other."""
    coding = env.get('HTTP_TRANSFER_ENCODING')
    length = env.get('CONTENT_LENGTH')
    if coding is not None:
        if length is not None:
            raise _Reject(400, 'Content-Length with Transfer-Encoding')
        if coding.strip().lower() != 'chunked':
            raise _Reject(501, 'transfer coding not supported')
        return 0, True
    if length is None:
        return 0, False
    if not (length.isdigit() and length.isascii()):
        raise _Reject(400, 'bad Content-Length')
    return int(length), False


def _read_upto(rfile, size, piece=1 << 20):
    """``rfile.read(size)``, but a huge ``size`` (a claimed length, not
    data) never makes one huge buffer: read it a piece at a time."""
    if size <= piece:
        return rfile.read(size)
    parts = []
    while size > 0:
        data = rfile.read(min(size, piece))
        parts.append(data)
        size -= len(data)
        if len(data) < piece and size > 0:
            break
    return b''.join(parts)


class _Exchange:
    """One request and its response on a connection."""

    def __init__(self, server, sock, rfile):
        self.server = server
        self.sock = sock
        self.rfile = rfile
        self.started = False      # the response head went out
        self.status = None
        self.headers = None
        self.code = 0
        self.keep = False         # the connection serves another request
        self.bodyless = False
        self.chunked = False
        self.declared = None      # the Content-Length we announced
        self.body_sent = 0
        self.head_method = False
        self.version = 'HTTP/1.1'
        self.stream = None

    # -- request ---------------------------------------------------------

    def parse(self, line, env):
        """Fill ``env`` from the request line and headers, or _Reject."""
        method, path, query, version = parse_request_line(line)
        self.head_method = method == 'HEAD'
        env['REQUEST_METHOD'] = method
        env['RAW_PATH_INFO'] = path
        env['PATH_INFO'] = urllib.parse.unquote(path, encoding='latin-1') \
            if '%' in path else path
        env['QUERY_STRING'] = query
        env['SERVER_PROTOCOL'] = version
        headers = self._headers()
        env['headers_raw'] = headers
        add_headers(env, headers)
        self.keep = keeps_alive(version, env.get('HTTP_CONNECTION', ''))
        return version

    def _headers(self):
        readline = self.rfile.readline
        headers = []
        while True:
            line = readline(MAX_HEADER_LINE + 1)
            if line == b'\r\n' or line == b'\n':
                return tuple(headers)
            if len(line) <= MAX_HEADER_LINE and not line.endswith(b'\n'):
                raise ConnectionError('connection closed in the headers')
            headers.append(parse_header_line(line))
            if len(headers) > MAX_HEADERS:
                raise _Reject(431, 'too many headers')

    def body(self, env, version):
        """The wsgi.input for this request, from its framing headers."""
        length, chunked = body_framing(env)
        stream = Input(self, self.rfile, length, chunked)
        # a 100 goes out on the first read even for an empty body: a
        # client that asked for it may wait for it before its final answer
        if version == 'HTTP/1.1' and \
                env.get('HTTP_EXPECT', '').lower() == '100-continue':
            stream.expects_continue = True
        return stream

    # -- response --------------------------------------------------------

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.keep = False
            raise _ClientGone(str(e))

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.started:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        self.status = status
        self.headers = headers
        return self.write

    def _head(self, length=None):
        """The response head; ``length`` is a Content-Length to add."""
        try:
            code = int(self.status[:3])
        except (TypeError, ValueError):
            raise ValueError('bad status %r' % (self.status,))
        self.code = code
        self.bodyless = self.head_method or code in (204, 304) or code < 200
        lines = ['HTTP/1.1 ', self.status, '\r\n']
        has_date = False
        for name, value in self.headers:
            value = str(value)
            if '\n' in value or '\r' in value or '\n' in name or \
                    '\r' in name:
                raise ValueError('line break in header %r' % name)
            lname = name.lower()
            if lname == 'content-length':
                try:
                    self.declared = int(value)
                except ValueError:
                    raise ValueError('bad Content-Length %r' % value)
            elif lname == 'date':
                has_date = True
            elif lname == 'connection' and 'close' in value.lower():
                self.keep = False
                continue
            lines += (name, ': ', value, '\r\n')
        if not has_date:
            lines += ('Date: ', _date.now(), '\r\n')
        if self.declared is None and length is not None and \
                not self.bodyless:
            self.declared = length
            lines += ('Content-Length: ', str(length), '\r\n')
        if self.declared is None and not self.bodyless:
            if self.version == 'HTTP/1.1':
                self.chunked = True
                lines.append('Transfer-Encoding: chunked\r\n')
            else:
                self.keep = False   # an HTTP/1.0 body ends at the close
        if self.server.stopping or not self.stream.can_keep():
            self.keep = False   # say so now: the body left will not be read
        if not self.keep:
            lines.append('Connection: close\r\n')
        elif self.version == 'HTTP/1.0':
            lines.append('Connection: keep-alive\r\n')
        lines.append('\r\n')
        self.started = True
        return ''.join(lines).encode('latin-1')

    def write(self, data, length=None):
        """Send ``data`` (the head first, with it, if not sent yet)."""
        if self.status is None:
            raise AssertionError('write() before start_response()')
        head = b'' if self.started else self._head(length)
        if self.bodyless or not data:
            if head:
                self.send(head)
            return
        self.body_sent += len(data)
        if self.chunked:
            data = b'%x\r\n%s\r\n' % (len(data), data)
        self.send(head + data if head else data)

    def respond(self, app, env):
        """Run the app and send what it answers."""
        result = None
        try:
            result = app(env, self.start_response)
            if isinstance(result, (list, tuple)):
                self._send_list(result)
            else:
                for data in result:
                    if data:
                        self.write(data)
                if not self.started:
                    self.write(b'')
            if self.chunked:
                self.send(b'0\r\n\r\n')
            if not self.bodyless and self.declared is not None and \
                    self.body_sent != self.declared:
                self.keep = False   # the client cannot tell where it ends
        except _ClientGone:
            self.keep = False
        except BaseException as e:
            self.keep = False
            if isinstance(e, (SystemExit, GeneratorExit)):
                raise
            self.server.app_error(env)
            if not self.started:
                self._send_error(500)
        finally:
            close = getattr(result, 'close', None)
            if close is not None:
                try:
                    close()
                except Exception:
                    self.server.app_error(env)

    def _send_list(self, result):
        if self.status is None:
            raise AssertionError('app returned without start_response()')
        body = result[0] if len(result) == 1 else b''.join(result)
        self.write(body, length=len(body))

    def _send_error(self, code, detail=''):
        body = (detail + '\n').encode('latin-1') if detail else b''
        self.code = code
        try:
            self.send(b'HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n'
                      b'Content-Length: %d\r\nConnection: close\r\n\r\n%s'
                      % (code, _REASONS[code].encode('ascii'), len(body),
                         body))
        except _ClientGone:
            pass
        self.started = True
        self.keep = False


class _Server:
    """State shared by the connections of one listening socket."""

    def __init__(self, sock, app, logger, access_log, socket_timeout,
                 keepalive_timeout):
        self.app = app
        self.logger = logger
        self.access_log = access_log
        self.socket_timeout = socket_timeout
        self.keepalive_timeout = keepalive_timeout or socket_timeout
        self.stopping = False
        self.idle = set()         # sockets waiting for their next request
        host, port = sock.getsockname()[:2]
        self.base_env = {
            'SCRIPT_NAME': '', 'SERVER_NAME': host, 'SERVER_PORT': str(port),
            'GATEWAY_INTERFACE': 'CGI/1.1',
            'wsgi.version': (1, 0), 'wsgi.url_scheme': 'http',
            'wsgi.errors': sys.stderr, 'wsgi.multithread': True,
            'wsgi.multiprocess': True, 'wsgi.run_once': False}

    def app_error(self, env):
        if self.logger is not None:
            self.logger.exception('error serving %s %s',
                                  env.get('REQUEST_METHOD'),
                                  env.get('RAW_PATH_INFO'))

    def connection(self, sock, addr):
        """Serve requests on one connection until either side ends it."""
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        rfile = sock.makefile('rb', READ_BUFFER)
        env_base = dict(self.base_env, REMOTE_ADDR=addr[0],
                        REMOTE_PORT=str(addr[1]))
        try:
            while not self.stopping:
                self.idle.add(sock)
                sock.settimeout(self.keepalive_timeout)
                try:
                    line = rfile.readline(MAX_REQUEST_LINE + 1)
                    if line in (b'\r\n', b'\n'):   # allowed before a request
                        line = rfile.readline(MAX_REQUEST_LINE + 1)
                finally:
                    self.idle.discard(sock)
                sock.settimeout(self.socket_timeout)
                if not line or not self.request(sock, rfile, line,
                                                env_base, addr):
                    break
        except OSError:
            pass      # reset, timed out or closed while idle: just close
        except Exception:
            if self.logger is not None:
                self.logger.exception('connection from %s failed', addr[0])
        finally:
            try:
                rfile.close()
            except OSError:
                pass
            sock.close()

    def request(self, sock, rfile, line, env_base, addr):
        """One request and its response; True to keep the connection."""
        started = time.time()
        exchange = _Exchange(self, sock, rfile)
        env = env_base.copy()
        try:
            if not line.endswith(b'\n') and len(line) <= MAX_REQUEST_LINE:
                return False          # closed in the middle of a line
            exchange.version = exchange.parse(line, env)
            stream = exchange.body(env, exchange.version)
        except _Reject as e:
            exchange._send_error(e.code, e.detail)
            self.access(addr, line, exchange, started)
            return False
        env['wsgi.input'] = exchange.stream = stream
        exchange.respond(self.app, env)
        if exchange.keep and not stream.discard():
            exchange.keep = False
        self.access(addr, line, exchange, started)
        return exchange.keep

    def access(self, addr, line, exchange, started):
        if self.access_log is not None:
            self.access_log('%s - - [%s] "%s" %d %d %.6f' % (
                addr[0], _date.now(),
                line[:1024].rstrip(b'\r\n').decode('latin-1'),
                exchange.code, exchange.body_sent, time.time() - started))

    def stop(self):
        """No more requests: close the idle connections."""
        self.stopping = True
        for sock in list(self.idle):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(sock, app, logger=None, access_log=None, socket_timeout=60,
          keepalive_timeout=None, max_clients=1024):
    """Serve ``app`` on the listening ``sock``.

    ``logger`` gets the app's and the connections' errors;
    ``access_log(line)``, when given, one line per request.

    ``socket_timeout`` bounds every read and write inside a request,
    ``keepalive_timeout`` (default: the same) how long an idle connection
    waits for its next request. Runs until SystemExit is thrown into this
    green thread; then it closes idle connections, lets the requests in
    flight finish and returns. Any other exception thrown in (a plain
    kill) stops accepting at once and is re-raised.
    """
    server = _Server(sock, app, logger, access_log, socket_timeout,
                     keepalive_timeout)
    pool = concurrency.GreenPool(max_clients)
    try:
        while True:
            try:
                conn, addr = sock.accept()
            except OSError as e:
                if e.errno in (errno.EBADF, errno.EINVAL, errno.ENOTSOCK):
                    raise SystemExit   # the listening socket was closed
                if logger is not None:
                    logger.error('accept failed: %s', e)
                concurrency.sleep(0.1)
                continue
            pool.spawn_n(server.connection, conn, addr)
    except SystemExit:
        server.stop()
        pool.waitall()
    except BaseException:
        server.stop()
        raise
