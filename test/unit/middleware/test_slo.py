"""SLO: manifest parsing/checking/ETag rules (pure) and the middleware
over an in-memory store (test_segments.FakeStore)."""
import hashlib
import json

import pytest

from objstore.common import info
from objstore.common.config import ConfigError
from objstore.common.http import Request
from objstore.middleware import slo
from objstore.middleware.slo_manifest import (
    ManifestError, check_segment, leaf_segments, parse_put, parse_stored,
    raw_format, slo_etag, total_size)
from test.unit.middleware.test_segments import FakeStore


def md5(data):
    return hashlib.md5(data).hexdigest()


# -- pure ------------------------------------------------------------------

def test_parse_put_accepts_the_documented_form():
    body = json.dumps([{'path': 'c/o', 'etag': 'e', 'size_bytes': 3},
                       {'path': '/c/p/q', 'etag': None, 'size_bytes': None,
                        'range': '1-2'}])
    out = parse_put(body, 10)
    assert out[0] == {'path': '/c/o', 'etag': 'e', 'size_bytes': 3,
                      'range': None}
    assert out[1]['path'] == '/c/p/q' and out[1]['range'] == (1, 2)


@pytest.mark.parametrize('body,status,reason', [
    ('nope', 400, 'valid JSON'),
    ('{}', 400, 'must be a list'),
    ('[]', 400, 'at least one segment'),
    (json.dumps([{'path': 'c/o'}] * 3), 413, '<= 2'),
    (json.dumps([{'path': 'c'}]), 400, 'Index 0: path does not refer'),
    (json.dumps([{'path': 'c/o', 'x': 1}]), 400, 'extraneous keys "x"'),
    (json.dumps([{'path': 'c/o', 'size_bytes': 'big'}]), 400, 'size_bytes'),
    (json.dumps([{'path': 'c/o', 'size_bytes': True}]), 400, 'size_bytes'),
    (json.dumps([{'path': 'c/o', 'etag': 5}]), 400, '"etag"'),
    (json.dumps([{'path': 'c/o', 'range': '1-2,4-5'}]), 400, 'multiple'),
    (json.dumps([{'path': 'c/o', 'range': 'x'}]), 400, 'invalid range'),
    ('"\\ud800"', 400, 'must be a list'),
])
def test_parse_put_refuses(body, status, reason):
    with pytest.raises(ManifestError) as e:
        parse_put(body, 2)
    assert e.value.status == status
    assert reason in e.value.reason


def found(size, etag='e', **kw):
    return dict({'status': 200, 'bytes': size, 'hash': etag}, **kw)


def segment(**kw):
    return dict({'path': '/c/o', 'etag': None, 'size_bytes': None,
                 'range': None}, **kw)


def test_check_segment():
    assert check_segment(segment(), {'status': 404, 'reason': 'Not Found'},
                         True, 1)[0] == '404 Not Found'
    assert check_segment(segment(size_bytes=4), found(5), True, 1)[0] == \
        'Size Mismatch'
    assert check_segment(segment(etag='"x"'), found(5), True, 1)[0] == \
        'Etag Mismatch'
    assert check_segment(segment(etag='"E"'), found(5), True, 1)[0] is None
    assert 'at least 1 byte' in check_segment(segment(), found(0), True,
                                              1)[0]
    assert 'except the last' in check_segment(segment(), found(5), False,
                                              10)[0]
    assert check_segment(segment(), found(5), True, 10)[0] is None
    assert check_segment(segment(range=(7, None)), found(5), True,
                         1)[0] == 'Unsatisfiable Range'
    problem, entry = check_segment(segment(range=(None, 2)), found(5, 'h'),
                                   True, 1)
    assert problem is None and entry['range'] == '3-4'
    _, entry = check_segment(segment(), found(5, sub_slo=True), True, 1)
    assert entry['sub_slo'] is True


def test_etag_and_size_rules():
    entries = [{'name': '/c/a', 'bytes': 10, 'hash': 'aa'},
               {'name': '/c/b', 'bytes': 10, 'hash': 'bb', 'range': '2-5'}]
    assert slo_etag(entries) == md5(b'aabb:2-5;')
    assert total_size(entries) == 14
    assert raw_format(entries) == [
        {'path': '/c/a', 'etag': 'aa', 'size_bytes': 10},
        {'path': '/c/b', 'etag': 'bb', 'size_bytes': 10, 'range': '2-5'}]


def test_parse_stored_refuses_damage():
    for body in (b'x', b'[]', b'[{"name": 1}]',
                 b'[{"name": "/c/o", "hash": "h", "bytes": 2, '
                 b'"range": "1-5"}]'):
        with pytest.raises(ManifestError) as e:
            parse_stored(body)
        assert e.value.status == 409


def test_leaf_segments_expands_nesting_and_stops_loops():
    inner = [{'name': '/c/a', 'bytes': 4, 'hash': 'aa'},
             {'name': '/c/b', 'bytes': 4, 'hash': 'bb'}]
    outer = [{'name': '/c/inner', 'bytes': 8, 'hash': slo_etag(inner),
              'sub_slo': True, 'range': '2-5'},
             {'name': '/c/z', 'bytes': 1, 'hash': 'zz'}]
    leaves = leaf_segments(outer, '/v1/a', {'/v1/a/c/inner': inner}.get, 10)
    assert [(s.path, s.start, s.stop) for s in leaves] == [
        ('/v1/a/c/a', 2, 4), ('/v1/a/c/b', 0, 2), ('/v1/a/c/z', 0, 1)]
    # a chain of manifests, each consistent with the one it names
    chain = {}
    top = [{'name': '/c/leaf', 'bytes': 1, 'hash': 'l'}]
    for level in range(6):
        chain['/v1/a/c/m%d' % level] = top
        top = [{'name': '/c/m%d' % level, 'bytes': 1,
                'hash': slo_etag(top), 'sub_slo': True}]
    assert len(leaf_segments(top, '/v1/a', chain.get, 7)) == 1
    with pytest.raises(ManifestError) as e:
        leaf_segments(top, '/v1/a', chain.get, 6)
    assert e.value.status == 409 and 'recursion' in e.value.reason
    # a manifest that changed under its parent (as in a loop)
    changed = [dict(top[0], hash='0' * 32)]
    with pytest.raises(ManifestError) as e:
        leaf_segments(changed, '/v1/a', chain.get, 10)
    assert e.value.status == 409 and 'changed' in e.value.reason


# -- the middleware ----------------------------------------------------------

@pytest.fixture
def store():
    s = FakeStore()
    s.put('/v1/a/c/s1', b'x' * 5)
    s.put('/v1/a/c/s2', b'y' * 7)
    return s


@pytest.fixture
def mw(store):
    yield slo.filter_factory({}, {'max_manifest_segments': '3'})(store)
    info.unregister('slo')


def call(app, path, method='GET', body=None, headers=None):
    req = Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        req.body = body if isinstance(body, bytes) else body.encode()
    resp = req.get_response(app)
    return resp, resp.body


def manifest(*names):
    return json.dumps([{'path': 'c/' + n, 'etag': None, 'size_bytes': None}
                       for n in names])


def test_put_then_get_head(mw, store):
    resp, _ = call(mw, '/v1/a/c/big?multipart-manifest=put', 'PUT',
                   manifest('s1', 's2'))
    assert resp.status_int == 201
    etag = md5((md5(b'x' * 5) + md5(b'y' * 7)).encode())
    assert resp.headers['Etag'] == '"%s"' % etag
    stored = store.objects['/v1/a/c/big'][1]
    assert stored['X-Static-Large-Object'] == 'True'
    resp, body = call(mw, '/v1/a/c/big')
    assert body == b'x' * 5 + b'y' * 7
    assert resp.headers['Etag'] == '"%s"' % etag
    resp, _ = call(mw, '/v1/a/c/big', 'HEAD')
    assert resp.headers['Content-Length'] == '12'
    resp, body = call(mw, '/v1/a/c/big', headers={'Range': 'bytes=3-6'})
    assert resp.status_int == 206 and body == b'xxyy'
    resp, body = call(mw, '/v1/a/c/big', headers={'Range': 'bytes=50-'})
    assert resp.status_int == 416
    resp, body = call(mw, '/v1/a/c/big?multipart-manifest=get')
    assert resp.content_type == 'application/json'
    assert [e['name'] for e in json.loads(body)] == ['/c/s1', '/c/s2']


def test_put_failures_store_nothing(mw, store):
    resp, body = call(mw, '/v1/a/c/big?multipart-manifest=put', 'PUT',
                      manifest('s1', 'gone'))
    assert resp.status_int == 400
    assert b'/c/gone, 404 Not Found' in body
    resp, body = call(mw, '/v1/a/c/big?multipart-manifest=put', 'PUT',
                      manifest('s1', 's1', 's1', 's1'))
    assert resp.status_int == 413
    resp, body = call(mw, '/v1/a/c/big?multipart-manifest=put', 'PUT',
                      b'x' * (8388608 + 1))
    assert resp.status_int == 413
    resp, body = call(mw, '/v1/a/c/s1?multipart-manifest=put', 'PUT',
                      manifest('s1'))
    assert resp.status_int == 400 and b'itself' in body
    resp, body = call(mw, '/v1/a/c/big', 'PUT', b'[]',
                      {'X-Static-Large-Object': 'yes'})
    assert resp.status_int == 400
    assert '/v1/a/c/big' not in store.objects
    assert not [c for c in store.calls if c[0] == 'PUT']


def test_plain_objects_pass_through(mw, store):
    resp, body = call(mw, '/v1/a/c/s1', headers={'Range': 'bytes=0-1'})
    assert resp.status_int == 206 and body == b'xx'
    resp, body = call(mw, '/v1/a/c/s1', headers={'Range': 'bytes=9-'})
    assert resp.status_int == 416
    resp, _ = call(mw, '/v1/a/c', 'GET')
    assert resp.status_int == 200


def test_multipart_manifest_delete(mw, store):
    call(mw, '/v1/a/c/big?multipart-manifest=put', 'PUT',
         manifest('s1', 's2'))
    resp, body = call(mw, '/v1/a/c/big?multipart-manifest=delete',
                      'DELETE', headers={'Accept': 'application/json'})
    result = json.loads(body)
    assert result['Number Deleted'] == 3 and result['Errors'] == []
    assert store.objects == {}
    resp, body = call(mw, '/v1/a/c/big?multipart-manifest=delete', 'DELETE')
    assert b'Number Not Found: 1' in body


def test_config_is_checked():
    with pytest.raises(ConfigError):
        slo.filter_factory({}, {'max_manifest_segments': 'many'})
    with pytest.raises(ConfigError):
        slo.filter_factory({}, {'max_nesting_depth': '0'})


# -- system metadata, listings, fast paths -----------------------------------

def test_put_stores_size_etag_and_listing_overrides(mw, store):
    call(mw, '/v1/a/c/big?multipart-manifest=put', 'PUT',
         manifest('s1', 's2'))
    data, stored = store.objects['/v1/a/c/big']
    etag = md5((md5(b'x' * 5) + md5(b'y' * 7)).encode())
    assert stored['X-Object-Sysmeta-Slo'] == 'True'
    assert stored['X-Object-Sysmeta-Slo-Etag'] == etag
    assert stored['X-Object-Sysmeta-Slo-Size'] == '12'
    assert stored['X-Object-Sysmeta-Container-Update-Override-Size'] == '12'
    assert stored['X-Object-Sysmeta-Container-Update-Override-Etag'] == \
        '%s; slo_etag=%s' % (md5(data), etag)


def test_head_is_answered_from_sysmeta_without_the_manifest(mw, store):
    call(mw, '/v1/a/c/big?multipart-manifest=put', 'PUT',
         manifest('s1', 's2'))
    store.calls.clear()
    resp, _ = call(mw, '/v1/a/c/big', 'HEAD')
    assert resp.status_int == 200
    assert resp.headers['Content-Length'] == '12'
    assert resp.headers['Etag'] == '"%s"' % store.objects['/v1/a/c/big'][
        1]['X-Object-Sysmeta-Slo-Etag']
    assert store.calls == [('HEAD', '/v1/a/c/big', '')]
    # conditions are judged against the large object's etag
    etag = resp.headers['Etag']
    resp, _ = call(mw, '/v1/a/c/big', 'HEAD', headers={'If-None-Match': etag})
    assert resp.status_int == 304
    resp, _ = call(mw, '/v1/a/c/big', 'HEAD', headers={'If-Match': '"nope"'})
    assert resp.status_int == 412
    assert not [c for c in store.calls if c[0] == 'GET']


def test_manifests_without_sysmeta_still_work(mw, store):
    call(mw, '/v1/a/c/big?multipart-manifest=put', 'PUT',
         manifest('s1', 's2'))
    data, stored = store.objects['/v1/a/c/big']
    for key in [k for k in stored if 'Sysmeta' in k]:
        del stored[key]
    resp, body = call(mw, '/v1/a/c/big')
    assert body == b'x' * 5 + b'y' * 7
    resp, _ = call(mw, '/v1/a/c/big', 'HEAD')
    assert resp.headers['Content-Length'] == '12'
    assert resp.headers['Etag'] == '"%s"' % md5(
        (md5(b'x' * 5) + md5(b'y' * 7)).encode())


def test_plain_object_get_head_put_are_one_call(mw, store):
    store.calls.clear()
    assert call(mw, '/v1/a/c/s1')[1] == b'x' * 5
    assert call(mw, '/v1/a/c/s1', 'HEAD')[0].status_int == 200
    assert call(mw, '/v1/a/c/new', 'PUT', b'z')[0].status_int == 201
    assert [c[0] for c in store.calls] == ['GET', 'HEAD', 'PUT']


def test_listing_hash_and_rewrites():
    from objstore.middleware import slo_manifest
    assert slo_manifest.listing_hash('m; slo_etag=s') == ('m', 's')
    assert slo_manifest.listing_hash('plain') == ('plain', None)
    body = json.dumps([{'name': 'big', 'hash': 'm; slo_etag=s',
                        'bytes': 12}, {'name': 'p', 'hash': 'h'},
                       {'subdir': 'd/'}]).encode()
    out = json.loads(slo_manifest.rewrite_json_listing(body))
    assert out[0] == {'name': 'big', 'hash': 'm', 'slo_etag': '"s"',
                      'bytes': 12}
    assert out[1] == {'name': 'p', 'hash': 'h'}
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n<container name="c">'
           b'<object><name>big</name><hash>m; slo_etag=s</hash></object>'
           b'</container>')
    out = slo_manifest.rewrite_xml_listing(xml)
    assert b'<hash>m</hash>' in out
    assert b'<slo_etag>"s"</slo_etag>' in out


def test_container_listing_through_the_middleware():
    rows = [{'name': 'big', 'hash': 'm; slo_etag=s', 'bytes': 12}]
    body = json.dumps(rows).encode()

    def app(environ, start_response):
        start_response('200 OK', [('Content-Type',
                                   'application/json; charset=utf-8'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    wrapped = slo.StaticLargeObject(app, slo._settings({}))
    resp, out = call(wrapped, '/v1/a/c?format=json')
    assert json.loads(out) == [{'name': 'big', 'hash': 'm',
                                'slo_etag': '"s"', 'bytes': 12}]
    assert resp.headers['Content-Length'] == str(len(out))
