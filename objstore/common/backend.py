"""Signed HTTP requests from one cluster component to a storage node.

Used by the object server to update containers, the container server to
update accounts, and by the daemons. Every request is signed (signing.py)
with the cluster secret. Connections are kept alive and reused
(connpool.py): setting one up and tearing it down costs both ends more
CPU than a small request does.
"""
import http.client
from urllib.parse import quote

from objstore.common import connpool, signing


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
        resp, data = _exchange(host, int(port), timeout, method, target,
                               body or None, headers)
    except (OSError, http.client.HTTPException) as e:
        raise BackendError('%s %s:%s%s: %s' % (method, host, port, path, e))
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def close_idle():
    """Close this process's idle connections to storage nodes."""
    _POOL.close_all()


def _exchange(host, port, timeout, method, target, body, headers):
    """(response, body read whole); the connection goes back to the pool
    unless the server means to close it."""
    conn, resp = _open(host, port, timeout, method, target, body, headers)
    try:
        data = resp.read()
    except BaseException:
        conn.close()
        raise
    if resp.will_close:
        conn.close()
    else:
        _POOL.put(conn)
    return resp, data


def _open(host, port, timeout, method, target, body, headers):
    """(connection, response head), on an idle connection when there is
    one. The server may have closed that one just as the request went
    out: then it failed before any answer, and as every backend request is
    idempotent (X-Timestamp, newest wins) it is sent once more on a fresh
    connection."""
    conn = _POOL.get(host, port, timeout, timeout)
    if conn.reused:
        try:
            return conn, _send(conn, method, target, body, headers)
        except connpool.RETRYABLE:
            conn = _POOL.new(host, port, timeout, timeout)
    return conn, _send(conn, method, target, body, headers)


def _send(conn, method, target, body, headers):
    """Send the request and read the answer's head; the connection is
    closed when either fails."""
    try:
        conn.request(method, target, body=body, headers=headers)
        return conn.getresponse()
    except BaseException:
        conn.close()
        raise
