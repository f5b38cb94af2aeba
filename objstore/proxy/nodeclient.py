"""Talking to one storage node: signed requests over pooled connections.

Every request is signed with the cluster's backend secret (the nodes
refuse anything else). A failure to connect or a timeout counts against
the node in the error limiter and is returned as None, never raised, so
the controllers deal in answers and missing answers only. A connection
taken from the pool that turns out to be closed by the server is retried
once on a fresh one, as the request never reached a server.
"""
import http.client
import logging

from objstore.common import concurrency, connpool, exchange, signing
from objstore.common.backend import quote_path

log = logging.getLogger('objstore.proxy')
# eventlet's green http.client, which the proxy's connections use, has
# exception classes of its own, not subclasses of the standard ones
_green = concurrency.green_http_client()
# what a dead, slow or confused node raises through http.client
NODE_ERRORS = (OSError, http.client.HTTPException, _green.HTTPException,
               ValueError)
# ... and what a pooled connection the server had closed raises
RETRYABLE = connpool.RETRYABLE + (_green.BadStatusLine,)
# Answers beyond this are drained and thrown away: only listings and
# error texts are read whole, and those are far smaller.
MAX_READ = 64 * 1024 * 1024


class Reply:
    """A node's answer, read whole: status, header pairs and body."""

    __slots__ = ('node', 'status', 'headers', 'body', '_lower')

    def __init__(self, node, status, headers, body=b''):
        self.node = node
        self.status = status
        self.headers = list(headers)
        self.body = body
        self._lower = {k.lower(): v for k, v in self.headers}

    def get(self, name, default=None):
        return self._lower.get(name.lower(), default)

    def __repr__(self):
        return 'Reply(%s:%s/%s %d)' % (self.node['ip'], self.node['port'],
                                       self.node['device'], self.status)


def read_body(resp, limit=MAX_READ):
    """A whole answer body of at most ``limit`` bytes (ValueError beyond).

    Never ``resp.read(limit)``: eventlet's http.client allocates ``limit``
    bytes before it looks at the length.
    """
    if resp.length is not None and not resp.chunked:
        if resp.length > limit:
            raise ValueError('answer larger than %d bytes' % limit)
        return resp.read()
    parts = []
    total = 0
    while True:
        chunk = resp.read(65536)
        if not chunk:
            return b''.join(parts)
        total += len(chunk)
        if total > limit:
            raise ValueError('answer larger than %d bytes' % limit)
        parts.append(chunk)


def read_chunk(resp, amt):
    """``resp.read(amt)`` for a body read in pieces, without its scratch
    buffer: eventlet's http.client zero-fills a bytearray of ``amt``,
    reads into it and copies that out as bytes, three passes over each
    piece of a large GET. With a Content-Length this reads the bytes
    object straight off the buffered socket file (one pass), keeping
    http.client's count so the response still ends and closes as its
    own read would; other answers go through ``resp.read``."""
    fp = resp.fp
    length = resp.length
    if fp is None or length is None or resp.chunked or \
            resp._method == 'HEAD' or amt <= 0:
        return resp.read(amt)
    data = fp.read(min(amt, length))
    if not data:
        resp._close_conn()
        return b''
    resp.length = length = length - len(data)
    if not length:
        resp._close_conn()
    return data


def describe(node):
    return '%s:%s/%s' % (node['ip'], node['port'], node['device'])


class NodeClient:

    def __init__(self, secret, pool, limiter):
        self.secret = secret
        self.pool = pool
        self.limiter = limiter

    # -- building blocks --------------------------------------------------

    def signed_head(self, node, part, method, path, headers, query='',
                    length=0):
        """(target, headers) ready to send: ``length`` None means chunked.

        ``path`` is the resource ('/a/c/o', not quoted); the node's device
        and the partition go in front of it.
        """
        wire = quote_path('/%s/%s%s' % (node['device'], part, path))
        headers = {k: v for k, v in headers.items()
                   if k.lower() not in ('content-length',
                                        'transfer-encoding')}
        if length is None:
            headers['Transfer-Encoding'] = 'chunked'
        else:
            headers['Content-Length'] = str(length)
        headers = signing.sign(self.secret, method, wire, headers,
                               query=query)
        return wire + ('?' + query if query else ''), headers

    @staticmethod
    def send_head(conn, method, target, headers, body=None):
        """Send the request head, and ``body`` (bytes) with it if given
        (in one send when small: connpool.KeepAlive)."""
        conn.putrequest(method, target, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders(body or None)

    def note_status(self, node, status, method, path):
        """Count a node's server-side failure against it."""
        if status == 507:
            self.limiter.limit_now(node, 'device unavailable')
        elif status >= 500:
            self.limiter.error(node, '%s %s -> %d' % (method, path, status))

    def note_failure(self, node, method, path, err):
        log.warning('%s %s on %s failed: %s', method, path, describe(node),
                    err or type(err).__name__)
        self.limiter.error(node, str(err))

    def release(self, conn, resp):
        """Back to the pool when the answer was read whole, else closed."""
        if resp is not None and resp.isclosed() and not resp.will_close:
            self.pool.put(conn)
        else:
            conn.close()

    # -- whole exchanges --------------------------------------------------

    def open(self, node, part, method, path, headers, query='', body=b''):
        """Send a request and read the answer's head: (conn, resp) or None.

        The caller reads ``resp`` and hands both to release(). A 5xx is
        returned too (and counted against the node).
        """
        target, signed = self.signed_head(node, part, method, path, headers,
                                          query, len(body))

        def send(conn):
            self.send_head(conn, method, target, signed, body)
            return conn.getresponse()
        got = self._attempt(node, method, path, send)
        if got is not None:
            self.note_status(node, got[1].status, method, path)
        return got

    def request(self, node, part, method, path, headers, query='',
                body=b''):
        """One request read whole: a Reply, or None when the node failed.

        Made with exchange.exchange, not http.client: see that module.
        Failures and retries are those of open().
        """
        target, signed = self.signed_head(node, part, method, path, headers,
                                          query, len(body))
        got = self._attempt(node, method, path, lambda conn: (
            exchange.exchange(conn, method, target, signed, body,
                              limit=MAX_READ)))
        if got is None:
            return None
        conn, answer = got
        self.note_status(node, answer.status, method, path)
        if answer.keep_alive:
            self.pool.put(conn)
        else:
            conn.close()
        return Reply(node, answer.status, answer.headers, answer.body)

    def _attempt(self, node, method, path, send):
        """(conn, send(conn)) on a pooled connection to ``node``, or None
        when the node failed (closed and counted against it). A kept-alive
        connection the server had closed fails before any answer: that
        is tried once more, on a new connection.
        """
        for attempt in (0, 1):
            # the retry must not land on another idle, maybe stale, one
            conn = (self.pool.get if attempt == 0 else self.pool.new)(
                node['ip'], node['port'])
            try:
                return conn, send(conn)
            except RETRYABLE as e:
                conn.close()
                if conn.reused and attempt == 0:
                    continue
                self.note_failure(node, method, path, e)
                return None
            except NODE_ERRORS as e:
                conn.close()
                self.note_failure(node, method, path, e)
                return None
        return None
