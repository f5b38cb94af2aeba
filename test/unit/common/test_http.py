"""Path splitting, UTF-8 checks and error responses."""
import pytest

from objstore.common.http import (
    HTTPError, Request, error_response, request_path, split_path)


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
