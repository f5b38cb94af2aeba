"""Temporary URLs through a real proxy over the aio cluster.

The all-in-one proxy runs tempurl in front of the auth filter (as in
Swift). URLs are made with `objstore tempurl` and python-swiftclient's
`swift tempurl`, as users make them, and used with requests.
"""
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests


swiftclient = pytest.importorskip('swiftclient.client')

SWIFT = os.path.join(os.path.dirname(sys.executable), 'swift')
INVALID = b'401 Unauthorized: Temp URL invalid\n'


@pytest.fixture(scope='module')
def proxy(aio_cluster):
    """The all-in-one proxy: tempurl sits in front of s3api and tempauth,
    as in Swift."""
    assert 'tempurl' in requests.get(aio_cluster['url'] + '/info').json()
    return aio_cluster['url']


@pytest.fixture(scope='module')
def owner(proxy):
    """(storage url, token, account key) of test:tester, who set a key."""
    url, token = swiftclient.get_auth(proxy + '/auth/v1.0', 'test:tester',
                                      'testing')
    key = 'akey-' + uuid.uuid4().hex
    swiftclient.post_account(url, token, {
        'X-Account-Meta-Temp-URL-Key': key})
    return url, token, key


@pytest.fixture
def obj(owner):
    """(storage url, token, key, container, '/v1/...' object path)."""
    url, token, key = owner
    c = 'c-' + uuid.uuid4().hex[:8]
    swiftclient.put_container(url, token, c)
    swiftclient.put_object(url, token, c, 'dir/o.txt', b'hello temp',
                           headers={'X-Object-Meta-Secret': 'private',
                                    'X-Object-Meta-Public-Tag': 'shown'})
    path = '%s/%s/dir/o.txt' % (url[url.index('/v1/'):], c)
    return url, token, key, c, path


def objstore_tempurl(*args):
    out = subprocess.run(
        [sys.executable, '-m', 'objstore.cli.client.main', 'tempurl'] +
        [str(a) for a in args], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def swift_tempurl(*args):
    out = subprocess.run([SWIFT, 'tempurl'] + [str(a) for a in args],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_info(proxy):
    got = requests.get(proxy + '/info').json()['tempurl']
    assert got['methods'] == ['GET', 'HEAD', 'PUT', 'POST', 'DELETE']
    assert got['allowed_digests'] == ['sha256', 'sha512']
    assert got['outgoing_remove_headers'] == ['x-object-meta-*']


def test_get_with_objstore_and_swift_urls(proxy, obj):
    _, _, key, _, path = obj
    for signed in (objstore_tempurl('GET', 60, path, key),
                   objstore_tempurl('GET', 60, path, key, '--digest',
                                    'sha512'),
                   swift_tempurl('GET', 60, path, key),
                   swift_tempurl('--iso8601', 'GET', 60, path, key)):
        resp = requests.get(proxy + signed)
        assert resp.status_code == 200, (signed, resp.text)
        assert resp.content == b'hello temp'
        assert resp.headers['Content-Disposition'].startswith(
            'attachment; filename="o.txt"')
        assert 'X-Object-Meta-Secret' not in resp.headers
        assert resp.headers['X-Object-Meta-Public-Tag'] == 'shown'
    head = requests.head(proxy + swift_tempurl('GET', 60, path, key))
    assert head.status_code == 200
    assert head.headers['Content-Length'] == '10'
    named = requests.get(proxy + swift_tempurl('GET', 60, path, key) +
                         '&filename=report.txt')
    assert named.headers['Content-Disposition'].startswith(
        'attachment; filename="report.txt"')
    inline = requests.get(proxy + swift_tempurl('GET', 60, path, key) +
                          '&inline')
    assert inline.headers['Content-Disposition'] == 'inline'


def test_put_then_get_then_delete(proxy, obj):
    url, token, key, c, path = obj
    new = path.replace('o.txt', 'new.bin')
    resp = requests.put(proxy + swift_tempurl('PUT', 60, new, key),
                        data=b'uploaded')
    assert resp.status_code == 201
    assert swiftclient.get_object(url, token, c, 'dir/new.bin')[1] == \
        b'uploaded'
    # a PUT URL also lets its holder HEAD the object
    assert requests.head(proxy + swift_tempurl('PUT', 60, new, key)) \
        .status_code == 200
    # but neither GET nor DELETE
    for method in ('GET', 'DELETE'):
        resp = requests.request(method,
                                proxy + swift_tempurl('PUT', 60, new, key))
        assert resp.status_code == 401 and resp.content == INVALID
    resp = requests.delete(proxy + swift_tempurl('DELETE', 60, new, key))
    assert resp.status_code == 204
    assert requests.get(proxy + swift_tempurl('GET', 60, new, key)) \
        .status_code == 404


def test_invalid_urls_are_401_and_change_nothing(proxy, obj):
    url, token, key, c, path = obj
    past = int(time.time()) - 5
    bad = [
        swift_tempurl('--absolute', 'GET', past, path, key),     # expired
        swift_tempurl('GET', 60, path, 'wrong-key'),
        swift_tempurl('GET', 60, path.replace('o.txt', 'x.txt'), key)
        .replace('x.txt', 'o.txt'),                               # tampered
        path + '?temp_url_sig=deadbeef&temp_url_expires=9999999999',
        path + '?temp_url_expires=9999999999',
    ]
    for signed in bad:
        resp = requests.get(proxy + signed)
        assert resp.status_code == 401, signed
        assert resp.content == INVALID
    # a GET URL does not allow a write
    put = requests.put(proxy + swift_tempurl('GET', 60, path, key),
                       data=b'overwritten')
    assert put.status_code == 401
    assert swiftclient.get_object(url, token, c, 'dir/o.txt')[1] == \
        b'hello temp'
    # a stray or stale token changes nothing
    resp = requests.get(proxy + swift_tempurl('GET', 60, path, key),
                        headers={'X-Auth-Token': 'AUTH_tkbogus'})
    assert resp.status_code == 200


def test_no_leak_of_existence(proxy, obj):
    _, _, key, _, path = obj
    missing = path.replace('o.txt', 'missing')
    assert requests.get(proxy + swift_tempurl('GET', 60, missing, 'nope')) \
        .status_code == 401
    assert requests.get(proxy + swift_tempurl('GET', 60, path, 'nope')) \
        .status_code == 401
    # with a valid signature, the truth
    assert requests.get(proxy + swift_tempurl('GET', 60, missing, key)) \
        .status_code == 404


def test_container_key(proxy, obj):
    url, token, _, c, path = obj
    ckey = 'ckey-' + uuid.uuid4().hex
    swiftclient.post_container(url, token, c, {
        'X-Container-Meta-Temp-URL-Key-2': ckey})
    resp = requests.get(proxy + swift_tempurl('GET', 60, path, ckey))
    assert resp.status_code == 200 and resp.content == b'hello temp'
    # the container's key does not sign for another container
    other = 'o-' + uuid.uuid4().hex[:8]
    swiftclient.put_container(url, token, other)
    swiftclient.put_object(url, token, other, 'dir/o.txt', b'other')
    opath = path.replace('/%s/' % c, '/%s/' % other)
    assert requests.get(proxy + swift_tempurl('GET', 60, opath, ckey)) \
        .status_code == 401


def test_prefix_urls(proxy, obj):
    url, token, key, c, path = obj
    swiftclient.put_object(url, token, c, 'dir/sub/two', b'two')
    swiftclient.put_object(url, token, c, 'elsewhere', b'no')
    prefix_path = path.replace('o.txt', '')
    signed = swift_tempurl('--prefix-based', 'GET', 60, prefix_path, key)
    query = signed[signed.index('?'):]
    assert 'temp_url_prefix=dir/' in query or \
        'temp_url_prefix=dir%2F' in query
    for name, body in (('dir/o.txt', b'hello temp'), ('dir/sub/two', b'two')):
        resp = requests.get(proxy + prefix_path.replace('dir/', name) + query)
        assert resp.status_code == 200 and resp.content == body
    resp = requests.get(proxy + prefix_path.replace('dir/', 'elsewhere') +
                        query)
    assert resp.status_code == 401


def test_ip_range(proxy, obj):
    _, _, key, _, path = obj
    ok = swift_tempurl('--ip-range', '127.0.0.0/8', 'GET', 60, path, key)
    assert requests.get(proxy + ok).status_code == 200
    far = swift_tempurl('--ip-range', '192.0.2.0/24', 'GET', 60, path, key)
    assert requests.get(proxy + far).status_code == 401


def test_pointer_headers_refused_on_put(proxy, obj):
    url, token, key, c, path = obj
    new = path.replace('o.txt', 'pointer')
    resp = requests.put(proxy + swift_tempurl('PUT', 60, new, key), data=b'',
                        headers={'X-Object-Manifest': '%s/dir/' % c})
    assert resp.status_code == 400
    assert 'X-Object-Manifest' in resp.text
    assert requests.get(proxy + swift_tempurl('GET', 60, new, key)) \
        .status_code == 404


def test_keys_hidden_from_non_owner(proxy, obj):
    url, token, key, c, path = obj
    ckey = 'ckey-' + uuid.uuid4().hex
    swiftclient.post_container(url, token, c, {
        'X-Container-Meta-Temp-URL-Key': ckey,
        'X-Container-Read': 'test:tester3'})
    assert swiftclient.head_account(url, token)[
        'x-account-meta-temp-url-key'] == key
    assert swiftclient.head_container(url, token, c)[
        'x-container-meta-temp-url-key'] == ckey
    url3, token3 = swiftclient.get_auth(proxy + '/auth/v1.0', 'test:tester3',
                                        'testing3')
    for method in ('HEAD', 'GET'):
        resp = requests.request(method, '%s/%s' % (url3, c),
                                headers={'X-Auth-Token': token3})
        assert resp.status_code in (200, 204)
        assert not any('temp-url-key' in h.lower() for h in resp.headers)
    # the account itself is the owner's only
    resp = requests.head(url3, headers={'X-Auth-Token': token3})
    assert resp.status_code == 403
    assert not any('temp-url-key' in h.lower() for h in resp.headers)


def test_large_object_segments_read_through_account_key(proxy, obj):
    """An account key's URL covers the account: an SLO's segments in
    another container are read as the signer could read them."""
    url, token, key, c, path = obj
    segs = 's-' + uuid.uuid4().hex[:8]
    swiftclient.put_container(url, token, segs)
    manifest = []
    for i, data in enumerate((b'a' * 1024, b'b' * 10)):
        swiftclient.put_object(url, token, segs, 'p%d' % i, data)
        manifest.append({'path': '/%s/p%d' % (segs, i),
                         'etag': hashlib.md5(data).hexdigest(),
                         'size_bytes': len(data)})
    swiftclient.put_object(url, token, c, 'dir/big', json.dumps(manifest),
                           query_string='multipart-manifest=put')
    big = path.replace('o.txt', 'big')
    resp = requests.get(proxy + swift_tempurl('GET', 60, big, key))
    assert resp.status_code == 200
    assert resp.content == b'a' * 1024 + b'b' * 10
