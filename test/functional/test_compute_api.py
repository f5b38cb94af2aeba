"""compute-api as a real process beside a real all-in-one objstore cluster.

Images go through HTTP into objstore (the caller's own account, with the
caller's own token); servers are created with no agent running, so builds
end in ERROR with the scheduler's reason; agents' registration goes
through the signed internal endpoint as an agent would send it.
"""
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest
import requests

from compute.common.signed_http import sign_headers
from compute.image.swift import SwiftSession
from objstore.cli import aio
from test.conftest import free_port, wait_for_port

SECRET = secrets.token_hex(16)


@pytest.fixture(scope='module')
def api(aio_cluster, tmp_path_factory):
    """{'url', 'proc'} of a compute-api process on a free port."""
    base = tmp_path_factory.mktemp('compute-api')
    port = free_port()
    conf = base / 'compute.conf'
    conf.write_text(
        '[DEFAULT]\nagent_secret = %s\n\n[api]\nbind_ip = 127.0.0.1\n'
        'bind_port = %d\nstate_dir = %s\nobjstore_url = %s\n'
        'proxy_conf = %s\nheartbeat_timeout = 30\n\n[flavors]\n'
        'm1.huge = 64,262144,100\n'
        % (SECRET, port, base / 'state', aio_cluster['url'],
           aio.proxy_conf_path(aio_cluster['var'])))
    log = open(base / 'api.log', 'wb')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'compute.api.server', '--conf', str(conf)],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
        start_new_session=True)
    try:
        wait_for_port(port, proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError((base / 'api.log').read_text())
    yield {'url': 'http://127.0.0.1:%d' % port, 'proc': proc}
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def login(aio_cluster, user, key):
    resp = requests.get(aio_cluster['auth_url'], headers={
        'X-Auth-User': user, 'X-Auth-Key': key}, timeout=10)
    assert resp.status_code == 200
    return resp.headers['X-Auth-Token'], resp.headers['X-Storage-Url']


@pytest.fixture(scope='module')
def token(aio_cluster):
    return login(aio_cluster, 'test:tester', 'testing')[0]


@pytest.fixture(scope='module')
def objstore(aio_cluster):
    token, url = login(aio_cluster, 'test:tester', 'testing')
    session = SwiftSession.from_token(url, token)
    yield session
    session.close()


def call(api, method, path, token, body=None, **kw):
    headers = kw.pop('headers', {})
    if token:
        headers['X-Auth-Token'] = token
    if body is not None:
        kw['data'] = json.dumps(body)
    resp = requests.request(method, api['url'] + path, headers=headers,
                            timeout=30, **kw)
    return resp.status_code, (resp.json() if resp.content else None)


def upload(api, token, data, **meta):
    headers = {'X-Image-Meta-%s' % k.replace('_', '-'): str(v)
               for k, v in meta.items()}
    return call(api, 'POST', '/v2.1/images', token, data=data,
                headers=headers)


def object_names(session):
    return sorted(o['name'] for o in session.list_objects('images'))


def wait_idle(api, token, uuid, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        status, body = call(api, 'GET', '/v2.1/servers/' + uuid, token)
        assert status == 200
        if body['server']['task_state'] is None:
            return body['server']
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_image_upload_list_show_delete(api, token):
    data = os.urandom(300 * 1024)
    status, body = upload(api, token, data, Name='disk-a',
                          Disk_Format='qcow2', Container_Format='bare',
                          Min_Ram=64,
                          Checksum=hashlib.md5(data).hexdigest())
    assert status == 201, body
    image = body['image']
    assert image['size'] == len(data)
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert image['status'] == 'active'
    assert image['owner'] == 'AUTH_test'
    status, body = call(api, 'GET', '/v2.1/images/' + image['id'], token)
    assert (status, body['image']['name']) == (200, 'disk-a')
    status, body = call(api, 'GET', '/v2.1/images?name=disk-a', token)
    assert [i['id'] for i in body['images']] == [image['id']]
    assert call(api, 'GET', '/v2.1/images?name=nothing', token)[1] == \
        {'images': []}
    assert call(api, 'DELETE', '/v2.1/images/' + image['id'], token)[0] \
        == 204
    status, body = call(api, 'GET', '/v2.1/images/' + image['id'], token)
    assert status == 404
    assert '\n' not in body['error']['message']


def test_chunked_upload_streams(api, token):
    data = os.urandom(200 * 1024)

    def pieces():
        for i in range(0, len(data), 64 * 1024):
            yield data[i:i + 64 * 1024]
    status, body = call(api, 'POST', '/v2.1/images', token, data=pieces(),
                        headers={'X-Image-Meta-Name': 'chunky',
                                 'X-Image-Meta-Disk-Format': 'raw'})
    assert status == 201, body
    assert body['image']['size'] == len(data)
    assert body['image']['checksum'] == hashlib.md5(data).hexdigest()
    call(api, 'DELETE', '/v2.1/images/' + body['image']['id'], token)


def test_checksum_mismatch_leaves_nothing(api, token, objstore):
    before = object_names(objstore)
    status, body = upload(api, token, b'x' * 4096, Name='liar',
                          Disk_Format='raw', Checksum='0' * 32)
    assert status == 400
    assert 'checksum' in body['error']['message'].lower()
    assert object_names(objstore) == before
    assert call(api, 'GET', '/v2.1/images?name=liar', token)[1] == \
        {'images': []}


def test_bad_image_properties_are_400(api, token):
    status, body = upload(api, token, b'x', Name='m', Disk_Format='ami',
                          Container_Format='ami',
                          Kernel_Id='00000000-0000-0000-0000-000000000000')
    assert status == 400
    assert 'kernel_id' in body['error']['message']
    status, body = upload(api, token, b'x', Name='m', Disk_Format='vhdx')
    assert status == 400


def test_boot_from_stored_image_with_no_hosts_is_no_valid_host(api, token):
    status, body = upload(api, token, b'q' * 1024, Name='bootme',
                          Disk_Format='qcow2')
    image_id = body['image']['id']
    status, body = call(api, 'POST', '/v2.1/servers', token, {'server': {
        'name': 'vm1', 'imageRef': image_id, 'flavorRef': 'm1.nano'}})
    assert status == 202, body
    server = wait_idle(api, token, body['server']['id'])
    assert server['status'] == 'ERROR'
    assert server['fault']['message'].startswith('No valid host was found.')
    # another account cannot boot (or see) test's private image
    other, _url = login_other(api)
    status, body = call(api, 'POST', '/v2.1/servers', other, {'server': {
        'name': 'vm2', 'imageRef': image_id, 'flavorRef': 'm1.nano'}})
    assert status == 400
    assert 'not found' in body['error']['message']
    assert call(api, 'GET', '/v2.1/images/' + image_id, other)[0] == 404


def login_other(api):
    return login(api['aio'], 'test2:tester2', 'testing2')


@pytest.fixture(scope='module', autouse=True)
def _remember_cluster(api, aio_cluster):
    api['aio'] = aio_cluster


def register_host(api, name, **capacity):
    body = json.dumps(dict({'agent_url': 'http://127.0.0.1:9',
                            'hypervisor_type': 'qemu',
                            'architecture': 'x86_64'},
                           **capacity)).encode()
    path = '/internal/hosts/' + name
    headers = sign_headers(SECRET, 'PUT', path, body,
                           {'Content-Length': str(len(body))})
    return requests.put(api['url'] + path, data=body, headers=headers,
                        timeout=10)


def test_registered_host_too_small_gives_the_reason(api, token):
    assert register_host(api, 'hostA', vcpus=2, ram_mb=2048,
                         disk_gb=20).status_code == 200
    status, body = call(api, 'GET', '/v2.1/os-hosts', token)
    assert [h['name'] for h in body['hosts']] == ['hostA']
    assert body['hosts'][0]['state'] == 'up'
    status, body = upload(api, token, b'r' * 512, Name='small',
                          Disk_Format='raw')
    status, body = call(api, 'POST', '/v2.1/servers', token, {'server': {
        'name': 'huge', 'imageRef': body['image']['id'],
        'flavorRef': 'm1.huge'}})
    assert status == 202
    server = wait_idle(api, token, body['server']['id'])
    assert server['status'] == 'ERROR'
    message = server['fault']['message']
    assert message.startswith('No valid host was found.')
    assert '1 host' in message and 'Filter' in message


def test_auth_failures(api, token):
    assert call(api, 'GET', '/v2.1/servers', None)[0] == 401
    assert call(api, 'GET', '/v2.1/servers', 'AUTH_tkbogus')[0] == 401
    # a user token is no signature on the internal endpoints
    resp = requests.put(api['url'] + '/internal/hosts/evil',
                        headers={'X-Auth-Token': token},
                        data=json.dumps({'agent_url': 'http://x'}),
                        timeout=10)
    assert resp.status_code == 401
    status, body = call(api, 'GET', '/v2.1/os-hosts', token)
    assert 'evil' not in [h['name'] for h in body['hosts']]
    # a non-admin user may not list hosts
    plain = login(api['aio'], 'test:tester3', 'testing3')[0]
    assert call(api, 'GET', '/v2.1/os-hosts', plain)[0] == 403
