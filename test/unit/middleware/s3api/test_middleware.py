"""The middleware's pure parts: which requests are S3, header mappings,
listing entries, DeleteObjects digests, the service-level routing."""
import base64
import hashlib
import zlib

import pytest

from objstore.middleware.s3api import middleware as m
from objstore.middleware.s3api import swift
from objstore.middleware.s3api.errors import S3Error


def swift_app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'swift']


@pytest.fixture
def mw():
    def refuse(*args, **kwargs):
        raise AssertionError('a Swift request must not be authenticated')
    return m.S3ApiMiddleware(swift_app, {'storage_domain': 'localhost'},
                             credentials=None, authenticate=refuse)


@pytest.mark.parametrize('environ', [
    {'PATH_INFO': '/v1/AUTH_test/c'},
    {'PATH_INFO': '/auth/v1.0'},
    {'PATH_INFO': '/info'},
    {'PATH_INFO': '/bucket/key', 'HTTP_X_AUTH_TOKEN': 'tk'},
])
def test_swift_requests_pass_through(mw, environ):
    assert not mw.is_s3(environ)
    out = []
    body = mw(dict(environ, REQUEST_METHOD='GET'),
              lambda s, h, e=None: out.append(s))
    assert body == [b'swift'] and out == ['200 OK']


def test_s3_requests_are_recognised(mw):
    assert mw.is_s3({'PATH_INFO': '/'})
    assert mw.is_s3({'PATH_INFO': '/bucket/v1/x'})
    assert mw.is_s3({'PATH_INFO': '/v1/x', 'HTTP_HOST': 'bkt.localhost'})


def test_anonymous_s3_request_is_access_denied():
    mw = m.S3ApiMiddleware(swift_app, {}, None,
                           authenticate=lambda *a, **k: None)
    out = []
    body = b''.join(mw({'PATH_INFO': '/bucket', 'REQUEST_METHOD': 'GET',
                        'QUERY_STRING': ''},
                       lambda s, h, e=None: out.append((s, dict(h)))))
    status, headers = out[0]
    assert status.startswith('403')
    assert headers['Content-Type'] == 'application/xml'
    assert b'<Code>AccessDenied</Code>' in body


def test_header_mappings():
    headers = swift.object_headers_from_s3([
        ('X-Amz-Meta-Color', 'blue'), ('Content-Type', 'text/x'),
        ('Content-Encoding', 'aws-chunked'), ('Cache-Control', 'no-cache'),
        ('Authorization', 'secret')])
    assert headers == {'X-Object-Meta-Color': 'blue',
                       'Content-Type': 'text/x', 'Cache-Control': 'no-cache'}
    assert swift.object_headers_from_s3(
        [('content-encoding', 'gzip,aws-chunked')]) == \
        {'Content-Encoding': 'gzip'}
    out = dict(swift.s3_object_headers({
        'X-Object-Meta-Color': 'blue', 'Etag': 'abc', 'X-Trans-Id': 't',
        'Content-Length': '3', 'X-Timestamp': '1'}))
    assert out == {'x-amz-meta-color': 'blue', 'ETag': '"abc"',
                   'Content-Length': '3'}


def test_listing_entry():
    entry = m._listing_entry({
        'name': 'k', 'bytes': 0, 'hash': 'abc',
        'content_type': 'text/plain;swift_bytes=42',
        'last_modified': '2024-01-02T03:04:05.678900'})
    assert entry == {'key': 'k', 'size': 42, 'etag': '"abc"',
                     'last_modified': '2024-01-02T03:04:05.678Z'}


def test_delete_objects_digest():
    body = b'<Delete/>'
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    m.check_body_digest({'Content-MD5': md5}, body)
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, 'big')).decode()
    m.check_body_digest({'x-amz-checksum-crc32': crc}, body)
    # CRC-32C's check value (RFC 3720 B.4), as S3 encodes it
    check = base64.b64encode(bytes.fromhex('e3069283')).decode()
    m.check_body_digest({'x-amz-checksum-crc32c': check}, b'123456789')
    for headers, code in (({}, 'InvalidRequest'),
                          ({'x-amz-checksum-crc32c': check}, 'BadDigest'),
                          ({'Content-MD5': base64.b64encode(
                              hashlib.md5(b'x').digest()).decode()},
                           'BadDigest'),
                          ({'x-amz-checksum-crc32': 'AAAAAA=='},
                           'BadDigest')):
        with pytest.raises(S3Error) as info:
            m.check_body_digest(headers, body)
        assert info.value.code == code


def test_sub_environ_carries_identity_not_headers():
    env = swift.sub_environ(
        {'objstore.s3.user': 'test:tester', 'HTTP_AUTHORIZATION': 'AWS x',
         'HTTP_X_AMZ_DATE': 'd', 'wsgi.url_scheme': 'http',
         'webob.adhoc_attrs': {}},
        'PUT', '/v1/AUTH_test/b/k \u00e9', {'X-Object-Meta-A': '1'},
        {'prefix': 'a b'}, b'data')
    assert env['objstore.s3.user'] == 'test:tester'
    assert 'HTTP_AUTHORIZATION' not in env and 'HTTP_X_AMZ_DATE' not in env
    assert 'webob.adhoc_attrs' not in env
    assert env['HTTP_X_OBJECT_META_A'] == '1'
    assert env['RAW_PATH_INFO'] == '/v1/AUTH_test/b/k%20%C3%A9'
    assert env['QUERY_STRING'] == 'prefix=a%20b'
    assert env['CONTENT_LENGTH'] == '4'
    assert env['wsgi.input'].read() == b'data'


def test_iter_reader():
    closed = []

    class Body(list):
        def close(self):
            closed.append(True)
    reader = swift.IterReader(Body([b'ab', b'cde', b'f']))
    assert reader.read(3) == b'abc'
    assert reader.read() == b'def'
    assert reader.read(1) == b''
    assert closed


class AccountsAndRegistry:
    """A Swift stand-in: account AUTH_a has the container 'present'
    (empty); the registry names 'theirs' AUTH_b's and 'stale' AUTH_a's
    (a claim whose container is gone)."""
    OWNERS = {'theirs': 'AUTH_b', 'stale': 'AUTH_a'}

    def __init__(self):
        self.calls = []

    def __call__(self, environ, start_response):
        path = environ['PATH_INFO']
        self.calls.append((environ['REQUEST_METHOD'], path))
        parts = path.split('/')
        if path.startswith('/v1/.s3_buckets/buckets/'):
            owner = self.OWNERS.get(parts[4])
            if owner is None:
                start_response('404 Not Found', [('Content-Length', '0')])
            else:
                start_response('200 OK', [('Content-Length', '0'), (
                    'X-Object-Meta-Owner-Account', owner)])
            return []
        if parts[:4] == ['', 'v1', 'AUTH_a', 'present']:
            start_response('200 OK', [('Content-Type', 'application/json'),
                                      ('Content-Length', '2')])
            return [b'[]']
        start_response('404 Not Found', [('Content-Length', '0')])
        return []


def _s3_get(mw, path):
    out = []
    body = b''.join(mw({'PATH_INFO': path, 'REQUEST_METHOD': 'GET',
                        'QUERY_STRING': '', 'SERVER_NAME': 'x',
                        'SERVER_PORT': '80', 'wsgi.url_scheme': 'http'},
                       lambda s, h, e=None: out.append(s)))
    return out[0], body


@pytest.mark.parametrize('path, status, code', [
    ('/theirs', '403', b'<Code>AccessDenied</Code>'),
    ('/theirs/key', '403', b'<Code>AccessDenied</Code>'),
    ('/stale', '404', b'<Code>NoSuchBucket</Code>'),
    ('/nobody', '404', b'<Code>NoSuchBucket</Code>'),
])
def test_other_accounts_buckets_are_access_denied(path, status, code):
    from objstore.middleware.s3api.auth import Identity
    app = AccountsAndRegistry()
    mw = m.S3ApiMiddleware(app, {}, None, authenticate=lambda *a, **k:
                           Identity('a:u', 'a:u', 'AUTH_a'))
    got_status, body = _s3_get(mw, path)
    assert got_status.startswith(status) and code in body
    if status == '403':     # S3's AccessDenied names no bucket
        assert b'<BucketName>' not in body


def test_the_registry_is_not_asked_for_buckets_that_exist():
    from objstore.middleware.s3api.auth import Identity
    app = AccountsAndRegistry()
    mw = m.S3ApiMiddleware(app, {}, None, authenticate=lambda *a, **k:
                           Identity('a:u', 'a:u', 'AUTH_a'))
    status, body = _s3_get(mw, '/present')
    assert status.startswith('200') and b'<ListBucketResult' in body
    assert not any('.s3_buckets' in path for _, path in app.calls)


def test_without_a_registry_a_missing_bucket_stays_no_such_bucket():
    from objstore.middleware.s3api.auth import Identity
    app = AccountsAndRegistry()
    mw = m.S3ApiMiddleware(app, {'registry_account': ''}, None,
                           authenticate=lambda *a, **k:
                           Identity('a:u', 'a:u', 'AUTH_a'))
    status, body = _s3_get(mw, '/theirs')
    assert status.startswith('404') and b'NoSuchBucket' in body
    assert not any('.s3_buckets' in path for _, path in app.calls)


def test_whole_object_md5_only_for_plain_objects():
    md5 = hashlib.md5(b'x').hexdigest()
    assert swift.whole_object_md5({'Etag': '"%s"' % md5}) == md5
    # a large object's ETag is not its body's MD5
    assert swift.whole_object_md5(
        {'Etag': md5, 'X-Static-Large-Object': 'True'}) is None
    assert swift.whole_object_md5(
        {'Etag': '"%s"' % md5, 'X-Object-Manifest': 'c/p'}) is None
    assert swift.whole_object_md5({'Etag': 'abc-2'}) is None
    assert swift.whole_object_md5({}) is None


@pytest.mark.parametrize('environ', [
    {'PATH_INFO': '/info', 'HTTP_AUTHORIZATION':
     'AWS4-HMAC-SHA256 Credential=a/20240101/us-east-1/s3/aws4_request, '
     'SignedHeaders=host, Signature=00'},
    {'PATH_INFO': '/auth/key', 'HTTP_AUTHORIZATION': 'AWS a:sig'},
    {'PATH_INFO': '/v1.0/key', 'QUERY_STRING': 'X-Amz-Signature=00'},
    {'PATH_INFO': '/info', 'QUERY_STRING':
     'AWSAccessKeyId=a&Signature=s&Expires=1'},
])
def test_signed_requests_on_swift_paths_are_s3(mw, environ):
    """Buckets named like the Swift API's roots (info, auth, v1.0)
    get S3 answers when the request is signed the S3 way."""
    assert mw.is_s3(environ)
    assert not mw.is_s3(dict(environ, HTTP_X_AUTH_TOKEN='tk'))
