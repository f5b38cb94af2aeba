"""Server-side copy: where from, where to, which headers carry over."""
import pytest

from objstore.common.http import HTTPError
from objstore.proxy.copy import (copied_from, copied_headers, parse_account,
                                 parse_target)


def test_parse_target():
    assert parse_target('c/o', 'X-Copy-From') == ('c', 'o')
    assert parse_target('/c/dir/o%20x', 'X-Copy-From') == ('c', 'dir/o x')
    # raw UTF-8 bytes arrive as latin-1 text in WSGI
    raw = '/c/\u00e9'.encode('utf-8').decode('latin-1')
    assert parse_target(raw, 'Destination') == ('c', '\u00e9')
    for bad in ('c', '/c', '/c/', '//o', ''):
        with pytest.raises(HTTPError) as err:
            parse_target(bad, 'Destination')
        assert err.value.status == 412
    with pytest.raises(HTTPError) as err:
        parse_target('c/%ff', 'X-Copy-From')
    assert err.value.status == 400


def test_parse_account():
    assert parse_account('AUTH_x%20y', 'Destination-Account') == 'AUTH_x y'
    with pytest.raises(HTTPError):
        parse_account('a/b', 'Destination-Account')


def test_copied_headers():
    source = [('Content-Type', 'a/src'), ('X-Object-Meta-Old', '1'),
              ('Content-Encoding', 'gzip'), ('Etag', 'e'),
              ('X-Delete-At', '99'), ('Content-Length', '5')]
    request = [('Content-Type', 'text/plain'), ('X-Object-Meta-New', '2'),
               ('X-Timestamp', '1.0')]
    assert copied_headers(source, request, False, False) == {
        'Content-Type': 'a/src', 'X-Object-Meta-Old': '1',
        'Content-Encoding': 'gzip', 'X-Object-Meta-New': '2',
        'X-Timestamp': '1.0'}
    fresh = copied_headers(source, request, True, True)
    assert fresh['Content-Type'] == 'text/plain'
    assert 'X-Object-Meta-Old' not in fresh


def test_copied_from_is_quoted():
    assert copied_from('c', 'a b/\u00e9') == 'c/a%20b/%C3%A9'


def test_copy_modes_and_source_query():
    from objstore.proxy.copy import copy_modes, source_query
    assert copy_modes('') == (False, False)
    assert copy_modes('multipart-manifest=get&symlink=GET') == (True, True)
    assert copy_modes('multipart-manifest=put') == (False, False)
    assert source_query(False, False) == ''
    assert source_query(True, False) == 'multipart-manifest=get&format=raw'
    assert source_query(False, True) == 'symlink=get'


def test_source_and_sink_headers():
    from objstore.proxy.copy import request_pairs, source_environ_headers
    environ = {'HTTP_X_COPY_FROM': 'c/o', 'HTTP_IF_MATCH': 'e',
               'HTTP_RANGE': 'bytes=1-2', 'CONTENT_TYPE': 'a/b',
               'CONTENT_LENGTH': '0', 'HTTP_X_OBJECT_META_COLOR': 'red',
               'HTTP_ETAG': 'x', 'HTTP_X_DELETE_AFTER': '60',
               'wsgi.input': None}
    assert source_environ_headers(environ) == {
        'HTTP_IF_MATCH': 'e', 'HTTP_RANGE': 'bytes=1-2',
        'HTTP_X_NEWEST': 'true'}
    assert sorted(request_pairs(environ)) == [
        ('Content-Type', 'a/b'), ('X-Delete-After', '60'),
        ('X-Object-Meta-Color', 'red')]


def test_source_length():
    from objstore.proxy.copy import source_length
    assert source_length('12') == 12
    for bad in (None, 'x', '-1', str(5 * 1024 ** 3 + 1)):
        with pytest.raises(HTTPError) as err:
            source_length(bad)
        assert err.value.status == 413


def test_sink_plan():
    from objstore.proxy.copy import sink_plan
    plain = [('Etag', '"abc"'), ('Content-Type', 'a/b')]
    assert sink_plan(200, plain, False, False) == ('', {'Etag': 'abc'})
    # a range's bytes are no MD5 of the object's
    assert sink_plan(206, plain, False, False) == ('', {})
    slo = plain + [('X-Static-Large-Object', 'True')]
    assert sink_plan(200, slo, False, False) == ('', {})
    assert sink_plan(200, slo, True, False) == ('multipart-manifest=put', {})
    dlo = plain + [('X-Object-Manifest', 'c/p')]
    assert sink_plan(200, dlo, False, False) == ('', {})
    assert sink_plan(200, dlo, True, False) == (
        '', {'X-Object-Manifest': 'c/p', 'Etag': 'abc'})
    link = plain + [('X-Symlink-Target', 'c/t'),
                    ('X-Symlink-Target-Etag', 'e'),
                    ('X-Symlink-Target-Bytes', '3')]
    assert sink_plan(200, link, False, True) == (
        '', {'X-Symlink-Target': 'c/t', 'X-Symlink-Target-Etag': 'e'})
    # not asked for the link: the answer is the target's
    assert sink_plan(200, link, False, False) == ('', {'Etag': 'abc'})
