"""Path splitting, UTF-8 checks and error responses."""
import pytest

from objstore.common.http import (
    HTTPError, Request, error_response, header_dict, request_path,
    split_path)


def test_split_path_object_keeps_slashes():
    assert split_path('/sda/1/a/c/o/p/q', 3, 5, True) == \
        ['sda', '1', 'a', 'c', 'o/p/q']


def test_split_path_fills_missing_segments():
    assert split_path('/sda/1/a', 3, 5, True) == ['sda', '1', 'a', None, None]
    assert split_path('/sda/1/a/c', 4, 4) == ['sda', '1', 'a', 'c']


@pytest.mark.parametrize('path,args', [
    ('sda/1/a', (3, 5, True)), ('/sda//a', (3, 5, True)),
    ('/sda/1', (3, 5, True)), ('/sda/1/a/c/o', (3, 4)),
    ('/a//c', (3, 3))])
def test_split_path_rejects(path, args):
    with pytest.raises(HTTPError) as e:
        split_path(path, *args)
    assert e.value.status == 400


def test_request_path_decodes_percent_and_utf8():
    req = Request.blank('/sda/1/a/c/caf%C3%A9%20x')
    assert request_path(req) == '/sda/1/a/c/café x'


def test_request_path_rejects_invalid_utf8():
    req = Request.blank('/sda/1/a/c/%FF%FE')
    with pytest.raises(HTTPError) as e:
        request_path(req)
    assert e.value.status == 400 and 'UTF-8' in e.value.reason


def test_error_response_is_one_plain_line():
    resp = error_response(409, 'newer object exists')
    assert resp.status_int == 409
    assert resp.body == b'newer object exists\n'
    assert resp.content_type == 'text/plain'
    head = error_response(404, request=Request.blank('/', method='HEAD'))
    assert head.body == b'' and head.status == '404 Not Found'


def test_header_dict_is_webob_headers_as_a_dict():
    environ = Request.blank('/sda/1/a/c/o', method='PUT', headers={
        'Content-Type': 'a/b', 'Content-Length': '4', 'X-Timestamp': '1.5',
        'x-object-meta-COLOR': 'red', 'Etag': 'e', 'X-Backend_Odd': '1',
    }).environ
    environ['HTTP_CONTENT_TYPE'] = 'odd'     # WebOb names it Content_Type
    environ['HTTP_'] = 'nameless'            # no header at all
    environ['CONTENT_LENGTH'] = ''
    expected = dict(Request(environ).headers.items())
    assert header_dict(environ) == expected
    assert header_dict(environ) == expected     # names from the cache
    assert expected['X-Object-Meta-Color'] == 'red'
    assert 'REQUEST_METHOD' not in expected and '' not in expected
    # a new dict each time: changing it changes no request
    header_dict(environ)['X-Timestamp'] = '2'
    assert environ['HTTP_X_TIMESTAMP'] == '1.5'
