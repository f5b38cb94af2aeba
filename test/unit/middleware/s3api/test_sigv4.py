"""Signature V4 pieces against the AWS documentation's published examples."""
import hashlib
import io

import pytest

from objstore.middleware.s3api import sigv4
from objstore.middleware.s3api.errors import S3Error

AKID = 'AKIAIOSFODNN7EXAMPLE'
SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'


def _doc_get_environ():
    # "Example: GET Object" (sig-v4-header-based-auth)
    return {'REQUEST_METHOD': 'GET', 'RAW_PATH_INFO': '/test.txt',
            'PATH_INFO': '/test.txt', 'QUERY_STRING': '',
            'HTTP_HOST': 'examplebucket.s3.amazonaws.com',
            'HTTP_RANGE': 'bytes=0-9',
            'HTTP_X_AMZ_CONTENT_SHA256': sigv4.EMPTY_SHA256,
            'HTTP_X_AMZ_DATE': '20130524T000000Z',
            'HTTP_AUTHORIZATION':
                'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/'
                'us-east-1/s3/aws4_request,SignedHeaders=host;range;'
                'x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c9644'
                '20e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'}


def test_documented_get_object_example_verifies():
    env = _doc_get_environ()
    signed = sigv4.parse_authorization(env['HTTP_AUTHORIZATION'])
    signed = signed._replace(amz_date=sigv4.request_date(env)[0])
    assert signed.access_key == AKID and signed.region == 'us-east-1'
    canonical, sts, signature = sigv4.expected(env, signed, SECRET,
                                               sigv4.EMPTY_SHA256)
    assert sts.splitlines()[-1] == ('7344ae5b7ee6c3e7e6b0fe0640412a37625d1f'
                                    'bfff95c48bbb2dc43964946972')
    assert signature == signed.signature
    assert sigv4.verify(env, signed, SECRET, sigv4.EMPTY_SHA256)


def test_documented_example_with_a_changed_header_does_not_verify():
    env = _doc_get_environ()
    env['HTTP_RANGE'] = 'bytes=0-10'
    signed = sigv4.parse_authorization(env['HTTP_AUTHORIZATION'])._replace(
        amz_date='20130524T000000Z')
    with pytest.raises(S3Error) as e:
        sigv4.verify(env, signed, SECRET, sigv4.EMPTY_SHA256)
    assert e.value.code == 'SignatureDoesNotMatch'
    assert 'range:bytes=0-10' in e.value.extra['CanonicalRequest']


def test_documented_presigned_url_example_verifies():
    # "Example: Presigned URL" (sigv4-query-string-auth)
    query = ('X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODN'
             'N7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Da'
             'te=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=h'
             'ost&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da'
             '4c265957d157751f604d404')
    env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/test.txt',
           'QUERY_STRING': query,
           'HTTP_HOST': 'examplebucket.s3.amazonaws.com'}
    signed = sigv4.parse_presigned(dict(sigv4.query_pairs(query)))
    assert signed.presigned and signed.expires == 86400
    sigv4.verify(env, signed, SECRET, sigv4.UNSIGNED_PAYLOAD)
    start = sigv4.parse_amz_date('20130524T000000Z')
    assert sigv4.check_presigned_time(signed, start + 86400) == start
    with pytest.raises(S3Error) as e:
        sigv4.check_presigned_time(signed, start + 86401)
    assert (e.value.code, e.value.message) == ('AccessDenied',
                                               'Request has expired')


def test_uri_encode_follows_aws_rules():
    assert sigv4.uri_encode('a b+c/d~e_f.g-h') == 'a%20b%2Bc%2Fd~e_f.g-h'
    assert sigv4.uri_encode('a/b', keep_slash=True) == 'a/b'
    assert sigv4.uri_encode('\u00e9*') == '%C3%A9%2A'


def test_canonical_uri_encodes_each_segment_once():
    env = {'RAW_PATH_INFO': '/b/a%20b/%2F/%C3%A9!', 'PATH_INFO': 'ignored'}
    assert sigv4.canonical_uri(env) == '/b/a%20b/%2F/%C3%A9%21'
    # without the raw path: the decoded one, encoded again
    env = {'PATH_INFO': '/b/\u00e9 x'.encode('utf-8').decode('latin-1')}
    assert sigv4.canonical_uri(env) == '/b/%C3%A9%20x'
    assert sigv4.canonical_uri({'PATH_INFO': '/b//k/'}) == '/b//k/'


def test_canonical_query_sorts_and_encodes():
    assert sigv4.canonical_query('uploads&prefix=a%20b&a=2&a=1') == \
        'a=1&a=2&prefix=a%20b&uploads='
    assert sigv4.canonical_query(
        'X-Amz-Signature=x&b=%2b', exclude=('X-Amz-Signature',)) == 'b=%2B'


@pytest.mark.parametrize('value', [
    'AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request',
    'AWS4-HMAC-SHA256 Credential=AK/2013/us-east-1/s3/aws4_request, '
    'SignedHeaders=host, Signature=abc',
    'AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/ec2/aws4_request, '
    'SignedHeaders=host, Signature=abc',
    'AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws5, '
    'SignedHeaders=host, Signature=abc',
    'AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, '
    'SignedHeaders=Host, Signature=abc',
    'AWS4-HMAC-SHA256 garbage',
])
def test_malformed_authorization_headers(value):
    with pytest.raises(S3Error) as e:
        sigv4.parse_authorization(value)
    assert e.value.code == 'AuthorizationHeaderMalformed'
    assert e.value.status == 400


def test_presigned_expiry_limits():
    base = {'X-Amz-Algorithm': sigv4.ALGORITHM,
            'X-Amz-Credential': 'AK/20130524/us-east-1/s3/aws4_request',
            'X-Amz-Date': '20130524T000000Z', 'X-Amz-SignedHeaders': 'host',
            'X-Amz-Signature': 'ab'}
    assert sigv4.parse_presigned(dict(base, **{'X-Amz-Expires': '604800'}))
    for bad in ('604801', '-1', 'soon'):
        with pytest.raises(S3Error) as e:
            sigv4.parse_presigned(dict(base, **{'X-Amz-Expires': bad}))
        assert e.value.code == 'AuthorizationQueryParametersError'
    with pytest.raises(S3Error) as e:
        sigv4.parse_presigned(base)
    assert e.value.code == 'AuthorizationQueryParametersError'


def test_skew_and_dates():
    when = sigv4.parse_amz_date('20130524T000000Z')
    sigv4.check_skew(when, when + 900)
    with pytest.raises(S3Error) as e:
        sigv4.check_skew(when, when + 901)
    assert e.value.code == 'RequestTimeTooSkewed' and e.value.status == 403
    env = {'HTTP_DATE': 'Fri, 24 May 2013 00:00:00 GMT'}
    assert sigv4.request_date(env) == ('20130524T000000Z', when)
    with pytest.raises(S3Error) as e:
        sigv4.request_date({'HTTP_X_AMZ_DATE': 'yesterday'})
    assert e.value.code == 'AccessDenied'


def test_region_must_be_ours_unless_any_is_allowed():
    signed = sigv4.Signed('AK', '20130524', 'eu-west-1', 's3',
                          '20130524T000000Z', ('host',), 'x', False, None)
    sigv4.check_region(signed, None)
    sigv4.check_region(signed, 'eu-west-1')
    with pytest.raises(S3Error) as e:
        sigv4.check_region(signed, 'us-east-1')
    assert e.value.code == 'AuthorizationHeaderMalformed'
    assert e.value.extra['Region'] == 'us-east-1'


def test_payload_hash_values():
    assert sigv4.check_payload_hash('UNSIGNED-PAYLOAD')
    assert sigv4.check_payload_hash('A' * 64)
    for bad, code in ((None, 'InvalidRequest'), ('nope', 'InvalidArgument')):
        with pytest.raises(S3Error) as e:
            sigv4.check_payload_hash(bad)
        assert e.value.code == code


def test_sha256_input_passes_a_matching_body():
    body = b'hello world' * 1000
    reader = sigv4.Sha256Input(io.BytesIO(body), len(body),
                               hashlib.sha256(body).hexdigest())
    got = b''
    while True:
        piece = reader.read(4096)
        if not piece:
            break
        got += piece
    assert got == body and reader.error is None


def test_sha256_input_fails_on_the_read_of_the_last_byte():
    body = b'x' * 10000
    reader = sigv4.Sha256Input(io.BytesIO(body), len(body),
                               hashlib.sha256(b'other').hexdigest())
    assert reader.read(9000) == b'x' * 9000
    with pytest.raises(S3Error) as e:
        reader.read(9000)
    assert e.value.code == 'XAmzContentSHA256Mismatch'
    assert reader.error is e.value
    with pytest.raises(S3Error):
        reader.read(1)


def test_sha256_input_short_body_is_incomplete():
    reader = sigv4.Sha256Input(io.BytesIO(b'abc'), 10,
                               hashlib.sha256(b'abc').hexdigest())
    assert reader.read(3) == b'abc'
    with pytest.raises(S3Error) as e:
        reader.read(7)
    assert e.value.code == 'IncompleteBody'
