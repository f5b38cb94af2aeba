"""slo: static large objects, a JSON manifest naming the segments.

    [filter:slo]
    use = objstore.middleware.slo
    # max_manifest_segments = 1000
    # max_manifest_size = 8388608     (bytes of the PUT body)
    # min_segment_size = 1            (every segment but the last)
    # max_nesting_depth = 10          (manifests within manifests)

* ``PUT <object>?multipart-manifest=put``: the body lists the segments
  (slo_manifest.py). Each is looked up (HEAD, a nested SLO read as the
  large object it is) and checked against the size, ETag and range the
  client gave; any problem is a 400 listing every failed segment and
  nothing is stored. Otherwise the manifest is stored with
  ``X-Static-Large-Object: True`` and the answer carries the large
  object's ETag.
* ``GET``/``HEAD``: the concatenated segments (segments.py), with the
  total Content-Length, the SLO ETag (quoted) and Range/If-* answered
  against them. Nested manifests are expanded, and checked, before the
  first byte goes out, so a loop or a too-deep nesting is a 409.
* ``?multipart-manifest=get``: the stored manifest (JSON);
  ``&format=raw``: in the form a client PUTs.
* ``DELETE ?multipart-manifest=delete``: the segments (nested ones too)
  and the manifest, with a per-item result like a bulk delete.

Sub-requests go to the rest of the pipeline with the client's environ,
so the auth filter judges every segment path as the client's own.

System metadata (it crosses the proxy behind the gatekeeper filter): a
manifest PUT stores ``X-Object-Sysmeta-Slo: True``, ``-Slo-Etag`` and
``-Slo-Size`` beside ``X-Static-Large-Object: True``, so a HEAD is
answered from the manifest's own HEAD and a GET takes its ETag from
there (the manifest is read only to stream the segments). Manifests
stored before (no system metadata) are still read as before. The
container row gets the container update overrides: ``bytes`` the total,
``hash`` '<the manifest's MD5>; slo_etag=<SLO etag>', which this filter
shows in JSON/XML listings as Swift does (``hash`` the manifest's MD5,
``slo_etag`` the quoted SLO etag).

Cost on requests that are not about SLOs (it sits on every request):
a PUT without X-Static-Large-Object, a DELETE, a POST and anything but
an object GET/HEAD or a container GET go straight on after a substring
test of the query and a dict look-up (no webob, no query parsing); an
object GET/HEAD is the app called through a start_response that scans
the answer's headers once (test/bench/pipeline_overhead.py: about 1.5
microseconds over the bare app, where the webob version cost 10-15); a
container GET that is a JSON/XML listing is read whole and parsed only
when a row carries ``slo_etag=``.
"""
import hashlib
import io
import json
from urllib.parse import parse_qs, quote

from objstore.common import info
from objstore.common.config import ConfigError, config_true
from objstore.common.http import (HTTPError, Request, Response,
                                  client_path, error_response)
from objstore.common.listing import iso_time
from objstore.middleware import segments as seglib
from objstore.middleware.slo_manifest import (
    ManifestError, check_segment, error_body, leaf_segments,
    manifest_depth, parse_put, parse_stored, raw_format,
    rewrite_json_listing, rewrite_xml_listing, slo_etag, total_size)
from objstore.obj import conditions

DEFAULTS = {'max_manifest_segments': 1000, 'max_manifest_size': 8388608,
            'min_segment_size': 1, 'max_nesting_depth': 10}
SLO_HEADER = 'X-Static-Large-Object'
# system metadata of a manifest (objects written before it existed have
# only X-Static-Large-Object, and their size and etag come from the
# manifest itself)
SYSMETA_SLO = 'X-Object-Sysmeta-Slo'
SYSMETA_ETAG = 'X-Object-Sysmeta-Slo-Etag'
SYSMETA_SIZE = 'X-Object-Sysmeta-Slo-Size'
_SLO_HEADERS = ('x-static-large-object', 'x-object-sysmeta-slo')
_SLO_HEADER_LENGTHS = frozenset(map(len, _SLO_HEADERS))
_LISTING_TYPES = ('application/json', 'application/xml', 'text/xml')


def split_object_path(path):
    """('/v1/<account>', container, object) or None for other paths."""
    parts = path.split('/', 4)
    if len(parts) != 5 or parts[0] or not all(parts[1:]):
        return None
    return '/%s/%s' % (parts[1], parts[2]), parts[3], parts[4]


def is_slo(resp):
    return config_true(resp.headers.get(SLO_HEADER, '')) or \
        config_true(resp.headers.get(SYSMETA_SLO, ''))


def slo_headers(headers):
    """Whether an answer's header list [(name, value)] is an SLO
    manifest's (the fast paths' one look at an answer)."""
    for key, value in headers:
        # the length first: most headers are answered without lower()
        if len(key) in _SLO_HEADER_LENGTHS and \
                key.lower() in _SLO_HEADERS and config_true(value):
            return True
    return False


def stored_size_etag(headers):
    """(etag, size) of the large object from a manifest answer's system
    metadata (a case-insensitive mapping), or None when it has none."""
    etag = headers.get(SYSMETA_ETAG)
    size = headers.get(SYSMETA_SIZE)
    if not etag or size is None or not size.strip().isdigit():
        return None
    return etag.strip(), int(size)


def manifest_sysmeta(manifest, etag, size):
    """The environ keys a manifest PUT stores besides the manifest: the
    large object's etag and size for HEAD/GET, and the container row's
    overrides (bytes: the total, hash: the manifest's own MD5 with the
    SLO etag as a parameter, which the listing shows as ``slo_etag``)."""
    own = hashlib.md5(manifest, usedforsecurity=False).hexdigest()
    return {
        'HTTP_X_STATIC_LARGE_OBJECT': 'True',
        'HTTP_X_OBJECT_SYSMETA_SLO': 'True',
        'HTTP_X_OBJECT_SYSMETA_SLO_ETAG': etag,
        'HTTP_X_OBJECT_SYSMETA_SLO_SIZE': str(size),
        'HTTP_X_OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_SIZE': str(size),
        'HTTP_X_OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_ETAG':
            '%s; slo_etag=%s' % (own, etag)}


def wants_json(req):
    accept = req.headers.get('Accept', '')
    return 'application/json' in accept


def _settings(conf):
    out = {}
    for key, default in DEFAULTS.items():
        value = conf.get(key, default)
        try:
            out[key] = int(value)
        except (TypeError, ValueError):
            raise ConfigError('slo: %s must be an integer' % key)
        if out[key] < (0 if key == 'min_segment_size' else 1):
            raise ConfigError('slo: %s is too small' % key)
    out['min_segment_size'] = max(1, out['min_segment_size'])
    return out


class StaticLargeObject:
    def __init__(self, app, settings):
        self.app = app
        self.max_segments = settings['max_manifest_segments']
        self.max_size = settings['max_manifest_size']
        self.min_segment_size = settings['min_segment_size']
        self.max_depth = settings['max_nesting_depth']
        # a stored manifest records more per segment than the PUT body
        self.max_stored_size = 4 * self.max_size + 65536

    # -- sub-requests ------------------------------------------------------

    def _sub(self, environ, method, path, query='multipart-manifest=get',
             headers=None):
        return seglib.subrequest(self.app, environ, method, path, query,
                                 headers)

    def fetch_manifest(self, environ, path):
        """The stored entries of the SLO manifest at ``path``."""
        resp = self._sub(environ, 'GET', path)
        if resp.status_int != 200 or not is_slo(resp):
            seglib.close_body(resp)
            raise ManifestError(409, 'nested manifest %s: %s' % (
                path, resp.status if resp.status_int != 200 else
                'no longer a static large object'))
        body = seglib.read_body(resp, self.max_stored_size)
        if body is None:
            raise ManifestError(409, 'manifest %s is too large' % path)
        return parse_stored(body)

    def describe(self, environ, path):
        """What check_segment needs to know about the segment at path."""
        resp = self._sub(environ, 'HEAD', path)
        seglib.close_body(resp)
        found = {'status': resp.status_int,
                 'reason': resp.status.partition(' ')[2]}
        if not 200 <= resp.status_int < 300:
            return found
        timestamp = resp.headers.get('X-Timestamp')
        found.update({
            'bytes': int(resp.headers.get('Content-Length') or 0),
            'hash': (resp.headers.get('Etag') or '').strip('"'),
            'content_type': resp.headers.get('Content-Type'),
            'last_modified': iso_time(timestamp) if timestamp else None})
        if is_slo(resp):
            entries = self.fetch_manifest(environ, path)
            account_path = '/'.join(path.split('/', 3)[:3])
            manifest_depth(entries, account_path,
                           lambda p: self.fetch_manifest(environ, p),
                           self.max_depth - 1)
            found.update({'bytes': total_size(entries),
                          'hash': slo_etag(entries), 'sub_slo': True})
        return found

    # -- PUT ---------------------------------------------------------------

    def _read_put_body(self, req):
        length = req.content_length
        if length is not None and length > self.max_size:
            raise ManifestError(413, 'Manifest File > %d bytes'
                                % self.max_size)
        stream = req.environ['wsgi.input']
        data, size = [], 0
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_size:
                raise ManifestError(413, 'Manifest File > %d bytes'
                                    % self.max_size)
            data.append(chunk)
        return b''.join(data)

    def put_manifest(self, req, account_path):
        body = self._read_put_body(req)
        wanted = parse_put(body, self.max_segments)
        errors, entries = [], []
        for index, segment in enumerate(wanted):
            path = account_path + segment['path']
            if path == client_path(req):
                # it would be replaced by the manifest naming it
                errors.append((quote(segment['path']),
                               'Manifest cannot name itself as a segment'))
                continue
            try:
                found = self.describe(req.environ, path)
            except ManifestError as e:
                errors.append((quote(segment['path']), e.reason))
                continue
            problem, entry = check_segment(
                segment, found, index == len(wanted) - 1,
                self.min_segment_size)
            if problem:
                errors.append((quote(segment['path']), problem))
            else:
                entries.append(entry)
        if errors:
            as_json = wants_json(req)
            body = error_body(errors, as_json).encode('utf-8')
            return Response(
                status='400 Bad Request', body=body,
                content_type='application/json' if as_json else
                'text/plain', charset='utf-8')
        etag = slo_etag(entries)
        client_etag = req.headers.get('Etag')
        if client_etag is not None and \
                client_etag.strip().strip('"').lower() != etag:
            return error_response(422, 'the ETag given does not match the '
                                  'manifest\'s ETag %s' % etag, request=req)
        manifest = json.dumps(entries).encode('utf-8')
        env = {k: v for k, v in req.environ.items()
               if not k.startswith('webob.') and k not in (
                   'HTTP_ETAG', 'HTTP_TRANSFER_ENCODING',
                   'HTTP_X_OBJECT_MANIFEST')}
        env.update({'QUERY_STRING': '', 'CONTENT_LENGTH': str(len(manifest)),
                    'wsgi.input': io.BytesIO(manifest)})
        env.update(manifest_sysmeta(manifest, etag, total_size(entries)))
        resp = Request(env).get_response(self.app)
        if 200 <= resp.status_int < 300:
            resp.headers['Etag'] = seglib.quote_etag(etag)
        return resp

    # -- GET and HEAD ------------------------------------------------------

    def get_manifest(self, req):
        """``?multipart-manifest=get``: the stored manifest itself."""
        resp = req.get_response(self.app)
        if not is_slo(resp) or resp.status_int != 200:
            return resp
        if req.params.get('format') != 'raw':
            resp.headers['Content-Type'] = 'application/json; charset=utf-8'
            return resp
        body = seglib.read_body(resp, self.max_stored_size)
        if body is None:
            raise ManifestError(409, 'the stored manifest is too large')
        data = json.dumps(raw_format(parse_stored(body))).encode('utf-8')
        pairs = seglib.passed_headers(resp, drop=('content-type',))
        pairs += [('Content-Type', 'application/json; charset=utf-8'),
                  ('Content-Length', str(len(data)))]
        return Response(status=200, headerlist=pairs,
                        app_iter=[b''] if req.method == 'HEAD' else [data])

    def _manifest_answer(self, req, path, resp):
        """The manifest's answer (a 200 GET, or a 200 HEAD carrying the
        size and etag) for a GET/HEAD of ``path`` whose first answer was
        ``resp``, or the answer to give when the object is no SLO."""
        plain = req.method == 'GET' and resp.status_int == 200 and \
            req.headers.get('Range') is None and not seglib.has_conditions(
                req)
        head = None
        if is_slo(resp):
            if plain or (req.method == 'HEAD' and resp.status_int == 200 and
                         stored_size_etag(resp.headers)):
                return resp, True
            seglib.close_body(resp)
        elif resp.status_int != 416:
            return resp, False
        else:
            head = self._sub(req.environ, 'HEAD', path)
            seglib.close_body(head)
            if not is_slo(head):
                return resp, False
            seglib.close_body(resp)
        if req.method == 'HEAD':
            if head is None:
                head = self._sub(req.environ, 'HEAD', path,
                                 headers=_kept_request_headers(req))
                seglib.close_body(head)
            if head.status_int == 200 and is_slo(head) and \
                    stored_size_etag(head.headers):
                return head, True
        manifest = self._sub(req.environ, 'GET', path,
                             headers=_kept_request_headers(req))
        if manifest.status_int != 200 or not is_slo(manifest):
            return manifest, False
        return manifest, True

    def get_large(self, req, path, account_path, first=None):
        if first is None:
            first = req.get_response(self.app)
        resp, large = self._manifest_answer(req, path, first)
        if not large:
            return resp
        stored = stored_size_etag(resp.headers)
        if stored is not None and (req.method == 'HEAD' or (
                seglib.has_conditions(req) and
                _fails(req, stored[0], resp))):
            # answered from the system metadata, the manifest unread
            seglib.close_body(resp)
            etag, size = stored
            pieces = [seglib.Segment(path, 0, size, None, None)]
            return seglib.respond(req, self.app, pieces, etag,
                                  seglib.passed_headers(resp),
                                  resp.headers.get('X-Timestamp'))
        body = seglib.read_body(resp, self.max_stored_size)
        if body is None:
            raise ManifestError(409, 'the stored manifest is too large')
        entries = parse_stored(body)
        etag = stored[0] if stored else slo_etag(entries)
        if req.method == 'HEAD':
            pieces = [seglib.Segment(account_path + e['name'], 0,
                                     total_size([e]), None, None)
                      for e in entries]
        elif seglib.has_conditions(req) and _fails(req, etag, resp):
            pieces = []   # answered 304/412 below without the segments
        else:
            pieces = leaf_segments(
                entries, account_path,
                lambda p: self.fetch_manifest(req.environ, p),
                self.max_depth)
        headers = seglib.passed_headers(resp)
        return seglib.respond(req, self.app, pieces, etag, headers,
                              resp.headers.get('X-Timestamp'))

    # -- DELETE ------------------------------------------------------------

    def _delete_targets(self, environ, path, account_path, depth=1):
        """Segment paths (nested manifests' first), then the manifest."""
        if depth > self.max_depth:
            raise ManifestError(409, 'Max recursion depth exceeded')
        out = []
        for entry in self.fetch_manifest(environ, path):
            sub = account_path + entry['name']
            if entry.get('sub_slo'):
                out += self._delete_targets(environ, sub, account_path,
                                            depth + 1)
            elif sub not in out:
                out.append(sub)
        out.append(path)
        return out

    def delete_manifest(self, req, path, account_path):
        head = self._sub(req.environ, 'HEAD', path)
        seglib.close_body(head)
        deleted, missing, errors = 0, 0, []
        if head.status_int == 404:
            missing = 1
        elif not is_slo(head):
            errors.append((quote(path), head.status if
                           head.status_int >= 300 else
                           'Not an SLO manifest'))
        else:
            for target in self._delete_targets(req.environ, path,
                                               account_path):
                resp = self._sub(req.environ, 'DELETE', target, query='')
                seglib.close_body(resp)
                if 200 <= resp.status_int < 300:
                    deleted += 1
                elif resp.status_int == 404:
                    missing += 1
                else:
                    errors.append((quote(target), resp.status))
        status = '400 Bad Request' if errors else '200 OK'
        result = {'Number Deleted': deleted, 'Number Not Found': missing,
                  'Response Body': '', 'Response Status': status,
                  'Errors': [list(e) for e in errors]}
        if wants_json(req):
            body, ctype = json.dumps(result), 'application/json'
        else:
            body = ''.join('%s: %s\n' % (k, result[k]) for k in (
                'Number Deleted', 'Number Not Found', 'Response Body',
                'Response Status'))
            body += 'Errors:\n' + ''.join('%s, %s\n' % e for e in errors)
            ctype = 'text/plain'
        return Response(status=200, body=body.encode('utf-8'),
                        content_type=ctype, charset='utf-8')

    # -- dispatch ----------------------------------------------------------

    def handle(self, req, path, account_path, first=None):
        mode = parse_qs(req.environ.get('QUERY_STRING', '')).get(
            'multipart-manifest', [''])[0]
        method = req.method
        if method == 'PUT':
            if mode == 'put':
                return self.put_manifest(req, account_path)
            if req.headers.get(SLO_HEADER) is not None:
                raise ManifestError(400, 'X-Static-Large-Object is a '
                                    'reserved header. To create a static '
                                    'large object add query param '
                                    'multipart-manifest=put.')
        elif method == 'POST':
            req.environ.pop('HTTP_X_STATIC_LARGE_OBJECT', None)
        elif method in ('GET', 'HEAD'):
            if mode == 'get':
                return self.get_manifest(req)
            return self.get_large(req, path, account_path, first)
        elif method == 'DELETE' and mode == 'delete':
            return self.delete_manifest(req, path, account_path)
        return None

    def _slow(self, environ, start_response, first=None):
        """Everything that may concern large objects, with webob."""
        req = Request(environ)
        try:
            path = client_path(req)
        except HTTPError:
            if first is not None:
                return _pass(first, start_response)
            return self.app(environ, start_response)
        target = split_object_path(path)
        if target is None:
            if first is not None:
                return _pass(first, start_response)
            return self.app(environ, start_response)
        if first is not None:
            first = seglib.as_response(*first)
        try:
            resp = self.handle(req, path, target[0], first)
        except ManifestError as e:
            resp = error_response(e.status, e.reason, request=req)
        except HTTPError as e:
            resp = e.response(req)
        if resp is None:
            return self.app(environ, start_response)
        return resp(environ, start_response)

    def _get_head(self, environ, start_response):
        """A GET/HEAD of an object: one look at the answer's headers;
        anything but an SLO goes back as it came."""
        status, headers, body = seglib.call_app(self.app, environ)
        if not slo_headers(headers):
            if status[:3] != '416' or 'HTTP_RANGE' not in environ:
                start_response(status, headers)
                return body
        elif environ['REQUEST_METHOD'] == 'HEAD' and status[:3] == '200' \
                and not any(h in environ for h in _CONDITIONS):
            answer = _head_answer(headers)
            if answer is not None:
                seglib.close_iter(body)
                start_response(status, answer)
                return [b'']
        return self._slow(environ, start_response, (status, headers, body))

    def _listing(self, environ, start_response):
        """A container GET: a JSON/XML listing's SLO rows get their
        ``slo_etag`` split out of ``hash``; other answers pass."""
        status, headers, body = seglib.call_app(self.app, environ)
        content_type = (seglib.header_value(headers, 'content-type') or
                        '').split(';')[0].strip()
        if status[:3] != '200' or content_type not in _LISTING_TYPES:
            start_response(status, headers)
            return body
        return _rewrite_listing(status, headers, body, content_type,
                                start_response)

    def __call__(self, environ, start_response):
        method = environ.get('REQUEST_METHOD')
        if 'multipart-manifest' in environ.get('QUERY_STRING', ''):
            return self._slow(environ, start_response)
        if method == 'GET' or method == 'HEAD':
            parts = environ.get('PATH_INFO', '').split('/', 4)
            if len(parts) == 5 and parts[4]:
                return self._get_head(environ, start_response)
            if len(parts) == 4 and parts[3] and method == 'GET':
                return self._listing(environ, start_response)
            return self.app(environ, start_response)
        if method == 'PUT':
            if 'HTTP_X_STATIC_LARGE_OBJECT' in environ:
                return self._slow(environ, start_response)
        elif method == 'POST':
            environ.pop('HTTP_X_STATIC_LARGE_OBJECT', None)
        return self.app(environ, start_response)


_CONDITIONS = ('HTTP_IF_MATCH', 'HTTP_IF_NONE_MATCH',
               'HTTP_IF_MODIFIED_SINCE', 'HTTP_IF_UNMODIFIED_SINCE')


def _pass(first, start_response):
    status, headers, body = first
    start_response(status, headers)
    return body


def _head_answer(headers):
    """The headers of a plain HEAD of an SLO from its manifest's HEAD
    answer (system metadata), or None for a manifest written without."""
    mapping = {k.lower(): v for k, v in headers}
    etag = mapping.get(SYSMETA_ETAG.lower())
    size = (mapping.get(SYSMETA_SIZE.lower()) or '').strip()
    if not etag or not size.isdigit():
        return None
    out = [(k, v) for k, v in headers if k.lower() not in (
        'content-length', 'etag', 'accept-ranges', 'content-range')]
    return out + [('Etag', seglib.quote_etag(etag.strip())),
                  ('Accept-Ranges', 'bytes'), ('Content-Length', size)]


def _rewrite_listing(status, headers, body, content_type, start_response):
    try:
        data = b''.join(body)
    finally:
        seglib.close_iter(body)
    if b'slo_etag=' in data:
        try:
            if content_type == 'application/json':
                data = rewrite_json_listing(data)
            else:
                data = rewrite_xml_listing(data)
        except (ValueError, SyntaxError):
            pass    # not a listing we understand: pass it on as it is
    headers = [(k, v) for k, v in headers if k.lower() != 'content-length']
    start_response(status, headers + [('Content-Length', str(len(data)))])
    return [data]


def _kept_request_headers(req):
    """Headers of the client's GET that the manifest read keeps."""
    return {k: v for k, v in req.headers.items()
            if k.lower() in ('x-newest',)}


def _fails(req, etag, manifest):
    return conditions.evaluate(req.headers, etag, manifest.headers.get(
        'X-Timestamp') or 0) is not None


def filter_factory(global_conf, local_conf):
    conf = dict(global_conf)
    conf.update(local_conf)
    settings = _settings(conf)
    info.register('slo', max_manifest_segments=settings[
        'max_manifest_segments'], max_manifest_size=settings[
        'max_manifest_size'], min_segment_size=settings['min_segment_size'],
        max_nesting_depth=settings['max_nesting_depth'])

    def wrap(app):
        return StaticLargeObject(app, settings)
    return wrap
