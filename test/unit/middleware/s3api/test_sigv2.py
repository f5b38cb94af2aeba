"""Signature V2 against the AWS documentation's examples
(RESTAuthentication)."""
import pytest

from objstore.middleware.s3api import sigv2
from objstore.middleware.s3api.errors import S3Error

SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
BUCKET = 'awsexamplebucket1'


def env(method, path, query='', **headers):
    out = {'REQUEST_METHOD': method, 'RAW_PATH_INFO': path,
           'PATH_INFO': path, 'QUERY_STRING': query,
           'HTTP_HOST': BUCKET + '.s3.us-west-1.amazonaws.com'}
    out.update(headers)
    return out


@pytest.mark.parametrize('environ,signature', [
    (env('GET', '/photos/puppy.jpg',
         HTTP_DATE='Tue, 27 Mar 2007 19:36:42 +0000'),
     'qgk2+6Sv9/oM7G3qLEjTH1a1l1g='),
    (env('PUT', '/photos/puppy.jpg', CONTENT_TYPE='image/jpeg',
         CONTENT_LENGTH='94328',
         HTTP_DATE='Tue, 27 Mar 2007 21:15:45 +0000'),
     'iqRzw+ileNPu1fhspnRs8nOjjIA='),
    (env('GET', '/', 'prefix=photos&max-keys=50&marker=puppy',
         HTTP_DATE='Tue, 27 Mar 2007 19:42:41 +0000',
         HTTP_USER_AGENT='Mozilla/5.0'),
     'm0WP8eCtspQl5Ahe6L1SozdX9YA='),
])
def test_documented_examples(environ, signature):
    sts = sigv2.string_to_sign(environ, environ['HTTP_DATE'], BUCKET)
    assert sigv2.sign(SECRET, sts) == signature
    sigv2.verify(environ, 'AKIAIOSFODNN7EXAMPLE', signature, SECRET,
                 environ['HTTP_DATE'], BUCKET)
    with pytest.raises(S3Error) as e:
        sigv2.verify(environ, 'AKIAIOSFODNN7EXAMPLE', signature, SECRET,
                     environ['HTTP_DATE'], None)   # path-style reading
    assert e.value.code == 'SignatureDoesNotMatch'
    assert e.value.extra['StringToSign'] != sts


def test_subresources_are_signed_sorted_and_decoded():
    environ = env('GET', '/b/k', 'uploadId=x%2By&prefix=p&acl&partNumber=2&'
                  'response-content-type=text%2Fplain')
    assert sigv2.string_to_sign(environ, 'D').endswith(
        '/b/k?acl&partNumber=2&response-content-type=text/plain&'
        'uploadId=x+y')


def test_amz_headers_are_canonical_and_x_amz_date_blanks_date():
    environ = env('PUT', '/b/k', HTTP_X_AMZ_META_B='  two  words ',
                  HTTP_X_AMZ_DATE='Tue, 27 Mar 2007 21:15:45 +0000',
                  HTTP_DATE='ignored')
    line = sigv2.header_date_line(environ, 1175030145)
    assert line == ''
    assert sigv2.string_to_sign(environ, line) == (
        'PUT\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:15:45 +0000\n'
        'x-amz-meta-b:two words\n/b/k')


def test_access_keys_may_hold_colons():
    assert sigv2.parse_authorization('AWS test:tester:abc=') == \
        ('test:tester', 'abc=')
    for bad in ('AWS nocolon', 'AWS :sig', 'AWS key:', 'Basic x'):
        with pytest.raises(S3Error) as e:
            sigv2.parse_authorization(bad)
        assert e.value.code == 'AuthorizationHeaderMalformed'


def test_dates():
    environ = env('GET', '/', HTTP_DATE='Tue, 27 Mar 2007 19:36:42 +0000')
    when = 1175024202
    assert sigv2.header_date_line(environ, when + 900)
    with pytest.raises(S3Error) as e:
        sigv2.header_date_line(environ, when + 901)
    assert e.value.code == 'RequestTimeTooSkewed'
    with pytest.raises(S3Error) as e:
        sigv2.header_date_line(env('GET', '/'), when)
    assert e.value.code == 'AccessDenied'
    assert sigv2.query_date_line({'Expires': str(when)}, when) == str(when)
    with pytest.raises(S3Error) as e:
        sigv2.query_date_line({'Expires': str(when)}, when + 1)
    assert e.value.message == 'Request has expired'
