"""Server-side copy (the copy middleware) through a real proxy and cluster.

The all-in-one proxy has copy in its pipeline where Swift puts it (after
auth, before slo, dlo and symlink), so a copy reads its source as a GET
does: large
objects assembled, links followed, unless the copy request asks for the
manifest (``multipart-manifest=get``) or the link (``symlink=get``).
Clients are plain HTTP (requests); each test works in its own container.
"""
import hashlib
import json
import os
import uuid

import pytest
import requests



def md5(data):
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope='module')
def proxy(aio_cluster):
    """The all-in-one proxy: copy sits after tempauth, before slo, dlo,
    versioned_writes and symlink."""
    assert 'copy' in requests.get(aio_cluster['url'] + '/info').json()
    return aio_cluster['url']


class Client:
    """requests with one user's token, paths under its storage URL."""

    def __init__(self, proxy):
        resp = requests.get(proxy + '/auth/v1.0', headers={
            'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
        assert resp.status_code == 200, resp.text
        self.url = resp.headers['X-Storage-Url']
        self.token = resp.headers['X-Auth-Token']
        self.session = requests.Session()

    def __call__(self, method, path, headers=None, **kwargs):
        headers = dict(headers or {}, **{'X-Auth-Token': self.token})
        return self.session.request(method, self.url + path,
                                    headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope='module')
def client(proxy):
    return Client(proxy)


@pytest.fixture
def c(client):
    name = 'copy-' + uuid.uuid4().hex[:8]
    assert client('PUT', '/' + name).status_code in (201, 202)
    return name


def put_segments(client, c, sizes):
    """[(name, data, etag)] of segments uploaded to ``c``."""
    out = []
    for index, size in enumerate(sizes):
        data = os.urandom(size)
        name = 'seg/%03d' % index
        resp = client('PUT', '/%s/%s' % (c, name), data=data)
        assert resp.status_code == 201
        out.append((name, data, resp.headers['Etag']))
    return out


def put_slo(client, c, name, segs, content_type='text/x-big'):
    manifest = [{'path': '%s/%s' % (c, n), 'etag': e, 'size_bytes': len(d)}
                for n, d, e in segs]
    resp = client('PUT', '/%s/%s?multipart-manifest=put' % (c, name),
                  data=json.dumps(manifest), headers={
                      'Content-Type': content_type,
                      'X-Object-Meta-Kind': 'slo'})
    assert resp.status_code == 201, resp.text
    return b''.join(d for _, d, _ in segs)


def test_info_advertises_copy(proxy):
    assert 'copy' in requests.get(proxy + '/info').json()


def test_copy_of_an_slo_is_the_assembled_object(client, c):
    whole = put_slo(client, c, 'big', put_segments(client, c,
                                                   [70000, 70000, 123]))
    resp = client('PUT', '/%s/flat' % c, headers={
        'X-Copy-From': '%s/big' % c})
    assert resp.status_code == 201, resp.text
    assert resp.headers['X-Copied-From'] == '%s/big' % c
    assert resp.headers['Etag'].strip('"') == md5(whole)
    got = client('GET', '/%s/flat' % c)
    assert got.content == whole
    assert got.headers['Etag'].strip('"') == md5(whole)
    assert got.headers['Content-Type'] == 'text/x-big'
    assert got.headers['X-Object-Meta-Kind'] == 'slo'
    # a plain object now: no manifest behind it
    assert 'X-Static-Large-Object' not in got.headers
    raw = client('GET', '/%s/flat?multipart-manifest=get' % c)
    assert raw.content == whole


def test_copy_of_an_slo_manifest_is_a_new_slo_sharing_segments(client, c):
    segs = put_segments(client, c, [1000, 2000])
    whole = put_slo(client, c, 'big', segs, 'text/x-manifest')
    resp = client('COPY', '/%s/big?multipart-manifest=get' % c, headers={
        'Destination': '%s/big2' % c})
    assert resp.status_code == 201, resp.text
    head = client('HEAD', '/%s/big2' % c)
    assert head.headers['X-Static-Large-Object'].lower() == 'true'
    assert head.headers['Content-Type'] == 'text/x-manifest'
    assert head.headers['X-Object-Meta-Kind'] == 'slo'
    assert head.headers['Etag'] == client('HEAD', '/%s/big' % c) \
        .headers['Etag']
    manifest = client('GET', '/%s/big2?multipart-manifest=get' % c).json()
    assert [e['name'] for e in manifest] == \
        ['/%s/%s' % (c, n) for n, _, _ in segs]
    # the copy stands on its own once the first manifest is gone
    assert client('DELETE', '/%s/big' % c).status_code == 204
    assert client('GET', '/%s/big2' % c).content == whole


def test_copy_of_a_symlink_is_its_targets_bytes(client, c):
    client('PUT', '/%s/target' % c, data=b'pointed at', headers={
        'Content-Type': 'text/x-target'})
    assert client('PUT', '/%s/link' % c, data=b'', headers={
        'X-Symlink-Target': '%s/target' % c}).status_code == 201
    resp = client('PUT', '/%s/copied' % c, headers={
        'X-Copy-From': '%s/link' % c})
    assert resp.status_code == 201, resp.text
    got = client('GET', '/%s/copied?symlink=get' % c)
    assert got.content == b'pointed at'
    assert got.headers['Content-Type'] == 'text/x-target'
    assert 'X-Symlink-Target' not in got.headers
    # the copy keeps its bytes when the target changes
    client('PUT', '/%s/target' % c, data=b'changed')
    assert client('GET', '/%s/copied' % c).content == b'pointed at'


def test_copy_of_a_symlink_with_symlink_get_is_a_new_link(client, c):
    client('PUT', '/%s/target' % c, data=b'first')
    client('PUT', '/%s/link' % c, data=b'', headers={
        'X-Symlink-Target': '%s/target' % c})
    resp = client('COPY', '/%s/link?symlink=get' % c, headers={
        'Destination': '%s/link2' % c})
    assert resp.status_code == 201, resp.text
    link = client('GET', '/%s/link2?symlink=get' % c)
    assert link.content == b''
    assert link.headers['X-Symlink-Target'] == '%s/target' % c
    client('PUT', '/%s/target' % c, data=b'second')
    assert client('GET', '/%s/link2' % c).content == b'second'


def test_copy_of_a_dlo_and_of_its_manifest(client, c):
    for index, data in enumerate((b'one-', b'two-', b'three')):
        client('PUT', '/%s/parts/%d' % (c, index), data=data)
    assert client('PUT', '/%s/dlo' % c, data=b'', headers={
        'X-Object-Manifest': '%s/parts/' % c}).status_code == 201
    resp = client('PUT', '/%s/dlo-flat' % c, headers={
        'X-Copy-From': '%s/dlo' % c})
    assert resp.status_code == 201, resp.text
    assert resp.headers['Etag'].strip('"') == md5(b'one-two-three')
    flat = client('GET', '/%s/dlo-flat' % c)
    assert flat.content == b'one-two-three'
    assert 'X-Object-Manifest' not in flat.headers
    resp = client('PUT', '/%s/dlo2?multipart-manifest=get' % c, headers={
        'X-Copy-From': '%s/dlo' % c})
    assert resp.status_code == 201, resp.text
    manifest = client('HEAD', '/%s/dlo2?multipart-manifest=get' % c)
    assert manifest.headers['X-Object-Manifest'] == '%s/parts/' % c
    client('PUT', '/%s/parts/3' % c, data=b'+four')
    assert client('GET', '/%s/dlo2' % c).content == b'one-two-three+four'
    assert client('GET', '/%s/dlo-flat' % c).content == b'one-two-three'


def test_conditions_and_range_judge_the_source(client, c):
    body = b'0123456789'
    etag = client('PUT', '/%s/src' % c, data=body).headers['Etag']
    resp = client('PUT', '/%s/dst' % c, headers={
        'X-Copy-From': '%s/src' % c, 'If-Match': 'not-' + etag})
    assert resp.status_code == 412
    assert client('HEAD', '/%s/dst' % c).status_code == 404
    resp = client('PUT', '/%s/dst' % c, headers={
        'X-Copy-From': '%s/src' % c, 'If-Match': etag})
    assert resp.status_code == 201
    resp = client('PUT', '/%s/part' % c, headers={
        'X-Copy-From': '%s/src' % c, 'Range': 'bytes=2-4'})
    assert resp.status_code == 201, resp.text
    assert client('GET', '/%s/part' % c).content == b'234'


def test_bad_copies_are_refused_and_store_nothing(client, c):
    client('PUT', '/%s/src' % c, data=b'data')
    client('PUT', '/%s/dst' % c, data=b'kept')
    cases = [
        ('PUT', {'X-Copy-From': 'no-slash'}, b'', 412),
        ('PUT', {'X-Copy-From': '%s/src' % c}, b'body', 400),
        ('PUT', {'X-Copy-From': '%s/missing' % c}, b'', 404),
        ('PUT', {'X-Copy-From': '%s/src' % c,
                 'X-Copy-From-Account': 'a/b'}, b'', 412),
        ('PUT', {'X-Copy-From': '%s/src' % c,
                 'X-Symlink-Target': '%s/src' % c}, b'', 400),
    ]
    for method, headers, data, status in cases:
        resp = client(method, '/%s/dst' % c, headers=headers, data=data)
        assert resp.status_code == status, (headers, resp.text)
        assert resp.headers['X-Trans-Id'].startswith('tx')
        assert '\n' not in resp.text.strip()
    assert client('COPY', '/%s/src' % c).status_code == 412
    assert client('COPY', '/%s/src' % c, headers={
        'Destination': '%s/dst' % c,
        'Destination-Account': ''}).status_code == 201
    assert client('GET', '/%s/dst' % c).content == b'data'
    assert client('COPY', '/%s/missing' % c, headers={
        'Destination': '%s/dst' % c}).status_code == 404
    assert client('GET', '/%s/dst' % c).content == b'data'
