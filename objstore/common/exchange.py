"""One whole request and its whole answer on a kept-alive connection.

Most backend requests are small and read whole: a small object's PUT or
DELETE on three object servers, each container update. Through
http.client each one built its head a line at a time (putrequest,
putheader per header, endheaders), wrapped the socket in a new buffered
file to read the answer and parsed it a line at a time: in the proxy
that was a fifth of its time during small PUTs (py-spy --gil), more
than the rest of the request's handling.

Here the head goes out in one string with the body, and the answer
usually comes in with one recv and is split in place. The connection is
the pool's http.client connection (connpool.py), used only for its
socket: its own state is never touched, so it goes back to the pool
for any later request, streamed or not. Failures raise what
http.client raises for the same fault (RemoteDisconnected when a reused
connection turns out closed, BadStatusLine, IncompleteRead, LineTooLong),
so callers keep their handling and their retry of a stale connection.
"""
import http.client

from objstore.common.connpool import ONE_SEND_LIMIT

RECV_SIZE = 65536
MAX_HEAD = 256 * 1024      # status line and all header lines
MAX_HEADERS = 256          # as backend.py raises http.client's limit
MAX_LINE = 65536           # one header or chunk-size line (http.client's)


class Answer:
    """An answer read whole; ``keep_alive`` False means the connection
    must be closed, not pooled."""

    __slots__ = ('status', 'reason', 'headers', 'body', 'keep_alive')

    def __init__(self, status, reason, headers, body, keep_alive):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


def exchange(conn, method, target, headers, body=b'', limit=None):
    """Send ``method target`` with ``headers`` (a dict; no Content-Length
    is added) and ``body`` (bytes) on ``conn`` (connecting it first when
    it is not), and read the whole answer: an Answer. An answer body
    beyond ``limit`` bytes raises ValueError."""
    if conn.sock is None:
        conn.connect()
    sock = conn.sock
    head = request_head(method, target, conn.host, conn.port, headers)
    if body and len(body) <= ONE_SEND_LIMIT:
        sock.sendall(head + body)
    else:
        sock.sendall(head)
        if body:
            sock.sendall(body)
    return read_answer(sock, method, limit)


def request_head(method, target, host, port, headers):
    """The request line and header lines, as bytes. A value holding a
    line break is refused (ValueError), as http.client refuses it: it
    would smuggle a header of its own."""
    if ':' in host:
        host = '[%s]' % host
    lines = ['%s %s HTTP/1.1' % (method, target), 'Host: %s:%d' % (host, port)]
    for name, value in headers.items():
        value = str(value)
        if '\n' in value or '\r' in value or ':' in name or \
                '\n' in name or '\r' in name:
            raise ValueError('illegal header %r: %r' % (name, value))
        lines.append('%s: %s' % (name, value))
    lines.append('\r\n')
    return '\r\n'.join(lines).encode('latin-1')


class _Input:
    """The bytes of one answer: what recv gave, consumed from the front."""

    __slots__ = ('sock', 'buf', 'pos')

    def __init__(self, sock):
        self.sock = sock
        self.buf = b''
        self.pos = 0

    def _more(self, size=RECV_SIZE):
        data = self.sock.recv(size)
        if not data:
            raise http.client.IncompleteRead(self.buf[self.pos:])
        if self.pos:
            self.buf = self.buf[self.pos:] + data
            self.pos = 0
        else:
            self.buf += data

    def head(self):
        """The text up to the blank line ending a head (not included)."""
        try:
            return self._upto(b'\r\n\r\n', MAX_HEAD, 'answer head')
        except http.client.IncompleteRead:
            if len(self.buf) == self.pos:
                # nothing at all: a kept-alive connection the server had
                # closed, which the caller may retry
                raise http.client.RemoteDisconnected(
                    'node closed the connection without answering')
            raise

    def line(self):
        return self._upto(b'\r\n', MAX_LINE, 'chunk size')

    def _upto(self, marker, limit, what):
        """The bytes before ``marker``, consumed with it; LineTooLong
        beyond ``limit`` bytes without one."""
        while True:
            end = self.buf.find(marker, self.pos)
            if end >= 0:
                text = self.buf[self.pos:end]
                self.pos = end + len(marker)
                return text
            if len(self.buf) - self.pos > limit:
                raise http.client.LineTooLong(what)
            self._more()

    def exact(self, size):
        have = len(self.buf) - self.pos
        if have >= size:
            data = self.buf[self.pos:self.pos + size]
            self.pos += size
            return data
        # a body longer than what came with the head: read just the rest
        # (never beyond it), in pieces joined once
        parts = [self.buf[self.pos:]]
        self.buf, self.pos = b'', 0
        need = size - have
        while need:
            data = self.sock.recv(min(need, 1 << 20))
            if not data:
                raise http.client.IncompleteRead(b''.join(parts), need)
            parts.append(data)
            need -= len(data)
        return b''.join(parts)

    def to_end(self, limit):
        parts = [self.buf[self.pos:]]
        total = len(parts[0])
        _check_limit(total, limit)
        self.buf, self.pos = b'', 0
        while True:
            data = self.sock.recv(RECV_SIZE)
            if not data:
                return b''.join(parts)
            total += len(data)
            _check_limit(total, limit)
            parts.append(data)

    def left(self):
        return len(self.buf) - self.pos


def _check_limit(size, limit):
    if limit is not None and size > limit:
        raise ValueError('answer larger than %d bytes' % limit)


def read_answer(sock, method, limit=None):
    """Read one whole answer to a ``method`` request from ``sock``."""
    src = _Input(sock)
    while True:
        version, status, reason, headers = _parse_head(src.head())
        # an interim answer (100 Continue) is followed by the real one
        if not 100 <= status < 200 or status == 101:
            break
    lower = {}
    for name, value in headers:
        lower.setdefault(name.lower(), value)
    connection = lower.get('connection', '').lower()
    keep_alive = 'close' not in connection and (
        version == 'HTTP/1.1' or 'keep-alive' in connection)
    if method == 'HEAD' or status in (204, 304) or 100 <= status < 200:
        body = b''
    elif 'chunked' in lower.get('transfer-encoding', '').lower():
        body = _read_chunked(src, limit)
    elif 'content-length' in lower:
        try:
            length = int(lower['content-length'])
        except ValueError:
            length = -1
        if length < 0:
            raise http.client.HTTPException(
                'bad Content-Length %r' % lower['content-length'])
        _check_limit(length, limit)
        body = src.exact(length)
    else:
        body = src.to_end(limit)
        keep_alive = False
    if src.left():
        # more than the answer: nothing on this connection can be trusted
        keep_alive = False
    return Answer(status, reason, headers, body, keep_alive)


def _parse_head(raw):
    lines = raw.decode('latin-1').split('\r\n')
    if len(lines) > MAX_HEADERS + 1:
        raise http.client.HTTPException('got more than %d headers'
                                        % MAX_HEADERS)
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/') or \
            len(parts[1]) != 3 or not parts[1].isdigit():
        raise http.client.BadStatusLine(lines[0])
    reason = parts[2] if len(parts) == 3 else ''
    headers = []
    for line in lines[1:]:
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong('header line')
        if line[:1] in (' ', '\t') and headers:
            # an obsolete folded continuation of the previous value
            name, value = headers[-1]
            headers[-1] = (name, value + ' ' + line.strip(' \t'))
            continue
        name, colon, value = line.partition(':')
        if not colon or not name or name != name.strip():
            raise http.client.HTTPException('bad header line %r' % line)
        headers.append((name, value.lstrip(' \t')))
    return parts[0], int(parts[1]), reason, headers


def _read_chunked(src, limit):
    parts = []
    total = 0
    while True:
        size_line = src.line().split(b';', 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise http.client.HTTPException('bad chunk size %r' % size_line)
        if size < 0:
            raise http.client.HTTPException('bad chunk size %r' % size_line)
        if size == 0:
            break
        total += size
        _check_limit(total, limit)
        parts.append(src.exact(size))
        if src.exact(2) != b'\r\n':
            raise http.client.HTTPException('chunk not ended by CRLF')
    # trailer lines, up to the blank one
    while src.line():
        pass
    return b''.join(parts)
