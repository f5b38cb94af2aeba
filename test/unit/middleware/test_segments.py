"""segments.py: planning which bytes of which segment serve a range, and
streaming them with checks, against an in-memory store standing in for
the rest of the pipeline (FakeStore, also used by test_slo/test_dlo)."""
import hashlib
import json
import time
from urllib.parse import parse_qs

from objstore.common.http import Request
from objstore.middleware import segments
from objstore.middleware.segments import Segment, clip
from objstore.obj import ranges

KEPT = ('x-static-large-object', 'x-object-manifest', 'content-type')


class FakeStore:
    """Objects and container listings under /v1/<a>/<c>[/<o>], with
    single-range GETs; records every request as (method, path, query)."""

    def __init__(self):
        self.objects = {}
        self.calls = []

    def put(self, path, data, **headers):
        headers = {k.replace('_', '-').title(): v for k, v in
                   headers.items()}
        headers.setdefault('Content-Type', 'application/octet-stream')
        etag = hashlib.md5(data).hexdigest()
        self.objects[path] = (data, dict(headers, Etag=etag,
                                         **{'X-Timestamp': '%.5f'
                                            % time.time()}))
        return etag

    def listing(self, container_path, query):
        params = {k: v[0] for k, v in parse_qs(query).items()}
        prefix = params.get('prefix', '')
        marker = params.get('marker', '')
        limit = int(params.get('limit', 10000))
        rows = []
        for path in sorted(self.objects):
            if not path.startswith(container_path + '/'):
                continue
            name = path[len(container_path) + 1:]
            if name.startswith(prefix) and name > marker:
                data, headers = self.objects[path]
                rows.append({'name': name, 'hash': headers['Etag'],
                             'bytes': len(data),
                             'content_type': headers['Content-Type']})
        return rows[:limit]

    def __call__(self, environ, start_response):
        req = Request(environ)
        path = req.path_info
        self.calls.append((req.method, path, environ.get('QUERY_STRING',
                                                         '')))
        if path.count('/') == 3:
            rows = self.listing(path, environ.get('QUERY_STRING', ''))
            body = json.dumps(rows).encode()
            start_response('200 OK', [('Content-Type', 'application/json'),
                                      ('Content-Length', str(len(body)))])
            return [body]
        if req.method == 'PUT':
            extra = {k: v for k, v in req.headers.items()
                     if k.lower() in KEPT or
                     k.lower().startswith(('x-object-meta-',
                                           'x-object-sysmeta-'))}
            etag = self.put(path, req.body, **extra)
            start_response('201 Created', [('Etag', etag),
                                           ('Content-Length', '0')])
            return [b'']
        if path not in self.objects:
            start_response('404 Not Found', [('Content-Length', '0')])
            return [b'']
        if req.method == 'DELETE':
            del self.objects[path]
            start_response('204 No Content', [])
            return [b'']
        data, headers = self.objects[path]
        pairs = list(headers.items())
        specs = ranges.parse_range(req.headers.get('Range'))
        status = '200 OK'
        if specs is not None:
            spans = ranges.satisfiable(specs, len(data))
            if not spans:
                start_response('416 Requested Range Not Satisfiable',
                               [('Content-Length', '0')])
                return [b'']
            start, stop = spans[0]
            pairs.append(('Content-Range', ranges.content_range(
                start, stop, len(data))))
            data, status = data[start:stop], '206 Partial Content'
        pairs.append(('Content-Length', str(len(data))))
        start_response(status, pairs)
        if req.method == 'HEAD':
            return [b'']
        # several chunks, as a real body would come
        return [data[i:i + 3] for i in range(0, len(data), 3)] or [b'']


def seg(path, start, stop, size=None, etag=None):
    return Segment(path, start, stop, etag, size)


def test_clip_picks_the_pieces_of_a_range():
    segs = [seg('a', 0, 10), seg('b', 5, 10), seg('c', 0, 3)]
    assert clip(segs, 0, 18) == segs
    assert clip(segs, 8, 16) == [seg('a', 8, 10), seg('b', 5, 10),
                                 seg('c', 0, 1)]
    assert clip(segs, 11, 12) == [seg('b', 6, 7)]
    assert clip(segs, 15, 100) == [seg('c', 0, 3)]
    assert clip(segs, 18, 20) == []


def test_check_segment_answer():
    s = seg('/v1/a/c/o', 0, 5, size=5, etag='abc')
    ok = {'Etag': '"abc"', 'Content-Length': '5'}
    assert segments.check_segment_answer(s, 200, ok) is None
    assert 'answered 404' in segments.check_segment_answer(s, 404, ok)
    assert 'ETag' in segments.check_segment_answer(
        s, 200, dict(ok, Etag='zzz'))
    assert 'bytes' in segments.check_segment_answer(
        s, 200, dict(ok, **{'Content-Length': '6'}))
    ranged = {'Etag': 'abc', 'Content-Range': 'bytes 1-2/5'}
    assert segments.check_segment_answer(s, 206, ranged) is None
    assert segments.check_segment_answer(
        s, 206, dict(ranged, **{'Content-Range': 'bytes 1-2/9'}))


def _stored(store):
    a = store.put('/v1/a/c/one', b'0123456789')
    b = store.put('/v1/a/c/two', b'abcdefghij')
    return [seg('/v1/a/c/one', 0, 10, 10, a), seg('/v1/a/c/two', 0, 10, 10,
                                                    b)]


def _get(store, segs, etag='x', **headers):
    req = Request.blank('/v1/a/c/big', headers=headers)
    resp = segments.respond(req, store, segs, etag,
                            [('Content-Type', 'text/plain')])
    return resp, b''.join(resp.app_iter)


def test_stream_whole_and_single_range():
    store = FakeStore()
    segs = _stored(store)
    resp, body = _get(store, segs)
    assert resp.status_int == 200 and body == b'0123456789abcdefghij'
    assert resp.headers['Etag'] == '"x"'
    resp, body = _get(store, segs, Range='bytes=8-11')
    assert resp.status_int == 206 and body == b'89ab'
    assert resp.headers['Content-Range'] == 'bytes 8-11/20'
    # only the bytes needed are asked for
    assert ('GET', '/v1/a/c/one', 'multipart-manifest=get') in store.calls
    resp, body = _get(store, segs, Range='bytes=20-')
    assert resp.status_int == 416


def test_multiple_ranges_are_multipart():
    store = FakeStore()
    resp, body = _get(store, _stored(store), Range='bytes=0-1,18-19')
    assert resp.status_int == 206
    assert resp.content_type == 'multipart/byteranges'
    assert b'01' in body and b'ij' in body
    assert len(body) == int(resp.headers['Content-Length'])


def test_conditions_against_the_large_object_etag():
    store = FakeStore()
    segs = _stored(store)
    assert _get(store, segs, **{'If-None-Match': '"x"'})[0].status_int == 304
    assert _get(store, segs, **{'If-Match': 'y'})[0].status_int == 412
    assert _get(store, segs, **{'If-Match': 'x'})[0].status_int == 200
    assert store.calls == [('GET', '/v1/a/c/one', 'multipart-manifest=get'),
                           ('GET', '/v1/a/c/two', 'multipart-manifest=get')]


def test_a_changed_segment_ends_the_body_a_missing_first_is_409(caplog):
    store = FakeStore()
    segs = _stored(store)
    store.put('/v1/a/c/two', b'ABCDEFGHIJ')
    resp, body = _get(store, segs)
    assert resp.status_int == 200
    assert body == b'0123456789'
    assert 'ETag' in caplog.text
    del store.objects['/v1/a/c/one']
    resp, body = _get(store, segs)
    assert resp.status_int == 409
    assert b'answered 404' in body


def test_head_sends_no_segments():
    store = FakeStore()
    req = Request.blank('/v1/a/c/big', method='HEAD')
    resp = segments.respond(req, store, _stored(store), 'x', [])
    assert resp.headers['Content-Length'] == '20'
    assert store.calls == []
