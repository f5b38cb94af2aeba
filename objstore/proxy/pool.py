"""Keep-alive connections to storage nodes, pooled per host and port.

Opening a TCP connection per backend request costs a round trip and a
socket in TIME_WAIT; a proxy serving many small requests would spend
more on that than on the requests. Each worker keeps up to ``max_idle``
idle connections per node and drops those idle longer than ``max_age``
(the storage servers close idle ones after 60 s) or that the server has
closed meanwhile.
"""
import errno
import socket
import time

from objstore.common import concurrency

httpclient = concurrency.green_http_client()
# An object may carry 90 metadata items plus its system headers, more than
# the 100 response headers http.client accepts by default.
httpclient._MAXHEADERS = max(httpclient._MAXHEADERS, 256)


class BackendConnection(httpclient.HTTPConnection):
    """HTTP/1.1 to one node: ``conn_timeout`` to connect, then
    ``node_timeout`` for every read and write."""

    def __init__(self, host, port, conn_timeout, node_timeout):
        super().__init__(host, port, timeout=conn_timeout)
        self.node_timeout = node_timeout
        self.reused = False

    def connect(self):
        super().connect()
        self.sock.settimeout(self.node_timeout)

    def set_timeout(self, seconds):
        if self.sock is not None:
            self.sock.settimeout(seconds)

    def _peek_until(self, marker, limit=4096):
        """Bytes waiting in the socket up to ``marker``, left unread."""
        for _ in range(200):
            seen = self.sock.recv(limit, socket.MSG_PEEK)
            if not seen:
                raise ConnectionResetError(errno.ECONNRESET,
                                           'closed before answering')
            if marker in seen or len(seen) >= limit:
                return seen
            concurrency.sleep(0.005)   # half a line so far: let it come
        return seen

    def expect_continue(self):
        """Wait for the server's first answer after ``Expect:
        100-continue``; return its status.

        The server answers 100 when it wants the body, or a final status
        at once (507, 409, 412...). A 100 is read off the socket here; a
        final answer stays there for getresponse(). Raises OSError when
        the server closed the connection or does not speak HTTP.
        """
        seen = self._peek_until(b'\r\n')
        parts = seen.split(b'\r\n', 1)[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b'HTTP/') or \
                not parts[1].isdigit():
            raise ConnectionResetError(errno.EPROTO, 'not an HTTP answer')
        status = int(parts[1])
        if status == 100:
            seen = self._peek_until(b'\r\n\r\n')
            end = seen.find(b'\r\n\r\n')
            if end < 0:
                raise ConnectionResetError(errno.EPROTO, 'endless 100')
            left = end + 4
            while left:
                got = self.sock.recv(left)
                if not got:
                    raise ConnectionResetError(errno.ECONNRESET,
                                               'closed after 100')
                left -= len(got)
        return status

    def is_stale(self):
        """True when the server has closed (or written to) the idle socket.
        """
        sock = self.sock
        if sock is None:
            return True
        raw = getattr(sock, 'fd', sock)   # a green socket wraps the real one
        try:
            raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        return True   # EOF, or bytes nobody asked for: either way unusable


class ConnectionPool:

    def __init__(self, conn_timeout, node_timeout, max_idle=16,
                 max_age=30.0, clock=time.monotonic):
        self.conn_timeout = conn_timeout
        self.node_timeout = node_timeout
        self.max_idle = max_idle
        self.max_age = max_age
        self.clock = clock
        self._idle = {}   # (host, port) -> [(conn, idle since)]

    def get(self, host, port):
        """An idle connection to host:port that still works, else a new
        (not yet connected) one. ``conn.reused`` tells which."""
        idle = self._idle.get((host, port))
        now = self.clock()
        while idle:
            conn, since = idle.pop()
            if now - since <= self.max_age and not conn.is_stale():
                conn.reused = True
                conn.set_timeout(self.node_timeout)
                return conn
            conn.close()
        return BackendConnection(host, port, self.conn_timeout,
                                 self.node_timeout)

    def put(self, conn):
        """Keep ``conn`` for the next request to its node, if there is
        room; the caller must have read the whole answer."""
        key = (conn.host, conn.port)
        idle = self._idle.setdefault(key, [])
        if conn.sock is None or len(idle) >= self.max_idle:
            conn.close()
            return
        idle.append((conn, self.clock()))

    def close_all(self):
        for idle in self._idle.values():
            for conn, _ in idle:
                conn.close()
        self._idle.clear()
