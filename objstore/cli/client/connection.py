"""A small Swift API client on ``requests``: one request, one answer.

Every failure becomes a ClientError whose message names the request and
the status (or, when nothing answers, the URL), so commands never show a
traceback. Sessions are kept per thread: the parallel upload and download
workers each reuse their own pooled connection.
"""
import json
import threading
from urllib.parse import quote

import requests

from objstore.cli.client.errors import ClientError

TIMEOUT = 60
LISTING_LIMIT = 10000


def object_path(container=None, obj=None):
    """The quoted path below the storage URL ('' for the account)."""
    path = ''
    if container is not None:
        path += '/' + quote(container, safe='')
        if obj is not None:
            path += '/' + quote(obj, safe='/')
    return path


def wire_headers(headers):
    """Header values as UTF-8 bytes, as Swift stores metadata: given as
    str, http.client would send them as Latin-1 and fail on the rest."""
    return {name: value.encode('utf-8') if isinstance(value, str) else value
            for name, value in headers.items()}


def describe(method, container=None, obj=None):
    name = '/'.join(p for p in (container, obj) if p is not None)
    return '%s %s' % (method, name or 'account')


def _reason(resp):
    body = ''
    try:
        body = resp.text.strip().splitlines()[0][:200] if resp.text else ''
    except (ValueError, IndexError, requests.RequestException):
        pass
    text = '%d %s' % (resp.status_code, resp.reason or '')
    return text.strip() + (': ' + body if body and body not in text else '')


class Connection:
    def __init__(self, storage_url, token, timeout=TIMEOUT):
        self.storage_url = storage_url.rstrip('/')
        self.token, self.timeout = token, timeout
        self._local = threading.local()

    @property
    def session(self):
        session = getattr(self._local, 'session', None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def request(self, method, container=None, obj=None, query=None,
                headers=None, data=None, stream=False, ok=None):
        """The response to METHOD on account/container/object. Raises
        ClientError unless the status is 2xx (or in ``ok``)."""
        try:
            url = self.storage_url + object_path(container, obj)
        except UnicodeEncodeError:   # a file name in another encoding
            raise ClientError('%s: the name is not valid UTF-8'
                              % describe(method, container, obj))
        all_headers = {'X-Auth-Token': self.token}
        all_headers.update(headers or {})
        try:
            resp = self.session.request(method, url, params=query,
                                        headers=wire_headers(all_headers),
                                        data=data,
                                        stream=stream, timeout=self.timeout)
        except requests.ConnectionError as e:
            raise ClientError('cannot connect to %s (%s)'
                              % (self.storage_url, _short(e)))
        except requests.RequestException as e:
            raise ClientError('%s failed: %s'
                              % (describe(method, container, obj), _short(e)))
        except UnicodeError:   # a --prefix or header in another encoding
            raise ClientError('%s: a name or header is not valid UTF-8'
                              % describe(method, container, obj))
        if resp.status_code // 100 == 2 or (ok and resp.status_code in ok):
            return resp
        message = '%s: %s' % (describe(method, container, obj), _reason(resp))
        resp.close()
        if resp.status_code == 404:
            message = '%s: not found' % describe(method, container, obj)
        raise ClientError(message, resp.status_code)

    def head(self, container=None, obj=None, ok=None, **kwargs):
        return self.request('HEAD', container, obj, ok=ok, **kwargs)

    def head_or_none(self, container=None, obj=None, **kwargs):
        """Headers of the thing, or None when it does not exist."""
        resp = self.request('HEAD', container, obj, ok=(404,), **kwargs)
        return None if resp.status_code == 404 else resp.headers

    def listing(self, container=None, prefix=None, delimiter=None):
        """Every entry of an account or container listing (JSON), page
        after page by marker."""
        marker = ''
        while True:
            query = {'format': 'json', 'limit': LISTING_LIMIT}
            if marker:
                query['marker'] = marker
            if prefix:
                query['prefix'] = prefix
            if delimiter:
                query['delimiter'] = delimiter
            resp = self.request('GET', container, query=query)
            try:
                page = json.loads(resp.content or b'[]')
            except ValueError:
                raise ClientError('%s: the listing is not JSON'
                                  % describe('GET', container))
            if not page:
                return
            yield from page
            last = page[-1]
            marker = last.get('name') or last.get('subdir')
            if len(page) < LISTING_LIMIT:
                return


def _short(exc):
    text = str(exc)
    if 'Connection refused' in text:
        return 'connection refused'
    return text.splitlines()[0][:200] if text else type(exc).__name__
