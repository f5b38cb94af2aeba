"""S3 multipart uploads, the aws and s3cmd command lines, and signed
bodies that do not match, through the all-in-one proxy.

Parts are real 5 MiB parts (S3's minimum): clients expect that limit.
What S3 stored is read back through the Swift API.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import uuid

import pytest
import requests

boto3 = pytest.importorskip('boto3')
from boto3.s3.transfer import TransferConfig  # noqa: E402
swiftclient = pytest.importorskip('swiftclient.client')

from test.conftest import load_test_module  # noqa: E402

s3_helpers = load_test_module('s3_helpers')
make_client = s3_helpers.make_client
error_code = s3_helpers.error_code

MiB = 1024 * 1024


@pytest.fixture(scope='module')
def proxy(aio_cluster):
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
    name = 'mpu-' + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    return name


def s3_etag(parts):
    digest = hashlib.md5(b''.join(hashlib.md5(p).digest() for p in parts))
    return '"%s-%d"' % (digest.hexdigest(), len(parts))


def segment_names(swift_auth, bucket):
    url, token = swift_auth
    try:
        _, rows = swiftclient.get_container(url, token, bucket + '+segments')
    except swiftclient.ClientException as e:
        assert e.http_status == 404
        return []
    return [r['name'] for r in rows]


def test_multipart_lifecycle(s3, bucket, swift_auth):
    parts = [os.urandom(5 * MiB), b'tail' * 1000]
    up = s3.create_multipart_upload(Bucket=bucket, Key='big/obj',
                                    ContentType='text/x-big',
                                    Metadata={'kind': 'multi'})
    upload_id = up['UploadId']
    etags = []
    for number, data in enumerate(parts, 1):
        resp = s3.upload_part(Bucket=bucket, Key='big/obj', PartNumber=number,
                              UploadId=upload_id, Body=data)
        assert resp['ETag'] == '"%s"' % hashlib.md5(data).hexdigest()
        etags.append(resp['ETag'])
    listed = s3.list_parts(Bucket=bucket, Key='big/obj', UploadId=upload_id)
    assert [(p['PartNumber'], p['ETag'], p['Size']) for p in
            listed['Parts']] == [(1, etags[0], 5 * MiB),
                                 (2, etags[1], len(parts[1]))]
    page = s3.list_parts(Bucket=bucket, Key='big/obj', UploadId=upload_id,
                         MaxParts=1)
    assert page['IsTruncated'] and page['NextPartNumberMarker'] == 1
    rest = s3.list_parts(Bucket=bucket, Key='big/obj', UploadId=upload_id,
                         PartNumberMarker=1)
    assert [p['PartNumber'] for p in rest['Parts']] == [2]
    uploads = s3.list_multipart_uploads(Bucket=bucket)['Uploads']
    assert [(u['Key'], u['UploadId']) for u in uploads] == \
        [('big/obj', upload_id)]
    # the bucket listing shows no parts and ListBuckets no segments
    assert 'Contents' not in s3.list_objects_v2(Bucket=bucket)
    assert not any(b['Name'].endswith('+segments')
                   for b in s3.list_buckets()['Buckets'])
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key='big/obj', UploadId=upload_id,
        MultipartUpload={'Parts': [{'PartNumber': n, 'ETag': e}
                                   for n, e in enumerate(etags, 1)]})
    want = s3_etag(parts)
    assert done['ETag'] == want
    got = s3.get_object(Bucket=bucket, Key='big/obj')
    assert got['Body'].read() == b''.join(parts)
    assert got['ETag'] == want
    assert got['ContentType'] == 'text/x-big'
    assert got['Metadata'] == {'kind': 'multi'}
    head = s3.head_object(Bucket=bucket, Key='big/obj')
    assert head['ETag'] == want
    assert head['ContentLength'] == sum(map(len, parts))
    # conditions are judged against the S3 ETag
    s3.get_object(Bucket=bucket, Key='big/obj', IfMatch=want,
                  Range='bytes=0-3')['Body'].read()
    assert error_code(s3.get_object, Bucket=bucket, Key='big/obj',
                      IfNoneMatch=want) == '304'
    assert error_code(s3.get_object, Bucket=bucket, Key='big/obj',
                      IfMatch='"nope"') == 'PreconditionFailed'
    part2 = s3.get_object(Bucket=bucket, Key='big/obj', PartNumber=2)
    assert part2['Body'].read() == parts[1]
    assert part2['PartsCount'] == 2
    listing = s3.list_objects_v2(Bucket=bucket)['Contents']
    assert [(o['Key'], o['ETag'], o['Size']) for o in listing] == \
        [('big/obj', want, sum(map(len, parts)))]
    assert s3.list_multipart_uploads(Bucket=bucket).get('Uploads') is None
    # the same object through the Swift API: one large object
    url, token = swift_auth
    headers, body = swiftclient.get_object(url, token, bucket, 'big/obj')
    assert body == b''.join(parts)
    assert headers['x-static-large-object'] == 'True'
    assert headers['x-object-meta-kind'] == 'multi'
    assert sorted(segment_names(swift_auth, bucket)) == [
        'big/obj/%s/1' % upload_id, 'big/obj/%s/2' % upload_id]
    # deleting it deletes its parts
    s3.delete_object(Bucket=bucket, Key='big/obj')
    assert segment_names(swift_auth, bucket) == []
    assert error_code(s3.head_object, Bucket=bucket, Key='big/obj') == '404'
    s3.delete_bucket(Bucket=bucket)


def test_abort_and_unknown_uploads(s3, bucket, swift_auth):
    up = s3.create_multipart_upload(Bucket=bucket, Key='k')['UploadId']
    s3.upload_part(Bucket=bucket, Key='k', PartNumber=1, UploadId=up,
                   Body=b'abc')
    assert len(segment_names(swift_auth, bucket)) == 2
    s3.abort_multipart_upload(Bucket=bucket, Key='k', UploadId=up)
    assert segment_names(swift_auth, bucket) == []
    for call, extra in (
            (s3.list_parts, {}),
            (s3.abort_multipart_upload, {}),
            (s3.upload_part, {'PartNumber': 1, 'Body': b'x'}),
            (s3.complete_multipart_upload, {'MultipartUpload': {'Parts': [
                {'PartNumber': 1, 'ETag': '"%s"' % ('0' * 32)}]}})):
        for upload_id in (up, 'bogus', 'U' + '0' * 32):
            assert error_code(call, Bucket=bucket, Key='k',
                              UploadId=upload_id, **extra) == 'NoSuchUpload'
    assert error_code(s3.create_multipart_upload, Bucket='no-such-' +
                      uuid.uuid4().hex[:8], Key='k') == 'NoSuchBucket'


def test_list_uploads_paging_and_prefixes(s3, bucket):
    ids = {}
    for key in ('a/1', 'a/2', 'b', 'c/d/e'):
        ids[key] = s3.create_multipart_upload(Bucket=bucket,
                                              Key=key)['UploadId']
    second = s3.create_multipart_upload(Bucket=bucket, Key='b')['UploadId']
    everything = s3.list_multipart_uploads(Bucket=bucket)['Uploads']
    assert [u['Key'] for u in everything] == ['a/1', 'a/2', 'b', 'b',
                                              'c/d/e']
    assert {u['UploadId'] for u in everything if u['Key'] == 'b'} == \
        {ids['b'], second}
    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert page['IsTruncated'] and page['NextKeyMarker'] == 'a/2'
    rest = s3.list_multipart_uploads(
        Bucket=bucket, KeyMarker=page['NextKeyMarker'],
        UploadIdMarker=page['NextUploadIdMarker'])
    assert [u['Key'] for u in rest['Uploads']] == ['b', 'b', 'c/d/e']
    delim = s3.list_multipart_uploads(Bucket=bucket, Delimiter='/')
    assert [p['Prefix'] for p in delim['CommonPrefixes']] == ['a/', 'c/']
    assert [u['Key'] for u in delim['Uploads']] == ['b', 'b']
    only = s3.list_multipart_uploads(Bucket=bucket, Prefix='c/')
    assert [u['Key'] for u in only['Uploads']] == ['c/d/e']


def test_bad_completions_change_nothing(s3, bucket, swift_auth, proxy):
    small = [b'x' * 1000, b'y' * 1000]
    up = s3.create_multipart_upload(Bucket=bucket, Key='k')['UploadId']
    etags = [s3.upload_part(Bucket=bucket, Key='k', PartNumber=n,
                            UploadId=up, Body=d)['ETag']
             for n, d in enumerate(small, 1)]
    before = sorted(segment_names(swift_auth, bucket))

    def complete(parts):
        return error_code(s3.complete_multipart_upload, Bucket=bucket,
                          Key='k', UploadId=up,
                          MultipartUpload={'Parts': parts})
    assert complete([{'PartNumber': 1, 'ETag': etags[0]},
                     {'PartNumber': 2, 'ETag': etags[1]}]) == \
        'EntityTooSmall'
    assert complete([{'PartNumber': 2, 'ETag': etags[1]},
                     {'PartNumber': 1, 'ETag': etags[0]}]) == \
        'InvalidPartOrder'
    assert complete([{'PartNumber': 1, 'ETag': etags[1]}]) == 'InvalidPart'
    assert complete([{'PartNumber': 3, 'ETag': etags[0]}]) == 'InvalidPart'
    for bad in (0, 10001):
        assert error_code(s3.upload_part, Bucket=bucket, Key='k',
                          PartNumber=bad, UploadId=up, Body=b'z') == \
            'InvalidArgument'
    # a body that is not the XML asked for
    client = make_client(proxy)

    def garble(request, **kwargs):
        request.data = b'<CompleteMultipartUpload><Part>'
    client.meta.events.register('before-sign.s3.CompleteMultipartUpload',
                                garble)
    assert error_code(client.complete_multipart_upload, Bucket=bucket,
                      Key='k', UploadId=up, MultipartUpload={'Parts': [
                          {'PartNumber': 1, 'ETag': etags[0]}]}) == \
        'MalformedXML'
    assert sorted(segment_names(swift_auth, bucket)) == before
    assert error_code(s3.head_object, Bucket=bucket, Key='k') == '404'
    # a single small part is a fine upload (the last may be small)
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key='k', UploadId=up, MultipartUpload={'Parts': [
            {'PartNumber': 1, 'ETag': etags[0]}]})
    assert done['ETag'] == s3_etag(small[:1])
    assert s3.get_object(Bucket=bucket, Key='k')['Body'].read() == small[0]
    # the unused part went with the marker
    assert segment_names(swift_auth, bucket) == ['k/%s/1' % up]
    # deleted through DeleteObjects too, parts and all
    s3.delete_objects(Bucket=bucket, Delete={'Objects': [{'Key': 'k'}]})
    assert segment_names(swift_auth, bucket) == []


def test_upload_part_copy(s3, bucket):
    source = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key='src', Body=source)
    up = s3.create_multipart_upload(Bucket=bucket, Key='dst')['UploadId']
    first = s3.upload_part_copy(
        Bucket=bucket, Key='dst', UploadId=up, PartNumber=1,
        CopySource={'Bucket': bucket, 'Key': 'src'},
        CopySourceRange='bytes=0-%d' % (5 * MiB - 1))
    second = s3.upload_part_copy(
        Bucket=bucket, Key='dst', UploadId=up, PartNumber=2,
        CopySource={'Bucket': bucket, 'Key': 'src'},
        CopySourceRange='bytes=%d-%d' % (5 * MiB, len(source) - 1))
    assert first['CopyPartResult']['ETag'] == \
        '"%s"' % hashlib.md5(source[:5 * MiB]).hexdigest()
    assert error_code(s3.upload_part_copy, Bucket=bucket, Key='dst',
                      UploadId=up, PartNumber=3,
                      CopySource={'Bucket': bucket, 'Key': 'src'},
                      CopySourceRange='bytes=0-%d' % len(source)) == \
        'InvalidRange'
    s3.complete_multipart_upload(
        Bucket=bucket, Key='dst', UploadId=up, MultipartUpload={'Parts': [
            {'PartNumber': 1, 'ETag': first['CopyPartResult']['ETag']},
            {'PartNumber': 2, 'ETag': second['CopyPartResult']['ETag']}]})
    assert s3.get_object(Bucket=bucket, Key='dst')['Body'].read() == source


def test_transfer_upload_and_download(s3, bucket, swift_auth, tmp_path):
    data = os.urandom(12 * MiB)
    src = tmp_path / 'big.bin'
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB,
                            multipart_chunksize=5 * MiB, max_concurrency=2)
    s3.upload_file(str(src), bucket, 'file.bin', Config=config)
    head = s3.head_object(Bucket=bucket, Key='file.bin')
    assert head['ETag'].endswith('-3"')
    dst = tmp_path / 'back.bin'
    s3.download_file(bucket, 'file.bin', str(dst), Config=config)
    assert dst.read_bytes() == data
    url, token = swift_auth
    _, body = swiftclient.get_object(url, token, bucket, 'file.bin')
    assert body == data


def test_plain_put_etag_is_md5(s3, bucket):
    resp = s3.put_object(Bucket=bucket, Key='p', Body=b'plain')
    assert resp['ETag'] == '"%s"' % hashlib.md5(b'plain').hexdigest()
    assert s3.list_objects(Bucket=bucket)['Contents'][0]['ETag'] == \
        resp['ETag']
    # partNumber=1 of a plain object is the whole object
    whole = s3.get_object(Bucket=bucket, Key='p', PartNumber=1)
    assert whole['Body'].read() == b'plain'
    assert error_code(s3.head_object, Bucket=bucket, Key='p',
                      PartNumber=2) == '416'


# -- bodies that do not match their signature ------------------------------

def _signed_put(proxy, bucket, key, body, content_sha256, data=None,
                headers=None):
    """A PUT signed (SigV4) for ``content_sha256``, sending ``data``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    url = '%s/%s/%s' % (proxy, bucket, key)
    hdrs = {'x-amz-content-sha256': content_sha256}
    hdrs.update(headers or {})
    request = AWSRequest(method='PUT', url=url, data=body, headers=hdrs)
    SigV4Auth(Credentials('test:tester', 'testing'), 's3',
              'us-east-1').add_auth(request)
    sent = dict(request.headers.items())
    return requests.put(url, data=body if data is None else data,
                        headers=sent)


@pytest.mark.parametrize('size', [100, 200 * 1024])
def test_wrong_payload_hash_stores_nothing(proxy, s3, bucket, size):
    body = os.urandom(size)
    wrong = hashlib.sha256(b'something else').hexdigest()
    resp = _signed_put(proxy, bucket, 'h', body, wrong)
    assert resp.status_code == 400
    assert b'<Code>XAmzContentSHA256Mismatch</Code>' in resp.content
    assert error_code(s3.head_object, Bucket=bucket, Key='h') == '404'
    # and the right hash stores it
    right = hashlib.sha256(body).hexdigest()
    assert _signed_put(proxy, bucket, 'h', body, right).status_code == 200
    assert s3.get_object(Bucket=bucket, Key='h')['Body'].read() == body


@pytest.mark.parametrize('size', [1000, 300 * 1024])
def test_tampered_chunked_body_stores_nothing(proxy, s3, bucket, size):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from objstore.middleware.s3api import chunked, sigv4
    data = os.urandom(size)
    url = '%s/%s/c' % (proxy, bucket)
    headers = {'x-amz-content-sha256': sigv4.STREAMING_PAYLOAD,
               'x-amz-decoded-content-length': str(size),
               'Content-Encoding': 'aws-chunked'}
    request = AWSRequest(method='PUT', url=url, headers=headers)
    SigV4Auth(Credentials('test:tester', 'testing'), 's3',
              'us-east-1').add_auth(request)
    sent = dict(request.headers.items())
    seed = sent['Authorization'].rsplit('Signature=', 1)[1]
    amz_date = sent['X-Amz-Date']
    key = sigv4.signing_key('testing', amz_date[:8], 'us-east-1', 's3')
    signer = chunked.ChunkSigner(key, amz_date, sigv4.scope(
        amz_date[:8], 'us-east-1', 's3'), seed)
    body = chunked.encode(data, signer)
    tampered = bytearray(body)
    tampered[len(tampered) // 2] ^= 1
    resp = requests.put(url, data=bytes(tampered), headers=sent)
    assert resp.status_code == 403, resp.content
    assert b'<Code>SignatureDoesNotMatch</Code>' in resp.content
    assert error_code(s3.head_object, Bucket=bucket, Key='c') == '404'
    resp = requests.put(url, data=body, headers=sent)
    assert resp.status_code == 200, resp.content
    assert s3.get_object(Bucket=bucket, Key='c')['Body'].read() == data


# -- command lines -----------------------------------------------------------

def _tool(name):
    found = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(found):
        return found
    return shutil.which(name)


def _run(argv, env):
    result = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, (argv, result.stdout, result.stderr)
    return result.stdout.decode()


@pytest.fixture
def aws_env(tmp_path):
    if _tool('aws') is None:
        pytest.skip('the aws command line is not installed')
    home = tmp_path / 'home'
    (home / '.aws').mkdir(parents=True)
    (home / '.aws' / 'config').write_text(
        '[default]\nregion = us-east-1\ns3 =\n'
        '    multipart_threshold = 5MB\n    multipart_chunksize = 5MB\n'
        '    addressing_style = path\n')
    (home / '.aws' / 'credentials').write_text(
        '[default]\naws_access_key_id = test:tester\n'
        'aws_secret_access_key = testing\n')
    env = dict(os.environ, HOME=str(home),
               AWS_CONFIG_FILE=str(home / '.aws' / 'config'),
               AWS_SHARED_CREDENTIALS_FILE=str(home / '.aws' /
                                               'credentials'))
    return env


def test_aws_cp_multipart_and_presign(proxy, s3, bucket, aws_env, tmp_path,
                                      swift_auth):
    aws = _tool('aws')
    data = os.urandom(11 * MiB)
    src = tmp_path / 'big'
    src.write_bytes(data)
    _run([aws, '--endpoint-url', proxy, 's3', 'cp', str(src),
          's3://%s/cli/big' % bucket], aws_env)
    assert s3.head_object(Bucket=bucket, Key='cli/big')['ETag'] \
        .endswith('-3"')
    back = tmp_path / 'back'
    _run([aws, '--endpoint-url', proxy, 's3', 'cp',
          's3://%s/cli/big' % bucket, str(back)], aws_env)
    assert back.read_bytes() == data
    url = _run([aws, '--endpoint-url', proxy, 's3', 'presign',
                's3://%s/cli/big' % bucket, '--expires-in', '300'],
               aws_env).strip()
    resp = requests.get(url)
    assert resp.status_code == 200 and resp.content == data
    swift_url, token = swift_auth
    _, body = swiftclient.get_object(swift_url, token, bucket, 'cli/big')
    assert body == data


def test_s3cmd(proxy, tmp_path, swift_auth, s3):
    s3cmd = _tool('s3cmd')
    if s3cmd is None:
        pytest.skip('s3cmd is not installed')
    host = proxy.split('://', 1)[1]
    conf = tmp_path / 's3cfg'
    conf.write_text(
        '[default]\naccess_key = test:tester\nsecret_key = testing\n'
        'host_base = %s\nhost_bucket = %s\nuse_https = False\n'
        'signature_v2 = False\nbucket_location = us-east-1\n'
        'check_ssl_certificate = False\n' % (host, host))
    env = dict(os.environ, HOME=str(tmp_path))
    base = [sys.executable, s3cmd, '-c', str(conf)]
    name = 's3cmd-' + uuid.uuid4().hex[:8]
    _run(base + ['mb', 's3://' + name], env)
    small = tmp_path / 'small'
    small.write_bytes(b'small file')
    big = tmp_path / 'big'
    data = os.urandom(11 * MiB)
    big.write_bytes(data)
    _run(base + ['put', str(small), 's3://%s/small' % name], env)
    _run(base + ['put', '--multipart-chunk-size-mb=5', str(big),
                 's3://%s/big' % name], env)
    listing = _run(base + ['ls', 's3://%s' % name], env)
    assert 's3://%s/small' % name in listing and \
        's3://%s/big' % name in listing
    assert s3.head_object(Bucket=name, Key='big')['ETag'].endswith('-3"')
    got = tmp_path / 'got'
    _run(base + ['get', 's3://%s/big' % name, str(got)], env)
    assert got.read_bytes() == data
    url, token = swift_auth
    _, body = swiftclient.get_object(url, token, name, 'big')
    assert body == data
    _run(base + ['del', 's3://%s/small' % name, 's3://%s/big' % name], env)
    _run(base + ['rb', 's3://' + name], env)
    assert name not in [b['Name'] for b in s3.list_buckets()['Buckets']]
    assert segment_names(swift_auth, name) == []


def test_copy_conditions_judge_the_s3_etag(s3, bucket):
    """x-amz-copy-source-if-(none-)match compare the source's S3 ETag
    (a multipart object's '<md5 of md5s>-<n>'), as a GET's If-* do."""
    parts = [os.urandom(5 * MiB), b'end']
    up = s3.create_multipart_upload(Bucket=bucket, Key='mp')['UploadId']
    etags = [s3.upload_part(Bucket=bucket, Key='mp', PartNumber=n,
                            UploadId=up, Body=data)['ETag']
             for n, data in enumerate(parts, 1)]
    s3.complete_multipart_upload(
        Bucket=bucket, Key='mp', UploadId=up, MultipartUpload={'Parts': [
            {'PartNumber': n, 'ETag': e} for n, e in enumerate(etags, 1)]})
    want = s3_etag(parts)
    source = {'Bucket': bucket, 'Key': 'mp'}
    s3.copy_object(Bucket=bucket, Key='copy', CopySource=source,
                   CopySourceIfMatch=want)
    assert s3.get_object(Bucket=bucket, Key='copy')['Body'].read() == \
        b''.join(parts)
    for condition in ({'CopySourceIfMatch': '"nope"'},
                      {'CopySourceIfNoneMatch': want}):
        assert error_code(s3.copy_object, Bucket=bucket, Key='refused',
                          CopySource=source, **condition) == \
            'PreconditionFailed'
    assert error_code(s3.head_object, Bucket=bucket, Key='refused') == '404'
    dst = s3.create_multipart_upload(Bucket=bucket, Key='dst')['UploadId']
    s3.upload_part_copy(Bucket=bucket, Key='dst', UploadId=dst, PartNumber=1,
                        CopySource=source, CopySourceIfMatch=want,
                        CopySourceRange='bytes=0-9')
    for condition in ({'CopySourceIfMatch': '"nope"'},
                      {'CopySourceIfNoneMatch': want}):
        assert error_code(s3.upload_part_copy, Bucket=bucket, Key='dst',
                          UploadId=dst, PartNumber=2, CopySource=source,
                          **condition) == 'PreconditionFailed'
    assert [p['PartNumber'] for p in s3.list_parts(
        Bucket=bucket, Key='dst', UploadId=dst)['Parts']] == [1]
    s3.abort_multipart_upload(Bucket=bucket, Key='dst', UploadId=dst)
