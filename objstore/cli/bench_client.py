"""The HTTP side of objstore-bench: auth v1.0 and one keep-alive connection.

A benchmark client must not be what it measures, so each worker thread
owns one persistent http.client connection (no pool lookups, no locks),
Nagle is off (a request's headers and the first body bytes leave at once),
small bodies are sent with their headers in one send(), large bodies are
streamed from one reused buffer, and response bodies are read into one
reused buffer and dropped. Nothing here keeps an object in memory.
"""
import http.client
import select
import socket
import urllib.parse

READ_CHUNK = 1 << 20
# What a dropped connection or a garbled response looks like; the request
# counts as an error and the next one reconnects.
NETWORK_ERRORS = (OSError, http.client.HTTPException)


class AuthError(Exception):
    """Authentication failed: the message is one line for the user."""


def split_url(url):
    """'http://h:p/path' -> (scheme, host, port, path); ValueError if bad."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise ValueError('not an http(s) URL: %r' % url)
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    return parts.scheme, parts.hostname, port, parts.path.rstrip('/')


def _http_connection(scheme, host, port, timeout):
    cls = http.client.HTTPSConnection if scheme == 'https' \
        else http.client.HTTPConnection
    return cls(host, port, timeout=timeout)


def auth_v1(auth_url, user, key, timeout=30.0):
    """Swift auth v1.0: (storage URL, token) for user and key.

    Raises AuthError with a one-line reason when the endpoint is not
    reachable or does not hand out a token.
    """
    try:
        scheme, host, port, path = split_url(auth_url)
    except ValueError as e:
        raise AuthError(str(e))
    conn = _http_connection(scheme, host, port, timeout)
    try:
        conn.request('GET', path or '/', headers={
            'X-Auth-User': user, 'X-Auth-Key': key})
        resp = conn.getresponse()
        resp.read()
    except NETWORK_ERRORS as e:
        raise AuthError('cannot reach %s: %s' % (auth_url, e))
    finally:
        conn.close()
    if resp.status // 100 != 2:
        raise AuthError('auth at %s failed: %d %s'
                        % (auth_url, resp.status, resp.reason))
    url, token = resp.getheader('X-Storage-Url'), \
        resp.getheader('X-Auth-Token')
    if not url or not token:
        raise AuthError('auth at %s gave no X-Storage-Url/X-Auth-Token'
                        % auth_url)
    return url, token


class Connection:
    """One keep-alive connection to the storage URL's host.

    Every method returns (status, body bytes received or sent) and raises
    one of NETWORK_ERRORS when the connection fails; after a failure the
    socket is closed so the next request reconnects.
    """

    def __init__(self, storage_url, token, timeout=60.0):
        scheme, host, port, self.base = split_url(storage_url)
        self.http = _http_connection(scheme, host, port, timeout)
        self.token = token
        self.buffer = memoryview(bytearray(READ_CHUNK))

    def connect(self):
        """Open the socket now (so a phase does not time the handshake)."""
        if self.http.sock is None:
            self.http.connect()
            self.http.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY,
                                      1)

    def refresh(self):
        """Replace a socket the server has closed while it sat idle
        between phases (keep-alive timeouts), then connect: done before a
        phase's clock starts, so neither a dead socket nor a handshake is
        ever timed."""
        sock = self.http.sock
        # readable while idle means EOF or stray bytes: unusable either way
        if sock is not None:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            if poller.poll(0):
                self.close()
        self.connect()

    def close(self):
        self.http.close()

    def _start(self, method, path, headers):
        self.connect()
        h = self.http
        h.putrequest(method, self.base + path, skip_accept_encoding=True)
        h.putheader('X-Auth-Token', self.token)
        for name, value in headers:
            h.putheader(name, value)

    def _drain(self, resp):
        """Read the response body to its end into the scratch buffer."""
        total, buf = 0, self.buffer
        while True:
            n = resp.readinto(buf)
            if not n:
                break
            total += n
        if resp.will_close:
            self.close()
        return total

    def _finish(self, read_body=False):
        try:
            resp = self.http.getresponse()
            if read_body:
                body = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, body
            return resp.status, self._drain(resp)
        except NETWORK_ERRORS:
            self.close()
            raise

    def request(self, method, path, headers=(), body=None):
        """A request with an in-memory body (small objects, containers)."""
        try:
            self._start(method, path, headers)
            if body is not None or method in ('PUT', 'POST'):
                self.http.putheader('Content-Length',
                                    str(len(body) if body else 0))
            # headers and body in one send(): no delayed-ACK stall
            self.http.endheaders(body)
        except NETWORK_ERRORS:
            self.close()
            raise
        return self._finish()

    def head(self, path):
        """HEAD path: (status, {lower-case header name: value})."""
        try:
            self._start('HEAD', path, ())
            self.http.endheaders()
            resp = self.http.getresponse()
            resp.read()
        except NETWORK_ERRORS:
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}

    def read(self, path):
        """GET path and return (status, the whole body) (listings)."""
        try:
            self._start('GET', path, ())
            self.http.endheaders()
        except NETWORK_ERRORS:
            self.close()
            raise
        return self._finish(read_body=True)

    def put_stream(self, path, size, chunk):
        """PUT size bytes made by repeating the bytes-like chunk.

        The body is generated while it is sent: memory use is one chunk
        whatever the object's size. Returns (status, bytes sent).
        """
        view = memoryview(chunk)
        try:
            self._start('PUT', path, (('Content-Length', str(size)),))
            self.http.endheaders()
            sock, left = self.http.sock, size
            while left > 0:
                piece = view if left >= len(view) else view[:left]
                sock.sendall(piece)
                left -= len(piece)
        except NETWORK_ERRORS:
            self.close()
            raise
        status, _ = self._finish()
        return status, size
