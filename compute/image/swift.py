"""The few Swift API calls the image store makes, over `requests`.

A small client of our own rather than python-swiftclient: the store needs
streaming in both directions, per-call timeouts and typed errors, and the
API server must act with a user's own token (`from_token`), so a thin
layer that says exactly what goes on the wire is easier to reason about.

Every call has a timeout (connect, read); a 401 makes a session that holds
credentials authenticate again once and retry, as long as the request body
can be sent again (bytes or nothing; a streamed body cannot).
"""
import json
import urllib.parse

import requests

DEFAULT_TIMEOUT = (10.0, 60.0)
_MESSAGE_MAX = 300


class SwiftError(Exception):
    """objstore answered with an error status (or could not be reached,
    then `status` is None)."""

    def __init__(self, status, message):
        super().__init__('%s: %s' % (status, message) if status
                         else message)
        self.status = status
        self.message = message


class NotFound(SwiftError):
    """404: the account, container or object does not exist."""


def quote(name):
    """A container or object name for a URL path ('/' kept for objects)."""
    return urllib.parse.quote(name.encode('utf-8'), safe='/')


def _raise_for(resp, what):
    """SwiftError (NotFound for 404) unless the response is a 2xx."""
    if 200 <= resp.status_code < 300:
        return
    text = ''
    if resp.request is not None and resp.request.method != 'HEAD':
        text = resp.text[:_MESSAGE_MAX].strip()
    message = '%s failed: %d %s%s' % (what, resp.status_code, resp.reason,
                                      ': ' + text if text else '')
    cls = NotFound if resp.status_code == 404 else SwiftError
    raise cls(resp.status_code, message)


class SwiftSession:
    """An authenticated connection to one objstore account (or an
    anonymous one: see from_token)."""

    def __init__(self, auth_url, user, key, timeout=DEFAULT_TIMEOUT):
        self.auth_url, self.user, self.key = auth_url, user, key
        self.timeout = timeout
        self.storage_url = None
        self.token = None
        self.anonymous = False
        self.http = requests.Session()

    @classmethod
    def from_token(cls, storage_url, token, timeout=DEFAULT_TIMEOUT):
        """A session acting with a token someone else obtained (no
        credentials, so a 401 is final).

        With `token` None the session is anonymous: requests carry no
        X-Auth-Token, so objstore lets them read only what container ACLs
        open to everyone (public images of another account)."""
        session = cls(None, None, None, timeout=timeout)
        session.storage_url = storage_url.rstrip('/')
        session.token = token
        session.anonymous = token is None
        return session

    @property
    def account(self):
        """The account name: the last component of the storage URL."""
        if self.storage_url is None:
            self._ensure_auth()
        path = urllib.parse.urlsplit(self.storage_url).path
        return urllib.parse.unquote(path.rstrip('/').rsplit('/', 1)[-1])

    def close(self):
        self.http.close()

    # --- plumbing -------------------------------------------------------

    def authenticate(self):
        """Auth v1.0: credentials in, storage URL and token out."""
        if self.auth_url is None:
            raise SwiftError(401, 'token refused and no credentials to '
                                  'authenticate again')
        resp = self._send('GET', self.auth_url, headers={
            'X-Auth-User': self.user, 'X-Auth-Key': self.key})
        _raise_for(resp, 'authentication as %s' % self.user)
        url = resp.headers.get('X-Storage-Url')
        token = resp.headers.get('X-Auth-Token')
        if not url or not token:
            raise SwiftError(resp.status_code, 'authentication answered '
                             'without X-Storage-Url or X-Auth-Token')
        self.storage_url, self.token = url.rstrip('/'), token

    def _ensure_auth(self):
        if self.token is None and not self.anonymous:
            self.authenticate()

    def _send(self, method, url, **kwargs):
        """One HTTP request; connection problems become SwiftError."""
        kwargs.setdefault('timeout', self.timeout)
        try:
            return self.http.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise SwiftError(None, '%s %s: cannot reach objstore: %s'
                             % (method, url, exc)) from exc

    def _url(self, container=None, name=None):
        url = self.storage_url
        if container is not None:
            url += '/' + urllib.parse.quote(container.encode('utf-8'),
                                            safe='')
        if name is not None:
            url += '/' + quote(name)
        return url

    def request(self, method, container=None, name=None, headers=None,
                data=None, params=None, stream=False):
        """An authenticated request; re-authenticates once on a 401 when
        the body can be sent again. Returns the response, any status."""
        self._ensure_auth()
        resendable = data is None or isinstance(data, bytes)
        for attempt in (1, 2):
            sent = dict(headers or {})
            if not self.anonymous:
                sent['X-Auth-Token'] = self.token
            resp = self._send(method, self._url(container, name),
                              headers=sent, data=data, params=params,
                              stream=stream)
            if resp.status_code != 401 or attempt == 2 or not resendable \
                    or self.auth_url is None:
                return resp
            resp.close()
            self.authenticate()
        return resp  # not reached

    # --- the API ----------------------------------------------------------

    def put_container(self, container, headers=None):
        resp = self.request('PUT', container, headers=headers)
        _raise_for(resp, 'PUT container %s' % container)
        return resp.headers

    def put_object(self, container, name, body, headers=None,
                   content_length=None):
        """PUT an object from bytes or an iterable of byte chunks.

        With `content_length` the body is sent with that Content-Length
        (an iterable must yield exactly that many bytes), without it an
        iterable is sent chunked. Returns the response headers (ETag).
        """
        data = body
        headers = dict(headers or {})
        if not isinstance(body, bytes):
            if content_length == 0:
                data = b''.join(body)
            elif content_length is not None:
                data = _Sized(body, content_length)
        resp = self.request('PUT', container, name, headers=headers,
                            data=data)
        _raise_for(resp, 'PUT %s/%s' % (container, name))
        return resp.headers

    def head_object(self, container, name):
        resp = self.request('HEAD', container, name)
        _raise_for(resp, 'HEAD %s/%s' % (container, name))
        return resp.headers

    def get_object(self, container, name, chunk_size=65536):
        """(headers, iterator of chunks); the body streams as it is read
        and the connection is released when the iterator ends or closes."""
        resp = self.request('GET', container, name, stream=True)
        try:
            _raise_for(resp, 'GET %s/%s' % (container, name))
        except SwiftError:
            resp.close()
            raise
        return resp.headers, _chunks(resp, chunk_size, container, name)

    def delete_object(self, container, name):
        resp = self.request('DELETE', container, name)
        _raise_for(resp, 'DELETE %s/%s' % (container, name))

    def post_object(self, container, name, headers):
        """POST metadata: objstore replaces all user metadata with it."""
        resp = self.request('POST', container, name, headers=headers)
        _raise_for(resp, 'POST %s/%s' % (container, name))
        return resp.headers

    def list_objects(self, container, prefix=None, page_size=None):
        """Every object of a container (dicts as the JSON listing gives
        them), following markers across pages."""
        marker = None
        while True:
            params = {'format': 'json'}
            if prefix:
                params['prefix'] = prefix
            if marker:
                params['marker'] = marker
            if page_size:
                params['limit'] = str(page_size)
            resp = self.request('GET', container, params=params)
            _raise_for(resp, 'listing %s' % container)
            page = _json_page(resp, container)
            if not page:
                return
            yield from page
            marker = page[-1]['name']


def _json_page(resp, container):
    if resp.status_code == 204 or not resp.content:
        return []
    try:
        page = json.loads(resp.content)
    except ValueError:
        raise SwiftError(resp.status_code, 'listing %s: not JSON'
                         % container) from None
    if not isinstance(page, list):
        raise SwiftError(resp.status_code, 'listing %s: not a JSON list'
                         % container)
    return page


def _chunks(resp, chunk_size, container, name):
    """The body of a streamed response, closing it at the end."""
    try:
        for chunk in resp.iter_content(chunk_size):
            if chunk:
                yield chunk
    except requests.RequestException as exc:
        raise SwiftError(None, 'GET %s/%s: body broke off: %s'
                         % (container, name, exc)) from exc
    finally:
        resp.close()


class _Sized:
    """An iterable of chunks with a known length, so that `requests` sends
    a Content-Length instead of chunked transfer encoding."""

    def __init__(self, chunks, length):
        self.chunks, self.length = chunks, length

    def __len__(self):
        return self.length

    def __iter__(self):
        return iter(self.chunks)
