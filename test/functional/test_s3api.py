"""The S3 API through a real proxy over the all-in-one cluster.

The all-in-one proxy runs s3api in front of tempauth; boto3 (client and
resource), the aws command line and plain HTTP talk to it, and what S3
stored is read back through the Swift API. Multipart uploads are another
module's business; test_bad_requests_table is the issue's table of bad
requests.
"""
import base64
import contextlib
import datetime
import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from unittest import mock

import pytest
import requests


pytest.importorskip('objstore.middleware.s3api.auth')
boto3 = pytest.importorskip('boto3')
botocore = pytest.importorskip('botocore')
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
swiftclient = pytest.importorskip('swiftclient.client')

from test.conftest import load_test_module  # noqa: E402

s3_helpers = load_test_module('s3_helpers')
make_client = s3_helpers.make_client
error_code = s3_helpers.error_code

@pytest.fixture(scope='module')
def proxy(aio_cluster):
    """The all-in-one proxy, which runs s3api (storage_domain localhost)."""
    assert 's3api' in requests.get(aio_cluster['url'] + '/info').json()
    return aio_cluster['url']


@pytest.fixture(scope='module')
def s3(proxy):
    return make_client(proxy)


@pytest.fixture(scope='module')
def swift_auth(proxy):
    return swiftclient.get_auth(proxy + '/auth/v1.0', 'test:tester',
                                'testing')


@pytest.fixture
def bucket(s3):
    name = 'bkt-' + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    return name


def test_info_and_swift_untouched(proxy, swift_auth):
    info = requests.get(proxy + '/info').json()
    assert 's3api' in info
    url, token = swift_auth
    resp = requests.get(url, headers={'X-Auth-Token': token})
    assert resp.status_code in (200, 204)
    assert requests.get(proxy + '/healthcheck').text == 'OK'


def test_buckets_lifecycle(s3, proxy):
    name = 'life-' + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=name)
    assert name in [b['Name'] for b in s3.list_buckets()['Buckets']]
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name)['LocationConstraint'] in \
        (None, '')
    # us-east-1: creating a bucket you own again is a 200
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key='k', Body=b'x')
    assert error_code(s3.delete_bucket, Bucket=name) == 'BucketNotEmpty'
    s3.delete_object(Bucket=name, Key='k')
    s3.delete_bucket(Bucket=name)
    assert error_code(s3.head_bucket, Bucket=name) == '404'
    assert error_code(s3.list_objects, Bucket=name) == 'NoSuchBucket'


def test_put_get_head_and_swift_readback(s3, bucket, swift_auth):
    data = b'hello s3 world'
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    put = s3.put_object(Bucket=bucket, Key='dir/f.txt', Body=data,
                        ContentMD5=md5, ContentType='text/x-test',
                        Metadata={'color': 'blue'})
    etag = '"%s"' % hashlib.md5(data).hexdigest()
    assert put['ETag'] == etag
    got = s3.get_object(Bucket=bucket, Key='dir/f.txt')
    assert got['Body'].read() == data
    assert got['ETag'] == etag
    assert got['ContentType'] == 'text/x-test'
    assert got['Metadata'] == {'color': 'blue'}
    head = s3.head_object(Bucket=bucket, Key='dir/f.txt')
    assert head['ContentLength'] == len(data)
    part = s3.get_object(Bucket=bucket, Key='dir/f.txt', Range='bytes=6-7')
    assert part['Body'].read() == b's3'
    assert part['ContentRange'] == 'bytes 6-7/%d' % len(data)
    over = s3.get_object(Bucket=bucket, Key='dir/f.txt',
                         ResponseContentType='application/x-over',
                         ResponseContentDisposition='attachment')
    assert over['ContentType'] == 'application/x-over'
    assert over['ContentDisposition'] == 'attachment'
    over['Body'].read()
    assert error_code(s3.get_object, Bucket=bucket, Key='dir/f.txt',
                      IfMatch='"nope"') == 'PreconditionFailed'
    assert error_code(s3.get_object, Bucket=bucket, Key='dir/f.txt',
                      IfNoneMatch=etag) == '304'
    # the same object through the Swift API
    url, token = swift_auth
    headers, body = swiftclient.get_object(url, token, bucket, 'dir/f.txt')
    assert body == data
    assert headers['x-object-meta-color'] == 'blue'
    assert headers['etag'].strip('"') == hashlib.md5(data).hexdigest()


def test_listings(s3, bucket):
    keys = ['a/1', 'a/2', 'b/1', 'c', 'd e']
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    v1 = s3.list_objects(Bucket=bucket)
    assert [o['Key'] for o in v1['Contents']] == keys
    assert v1['Contents'][0]['ETag'] == \
        '"%s"' % hashlib.md5(b'a/1').hexdigest()
    assert v1['Contents'][0]['Size'] == 3
    delim = s3.list_objects(Bucket=bucket, Delimiter='/')
    assert [p['Prefix'] for p in delim['CommonPrefixes']] == ['a/', 'b/']
    assert [o['Key'] for o in delim['Contents']] == ['c', 'd e']
    page = s3.list_objects(Bucket=bucket, Delimiter='/', MaxKeys=1)
    assert page['IsTruncated'] and page['NextMarker'] == 'a/'
    page = s3.list_objects(Bucket=bucket, Delimiter='/', MaxKeys=1,
                           Marker='a/')
    assert [p['Prefix'] for p in page['CommonPrefixes']] == ['b/']
    seen = []
    for page in s3.get_paginator('list_objects_v2').paginate(
            Bucket=bucket, PaginationConfig={'PageSize': 2}):
        seen += [o['Key'] for o in page.get('Contents', [])]
    assert seen == keys
    v2 = s3.list_objects_v2(Bucket=bucket, Prefix='a/', StartAfter='a/1')
    assert [o['Key'] for o in v2['Contents']] == ['a/2']
    assert v2['KeyCount'] == 1
    enc = s3.list_objects_v2(Bucket=bucket, Prefix='d', EncodingType='url')
    assert [o['Key'] for o in enc['Contents']] == ['d%20e']
    versions = s3.list_object_versions(Bucket=bucket, Prefix='c')
    assert [(v['Key'], v['VersionId'], v['IsLatest'])
            for v in versions['Versions']] == [('c', 'null', True)]


def test_delete_objects_and_delete_missing(s3, bucket):
    for key in ('x1', 'x2', 'x3'):
        s3.put_object(Bucket=bucket, Key=key, Body=b'1')
    out = s3.delete_objects(Bucket=bucket, Delete={'Objects': [
        {'Key': 'x1'}, {'Key': 'x2'}, {'Key': 'missing'}]})
    assert sorted(d['Key'] for d in out['Deleted']) == \
        ['missing', 'x1', 'x2']
    quiet = s3.delete_objects(Bucket=bucket, Delete={
        'Objects': [{'Key': 'x3'}], 'Quiet': True})
    assert 'Deleted' not in quiet
    assert s3.list_objects(Bucket=bucket).get('Contents') is None
    # deleting a missing key is a 204 too
    s3.delete_object(Bucket=bucket, Key='never-there')


def test_copy_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key='src', Body=b'copy me',
                  ContentType='text/x-src', Metadata={'m': '1'})
    etag = '"%s"' % hashlib.md5(b'copy me').hexdigest()
    out = s3.copy_object(Bucket=bucket, Key='dst',
                         CopySource={'Bucket': bucket, 'Key': 'src'})
    assert out['CopyObjectResult']['ETag'] == etag
    got = s3.get_object(Bucket=bucket, Key='dst')
    assert got['Body'].read() == b'copy me'
    assert got['Metadata'] == {'m': '1'}
    assert got['ContentType'] == 'text/x-src'
    s3.copy_object(Bucket=bucket, Key='dst2', CopySource='%s/src' % bucket,
                   MetadataDirective='REPLACE', Metadata={'n': '2'},
                   ContentType='text/x-new')
    head = s3.head_object(Bucket=bucket, Key='dst2')
    assert head['Metadata'] == {'n': '2'}
    assert head['ContentType'] == 'text/x-new'
    s3.copy_object(Bucket=bucket, Key='dst3', CopySource='%s/src' % bucket,
                   CopySourceIfMatch=etag)
    assert error_code(s3.copy_object, Bucket=bucket, Key='dst4',
                      CopySource='%s/src' % bucket,
                      CopySourceIfNoneMatch=etag) == 'PreconditionFailed'
    assert error_code(s3.copy_object, Bucket=bucket, Key='src',
                      CopySource='%s/src' % bucket) == 'InvalidRequest'
    # onto itself with REPLACE updates the metadata
    s3.copy_object(Bucket=bucket, Key='src', CopySource='%s/src' % bucket,
                   MetadataDirective='REPLACE', Metadata={'m': '9'})
    assert s3.head_object(Bucket=bucket, Key='src')['Metadata'] == \
        {'m': '9'}


def test_bucket_acl(s3, bucket, proxy):
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert [g['Permission'] for g in acl['Grants']] == ['FULL_CONTROL']
    s3.put_object(Bucket=bucket, Key='pub', Body=b'public')
    assert requests.get('%s/v1/AUTH_test/%s/pub' % (proxy, bucket)) \
        .status_code == 401
    s3.put_bucket_acl(Bucket=bucket, ACL='public-read')
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert ('READ', 'Group') in [(g['Permission'], g['Grantee']['Type'])
                                 for g in acl['Grants']]
    # public-read is Swift's read ACL: anonymous Swift reads work
    assert requests.get('%s/v1/AUTH_test/%s/pub' % (proxy, bucket)) \
        .content == b'public'
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
        'Owner': acl['Owner'], 'Grants': [acl['Grants'][0]]})
    assert requests.get('%s/v1/AUTH_test/%s/pub' % (proxy, bucket)) \
        .status_code == 401
    obj_acl = s3.get_object_acl(Bucket=bucket, Key='pub')
    assert obj_acl['Grants'][0]['Permission'] == 'FULL_CONTROL'


def test_resource_api(proxy):
    res = boto3.resource('s3', endpoint_url=proxy,
                         aws_access_key_id='test:tester',
                         aws_secret_access_key='testing',
                         region_name='us-east-1',
                         config=Config(s3={'addressing_style': 'path'}))
    name = 'res-' + uuid.uuid4().hex[:8]
    b = res.create_bucket(Bucket=name)
    b.put_object(Key='one', Body=b'1')
    res.Object(name, 'two').put(Body=b'22')
    assert sorted(o.key for o in b.objects.all()) == ['one', 'two']
    assert res.Object(name, 'two').get()['Body'].read() == b'22'
    assert res.Object(name, 'two').content_length == 2
    b.objects.all().delete()
    b.delete()
    assert name not in [x.name for x in res.buckets.all()]


def test_virtual_host_style(proxy, bucket, s3):
    port = proxy.rsplit(':', 1)[1]
    vs3 = boto3.client('s3', endpoint_url='http://localhost:%s' % port,
                       aws_access_key_id='test:tester',
                       aws_secret_access_key='testing',
                       region_name='us-east-1',
                       config=Config(s3={'addressing_style': 'virtual'}))
    # the name resolution of <bucket>.localhost is not ours to rely on:
    # send to 127.0.0.1 with the Host header boto signed
    req = vs3.generate_presigned_url(
        'get_object', Params={'Bucket': bucket, 'Key': 'v'})
    s3.put_object(Bucket=bucket, Key='v', Body=b'virtual')
    host = req.split('/')[2]
    assert host.startswith(bucket + '.localhost')
    path = '/' + req.split('/', 3)[3]
    resp = requests.get('http://127.0.0.1:%s%s' % (port, path),
                        headers={'Host': host})
    assert resp.status_code == 200 and resp.content == b'virtual'


AWS = shutil.which('aws') or os.path.join(os.path.dirname(sys.executable),
                                          'aws')


@pytest.mark.skipif(not os.path.exists(AWS), reason='awscli missing')
def test_aws_cli(proxy, tmp_path):
    env = dict(os.environ, AWS_ACCESS_KEY_ID='test:tester',
               AWS_SECRET_ACCESS_KEY='testing', AWS_DEFAULT_REGION='us-east-1',
               AWS_CONFIG_FILE=str(tmp_path / 'none'),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / 'none'))

    def aws(*args):
        out = subprocess.run([AWS, '--endpoint-url', proxy] + list(args),
                             env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout
    name = 'cli-' + uuid.uuid4().hex[:8]
    src = tmp_path / 'src'
    (src / 'sub').mkdir(parents=True)
    (src / 'a.txt').write_bytes(b'alpha')
    (src / 'sub' / 'b.txt').write_bytes(b'beta')
    aws('s3', 'mb', 's3://' + name)
    assert name in aws('s3', 'ls')
    aws('s3', 'cp', str(src / 'a.txt'), 's3://%s/a.txt' % name)
    aws('s3', 'sync', str(src), 's3://%s/tree' % name)
    listing = aws('s3', 'ls', '--recursive', 's3://' + name)
    for key in ('a.txt', 'tree/a.txt', 'tree/sub/b.txt'):
        assert key in listing
    aws('s3', 'cp', 's3://%s/tree/sub/b.txt' % name, str(tmp_path / 'b'))
    assert (tmp_path / 'b').read_bytes() == b'beta'
    out = aws('s3api', 'head-object', '--bucket', name, '--key', 'a.txt')
    assert hashlib.md5(b'alpha').hexdigest() in out
    aws('s3', 'rm', '--recursive', 's3://%s/tree' % name)
    aws('s3', 'rm', 's3://%s/a.txt' % name)
    aws('s3', 'rb', 's3://' + name)
    assert name not in aws('s3', 'ls')


def raw(proxy, method, path, body=b'', headers=None):
    """An unsigned-by-boto request, signed with SigV4 by botocore's
    signer so that only the thing under test is wrong (a given
    x-amz-content-sha256 is signed as given)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method=method, url=proxy + path, data=body,
                     headers=dict(headers or {}))
    if 'x-amz-content-sha256' not in req.headers:
        req.headers['x-amz-content-sha256'] = hashlib.sha256(body).hexdigest()
    SigV4Auth(Credentials('test:tester', 'testing'), 's3',
              'us-east-1').add_auth(req)
    prepared = req.prepare()
    return requests.request(method, prepared.url, data=body,
                            headers=dict(prepared.headers))


def s3_code(resp):
    import xml.etree.ElementTree as ET
    assert resp.headers['Content-Type'] == 'application/xml'
    return ET.fromstring(resp.content).find('Code').text


def s3_message(resp):
    import xml.etree.ElementTree as ET
    return ET.fromstring(resp.content).find('Message').text


@contextlib.contextmanager
def signing_clock(delta):
    """botocore signs as if its clock were ``delta`` off: a request made
    in the past without sleeping (SigV4 and presigned URLs alike)."""
    when = datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None) + delta
    with mock.patch('botocore.auth.get_current_datetime', return_value=when):
        yield


def presigned(client, operation, params, expires=3600):
    return client.generate_presigned_url(operation, Params=params,
                                         ExpiresIn=expires)


def test_bad_requests_table(proxy, s3, bucket, swift_auth):
    """Bad requests get S3's code and leave what is stored as it was.

    48 rows here, 25 more in test_s3_multipart.py (73 in all; the issue
    asks for 25). Each is followed by the checks at the end: the object
    'keep' still reads b'kept' through S3 and Swift, it is the bucket's
    only key, the bucket's ACL is still private and the bucket still
    test:tester's (not test2:tester2's).

    Signatures and credentials (16): a wrong SigV4 secret (ListBuckets,
    PutObject) and a wrong SigV2 secret (PutObject) -> SignatureDoesNotMatch;
    an unknown access key -> InvalidAccessKeyId; a GET and a PUT signed 20
    minutes ago -> RequestTimeTooSkewed; an expired presigned URL, SigV4
    (signed an hour ago for 60 s) and SigV2 (Expires an hour ago) ->
    AccessDenied "Request has expired"; a presigned URL with its
    X-Amz-Expires raised, with its signature changed, used on another
    key, a presigned PUT used for a GET and a presigned GET used for a
    PUT -> SignatureDoesNotMatch; a PUT over 'keep' whose body is not
    the signed x-amz-content-sha256 -> XAmzContentSHA256Mismatch;
    anonymous GET and PUT -> AccessDenied.

    Other users' buckets (9), test2:tester2 on test:tester's bucket:
    GetObject, PutObject, DeleteObject, ListObjects, HeadBucket (403),
    DeleteObjects, DeleteBucket, PutBucketAcl -> AccessDenied;
    CreateBucket -> BucketAlreadyExists.

    Names (7): Bad_Bucket, ab -> InvalidBucketName; a 1025-byte key ->
    KeyTooLongError; GetObject, ListObjects, DeleteBucket of a missing
    bucket -> NoSuchBucket; a missing key -> NoSuchKey.

    Bodies, headers, parameters (16): a wrong Content-MD5 -> BadDigest;
    a non-base64 one -> InvalidDigest; DeleteObjects with truncated XML
    -> MalformedXML, without Content-MD5 -> InvalidRequest, with a wrong
    one -> BadDigest; CreateBucket with broken XML -> MalformedXML, in
    an unknown region -> InvalidLocationConstraint; an unknown canned
    ACL, max-keys=-1 -> InvalidArgument; a range past the end ->
    InvalidRange; a failing If-Match -> PreconditionFailed; copying a
    missing key -> NoSuchKey; copying onto itself unchanged ->
    InvalidRequest; deleting a full bucket -> BucketNotEmpty; ?tagging
    -> NotImplemented; POST on an object -> MethodNotAllowed.

    In test_s3_multipart.py (25): test_bad_completions_change_nothing:
    upload part numbers 0 and 10001 -> InvalidArgument, EntityTooSmall,
    InvalidPartOrder, InvalidPart (a wrong ETag, a missing part),
    MalformedXML completion; test_abort_and_unknown_uploads: ListParts,
    AbortMultipartUpload, UploadPart, CompleteMultipartUpload with 3
    unknown or gone upload ids -> NoSuchUpload (12), an upload in a
    missing bucket -> NoSuchBucket; test_upload_part_copy: a source
    range past the end -> InvalidRange;
    test_wrong_payload_hash_stores_nothing: a wrong
    x-amz-content-sha256 on a new key, small and 200 KiB ->
    XAmzContentSHA256Mismatch (2); test_tampered_chunked_body_stores_
    nothing: an aws-chunked body with a flipped bit, small and 300 KiB
    -> SignatureDoesNotMatch (2).
    """
    s3.put_object(Bucket=bucket, Key='keep', Body=b'kept')
    other = make_client(proxy, 'test2:tester2', 'testing2')
    wrong = make_client(proxy, 'test:tester', 'wrong')
    wrong_v2 = make_client(proxy, 'test:tester', 'wrong',
                           signature_version='s3')
    nobody = make_client(proxy, 'nobody:none', 'x')
    md5_bad = base64.b64encode(hashlib.md5(b'other').digest()).decode()
    delete_body = (b'<Delete><Object><Key>keep</Key></Object></Delete>')
    keep = {'Bucket': bucket, 'Key': 'keep'}
    cases = [
        # signatures and credentials
        (lambda: wrong.list_buckets(), 'SignatureDoesNotMatch'),
        (lambda: wrong.put_object(Body=b'new', **keep),
         'SignatureDoesNotMatch'),
        (lambda: wrong_v2.put_object(Body=b'new', **keep),
         'SignatureDoesNotMatch'),
        (lambda: nobody.list_buckets(), 'InvalidAccessKeyId'),
        # other users' buckets: the name is taken, the bucket not theirs
        (lambda: other.get_object(**keep), 'AccessDenied'),
        (lambda: other.put_object(Body=b'stolen', **keep), 'AccessDenied'),
        (lambda: other.delete_object(**keep), 'AccessDenied'),
        (lambda: other.list_objects(Bucket=bucket), 'AccessDenied'),
        (lambda: other.head_bucket(Bucket=bucket), '403'),
        (lambda: other.delete_objects(Bucket=bucket, Delete={
            'Objects': [{'Key': 'keep'}]}), 'AccessDenied'),
        (lambda: other.delete_bucket(Bucket=bucket), 'AccessDenied'),
        (lambda: other.put_bucket_acl(Bucket=bucket, ACL='public-read'),
         'AccessDenied'),
        (lambda: other.create_bucket(Bucket=bucket), 'BucketAlreadyExists'),
        # names, keys, bodies and headers
        (lambda: s3.get_object(Bucket=bucket, Key='nokey'), 'NoSuchKey'),
        (lambda: s3.get_object(Bucket='nobucket-x1', Key='k'),
         'NoSuchBucket'),
        (lambda: s3.list_objects(Bucket='nobucket-x1'), 'NoSuchBucket'),
        (lambda: s3.delete_bucket(Bucket='nobucket-x1'), 'NoSuchBucket'),
        (lambda: s3.delete_bucket(Bucket=bucket), 'BucketNotEmpty'),
        (lambda: s3.put_object(Body=b'new', ContentMD5=md5_bad, **keep),
         'BadDigest'),
        (lambda: s3.put_object(Body=b'new', ContentMD5='notbase64!',
                               **keep), 'InvalidDigest'),
        (lambda: s3.get_object(Range='bytes=100-200', **keep),
         'InvalidRange'),
        (lambda: s3.get_object(IfMatch='"0000"', **keep),
         'PreconditionFailed'),
        (lambda: s3.copy_object(Bucket=bucket, Key='c',
                                CopySource='%s/nokey' % bucket),
         'NoSuchKey'),
        (lambda: s3.copy_object(CopySource='%s/keep' % bucket, **keep),
         'InvalidRequest'),
        (lambda: s3.list_objects(Bucket=bucket, MaxKeys=-1),
         'InvalidArgument'),
        (lambda: s3.create_bucket(
            Bucket='elsewhere-' + uuid.uuid4().hex[:6],
            CreateBucketConfiguration={'LocationConstraint': 'mars-1'}),
         'InvalidLocationConstraint'),
        (lambda: s3.put_bucket_acl(Bucket=bucket, ACL='everyone'),
         'InvalidArgument'),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as info:
            call()
        assert info.value.response['Error']['Code'] == code, code
    # signed 20 minutes ago: beyond S3's 15 minutes of allowed skew
    with signing_clock(-datetime.timedelta(minutes=20)):
        for call in (lambda: s3.get_object(**keep),
                     lambda: s3.put_object(Body=b'new', **keep)):
            with pytest.raises(ClientError) as info:
                call()
            assert info.value.response['Error']['Code'] == \
                'RequestTimeTooSkewed'

    raw_cases = [
        ('PUT', '/Bad_Bucket', b'', {}, 'InvalidBucketName'),
        ('PUT', '/ab', b'', {}, 'InvalidBucketName'),
        ('GET', '/%s/%s' % (bucket, 'k' * 1025), b'', {},
         'KeyTooLongError'),
        ('POST', '/%s?delete' % bucket, b'<Delete><Object>', {
            'Content-MD5': base64.b64encode(
                hashlib.md5(b'<Delete><Object>').digest()).decode()},
         'MalformedXML'),
        ('POST', '/%s?delete' % bucket, delete_body, {}, 'InvalidRequest'),
        ('POST', '/%s?delete' % bucket, delete_body,
         {'Content-MD5': md5_bad}, 'BadDigest'),
        ('PUT', '/%s' % bucket, b'<CreateBucketConfiguration><!DOCTYPE',
         {}, 'MalformedXML'),
        ('GET', '/%s?tagging' % bucket, b'', {}, 'NotImplemented'),
        ('POST', '/%s/keep' % bucket, b'', {}, 'MethodNotAllowed'),
        # the body is not the one signed (its hash is b'other's)
        ('PUT', '/%s/keep' % bucket, b'new', {
            'x-amz-content-sha256': hashlib.sha256(b'other').hexdigest()},
         'XAmzContentSHA256Mismatch'),
    ]
    for method, path, body, headers, code in raw_cases:
        resp = raw(proxy, method, path, body, headers)
        assert s3_code(resp) == code, (method, path, resp.content)
        assert 'Swift' not in resp.text

    # presigned URLs: expired, tampered with, used for something else
    v4 = make_client(proxy, signature_version='s3v4')
    get_url = presigned(v4, 'get_object', keep)
    put_url = presigned(v4, 'put_object', keep)
    assert 'X-Amz-Signature=' in get_url and 'X-Amz-Expires=3600' in get_url
    assert requests.get(get_url).content == b'kept'     # the URL is good
    with signing_clock(-datetime.timedelta(hours=1)):
        expired = presigned(v4, 'get_object', keep, expires=60)
    # and a SigV2 one whose Expires is an hour ago
    expired_v2 = presigned(s3, 'get_object', keep, expires=-3600)
    assert 'X-Amz-Date=' in expired and 'AWSAccessKeyId=' in expired_v2
    for url in (expired, expired_v2):
        resp = requests.get(url)
        assert resp.status_code == 403 and s3_code(resp) == 'AccessDenied'
        assert s3_message(resp) == 'Request has expired'
    signature = get_url.split('X-Amz-Signature=')[1][:64]
    flipped = ('0' if signature[0] != '0' else '1') + signature[1:]
    presigned_cases = [
        ('GET', get_url.replace('X-Amz-Expires=3600',
                                'X-Amz-Expires=604800')),
        ('GET', get_url.replace(signature, flipped)),
        ('GET', get_url.replace('/keep?', '/nokey?')),
        ('GET', put_url),
        ('PUT', get_url),
    ]
    for method, url in presigned_cases:
        resp = requests.request(method, url, data=b'new' if method == 'PUT'
                                else None)
        assert resp.status_code == 403, (method, url)
        assert s3_code(resp) == 'SignatureDoesNotMatch', (method, url)

    anonymous = requests.get('%s/%s/keep' % (proxy, bucket))
    assert anonymous.status_code == 403
    assert s3_code(anonymous) == 'AccessDenied'
    anonymous = requests.put('%s/%s/keep' % (proxy, bucket), data=b'new')
    assert anonymous.status_code == 403
    assert s3_code(anonymous) == 'AccessDenied'

    # nothing changed
    assert s3.get_object(**keep)['Body'].read() == b'kept'
    url, token = swift_auth
    assert swiftclient.get_object(url, token, bucket, 'keep')[1] == b'kept'
    assert [o['Key'] for o in s3.list_objects(Bucket=bucket)['Contents']] \
        == ['keep']
    assert s3.get_bucket_acl(Bucket=bucket)['Grants'][0]['Permission'] == \
        'FULL_CONTROL'
    assert len(s3.get_bucket_acl(Bucket=bucket)['Grants']) == 1
    assert bucket in [b['Name'] for b in s3.list_buckets()['Buckets']]
    assert bucket not in [b['Name'] for b in other.list_buckets()['Buckets']]


def test_copy_of_a_swift_dlo_is_its_whole_body(s3, bucket, swift_auth):
    """A DLO's ETag is the MD5 of its segments' ETags, not of its body:
    its copy must not be held to it (that was a BadDigest)."""
    url, token = swift_auth
    for name, data in (('seg/1', b'abc'), ('seg/2', b'def')):
        swiftclient.put_object(url, token, bucket, name, data)
    swiftclient.put_object(url, token, bucket, 'dlo', b'', headers={
        'X-Object-Manifest': '%s/seg/' % bucket})
    out = s3.copy_object(Bucket=bucket, Key='dlo-copy',
                         CopySource={'Bucket': bucket, 'Key': 'dlo'})
    assert out['CopyObjectResult']['ETag'] == \
        '"%s"' % hashlib.md5(b'abcdef').hexdigest()
    assert s3.get_object(Bucket=bucket, Key='dlo-copy')['Body'].read() == \
        b'abcdef'


def test_buckets_named_like_swift_paths(s3, proxy, swift_auth):
    """'info' and 'auth' are valid bucket names: signed S3 requests
    on them are S3's, while /info and /auth/v1.0 stay the Swift API's."""
    for name in ('info', 'auth'):
        s3.create_bucket(Bucket=name)
        try:
            s3.put_object(Bucket=name, Key='k', Body=b'v')
            assert s3.get_object(Bucket=name, Key='k')['Body'].read() == \
                b'v'
            assert [o['Key'] for o in s3.list_objects_v2(
                Bucket=name)['Contents']] == ['k']
            s3.delete_object(Bucket=name, Key='k')
        finally:
            s3.delete_bucket(Bucket=name)
    assert 's3api' in requests.get(proxy + '/info').json()
    assert swiftclient.get_auth(proxy + '/auth/v1.0', 'test:tester',
                                'testing')[1]
