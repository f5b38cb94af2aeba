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


def dlo_etag(rows):
    """ETag (unquoted) of the listing rows: MD5 of their hashes."""
    md5 = hashlib.md5(usedforsecurity=False)
    for row in rows:
        md5.update(row['hash'].strip('"').encode('utf-8'))
    return md5.hexdigest()


def segments_of(rows, account_path, container):
    """segments.Segment for each listing row, whole objects."""
    return [seglib.Segment('%s/%s/%s' % (account_path, container,
                                         row['name']),
                           0, row['bytes'], row['hash'], row['bytes'])
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

    def _manifest_answer(self, req, path):
        """(answer, container/prefix value or None)."""
        resp = req.get_response(self.app)
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

    def get_large(self, req, path, account_path):
        resp, value = self._manifest_answer(req, path)
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

    def __call__(self, environ, start_response):
        req = Request(environ)
        try:
            path = client_path(req)
        except HTTPError:
            return self.app(environ, start_response)
        target = split_object_path(path)
        if target is None:
            return self.app(environ, start_response)
        try:
            resp = self.handle(req, path, target[0])
        except HTTPError as e:
            resp = e.response(req)
        if resp is None:
            return self.app(environ, start_response)
        return resp(environ, start_response)


def filter_factory(global_conf, local_conf):
    info.register('dlo')

    def wrap(app):
        return DynamicLargeObject(app)
    return wrap
