"""S3 request parsing: addressing styles, names, sub-resources, listing
parameters, copy sources and digests, without a server."""
import base64
import hashlib

import pytest

from objstore.middleware.s3api import request as r
from objstore.middleware.s3api.errors import S3Error


def code_of(fn, *args):
    with pytest.raises(S3Error) as info:
        fn(*args)
    return info.value.code


def test_path_style():
    req = r.parse_request('GET', '/bucket/a/b%2Fc', 'acl', 'localhost:8080')
    assert (req.bucket, req.key, req.virtual_host) == \
        ('bucket', 'a/b%2Fc', False)
    assert req.query == {'acl': ''}
    svc = r.parse_request('GET', '/', '', 'localhost')
    assert (svc.bucket, svc.key) == (None, None)
    bucket = r.parse_request('PUT', '/bucket/', '', 'localhost')
    assert (bucket.bucket, bucket.key) == ('bucket', None)


def test_virtual_host_style():
    domains = ('localhost', 's3.127.0.0.1.nip.io')
    req = r.parse_request('GET', '/dir/key', '', 'My.Bucket.localhost:80'
                          .lower(), domains)
    assert (req.bucket, req.key, req.virtual_host) == \
        ('my.bucket', 'dir/key', True)
    req = r.parse_request('GET', '/', '', 'bk1.s3.127.0.0.1.nip.io', domains)
    assert (req.bucket, req.key) == ('bk1', None)
    # the bare domain is path style
    req = r.parse_request('GET', '/bk2/k', '', 'localhost', domains)
    assert (req.bucket, req.key, req.virtual_host) == ('bk2', 'k', False)
    assert r.bucket_from_host('other.example.com', domains) is None
    assert r.bucket_from_host('[::1]:80', domains) is None


@pytest.mark.parametrize('name', ['abc', 'a-b.c', 'x' * 63, '1bucket',
                                  'my.bucket.name'])
def test_valid_bucket_names(name):
    assert r.validate_bucket(name) == name


@pytest.mark.parametrize('name', ['ab', 'x' * 64, 'ABC', 'a_b', '-ab',
                                  'ab-', 'a..b', 'a.-b', 'a-.b',
                                  '192.168.1.1', 'a b', '.ab'])
def test_invalid_bucket_names(name):
    assert code_of(r.validate_bucket, name) == 'InvalidBucketName'
    assert code_of(r.parse_request, 'GET', '/%s/k' % name, '',
                   'localhost') == 'InvalidBucketName'


def test_key_length_in_bytes():
    assert r.validate_key('k' * 1024)
    assert code_of(r.validate_key, 'k' * 1025) == 'KeyTooLongError'
    assert code_of(r.validate_key, '\u00e9' * 513) == 'KeyTooLongError'


def test_unsupported_subresource():
    assert code_of(r.parse_request, 'GET', '/b1b/', 'tagging',
                   'localhost') == 'NotImplemented'
    assert r.parse_request('GET', '/b1b', 'versions', 'x').query == \
        {'versions': ''}


def test_swift_paths():
    for path in ('/v1/AUTH_test', '/v1.0/x', '/auth/v1.0', '/info',
                 '/healthcheck'):
        assert r.is_swift_path(path)
    for path in ('/', '/bucket', '/bucket/v1/x', '/v11'):
        assert not r.is_swift_path(path)


def test_listing_params_v1_v2_versions():
    p = r.listing_params({'prefix': 'a/', 'delimiter': '/',
                          'marker': 'a/b', 'max-keys': '5'})
    assert (p.version, p.prefix, p.delimiter, p.marker, p.max_keys) == \
        (1, 'a/', '/', 'a/b', 5)
    token = r.encode_token('a/\u00e9')
    p = r.listing_params({'list-type': '2', 'continuation-token': token,
                          'start-after': 'zzz', 'encoding-type': 'url',
                          'fetch-owner': 'true'})
    assert (p.version, p.marker, p.encoding_url, p.fetch_owner) == \
        (2, 'a/\u00e9', True, True)
    p = r.listing_params({'list-type': '2', 'start-after': 'm'})
    assert p.marker == 'm' and p.max_keys == 1000
    p = r.listing_params({'versions': '', 'key-marker': 'k'})
    assert (p.version, p.marker) == ('versions', 'k')
    assert r.listing_params({'max-keys': '5000'}).max_keys == 1000
    assert r.listing_params({'max-keys': '0'}).max_keys == 0


@pytest.mark.parametrize('query', [{'max-keys': '-1'}, {'max-keys': 'x'},
                                   {'max-keys': '1.5'},
                                   {'encoding-type': 'base64'},
                                   {'list-type': '3'},
                                   {'list-type': '2',
                                    'continuation-token': '%%%'}])
def test_listing_params_invalid(query):
    assert code_of(r.listing_params, query) == 'InvalidArgument'


def test_copy_source():
    assert r.parse_copy_source('/src/a%20b/c') == ('src', 'a b/c', None)
    assert r.parse_copy_source('src/k?versionId=null') == \
        ('src', 'k', 'null')
    assert code_of(r.parse_copy_source, 'src') == 'InvalidArgument'
    assert code_of(r.parse_copy_source, '') == 'InvalidArgument'
    assert code_of(r.parse_copy_source, 'BAD/k') == 'InvalidBucketName'
    assert code_of(r.parse_copy_source, 'src/k?versionId=abc') == \
        'NoSuchVersion'


def test_content_md5():
    raw = hashlib.md5(b'data').digest()
    assert r.decode_content_md5(base64.b64encode(raw).decode()) == \
        hashlib.md5(b'data').hexdigest()
    for bad in ('nope!', base64.b64encode(b'short').decode(), ''):
        assert code_of(r.decode_content_md5, bad) == 'InvalidDigest'


def test_canned_acl():
    assert r.canned_acl(None) == 'private'
    assert r.canned_acl('public-read') == 'public-read'
    assert code_of(r.canned_acl, 'everyone') == 'InvalidArgument'
