"""A minimal Swift API client for probe tests: what a user sees.

Probe tests judge the cluster by the answers a client gets, so the client
must not hide anything: no retries, no reconnect magic, one fresh
connection per request (safe from many load threads at once). A request
that cannot reach the proxy or times out comes back as status 0 with the
error, never as an exception, so a load counts it as a failure.
"""
import hashlib
import http.client
import json
from urllib.parse import quote, urlsplit


class Reply:
    __slots__ = ('status', 'headers', 'body', 'error')

    def __init__(self, status, headers=None, body=b'', error=None):
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.error = error

    @property
    def ok(self):
        return 200 <= self.status < 300

    def __repr__(self):
        return '<Reply %s %s>' % (self.status, self.error or
                                  self.body[:120])


def etag_of(body):
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


class SwiftClient:
    """Talks to the proxy at ``url`` as ``user`` (tempauth v1.0)."""

    def __init__(self, url, user, key, timeout=30.0):
        self.url = url.rstrip('/')
        self.user, self.key = user, key
        self.timeout = timeout
        self.token = None
        self.storage_path = None
        self.account = None

    def _send(self, method, path, headers=None, body=b'', query=''):
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                          timeout=self.timeout)
        target = path + ('?' + query if query else '')
        try:
            conn.request(method, target, body=body or None,
                         headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status,
                         {k.lower(): v for k, v in resp.getheaders()}, data)
        except (OSError, http.client.HTTPException) as e:
            return Reply(0, error='%s %s: %r' % (method, path, e))
        finally:
            conn.close()

    def authenticate(self):
        reply = self._send('GET', '/auth/v1.0', {
            'X-Auth-User': self.user, 'X-Auth-Key': self.key})
        if reply.status != 200:
            raise RuntimeError('auth as %s failed: %r' % (self.user, reply))
        self.token = reply.headers['x-auth-token']
        self.storage_path = urlsplit(reply.headers['x-storage-url']).path
        self.account = self.storage_path.rsplit('/', 1)[-1]
        return self

    def request(self, method, container=None, obj=None, headers=None,
                body=b'', query=''):
        if self.token is None:
            self.authenticate()
        path = self.storage_path
        if container is not None:
            path += '/' + quote(container)
            if obj is not None:
                path += '/' + quote(obj)
        headers = dict(headers or {}, **{'X-Auth-Token': self.token})
        if method in ('PUT', 'POST') and 'Content-Length' not in headers:
            headers['Content-Length'] = str(len(body))
        return self._send(method, path, headers, body, query)

    # -- conveniences ---------------------------------------------------
    def put_container(self, container):
        reply = self.request('PUT', container)
        if reply.status not in (201, 202):
            raise RuntimeError('PUT container %s: %r' % (container, reply))
        return reply

    def put_object(self, container, obj, body, headers=None):
        return self.request('PUT', container, obj, headers=headers,
                            body=body)

    def get_object(self, container, obj):
        return self.request('GET', container, obj)

    def delete_object(self, container, obj):
        return self.request('DELETE', container, obj)

    def listing(self, container):
        """{name: etag} of the container as the proxy lists it."""
        names = {}
        marker = ''
        while True:
            query = 'format=json' + ('&marker=' + quote(marker)
                                     if marker else '')
            reply = self.request('GET', container, query=query)
            if reply.status == 204:
                return names
            if reply.status != 200:
                raise RuntimeError('listing %s: %r' % (container, reply))
            rows = json.loads(reply.body)
            if not rows:
                return names
            for row in rows:
                names[row['name']] = row['hash']
            marker = rows[-1]['name']
