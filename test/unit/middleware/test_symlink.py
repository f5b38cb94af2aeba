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


def test_content_type_round_trip():
    link = meta.Link('c;x', 'o/p=q', 'AUTH_other', 'abc', 12)
    stored = meta.link_content_type('text/plain; charset=utf-8', link)
    assert stored.startswith('text/plain;charset=utf-8;')
    assert meta.read_link(stored) == link
    assert meta.clean_content_type(stored) == 'text/plain;charset=utf-8'
    assert meta.link_content_type(None, meta.Link('c', 'o')).startswith(
        'application/symlink;')


def test_plain_objects_are_not_links():
    assert meta.read_link('text/plain') is None
    assert meta.read_link('') is None
    assert meta.read_link('a/b;objstore_symlink_target=nocontainer') is None


def test_forged_parameters_are_removed():
    forged = 'text/plain;objstore_symlink_target=c%2Fo;charset=x'
    assert meta.clean_content_type(forged) == 'text/plain;charset=x'


def test_json_listing_gets_symlink_path():
    stored = meta.link_content_type('', meta.Link('c', 'o', etag='e',
                                                  size=3))
    body = json.dumps([{'name': 'l', 'content_type': stored},
                       {'name': 'x', 'content_type': 'text/plain'},
                       {'subdir': 'd/'}]).encode()
    out = json.loads(meta.rewrite_json_listing(body, 'AUTH_t'))
    assert out[0]['symlink_path'] == '/v1/AUTH_t/c/o'
    assert out[0]['content_type'] == 'application/symlink'
    assert out[0]['symlink_etag'] == 'e' and out[0]['symlink_bytes'] == 3
    assert 'symlink_path' not in out[1]
    assert out[2] == {'subdir': 'd/'}


def test_xml_listing_gets_symlink_path():
    stored = meta.link_content_type('', meta.Link('c', 'o', 'AUTH_b'))
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<container name="c">'
            '<object><name>l</name><content_type>%s</content_type></object>'
            '</container>' % stored).encode()
    out = meta.rewrite_xml_listing(body, 'AUTH_t')
    assert b'<symlink_path>/v1/AUTH_b/c/o</symlink_path>' in out
    assert b'objstore_symlink' not in out


def test_filter_factory_checks_symloop_max():
    from objstore.common.config import ConfigError
    with pytest.raises(ConfigError):
        symlink.filter_factory({}, {'symloop_max': '0'})
