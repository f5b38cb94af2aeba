"""Keep-alive HTTP connections to storage nodes, pooled per host and port.

Opening a TCP connection per backend request costs a round trip, a new
connection (green thread, protocol object) on the server and a socket in
TIME_WAIT; for small requests that is more work than the request. A pool
keeps up to ``max_idle`` idle connections per node and drops those idle
longer than ``max_age`` (the storage servers close idle ones after 60 s)
or that the server has closed meanwhile.

Both the proxy (green http.client) and backend.request (the standard
http.client: green in monkey-patched servers, blocking in the daemons'
OS threads) use it. So the bookkeeping uses only dict and list
operations that are atomic under the GIL, and a forked child starts
with an empty pool rather than share its parent's sockets.
"""
import http.client
import socket
import time

from objstore.common import process

# How a reused connection fails, before any answer, when the server closed
# it while it sat idle: the request never reached the server.
RETRYABLE = (ConnectionResetError, BrokenPipeError,
             http.client.RemoteDisconnected, http.client.BadStatusLine)


# Bodies up to this size go out with the request head in one send.
ONE_SEND_LIMIT = 65536


class KeepAlive:
    """What a pooled connection adds to an HTTPConnection class (mixed in
    before it): ``conn_timeout`` to connect, then ``node_timeout`` for
    every read and write, and a check that it is still usable."""

    def __init__(self, host, port, conn_timeout, node_timeout):
        super().__init__(host, port, timeout=conn_timeout)
        self.node_timeout = node_timeout
        self.reused = False

    def connect(self):
        super().connect()
        self.sock.settimeout(self.node_timeout)

    def _send_output(self, message_body=None, encode_chunked=False):
        """The head and a small bytes body in one send, not two: on
        loopback every send wakes the server (and may hand it the CPU),
        so a second one for the body cost each small request a wake-up
        and the sender a trip through the run queue. http.client's
        request head is the ``_buffer`` of lines that putheader fills."""
        if isinstance(message_body, bytes) and not encode_chunked and \
                len(message_body) <= ONE_SEND_LIMIT:
            self._buffer.extend((b'', message_body))
            msg = b'\r\n'.join(self._buffer)
            del self._buffer[:]
            self.send(msg)
            return
        super()._send_output(message_body, encode_chunked)

    def set_timeout(self, seconds):
        if self.sock is not None:
            self.sock.settimeout(seconds)

    def is_stale(self):
        """True when the server has closed (or written to) the idle socket.
        """
        sock = self.sock
        if sock is None:
            return True
        # a green socket wraps the real, non-blocking one
        return has_input(getattr(sock, 'fd', sock))


def has_input(sock):
    """True when reading ``sock`` would not block: EOF, an error, or bytes.

    Never waits: a socket with a timeout polls for up to that long before
    it reads, even with MSG_DONTWAIT, so it is made non-blocking meanwhile.
    """
    timeout = sock.gettimeout()
    if timeout:
        sock.settimeout(0.0)
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        if timeout:
            sock.settimeout(timeout)
    return True


class Connection(KeepAlive, http.client.HTTPConnection):
    """A pooled connection over the standard http.client."""


def _drain(idle):
    """Pop (connection, idle since) pairs off ``idle`` until it is empty,
    even while other threads pop from it too."""
    while True:
        try:
            yield idle.pop()
        except IndexError:
            return


class ConnectionPool:
    """Idle connections of this process, newest reused first."""

    connection_class = Connection

    def __init__(self, conn_timeout, node_timeout, max_idle=16,
                 max_age=30.0, clock=time.monotonic):
        self.conn_timeout = conn_timeout
        self.node_timeout = node_timeout
        self.max_idle = max_idle
        self.max_age = max_age
        self.clock = clock
        self._generation = process.generation()
        self._idle = {}   # (host, port) -> [(conn, idle since)]

    def _by_node(self):
        """The idle lists by (host, port). A forked child closes its copies
        of the parent's sockets (the parent's stay open) and starts afresh:
        two processes must not talk on one connection."""
        if self._generation != process.generation():
            inherited, self._idle = self._idle, {}
            self._generation = process.generation()
            self._close(inherited)
        return self._idle

    def get(self, host, port, conn_timeout=None, node_timeout=None):
        """An idle connection to host:port that still works, else a new
        (not yet connected) one; ``conn.reused`` tells which. The
        timeouts default to the pool's."""
        if node_timeout is None:
            node_timeout = self.node_timeout
        now = self.clock()
        for conn, since in _drain(self._by_node().get((host, port), [])):
            if now - since <= self.max_age and not conn.is_stale():
                conn.reused = True
                conn.set_timeout(node_timeout)
                return conn
            conn.close()
        return self.new(host, port, conn_timeout, node_timeout)

    def new(self, host, port, conn_timeout=None, node_timeout=None):
        """A new connection to host:port, bypassing the idle ones."""
        return self.connection_class(
            host, port,
            self.conn_timeout if conn_timeout is None else conn_timeout,
            self.node_timeout if node_timeout is None else node_timeout)

    def put(self, conn):
        """Keep ``conn`` for the next request to its node, if there is
        room; the caller must have read the whole answer."""
        idle = self._by_node().setdefault((conn.host, conn.port), [])
        if conn.sock is None or len(idle) >= self.max_idle:
            conn.close()
            return
        idle.append((conn, self.clock()))

    def close_all(self):
        """Close every idle connection."""
        self._close(self._by_node())

    @staticmethod
    def _close(by_node):
        for idle in list(by_node.values()):
            for conn, _since in _drain(idle):
                conn.close()
