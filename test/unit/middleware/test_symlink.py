"""symlink_meta: how links are stored, parsed and shown (no servers)."""
import json

import pytest

from objstore.common.http import HTTPError
from objstore.middleware import symlink, symlink_meta as meta


def test_parse_target():
    assert meta.parse_target('c/o/with/slash') == ('c', 'o/with/slash')
    assert meta.parse_target('/c/%E2%9C%93') == ('c', '\u2713')
    for bad in ('c', 'c/', '/o', ''):
        with pytest.raises(HTTPError) as err:
            meta.parse_target(bad)
        assert err.value.status == 412
    with pytest.raises(HTTPError) as err:
        meta.parse_target('c/' + 'o' * 1025)
    assert err.value.status == 400


def test_parse_account():
    assert meta.parse_account('AUTH_x') == 'AUTH_x'
    with pytest.raises(HTTPError) as err:
        meta.parse_account('a/b')
    assert err.value.status == 412


def _headers_of(env):
    """The request headers an environ's HTTP_* keys stand for."""
    return {k[5:].replace('_', '-').title(): v for k, v in env.items()
            if k.startswith('HTTP_')}


def test_link_is_stored_as_sysmeta_and_read_back():
    link = meta.Link('c;x', 'o/p=q', 'AUTH_other', 'abc', 12)
    ctype = meta.link_content_type('text/plain; charset=utf-8')
    assert ctype == 'text/plain;charset=utf-8'
    env = meta.link_environ(link, ctype)
    headers = _headers_of(env)
    assert headers['X-Object-Sysmeta-Symlink-Target'] == 'c%3Bx/o/p%3Dq'
    assert headers['X-Object-Sysmeta-Symlink-Target-Bytes'] == '12'
    assert meta.link_from_headers(headers) == link
    override = headers['X-Object-Sysmeta-Container-Update-Override-' +
                       'Content-Type']
    assert override.startswith('text/plain;charset=utf-8;symlink_target=')
    assert meta.read_link(override, 'symlink_') == link
    assert meta.clean_content_type(override) == 'text/plain;charset=utf-8'
    assert meta.link_content_type(None) == 'application/symlink'
    assert meta.is_link_answer([('X-Object-Sysmeta-Symlink-Target', 'c/o')])


def test_old_links_in_content_type_parameters_are_still_read():
    old = 'text/plain;objstore_symlink_target=c%2Fo;' \
        'objstore_symlink_target_etag=e;objstore_symlink_target_bytes=3'
    assert meta.link_from_headers({'Content-Type': old}) == \
        meta.Link('c', 'o', None, 'e', 3)
    assert meta.is_link_answer([('Content-Type', old)])
    assert meta.clean_content_type(old) == 'text/plain'


def test_plain_objects_are_not_links():
    assert meta.read_link('text/plain') is None
    assert meta.read_link('') is None
    assert meta.read_link('a/b;objstore_symlink_target=nocontainer') is None
    assert meta.link_from_headers({'Content-Type': 'text/plain'}) is None
    assert not meta.is_link_answer([('Content-Type', 'text/plain'),
                                    ('Etag', 'x')])


def test_forged_parameters_are_removed():
    forged = 'text/plain;objstore_symlink_target=c%2Fo;charset=x;' \
        'symlink_target=c%2Fo'
    assert meta.clean_content_type(forged) == 'text/plain;charset=x'


def _override(link):
    return _headers_of(meta.link_environ(link, 'application/symlink'))[
        'X-Object-Sysmeta-Container-Update-Override-Content-Type']


def test_json_listing_gets_symlink_path():
    old = 'application/symlink;objstore_symlink_target=c%2Fold'
    body = json.dumps([
        {'name': 'l', 'content_type': _override(
            meta.Link('c', 'o', etag='e', size=3))},
        {'name': 'x', 'content_type': 'text/plain'},
        {'name': 'old', 'content_type': old},
        {'subdir': 'd/'}]).encode()
    out = json.loads(meta.rewrite_json_listing(body, 'AUTH_t'))
    assert out[0]['symlink_path'] == '/v1/AUTH_t/c/o'
    assert out[0]['content_type'] == 'application/symlink'
    assert out[0]['symlink_etag'] == 'e' and out[0]['symlink_bytes'] == 3
    assert 'symlink_path' not in out[1]
    assert out[2]['symlink_path'] == '/v1/AUTH_t/c/old'
    assert out[2]['content_type'] == 'application/symlink'
    assert out[3] == {'subdir': 'd/'}


def test_xml_listing_gets_symlink_path():
    stored = _override(meta.Link('c', 'o', 'AUTH_b'))
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<container name="c">'
            '<object><name>l</name><content_type>%s</content_type></object>'
            '</container>' % stored).encode()
    out = meta.rewrite_xml_listing(body, 'AUTH_t')
    assert b'<symlink_path>/v1/AUTH_b/c/o</symlink_path>' in out
    assert b'symlink_target' not in out


# -- the middleware over an in-memory store ---------------------------------

@pytest.fixture
def store():
    from test.unit.middleware.test_segments import FakeStore
    s = FakeStore()
    s.put('/v1/a/c/t', b'target data', content_type='text/x')
    return s


@pytest.fixture
def mw(store):
    from objstore.common import info
    yield symlink.filter_factory({}, {})(store)
    info.unregister('symlink')


def call(app, path, method='GET', headers=None, body=b''):
    from objstore.common.http import Request
    req = Request.blank(path, method=method, headers=headers or {})
    if method == 'PUT':
        req.body = body
    resp = req.get_response(app)
    return resp, resp.body


def test_link_put_stores_sysmeta_and_get_follows(mw, store):
    resp, _ = call(mw, '/v1/a/c/l', 'PUT', {'X-Symlink-Target': 'c/t'})
    assert resp.status_int == 201
    stored = store.objects['/v1/a/c/l'][1]
    assert stored['X-Object-Sysmeta-Symlink-Target'] == 'c/t'
    assert stored['Content-Type'] == 'application/symlink'
    assert 'X-Symlink-Target' not in stored
    resp, body = call(mw, '/v1/a/c/l')
    assert body == b'target data'
    assert resp.headers['Content-Location'] == '/v1/a/c/t'
    resp, body = call(mw, '/v1/a/c/l?symlink=get', 'HEAD')
    assert resp.headers['X-Symlink-Target'] == 'c/t'


def test_plain_get_and_put_are_one_call_each(mw, store):
    store.calls.clear()
    resp, body = call(mw, '/v1/a/c/t')
    assert body == b'target data'
    resp, _ = call(mw, '/v1/a/c/p', 'PUT', body=b'x')
    assert resp.status_int == 201
    assert [c[0] for c in store.calls] == ['GET', 'PUT']


def test_filter_factory_checks_symloop_max():
    from objstore.common.config import ConfigError
    with pytest.raises(ConfigError):
        symlink.filter_factory({}, {'symloop_max': '0'})
