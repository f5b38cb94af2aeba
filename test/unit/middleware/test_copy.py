"""The copy middleware's streaming body and its dispatch, no servers."""
import pytest

from objstore.common.http import HTTPError, Request
from objstore.middleware.copy import ServerSideCopy, SourceBody


def test_source_body_hands_out_the_chunks_in_pieces():
    body = SourceBody(iter([b'abc', b'', b'defg']), 7)
    assert body.read(2) == b'ab'
    assert body.read(5) == b'c'
    assert body.read() == b'defg'
    assert body.read(10) == b''


def test_a_short_source_is_a_503():
    body = SourceBody(iter([b'abc']), 5)
    assert body.read(10) == b'abc'
    with pytest.raises(HTTPError) as err:
        body.read(10)
    assert err.value.status == 503


def test_other_requests_pass_untouched():
    seen = []

    def app(environ, start_response):
        seen.append((environ['REQUEST_METHOD'], environ['PATH_INFO']))
        start_response('204 No Content', [])
        return [b'']
    copy = ServerSideCopy(app)
    for method, path in (('PUT', '/v1/a/c/o'), ('GET', '/v1/a/c/o'),
                         ('COPY', '/v1/a/c'), ('COPY', '/info')):
        assert Request.blank(path, method=method).get_response(
            copy).status_int == 204
    assert len(seen) == 4


def test_copy_answers_its_own_refusals():
    def app(environ, start_response):
        raise AssertionError('nothing may reach the app')
    copy = ServerSideCopy(app)
    resp = Request.blank('/v1/a/c/o', method='COPY').get_response(copy)
    assert resp.status_int == 412 and resp.headers['X-Trans-Id']
    resp = Request.blank('/v1/a/c/o', method='PUT', headers={
        'X-Copy-From': 'c/src'}, body=b'x').get_response(copy)
    assert resp.status_int == 400
    resp = Request.blank('/v1/a/c/o', method='PUT', headers={
        'X-Copy-From': 'nocontainer'}).get_response(copy)
    assert resp.status_int == 412
