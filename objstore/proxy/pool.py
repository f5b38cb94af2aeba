"""The proxy's keep-alive connections to storage nodes.

The pool itself is objstore.common.connpool's; the proxy's connections
run on eventlet's green http.client and can wait for ``100 Continue``
before an object body is sent.
"""
import errno
import socket

from objstore.common import concurrency, connpool

httpclient = concurrency.green_http_client()
# An object may carry 90 metadata items plus its system headers, more than
# the 100 response headers http.client accepts by default.
httpclient._MAXHEADERS = max(httpclient._MAXHEADERS, 256)


class BackendConnection(connpool.KeepAlive, httpclient.HTTPConnection):
    """HTTP/1.1 to one node over green sockets."""

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


class ConnectionPool(connpool.ConnectionPool):
    """The shared pool, handing out BackendConnections."""

    connection_class = BackendConnection
