"""Signed HTTP requests from one cluster component to a storage node.

Used by the object server to update containers, the container server to
update accounts, and by the daemons. Every request is signed (signing.py)
with the cluster secret. Connections are kept alive and reused
(connpool.py): setting one up and tearing it down costs both ends more
CPU than a small request does.
"""
import http.client
from urllib.parse import quote

from objstore.common import connpool, exchange, signing


# An object may carry 90 user metadata items plus its system headers, more
# than http.client's default limit of 100 response headers; a response the
# API allows must still parse.
http.client._MAXHEADERS = max(http.client._MAXHEADERS, 256)

# This process's idle connections, by node. Each request passes its own
# timeout; idle ones go after 50 s, before the servers close them at 60 s.
_POOL = connpool.ConnectionPool(conn_timeout=10.0, node_timeout=10.0,
                                max_idle=8, max_age=50.0)


class BackendError(Exception):
    """The storage node could not be reached or did not answer in time."""


def quote_path(path):
    """Percent-encode a backend path as it goes on the wire."""
    return quote(path, safe='/')


def device_path_of(device, partition, account, container=None, obj=None):
    """'/<device>/<partition>/<account>[/<container>[/<object>]]'."""
    parts = ['', device, str(partition), account]
    if container is not None:
        parts.append(container)
        if obj is not None:
            parts.append(obj)
    return '/'.join(parts)


def request(secret, host, port, method, path, headers=None, body=b'',
            query='', timeout=10.0):
    """Send one signed request; return (status, headers dict, body bytes).

    ``path`` is the unquoted backend path. Raises BackendError when the
    node is unreachable or slow; any HTTP status is returned, not raised.
    ``timeout`` bounds the connect and every read and write.
    """
    wire_path = quote_path(path)
    headers = dict(headers or {})
    if body is not None and 'Content-Length' not in headers:
        headers['Content-Length'] = str(len(body))
    headers = signing.sign(secret, method, wire_path, headers, query=query)
    target = wire_path + ('?' + query if query else '')
    try:
        answer = _exchange(host, int(port), timeout, method, target, body,
                           headers)
    except (OSError, http.client.HTTPException) as e:
        raise BackendError('%s %s:%s%s: %s' % (method, host, port, path, e))
    return answer.status, {k.lower(): v for k, v in answer.headers}, \
        answer.body


def close_idle():
    """Close this process's idle connections to storage nodes."""
    _POOL.close_all()


def _exchange(host, port, timeout, method, target, body, headers):
    """The whole answer (exchange.Answer), on an idle connection when
    there is one. The server may have closed that one just as the request
    went out: then it failed before any answer, and as every backend
    request is idempotent (X-Timestamp, newest wins) it is sent once more
    on a fresh connection. The connection goes back to the pool unless
    the server means to close it."""
    conn = _POOL.get(host, port, timeout, timeout)
    try:
        try:
            answer = exchange.exchange(conn, method, target, headers, body)
        except connpool.RETRYABLE:
            if not conn.reused:
                raise
            conn.close()
            conn = _POOL.new(host, port, timeout, timeout)
            answer = exchange.exchange(conn, method, target, headers, body)
    except BaseException:
        conn.close()
        raise
    if answer.keep_alive:
        _POOL.put(conn)
    else:
        conn.close()
    return answer
