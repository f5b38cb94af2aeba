"""authenticate() over requests signed by botocore (the library boto3 and
the aws command line use), and the AWS documentation's aws-chunked
example end to end."""
import calendar
import hashlib
import io
import time
from urllib.parse import quote, unquote, urlsplit

import pytest
from botocore.auth import (HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth,
                           S3SigV4QueryAuth)
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

from objstore.middleware.s3api import auth
from objstore.middleware.s3api.credentials import Credentials
from objstore.middleware.s3api.errors import S3Error

ENDPOINT = 'http://127.0.0.1:8080'
CREDS = Credentials({
    'test:tester': ('testing', 'test:tester', 'AUTH_test'),
    'AKIAIOSFODNN7EXAMPLE': ('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
                             'test:tester', 'AUTH_test')})


def boto(key='test:tester', secret='testing'):
    return BotoCredentials(key, secret)


def environ_of(request, body=b''):
    """The WSGI environ our HTTP server would build for this request."""
    url = urlsplit(request.url)
    env = {'REQUEST_METHOD': request.method, 'RAW_PATH_INFO': url.path,
           'PATH_INFO': unquote(url.path, encoding='latin-1'),
           'QUERY_STRING': url.query, 'HTTP_HOST': url.netloc,
           'wsgi.input': io.BytesIO(body)}
    for name, value in request.headers.items():
        if isinstance(value, bytes):
            value = value.decode('utf-8')
        key = name.upper().replace('-', '_')
        if key not in ('CONTENT_TYPE', 'CONTENT_LENGTH'):
            key = 'HTTP_' + key
        env[key] = value.encode('utf-8').decode('latin-1')
    if body:
        env['CONTENT_LENGTH'] = str(len(body))
    return env


def signed(signer, method='GET', path='/bucket/key', params=None,
           headers=None, body=b''):
    # botocore's serializer puts the parameters in the URL, %-encoded
    url = ENDPOINT + path
    if params:
        url += '?' + '&'.join('%s=%s' % (quote(k, safe='-_.~'),
                                         quote(v, safe='-_.~'))
                              for k, v in params.items())
    request = AWSRequest(method=method, url=url, headers=headers or {},
                         data=body)
    request.context['client_config'] = Config()
    signer.add_auth(request)
    prepared = request.prepare()
    return environ_of(prepared, body)


def v4(**kw):
    return S3SigV4Auth(boto(**kw), 's3', 'us-east-1')


def read_body(env):
    out = b''
    while True:
        piece = env['wsgi.input'].read(1000)
        if not piece:
            return out
        out += piece


def code_of(env, **kw):
    with pytest.raises(S3Error) as e:
        auth.authenticate(env, CREDS, **kw)
    return e.value.code


# -- Signature V4, header ------------------------------------------------

@pytest.mark.parametrize('path,params', [
    ('/bucket/key', None),
    ('/bucket/a%20key/with%2Bplus/%C3%A9t%C3%A9%21%2A', None),
    ('/bucket', {'list-type': '2', 'prefix': 'a b/', 'delimiter': '/',
                 'encoding-type': 'url'}),
    ('/bucket/key', {'uploads': ''}),
    ('/', None),
])
def test_v4_header_signatures_verify(path, params):
    env = signed(v4(), path=path, params=params,
                 headers={'x-amz-meta-colour': 'blue  and   green'})
    identity = auth.authenticate(env, CREDS)
    assert identity == auth.Identity('test:tester', 'test:tester',
                                     'AUTH_test')


def test_v4_put_body_is_checked_as_it_is_read():
    body = b'the body ' * 5000
    env = signed(v4(), 'PUT', body=body)
    assert env['HTTP_X_AMZ_CONTENT_SHA256'] == \
        hashlib.sha256(body).hexdigest()
    assert auth.authenticate(env, CREDS).account == 'AUTH_test'
    assert read_body(env) == body


def test_v4_put_body_changed_in_flight_fails_at_its_end():
    body = b'the body ' * 5000
    env = signed(v4(), 'PUT', body=body)
    env['wsgi.input'] = io.BytesIO(body[:-1] + b'!')
    auth.authenticate(env, CREDS)   # the headers are fine
    with pytest.raises(S3Error) as e:
        read_body(env)
    assert e.value.code == 'XAmzContentSHA256Mismatch'
    assert env['wsgi.input'].error is e.value


def test_v4_unsigned_payload():
    request = AWSRequest(method='PUT', url=ENDPOINT + '/b/k', data=b'abc')
    request.context['client_config'] = Config(
        s3={'payload_signing_enabled': False})
    v4().add_auth(request)
    env = environ_of(request.prepare(), b'abc')
    assert env['HTTP_X_AMZ_CONTENT_SHA256'] == 'UNSIGNED-PAYLOAD'
    assert auth.authenticate(env, CREDS)
    assert read_body(env) == b'abc'


@pytest.mark.parametrize('tamper,code', [
    (lambda e: e.update(PATH_INFO='/bucket/other',
                        RAW_PATH_INFO='/bucket/other'),
     'SignatureDoesNotMatch'),
    (lambda e: e.update(QUERY_STRING='acl'), 'SignatureDoesNotMatch'),
    (lambda e: e.update(HTTP_X_AMZ_META_COLOUR='red'),
     'SignatureDoesNotMatch'),
    (lambda e: e.update(REQUEST_METHOD='DELETE'), 'SignatureDoesNotMatch'),
    (lambda e: e.update(HTTP_X_AMZ_ACL='public-read'), 'AccessDenied'),
    (lambda e: e.pop('HTTP_X_AMZ_CONTENT_SHA256'), 'InvalidRequest'),
    (lambda e: e.update(HTTP_X_AMZ_CONTENT_SHA256='junk'),
     'InvalidArgument'),
    (lambda e: e.update(HTTP_AUTHORIZATION=e['HTTP_AUTHORIZATION'].replace(
        'SignedHeaders=', 'SignedHeaders=;')),
     'AuthorizationHeaderMalformed'),
    (lambda e: e.update(HTTP_AUTHORIZATION=e['HTTP_AUTHORIZATION'].replace(
        'test:tester', 'test:nobody')), 'InvalidAccessKeyId'),
    (lambda e: e.update(HTTP_AUTHORIZATION='Bearer abc'), 'InvalidArgument'),
    (lambda e: e.update(HTTP_X_AMZ_DATE='20000101T000000Z'),
     'RequestTimeTooSkewed'),
    (lambda e: e.pop('HTTP_X_AMZ_DATE'), 'AccessDenied'),
    (lambda e: e.update(QUERY_STRING='X-Amz-Algorithm=AWS4-HMAC-SHA256'),
     'InvalidArgument'),
])
def test_v4_header_tampering(tamper, code):
    env = signed(v4(), headers={'x-amz-meta-colour': 'blue'})
    tamper(env)
    assert code_of(env) == code


def test_v4_wrong_secret():
    env = signed(v4(secret='guessed'))
    assert code_of(env) == 'SignatureDoesNotMatch'


def test_v4_skew_is_measured_against_now():
    env = signed(v4())
    assert auth.authenticate(env, CREDS, now=time.time() + 800)
    assert code_of(env, now=time.time() + 1000) == 'RequestTimeTooSkewed'
    assert code_of(env, now=time.time() - 1000) == 'RequestTimeTooSkewed'


def test_v4_region_is_checked_against_the_location():
    env = signed(S3SigV4Auth(boto(), 's3', 'eu-west-1'))
    with pytest.raises(S3Error) as e:
        auth.authenticate(env, CREDS)
    assert e.value.code == 'AuthorizationHeaderMalformed'
    assert e.value.extra['Region'] == 'us-east-1'
    assert auth.authenticate(env, CREDS, location='eu-west-1')
    assert auth.authenticate(env, CREDS, location=None)


def test_anonymous_requests_are_none():
    env = environ_of(AWSRequest(method='GET',
                                url=ENDPOINT + '/b/k?acl').prepare())
    assert auth.authenticate(env, CREDS) is None


# -- Signature V4, presigned ---------------------------------------------

def presigned(expires=3600, key='test:tester', secret='testing',
              method='GET', path='/bucket/some%20key', params=None):
    signer = S3SigV4QueryAuth(boto(key, secret), 's3', 'us-east-1',
                              expires=expires)
    return signed(signer, method, path, params)


def test_v4_presigned_url_verifies_until_it_expires():
    env = presigned(params={'response-content-type': 'text/plain'})
    assert 'X-Amz-Signature=' in env['QUERY_STRING']
    assert auth.authenticate(env, CREDS).user == 'test:tester'
    assert auth.authenticate(env, CREDS, now=time.time() + 3500)
    with pytest.raises(S3Error) as e:
        auth.authenticate(env, CREDS, now=time.time() + 3700)
    assert (e.value.code, e.value.message) == ('AccessDenied',
                                               'Request has expired')


@pytest.mark.parametrize('tamper,code', [
    (lambda e: e.update(QUERY_STRING=e['QUERY_STRING'].replace(
        'text%2Fplain', 'text%2Fhtml')), 'SignatureDoesNotMatch'),
    (lambda e: e.update(QUERY_STRING=e['QUERY_STRING'].replace(
        'X-Amz-Expires=3600', 'X-Amz-Expires=3601')),
     'SignatureDoesNotMatch'),
    (lambda e: e.update(QUERY_STRING=e['QUERY_STRING'].replace(
        'X-Amz-Expires=3600', 'X-Amz-Expires=604801')),
     'AuthorizationQueryParametersError'),
    (lambda e: e.update(QUERY_STRING=e['QUERY_STRING'].replace(
        'X-Amz-Algorithm=AWS4-HMAC-SHA256&', '')),
     'AuthorizationQueryParametersError'),
    (lambda e: e.update(REQUEST_METHOD='PUT'), 'SignatureDoesNotMatch'),
    (lambda e: e.update(HTTP_HOST='evil.example.com'),
     'SignatureDoesNotMatch'),
    (lambda e: e.update(HTTP_AUTHORIZATION='AWS a:b'), 'InvalidArgument'),
])
def test_v4_presigned_tampering(tamper, code):
    env = presigned(params={'response-content-type': 'text/plain'})
    tamper(env)
    assert code_of(env) == code


def test_v4_presigned_wrong_secret_and_unknown_key():
    assert code_of(presigned(secret='nope')) == 'SignatureDoesNotMatch'
    assert code_of(presigned(key='x:y')) == 'InvalidAccessKeyId'


# -- aws-chunked, the AWS documentation's example --------------------------

SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9'
CHUNK_SIGS = [
    'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
    '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
    'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9']
DOC_NOW = calendar.timegm((2013, 5, 24, 0, 0, 0))


def doc_streaming_environ():
    body = (b'10000;chunk-signature=%s\r\n' % CHUNK_SIGS[0].encode() +
            b'a' * 65536 + b'\r\n' +
            b'400;chunk-signature=%s\r\n' % CHUNK_SIGS[1].encode() +
            b'a' * 1024 + b'\r\n' +
            b'0;chunk-signature=%s\r\n\r\n' % CHUNK_SIGS[2].encode())
    return {
        'REQUEST_METHOD': 'PUT',
        'RAW_PATH_INFO': '/examplebucket/chunkObject.txt',
        'PATH_INFO': '/examplebucket/chunkObject.txt', 'QUERY_STRING': '',
        'HTTP_HOST': 's3.amazonaws.com',
        'HTTP_X_AMZ_DATE': '20130524T000000Z',
        'HTTP_X_AMZ_STORAGE_CLASS': 'REDUCED_REDUNDANCY',
        'HTTP_X_AMZ_CONTENT_SHA256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
        'HTTP_CONTENT_ENCODING': 'aws-chunked',
        'HTTP_X_AMZ_DECODED_CONTENT_LENGTH': '66560',
        'CONTENT_LENGTH': str(len(body)),
        'HTTP_AUTHORIZATION':
            'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/'
            'us-east-1/s3/aws4_request,SignedHeaders=content-encoding;'
            'content-length;host;x-amz-content-sha256;x-amz-date;'
            'x-amz-decoded-content-length;x-amz-storage-class,'
            'Signature=' + SEED,
        'wsgi.input': io.BytesIO(body)}


def test_documented_streaming_upload_end_to_end():
    env = doc_streaming_environ()
    assert env['CONTENT_LENGTH'] == '66824'
    identity = auth.authenticate(env, CREDS, now=DOC_NOW)
    assert identity.access_key == 'AKIAIOSFODNN7EXAMPLE'
    assert env['CONTENT_LENGTH'] == '66560'
    assert 'HTTP_CONTENT_ENCODING' not in env   # aws-chunked only
    assert read_body(env) == b'a' * 66560


def test_streaming_upload_with_a_changed_chunk():
    env = doc_streaming_environ()
    body = env['wsgi.input'].getvalue()
    env['wsgi.input'] = io.BytesIO(body[:66000] + b'b' + body[66001:])
    auth.authenticate(env, CREDS, now=DOC_NOW)
    with pytest.raises(S3Error) as e:
        read_body(env)
    assert e.value.code == 'SignatureDoesNotMatch'


def test_streaming_upload_needs_the_decoded_length():
    env = doc_streaming_environ()
    del env['HTTP_X_AMZ_DECODED_CONTENT_LENGTH']
    # the header was signed, so the signature fails first
    assert code_of(env, now=DOC_NOW) == 'SignatureDoesNotMatch'


# -- Signature V2 ----------------------------------------------------------

def test_v2_header_signature_verifies():
    env = signed(HmacV1Auth(boto()), 'PUT', '/bucket/a%20key',
                 params={'uploadId': 'abc', 'partNumber': '3'},
                 headers={'Content-Type': 'text/plain',
                          'x-amz-meta-a': 'b'}, body=b'data')
    assert auth.authenticate(env, CREDS).account == 'AUTH_test'
    assert read_body(env) == b'data'


@pytest.mark.parametrize('tamper,code', [
    (lambda e: e.update(QUERY_STRING='uploadId=abd&partNumber=3'),
     'SignatureDoesNotMatch'),
    (lambda e: e.update(CONTENT_TYPE='text/html'), 'SignatureDoesNotMatch'),
    (lambda e: e.update(HTTP_X_AMZ_META_A='c'), 'SignatureDoesNotMatch'),
    (lambda e: e.update(HTTP_DATE='Tue, 27 Mar 2007 19:36:42 +0000'),
     'RequestTimeTooSkewed'),
    (lambda e: e.update(HTTP_AUTHORIZATION=e['HTTP_AUTHORIZATION'].replace(
        'test:tester', 'test:other')), 'InvalidAccessKeyId'),
])
def test_v2_header_tampering(tamper, code):
    env = signed(HmacV1Auth(boto()), 'PUT', '/bucket/key',
                 params={'uploadId': 'abc', 'partNumber': '3'},
                 headers={'Content-Type': 'text/plain',
                          'x-amz-meta-a': 'b'}, body=b'data')
    tamper(env)
    assert code_of(env) == code


def test_v2_wrong_secret():
    env = signed(HmacV1Auth(boto(secret='nope')))
    assert code_of(env) == 'SignatureDoesNotMatch'


def test_v2_presigned_url_verifies_until_it_expires():
    env = signed(HmacV1QueryAuth(boto(), expires=600), path='/bucket/k',
                 params={'response-content-disposition': 'attachment'})
    assert 'AWSAccessKeyId=test%3Atester' in env['QUERY_STRING']
    assert auth.authenticate(env, CREDS).user == 'test:tester'
    assert code_of(env, now=time.time() + 700) == 'AccessDenied'
    env['QUERY_STRING'] = env['QUERY_STRING'].replace('attachment',
                                                      'inline')
    assert code_of(env) == 'SignatureDoesNotMatch'


def test_v2_virtual_hosted_bucket_is_part_of_the_signature():
    request = AWSRequest(method='GET', url='http://bucket.s3.local/key')
    request.auth_path = '/bucket/key'
    HmacV1Auth(boto()).add_auth(request)
    env = environ_of(request.prepare())
    assert auth.authenticate(env, CREDS, host_bucket='bucket')
    assert code_of(env) == 'SignatureDoesNotMatch'


def test_plus_in_a_query_is_a_space():
    # a client that sends '+' for a space signs '%20'
    env = signed(v4(), path='/bucket', params={'prefix': 'a b'})
    env['QUERY_STRING'] = env['QUERY_STRING'].replace('%20', '+')
    assert auth.authenticate(env, CREDS)
