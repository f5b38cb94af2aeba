"""Symlinks and bulk requests through a real proxy over the aio cluster.

A proxy of this module's own (the all-in-one pipeline, with a small bulk
delete limit) runs over the `aio_cluster` storage nodes; symlinks are
made and read with python-swiftclient, bulk requests with requests.
"""
import io
import json
import os
import tarfile
import uuid

import pytest
import requests

from objstore.cli import aio
from test.conftest import ServerProcess, free_port

swiftclient = pytest.importorskip('swiftclient.client')
ClientException = pytest.importorskip('swiftclient.exceptions') \
    .ClientException

BULK = 'use = objstore.middleware.bulk\n'


@pytest.fixture(scope='module')
def proxy(aio_cluster, tmp_path_factory):
    port = free_port()
    text = aio.proxy_conf_text(port, account_autocreate='true')
    assert BULK in text
    text = text.replace(BULK, BULK + 'max_deletes_per_request = 5\n')
    conf = tmp_path_factory.mktemp('proxy') / 'proxy.conf'
    conf.write_text(text)
    env = dict(os.environ, OBJSTORE_CONF=aio_cluster['conf'])
    server = ServerProcess('objstore.proxy.server', str(conf), port, env)
    yield 'http://127.0.0.1:%d' % port
    server.stop()


@pytest.fixture(scope='module')
def auth(proxy):
    url, token = swiftclient.get_auth(proxy + '/auth/v1.0', 'test:tester',
                                      'testing')
    return url, token


@pytest.fixture
def names(auth):
    url, token = auth
    c = 'c-' + uuid.uuid4().hex[:8]
    swiftclient.put_container(url, token, c)
    return url, token, c


def test_info(proxy):
    info = requests.get(proxy + '/info').json()
    assert info['symlink']['symloop_max'] == 2
    assert info['bulk_delete']['max_deletes_per_request'] == 5
    assert 'max_failed_extractions' in info['bulk_upload']


def test_symlink_follow_get_and_listing(names):
    url, token, c = names
    swiftclient.put_object(url, token, c, 'target', b'hello world',
                           content_type='text/x-thing')
    swiftclient.put_object(url, token, c, 'link', b'',
                           headers={'X-Symlink-Target': '%s/target' % c})
    headers, body = swiftclient.get_object(url, token, c, 'link')
    assert body == b'hello world'
    assert headers['content-type'] == 'text/x-thing'
    assert headers['content-location'].endswith('/%s/target' % c)
    # a range applies to the target, not to the 0-byte link
    headers, body = swiftclient.get_object(url, token, c, 'link',
                                           headers={'Range': 'bytes=6-'})
    assert body == b'world'
    headers, body = swiftclient.get_object(url, token, c, 'link',
                                           query_string='symlink=get')
    assert body == b''
    assert headers['x-symlink-target'] == '%s/target' % c
    assert 'objstore_symlink' not in headers['content-type']
    _, listing = swiftclient.get_container(url, token, c)
    by_name = {e['name']: e for e in listing}
    assert by_name['link']['symlink_path'].endswith('/%s/target' % c)
    assert 'symlink_path' not in by_name['target']
    assert by_name['link']['content_type'] == 'application/symlink'


def test_dangling_loop_and_bad_targets(names):
    url, token, c = names
    swiftclient.put_object(url, token, c, 'dangling', b'',
                           headers={'X-Symlink-Target': '%s/none' % c})
    with pytest.raises(ClientException) as err:
        swiftclient.get_object(url, token, c, 'dangling')
    assert err.value.http_status == 404
    for a, b in (('l1', 'l2'), ('l2', 'l3'), ('l3', 'l1')):
        swiftclient.put_object(url, token, c, a, b'',
                               headers={'X-Symlink-Target': '%s/%s' % (c, b)})
    with pytest.raises(ClientException) as err:
        swiftclient.head_object(url, token, c, 'l1')
    assert err.value.http_status == 409
    with pytest.raises(ClientException) as err:
        swiftclient.put_object(url, token, c, 'bad', b'',
                               headers={'X-Symlink-Target': 'nocontainer'})
    assert err.value.http_status == 412
    with pytest.raises(ClientException) as err:
        swiftclient.put_object(url, token, c, 'bad', b'x',
                               headers={'X-Symlink-Target': '%s/t' % c})
    assert err.value.http_status == 400
    # none of the refused links was stored
    _, listing = swiftclient.get_container(url, token, c)
    assert 'bad' not in {e['name'] for e in listing}


def test_forged_link_is_a_plain_object(names):
    url, token, c = names
    swiftclient.put_object(url, token, c, 'secret', b'secret')
    swiftclient.put_object(
        url, token, c, 'forged', b'data',
        content_type='text/plain;objstore_symlink_target=%s%%2Fsecret' % c)
    _, body = swiftclient.get_object(url, token, c, 'forged')
    assert body == b'data'


def test_static_link_and_post(names):
    url, token, c = names
    etag = swiftclient.put_object(url, token, c, 'obj', b'v1')
    with pytest.raises(ClientException) as err:
        swiftclient.put_object(url, token, c, 'static', b'', headers={
            'X-Symlink-Target': '%s/obj' % c,
            'X-Symlink-Target-Etag': 'not-the-etag'})
    assert err.value.http_status == 409
    swiftclient.put_object(url, token, c, 'static', b'', headers={
        'X-Symlink-Target': '%s/obj' % c, 'X-Symlink-Target-Etag': etag})
    assert swiftclient.get_object(url, token, c, 'static')[1] == b'v1'
    swiftclient.put_object(url, token, c, 'obj', b'v2')
    with pytest.raises(ClientException) as err:
        swiftclient.get_object(url, token, c, 'static')
    assert err.value.http_status == 409
    resp = requests.post('%s/%s/static' % (url, c), allow_redirects=False,
                         headers={'X-Auth-Token': token,
                                  'X-Object-Meta-Color': 'blue'})
    assert resp.status_code == 307
    assert resp.headers['Location'].endswith('/%s/obj' % c)
    headers = swiftclient.head_object(url, token, c, 'static',
                                      query_string='symlink=get')
    assert headers['x-object-meta-color'] == 'blue'
    assert headers['x-symlink-target-etag'] == etag


def _tar(members, mode='w'):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.CHRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_extract_archive_and_bulk_delete(names):
    url, token, c = names
    body = _tar([('a.txt', b'A'), ('dir/b.txt', b'BB'),
                 ('../escape', b'x'), ('/abs', b'y'), ('dev', None)],
                mode='w:gz')
    resp = requests.put('%s/%s?extract-archive=tar.gz' % (url, c), data=body,
                        headers={'X-Auth-Token': token,
                                 'Accept': 'application/json'})
    assert resp.status_code == 200
    result = resp.json()
    assert result['Number Files Created'] == 2
    assert result['Response Status'] == '400 Bad Request'
    assert len(result['Errors']) == 3
    _, listing = swiftclient.get_container(url, token, c)
    assert sorted(e['name'] for e in listing) == ['a.txt', 'dir/b.txt']
    assert swiftclient.get_object(url, token, c, 'dir/b.txt')[1] == b'BB'
    # to the account: the first component is the container, made on demand
    other = 'x-' + uuid.uuid4().hex[:8]
    resp = requests.put('%s?extract-archive=tar' % url,
                        data=_tar([('%s/o1' % other, b'1')]),
                        headers={'X-Auth-Token': token})
    assert 'Number Files Created: 1' in resp.text
    # not an archive at all: the request is refused
    resp = requests.put('%s/%s?extract-archive=tar.gz' % (url, c),
                        data=b'not a tar', headers={'X-Auth-Token': token})
    assert resp.status_code == 400

    paths = '\n'.join(['/%s/a.txt' % c, '/%s/dir/b.txt' % c,
                       '/%s/missing' % c, '/%s' % other])
    resp = requests.post('%s?bulk-delete' % url, data=paths.encode(),
                         headers={'X-Auth-Token': token,
                                  'Accept': 'application/json'})
    result = resp.json()
    assert result['Number Deleted'] == 2
    assert result['Number Not Found'] == 1
    assert result['Errors'] == [['/%s' % other, '409 Conflict']]
    _, listing = swiftclient.get_container(url, token, c)
    assert listing == []
    resp = requests.delete('%s?bulk-delete' % url,
                           data='\n'.join(['/c/o%d' % i for i in range(6)]),
                           headers={'X-Auth-Token': token,
                                    'Accept': 'application/xml'})
    assert resp.status_code == 413
    assert b'<response_status>413' in resp.content


def test_bulk_needs_auth(proxy, names):
    url, token, c = names
    swiftclient.put_object(url, token, c, 'keep', b'k')
    resp = requests.post('%s?bulk-delete' % url, data='/%s/keep' % c)
    assert 'Response Status: 401 Unauthorized' in resp.text
    assert swiftclient.get_object(url, token, c, 'keep')[1] == b'k'
    assert json.loads(requests.get(proxy + '/info').text)['bulk_delete']


def test_link_target_is_system_metadata(names):
    url, token, c = names
    swiftclient.put_object(url, token, c, 'tgt', b'abc')
    etag = swiftclient.put_object(url, token, c, 'tgt2', b'xyz')
    swiftclient.put_object(url, token, c, 'lnk', b'', content_type='text/a',
                           headers={'X-Symlink-Target': '%s/tgt' % c})
    swiftclient.put_object(url, token, c, 'st', b'', headers={
        'X-Symlink-Target': '%s/tgt2' % c, 'X-Symlink-Target-Etag': etag})
    headers = swiftclient.head_object(url, token, c, 'lnk',
                                      query_string='symlink=get')
    assert headers['content-type'] == 'text/a'
    assert headers['x-symlink-target'] == '%s/tgt' % c
    assert not [k for k in headers if 'sysmeta' in k]
    # a metadata POST keeps the link (the target is system metadata)
    requests.post('%s/%s/lnk' % (url, c), allow_redirects=False, headers={
        'X-Auth-Token': token, 'Content-Type': 'text/b'})
    assert swiftclient.get_object(url, token, c, 'lnk')[1] == b'abc'
    _, listing = swiftclient.get_container(url, token, c)
    rows = {r['name']: r for r in listing}
    assert rows['lnk']['content_type'] == 'text/a'
    assert rows['lnk']['symlink_path'].endswith('/%s/tgt' % c)
    assert rows['st']['symlink_etag'] == etag
    assert rows['st']['symlink_bytes'] == 3
    # nor can a client forge a link with system metadata
    swiftclient.put_object(url, token, c, 'fake', b'data', headers={
        'X-Object-Sysmeta-Symlink-Target': '%s/tgt' % c})
    assert swiftclient.get_object(url, token, c, 'fake')[1] == b'data'
