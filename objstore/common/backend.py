"""Signed HTTP requests from one cluster component to a storage node.

Used by the object server to update containers, the container server to
update accounts, and later by the proxy and the daemons. Every request is
signed (signing.py) with the cluster secret.
"""
import http.client
from urllib.parse import quote

from objstore.common import signing


# An object may carry 90 user metadata items plus its system headers, more
# than http.client's default limit of 100 response headers; a response the
# API allows must still parse.
http.client._MAXHEADERS = max(http.client._MAXHEADERS, 256)


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
    """
    wire_path = quote_path(path)
    headers = dict(headers or {})
    if body is not None and 'Content-Length' not in headers:
        headers['Content-Length'] = str(len(body))
    headers = signing.sign(secret, method, wire_path, headers, query=query)
    target = wire_path + ('?' + query if query else '')
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, \
            data
    except (OSError, http.client.HTTPException) as e:
        raise BackendError('%s %s:%s%s: %s' % (method, host, port, path, e))
    finally:
        conn.close()
