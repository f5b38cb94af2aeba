"""dlo: dynamic large objects, ``X-Object-Manifest: <container>/<prefix>``.

    [filter:dlo]
    use = objstore.middleware.dlo

An object carrying ``X-Object-Manifest`` (usually empty) stands for the
objects of ``<container>`` whose names start with ``<prefix>``, in name
order, concatenated. A GET or HEAD of it pages through the container
listing (as the client, so its read access to the segment container
applies) and answers with the total Content-Length and an ETag that is
the quoted MD5 of the segments' ETags concatenated; GET streams the
segments (segments.py), with Range and If-* against the large object.
The listing is taken once, before the answer starts, so the length and
ETag describe what is sent.

Each segment is read as it is stored (``multipart-manifest=get``), never
expanded again, so a manifest whose prefix covers itself does not loop:
the manifest is one of its own segments and contributes its own
(normally empty) body, as in Swift. ``?multipart-manifest=get`` answers
the manifest object itself.

Cost on requests that are not about DLOs (it sits on every request): a
PUT/POST without X-Object-Manifest and anything that is not an object
GET/HEAD go straight on (a dict look-up and a path split, no webob); an
object GET/HEAD is the app called through a start_response that scans
the answer's headers once for X-Object-Manifest and passes the answer
on untouched when there is none. Only a manifest's GET/HEAD (and a
416, which may be a manifest's own) takes the slow path.
"""
import hashlib
import json
from urllib.parse import parse_qs, quote, unquote

from objstore.common import info
from objstore.common.http import (HTTPError, Request, client_path,
                                  error_response)
from objstore.middleware import segments as seglib
from objstore.middleware.slo import split_object_path

MANIFEST_HEADER = 'X-Object-Manifest'
LISTING_LIMIT = 10000


def parse_manifest_value(value):
    """(container, prefix) of an X-Object-Manifest value (percent-
    encoded '<container>/<prefix>'); ValueError when it is not one."""
    try:
        text = unquote(value.strip().encode('latin-1').decode('utf-8'),
                       errors='strict')
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise ValueError('X-Object-Manifest is not valid UTF-8')
    text = text.lstrip('/')
    container, slash, prefix = text.partition('/')
    if not container or not slash:
        raise ValueError('X-Object-Manifest must be in the format '
                         'container/prefix')
    return container, prefix


def row_hash(row):
    """A listing row's hash without parameters (an SLO manifest's row
    carries '<md5>; slo_etag=<etag>')."""
    return row['hash'].partition(';')[0].strip().strip('"')


def dlo_etag(rows):
    """ETag (unquoted) of the listing rows: MD5 of their hashes."""
    md5 = hashlib.md5(usedforsecurity=False)
    for row in rows:
        md5.update(row_hash(row).encode('utf-8'))
    return md5.hexdigest()


def segments_of(rows, account_path, container):
    """segments.Segment for each listing row, whole objects."""
    return [seglib.Segment('%s/%s/%s' % (account_path, container,
                                         row['name']),
                           0, row['bytes'], row_hash(row), row['bytes'])
            for row in rows]


class ListingError(Exception):
    def __init__(self, resp):
        super().__init__(resp.status)
        self.resp = resp


class DynamicLargeObject:
    def __init__(self, app):
        self.app = app

    def list_segments(self, environ, account_path, container, prefix):
        """Every listing row of the container under ``prefix``."""
        rows, marker = [], ''
        path = '%s/%s' % (account_path, container)
        while True:
            query = 'format=json&limit=%d&prefix=%s&marker=%s' % (
                LISTING_LIMIT, quote(prefix, safe=''),
                quote(marker, safe=''))
            resp = seglib.subrequest(self.app, environ, 'GET', path, query)
            if resp.status_int == 404:
                seglib.close_body(resp)
                return rows
            if resp.status_int == 204:
                seglib.close_body(resp)
                return rows
            if resp.status_int != 200:
                raise ListingError(resp)
            body = seglib.read_body(resp, 64 * 1024 * 1024)
            try:
                page = json.loads(body or b'[]')
            except ValueError:
                page = None
            if not isinstance(page, list):
                raise HTTPError(503, 'segment listing unreadable')
            page = [row for row in page if isinstance(row, dict) and
                    'name' in row]
            if not page:
                return rows
            rows += page
            marker = page[-1]['name']

    def _manifest_answer(self, req, path, resp):
        """(answer, container/prefix value or None), ``resp`` the first
        answer to the client's request."""
        value = resp.headers.get(MANIFEST_HEADER)
        if value is None and resp.status_int == 416:
            head = seglib.subrequest(self.app, req.environ, 'HEAD', path,
                                     'multipart-manifest=get')
            seglib.close_body(head)
            if head.headers.get(MANIFEST_HEADER) is None:
                return resp, None
            value = head.headers[MANIFEST_HEADER]
            resp = head
        elif value is None or resp.status_int not in (200, 206, 304, 412):
            return resp, None
        seglib.close_body(resp)
        if resp.status_int != 200:
            head = seglib.subrequest(self.app, req.environ, 'HEAD', path,
                                     'multipart-manifest=get')
            seglib.close_body(head)
            if head.status_int != 200 or \
                    head.headers.get(MANIFEST_HEADER) is None:
                return head, None
            resp, value = head, head.headers[MANIFEST_HEADER]
        return resp, value

    def get_large(self, req, path, account_path, first=None):
        if first is None:
            first = req.get_response(self.app)
        resp, value = self._manifest_answer(req, path, first)
        if value is None:
            return resp
        try:
            container, prefix = parse_manifest_value(value)
        except ValueError as e:
            return error_response(409, str(e), request=req)
        try:
            rows = self.list_segments(req.environ, account_path, container,
                                      prefix)
        except ListingError as e:
            seglib.close_body(e.resp)
            return error_response(e.resp.status_int,
                                  'listing the segments failed: %s'
                                  % e.resp.status, request=req)
        pieces = segments_of(rows, account_path, container)
        return seglib.respond(req, self.app, pieces, dlo_etag(rows),
                              seglib.passed_headers(resp),
                              resp.headers.get('X-Timestamp'))

    def handle(self, req, path, account_path):
        mode = parse_qs(req.environ.get('QUERY_STRING', '')).get(
            'multipart-manifest', [''])[0]
        if req.method in ('PUT', 'POST') and \
                req.headers.get(MANIFEST_HEADER) is not None:
            try:
                parse_manifest_value(req.headers[MANIFEST_HEADER])
            except ValueError as e:
                return error_response(400, str(e), request=req)
        elif req.method in ('GET', 'HEAD') and mode != 'get':
            return self.get_large(req, path, account_path)
        return None

    def _slow(self, environ, start_response, first=None):
        req = Request(environ)
        try:
            path = client_path(req)
        except HTTPError:
            path = None
        target = split_object_path(path) if path else None
        if target is None:
            if first is not None:
                start_response(first[0], first[1])
                return first[2]
            return self.app(environ, start_response)
        try:
            if first is not None and req.method in ('GET', 'HEAD'):
                resp = self.get_large(req, path, target[0],
                                      seglib.as_response(*first))
            else:
                resp = self.handle(req, path, target[0])
        except HTTPError as e:
            resp = e.response(req)
        if resp is None:
            return self.app(environ, start_response)
        return resp(environ, start_response)

    def __call__(self, environ, start_response):
        method = environ.get('REQUEST_METHOD')
        if method == 'GET' or method == 'HEAD':
            parts = environ.get('PATH_INFO', '').split('/', 4)
            if len(parts) != 5 or not parts[4] or \
                    'multipart-manifest=get' in environ.get('QUERY_STRING',
                                                            ''):
                return self.app(environ, start_response)
            status, headers, body = seglib.call_app(self.app, environ)
            if seglib.header_value(headers, 'x-object-manifest') is None \
                    and (status[:3] != '416' or 'HTTP_RANGE' not in environ):
                start_response(status, headers)
                return body
            return self._slow(environ, start_response,
                              (status, headers, body))
        if (method == 'PUT' or method == 'POST') and \
                'HTTP_X_OBJECT_MANIFEST' in environ:
            return self._slow(environ, start_response)
        return self.app(environ, start_response)


def filter_factory(global_conf, local_conf):
    info.register('dlo')

    def wrap(app):
        return DynamicLargeObject(app)
    return wrap
