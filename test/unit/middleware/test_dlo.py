"""DLO: the X-Object-Manifest value, the ETag rule, and the middleware
over an in-memory store (test_segments.FakeStore)."""
import hashlib

import pytest

from objstore.common import info
from objstore.common.http import Request
from objstore.middleware import dlo
from test.unit.middleware.test_segments import FakeStore


def md5(data):
    return hashlib.md5(data).hexdigest()


def test_parse_manifest_value():
    assert dlo.parse_manifest_value('c/pre') == ('c', 'pre')
    assert dlo.parse_manifest_value('/c/') == ('c', '')
    assert dlo.parse_manifest_value('c%20d/p%C3%BC/x') == ('c d', 'p\xfc/x')
    for bad in ('c', '/c', '', '/'):
        with pytest.raises(ValueError):
            dlo.parse_manifest_value(bad)


def test_etag_is_md5_of_segment_etags():
    rows = [{'hash': 'aa'}, {'hash': '"bb"'}]
    assert dlo.dlo_etag(rows) == md5(b'aabb')


@pytest.fixture
def store():
    s = FakeStore()
    s.put('/v1/a/segs/p/1', b'one')
    s.put('/v1/a/segs/p/2', b'two!')
    s.put('/v1/a/segs/p/3', b'three')
    s.put('/v1/a/segs/q', b'other')
    s.put('/v1/a/c/big', b'', x_object_manifest='segs/p/')
    return s


@pytest.fixture
def mw(store):
    yield dlo.filter_factory({}, {})(store)
    info.unregister('dlo')


def call(app, path, method='GET', headers=None):
    resp = Request.blank(path, method=method,
                         headers=headers or {}).get_response(app)
    return resp, resp.body


def test_get_head_and_range(mw, store, monkeypatch):
    monkeypatch.setattr(dlo, 'LISTING_LIMIT', 2)   # two pages
    etag = md5((md5(b'one') + md5(b'two!') + md5(b'three')).encode())
    resp, body = call(mw, '/v1/a/c/big')
    assert resp.status_int == 200 and body == b'onetwo!three'
    assert resp.headers['Etag'] == '"%s"' % etag
    assert resp.headers['X-Object-Manifest'] == 'segs/p/'
    resp, _ = call(mw, '/v1/a/c/big', 'HEAD')
    assert resp.headers['Content-Length'] == '12'
    resp, body = call(mw, '/v1/a/c/big', headers={'Range': 'bytes=2-7'})
    assert resp.status_int == 206 and body == b'etwo!t'
    resp, body = call(mw, '/v1/a/c/big', headers={'Range': 'bytes=12-'})
    assert resp.status_int == 416
    resp, _ = call(mw, '/v1/a/c/big', headers={'If-None-Match': etag})
    assert resp.status_int == 304
    listings = [c for c in store.calls if c[1] == '/v1/a/segs']
    assert any('marker=p%2F2' in c[2] for c in listings)


def test_manifest_get_and_plain_objects(mw):
    resp, body = call(mw, '/v1/a/c/big?multipart-manifest=get')
    assert resp.status_int == 200 and body == b''
    resp, body = call(mw, '/v1/a/segs/q', headers={'Range': 'bytes=1-2'})
    assert resp.status_int == 206 and body == b'th'


def test_a_manifest_under_its_own_prefix_does_not_loop(mw, store):
    store.put('/v1/a/segs/p/0', b'', x_object_manifest='segs/p/')
    resp, body = call(mw, '/v1/a/segs/p/0')
    assert resp.status_int == 200 and body == b'onetwo!three'
    rows = [{'hash': md5(b'')}, {'hash': md5(b'one')},
            {'hash': md5(b'two!')}, {'hash': md5(b'three')}]
    assert resp.headers['Etag'] == '"%s"' % dlo.dlo_etag(rows)


def test_bad_manifest_value_on_put(mw, store):
    resp, _ = call(mw, '/v1/a/c/x', 'PUT', {'X-Object-Manifest': 'nope'})
    assert resp.status_int == 400
    assert '/v1/a/c/x' not in store.objects


def test_empty_prefix_gives_an_empty_object(mw, store):
    store.put('/v1/a/c/empty', b'', x_object_manifest='nothing/here')
    resp, body = call(mw, '/v1/a/c/empty')
    assert resp.status_int == 200 and body == b''
    assert resp.headers['Etag'] == '"%s"' % md5(b'')


def test_plain_object_requests_are_one_call_each(mw, store):
    store.calls.clear()
    assert call(mw, '/v1/a/segs/q')[1] == b'other'
    assert call(mw, '/v1/a/segs/q', 'HEAD')[0].status_int == 200
    assert call(mw, '/v1/a/segs/q', 'DELETE')[0].status_int == 204
    assert [c[0] for c in store.calls] == ['GET', 'HEAD', 'DELETE']


def test_listing_rows_of_slo_manifests_lose_their_parameters():
    rows = [{'hash': 'aa; slo_etag=zz'}, {'hash': '"bb"'}]
    assert [dlo.row_hash(r) for r in rows] == ['aa', 'bb']
    assert dlo.dlo_etag(rows) == md5(b'aabb')
