"""One bucket namespace across accounts (the S3 bucket registry), through
the all-in-one proxy (its pipeline has s3api) with boto3 and the Swift
API: a name one account holds is BucketAlreadyExists for every other one
until its owner deletes the bucket, and nobody reaches the registry."""
import uuid

import pytest
import requests

boto3 = pytest.importorskip('boto3')
pytest.importorskip('objstore.middleware.s3api.registry')
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

REGISTRY = '.s3_buckets'


def make_client(url, key, secret):
    return boto3.client(
        's3', endpoint_url=url, aws_access_key_id=key,
        aws_secret_access_key=secret, region_name='us-east-1',
        config=Config(s3={'addressing_style': 'path'},
                      retries={'max_attempts': 1}))


@pytest.fixture(scope='module')
def proxy(aio_cluster):
    assert 's3api' in requests.get(aio_cluster['url'] + '/info').json()
    return aio_cluster['url']


@pytest.fixture(scope='module')
def tester(proxy):
    return make_client(proxy, 'test:tester', 'testing')


@pytest.fixture(scope='module')
def tester2(proxy):
    return make_client(proxy, 'test2:tester2', 'testing2')


def swift_login(proxy, user, key):
    resp = requests.get(proxy + '/auth/v1.0',
                        headers={'X-Auth-User': user, 'X-Auth-Key': key})
    assert resp.status_code == 200
    return resp.headers['X-Storage-Url'], resp.headers['X-Auth-Token']


def error(call, *args, **kwargs):
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    resp = info.value.response
    return resp['Error']['Code'], resp['ResponseMetadata']['HTTPStatusCode']


def bucket_names(client):
    return [b['Name'] for b in client.list_buckets()['Buckets']]


def swift_containers(proxy, user, key):
    url, token = swift_login(proxy, user, key)
    resp = requests.get(url + '?format=json',
                        headers={'X-Auth-Token': token})
    assert resp.status_code in (200, 204)
    return [c['name'] for c in resp.json()] if resp.status_code == 200 \
        else []


def test_a_name_is_held_by_one_account(proxy, tester, tester2):
    name = 'shared-name-' + uuid.uuid4().hex[:8]
    tester.create_bucket(Bucket=name)
    tester.put_object(Bucket=name, Key='k', Body=b'mine')

    assert error(tester2.create_bucket, Bucket=name) == \
        ('BucketAlreadyExists', 409)
    # nothing changed for either account
    assert tester.get_object(Bucket=name, Key='k')['Body'].read() == b'mine'
    assert name in bucket_names(tester)
    assert name not in bucket_names(tester2)
    assert name not in swift_containers(proxy, 'test2:tester2', 'testing2')
    # the owner creating it again is still fine (us-east-1: 200)
    tester.create_bucket(Bucket=name)
    assert tester.get_object(Bucket=name, Key='k')['Body'].read() == b'mine'

    # the owner deletes it: the name is free for anyone
    assert error(tester.delete_bucket, Bucket=name)[0] == 'BucketNotEmpty'
    assert error(tester2.create_bucket, Bucket=name)[0] == \
        'BucketAlreadyExists'
    tester.delete_object(Bucket=name, Key='k')
    tester.delete_bucket(Bucket=name)
    tester2.create_bucket(Bucket=name)
    tester2.put_object(Bucket=name, Key='k', Body=b'theirs')
    assert error(tester.create_bucket, Bucket=name) == \
        ('BucketAlreadyExists', 409)
    assert name not in bucket_names(tester)
    assert tester2.get_object(Bucket=name, Key='k')['Body'].read() == \
        b'theirs'
    tester2.delete_object(Bucket=name, Key='k')
    tester2.delete_bucket(Bucket=name)


def test_a_failed_create_leaves_the_name_free(proxy, tester2):
    """test:tester3 is no admin of its account: its CreateBucket is
    refused and its claim on the name released."""
    name = 'refused-' + uuid.uuid4().hex[:8]
    tester3 = make_client(proxy, 'test:tester3', 'testing3')
    assert error(tester3.create_bucket, Bucket=name)[0] == 'AccessDenied'
    assert name not in swift_containers(proxy, 'test:tester', 'testing')
    tester2.create_bucket(Bucket=name)
    tester2.delete_bucket(Bucket=name)


def test_swift_made_containers_keep_working(proxy, tester, tester2):
    """A container made through the Swift API is not registered until
    its owner creates it through S3; it works for its owner meanwhile."""
    name = 'swift-made-' + uuid.uuid4().hex[:8]
    url, token = swift_login(proxy, 'test:tester', 'testing')
    assert requests.put('%s/%s' % (url, name),
                        headers={'X-Auth-Token': token}).status_code == 201
    tester.put_object(Bucket=name, Key='k', Body=b'x')
    assert tester.get_object(Bucket=name, Key='k')['Body'].read() == b'x'
    tester.create_bucket(Bucket=name)           # registers the name
    assert error(tester2.create_bucket, Bucket=name)[0] == \
        'BucketAlreadyExists'
    tester.delete_object(Bucket=name, Key='k')
    tester.delete_bucket(Bucket=name)
    tester2.create_bucket(Bucket=name)
    tester2.delete_bucket(Bucket=name)


def test_nobody_reaches_the_registry(proxy, tester, tester2):
    name = 'guarded-' + uuid.uuid4().hex[:8]
    tester.create_bucket(Bucket=name)
    paths = ['/v1/%s' % REGISTRY, '/v1/%s/buckets' % REGISTRY,
             '/v1/%s/buckets/%s' % (REGISTRY, name)]
    for user, key in (('test:tester', 'testing'),
                      ('test2:tester2', 'testing2'),
                      ('admin:admin', 'admin'), (None, None)):
        headers = {}
        if user:
            headers['X-Auth-Token'] = swift_login(proxy, user, key)[1]
        for path in paths:
            for method in ('GET', 'HEAD', 'POST', 'PUT', 'DELETE'):
                resp = requests.request(
                    method, proxy + path, data=b'',
                    headers=dict(headers, **{
                        'X-Object-Meta-Owner-Account': 'AUTH_test2'}))
                assert resp.status_code in (401, 403), (user, method, path)
    # through S3: the registry account is nobody's bucket
    for client in (tester, tester2):
        assert error(client.list_objects, Bucket=REGISTRY)[0] == \
            'InvalidBucketName'
        assert error(client.put_object, Bucket=REGISTRY, Key='buckets/' +
                     name, Body=b'')[0] == 'InvalidBucketName'
        assert error(client.copy_object, Bucket=name, Key='stolen',
                     CopySource='/%s/buckets/%s' % (REGISTRY, name))[0] in \
            ('InvalidBucketName', 'InvalidArgument', 'NoSuchBucket')
    assert 'stolen' not in [o['Key'] for o in tester.list_objects(
        Bucket=name).get('Contents', [])]
    # the entry is as it was: still tester's name
    assert error(tester2.create_bucket, Bucket=name)[0] == \
        'BucketAlreadyExists'
    tester.delete_bucket(Bucket=name)
    tester2.create_bucket(Bucket=name)
    tester2.delete_bucket(Bucket=name)
