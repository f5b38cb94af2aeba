"""The compute API app through a real HTTP server on 127.0.0.1.

Real pieces: a ComputeDB in tmp, tokens issued by tempauth from a proxy
config written here, the Builder's thread pool, signed internal requests.
Images come from an in-memory lookup injected per account (the objstore
path is covered by test/functional/test_compute_api.py). No agent runs:
builds end in ERROR ('No valid host') or meet an agent address where
nothing listens, and the power-state machine is driven through the
signed /internal/events endpoint as agents drive it.
"""
import base64
import io
import json
import socket
import time
import uuid as uuidlib

import pytest
import requests

from compute.api import states
from compute.api.app import ChunkedReader, ComputeAPI
from compute.api.auth import Authenticator
from compute.api.builder import Builder
from compute.api.db import ComputeDB
from compute.api.flavors import Flavors
from compute.common import wsgi_server
from compute.common.jsonapi import HttpError
from compute.common.signed_http import sign_headers
from compute.image.store import ImageNotFound
from compute.scheduler import scheduler_options

SECRET = 'f' * 32
PROXY_CONF = """\
[DEFAULT]
bind_port = 8080

[filter:tempauth]
use = objstore.middleware.tempauth
token_secret = unit-test-token-secret
user_test_tester = testing .admin
user_test_tester3 = testing3
user_test2_tester2 = testing2
"""
KERNEL = str(uuidlib.uuid4())
RAMDISK = str(uuidlib.uuid4())
MACHINE = str(uuidlib.uuid4())
ORPHAN = str(uuidlib.uuid4())      # names a kernel that is gone
OTHERS = str(uuidlib.uuid4())      # test2's private image
BIG = str(uuidlib.uuid4())         # needs more RAM than m1.tiny has
BOOM = str(uuidlib.uuid4())        # the lookup itself breaks
PUBKEY = ('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq6hVdtv+mPz0mZ+s2qv6n1H7'
          'Xb2bq9d2Q0wGwQ3kSx me@host')


def image(image_id, fmt='qcow2', **props):
    return dict({'id': image_id, 'name': 'img-' + image_id[:4],
                 'disk_format': fmt, 'container_format': 'bare',
                 'status': 'active', 'visibility': 'private'}, **props)


IMAGES = {
    'AUTH_test': {
        KERNEL: image(KERNEL, 'aki', container_format='aki'),
        RAMDISK: image(RAMDISK, 'ari', container_format='ari'),
        MACHINE: image(MACHINE, 'ami', container_format='ami',
                       kernel_id=KERNEL, ramdisk_id=RAMDISK),
        ORPHAN: image(ORPHAN, 'ami', container_format='ami',
                      kernel_id=str(uuidlib.uuid4())),
        BIG: image(BIG, min_ram='4096'),
    },
    'AUTH_test2': {OTHERS: image(OTHERS)},
}


class MemoryImages:
    """The image lookup of one account: what ImageStore.show answers."""

    def __init__(self, project):
        self.images = IMAGES.get(project, {})
        self.closed = False

    def show(self, image_id):
        if image_id == BOOM:
            raise RuntimeError('lookup exploded\nwith a second line')
        if image_id not in self.images:
            raise ImageNotFound('no image %s' % image_id)
        return dict(self.images[image_id])

    def list(self, filters=None):
        return list(self.images.values())

    def close(self):
        self.closed = True


class Cloud:
    """The running app plus what tests need to poke at it."""

    def __init__(self, tmp_path):
        conf = tmp_path / 'proxy-server.conf'
        conf.write_text(PROXY_CONF)
        self.auth = Authenticator.from_proxy_conf(str(conf))
        self.db = ComputeDB(tmp_path / 'compute.db', durable=False)
        self.now = time.time()
        options = scheduler_options({'heartbeat_timeout': '30'})
        self.builder = Builder(self.db, options, SECRET, workers=4,
                               clock=lambda: self.now)
        self.app = ComputeAPI(
            self.db, Flavors(), self.builder, self.auth, self.images,
            lambda c: 'http://127.0.0.1:1/v1/' + c.project, SECRET,
            heartbeat_timeout=30.0, clock=lambda: self.now)
        self.server = wsgi_server.serve_in_thread(self.app)
        self.url = 'http://127.0.0.1:%d' % self.server.server_port
        self.http = requests.Session()

    @staticmethod
    def images(caller):
        return MemoryImages(caller.project)

    def token(self, name='test:tester'):
        return self.auth.tempauth.issue_token(
            self.auth.tempauth.users[name])[0]

    def call(self, method, path, body=None, user='test:tester',
             headers=None, raw=None):
        headers = dict(headers or {})
        if user:
            headers['X-Auth-Token'] = self.token(user)
        data = raw if raw is not None else (
            None if body is None else json.dumps(body))
        resp = self.http.request(method, self.url + path, data=data,
                                 headers=headers, timeout=10)
        return resp.status_code, (resp.json() if resp.content else None)

    def internal(self, method, path, body, secret=SECRET):
        data = json.dumps(body).encode('utf-8')
        headers = sign_headers(secret, method, path, data,
                               {'Content-Length': str(len(data))})
        resp = self.http.request(method, self.url + path, data=data,
                                 headers=headers, timeout=10)
        return resp.status_code, (resp.json() if resp.content else None)

    def boot(self, name='vm', user='test:tester', **spec):
        spec = dict({'name': name, 'imageRef': MACHINE,
                     'flavorRef': 'm1.tiny'}, **spec)
        return self.call('POST', '/v2.1/servers', {'server': spec},
                         user=user)

    def wait(self, uuid, until, timeout=10.0):
        """The row once `until(row)` holds (the builder runs in threads)."""
        deadline = time.monotonic() + timeout
        while True:
            row = self.db.get_instance(uuid, include_deleted=True)
            if until(row):
                return row
            assert time.monotonic() < deadline, row
            time.sleep(0.01)

    def idle(self, uuid):
        return self.wait(uuid, lambda r: r['task_state'] is None)

    def register(self, name='host1', vcpus=4, ram_mb=4096, disk_gb=40,
                 agent_url=None):
        """A host whose agent address has nothing listening on it."""
        return self.internal('PUT', '/internal/hosts/' + name, {
            'agent_url': agent_url or 'http://127.0.0.1:9', 'vcpus': vcpus,
            'ram_mb': ram_mb, 'disk_gb': disk_gb,
            'hypervisor_type': 'qemu', 'architecture': 'x86_64'})

    def active_instance(self, host='host1', project='AUTH_test'):
        """An instance as a successful build leaves it: on `host`,
        claimed, ACTIVE (the agent's part is not what is tested here)."""
        row = self.db.create_instance('vm', project, MACHINE,
                                      Flavors().get('m1.tiny'))
        assert self.db.place_instance(row['uuid'], host)
        self.db.record_event(row['uuid'], states.SPAWNED)
        return row['uuid']

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.builder.close()
        self.http.close()
        self.db.close()


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(tmp_path)
    yield c
    c.close()


def error_of(body):
    """The one-line message of the public error shape."""
    assert set(body) == {'error'}
    assert set(body['error']) == {'code', 'message'}
    assert '\n' not in body['error']['message']
    return body['error']['message']


# --- basics and auth --------------------------------------------------------

def test_versions_document_needs_no_token(cloud):
    status, body = cloud.call('GET', '/', user=None)
    assert status == 200
    assert body['versions'][0]['id'] == 'v2.1'


@pytest.mark.parametrize('headers', [
    {}, {'X-Auth-Token': 'AUTH_tkforged'}, {'X-Auth-Token': 'other-system'}])
def test_missing_or_bad_token_is_401(cloud, headers):
    status, body = cloud.call('GET', '/v2.1/flavors', user=None,
                              headers=headers)
    assert status == 401
    assert body['error']['code'] == 401
    error_of(body)


def test_unknown_route_404(cloud):
    status, body = cloud.call('GET', '/v2.1/nothing-here')
    assert status == 404
    error_of(body)


# --- flavors --------------------------------------------------------------

def test_flavors_list_detail_and_show(cloud):
    status, body = cloud.call('GET', '/v2.1/flavors')
    assert status == 200
    names = [f['name'] for f in body['flavors']]
    assert 'm1.tiny' in names and 'm1.nano' in names
    assert set(body['flavors'][0]) == {'id', 'name', 'vcpus', 'ram', 'disk'}
    assert cloud.call('GET', '/v2.1/flavors/detail')[1] == body
    status, body = cloud.call('GET', '/v2.1/flavors/m1.small')
    assert (status, body['flavor']['ram']) == (200, 2048)
    status, body = cloud.call('GET', '/v2.1/flavors/m9.huge')
    assert status == 404
    assert 'm9.huge' in error_of(body)


# --- key pairs ------------------------------------------------------------

def test_keypair_create_list_show_delete(cloud):
    status, body = cloud.call('POST', '/v2.1/os-keypairs', {
        'keypair': {'name': 'mine', 'public_key': PUBKEY}})
    assert status == 201
    assert body['keypair']['name'] == 'mine'
    assert len(body['keypair']['fingerprint'].split(':')) == 16
    status, body = cloud.call('GET', '/v2.1/os-keypairs')
    assert [k['keypair']['name'] for k in body['keypairs']] == ['mine']
    # another project does not see it
    status, body = cloud.call('GET', '/v2.1/os-keypairs',
                              user='test2:tester2')
    assert body['keypairs'] == []
    assert cloud.call('GET', '/v2.1/os-keypairs/mine')[1]['keypair'][
        'public_key'] == PUBKEY
    assert cloud.call('DELETE', '/v2.1/os-keypairs/mine')[0] == 204
    assert cloud.call('DELETE', '/v2.1/os-keypairs/mine')[0] == 404


@pytest.mark.parametrize('spec,code', [
    ({'name': 'k', 'public_key': 'not a key'}, 400),
    ({'name': 'k', 'public_key': 'ssh-rsa !!!notbase64'}, 400),
    ({'name': '', 'public_key': PUBKEY}, 400),
    ({'name': 'bad\nname', 'public_key': PUBKEY}, 400),
    ({'name': 'k'}, 400),
])
def test_keypair_bad_input(cloud, spec, code):
    status, body = cloud.call('POST', '/v2.1/os-keypairs', {'keypair': spec})
    assert status == code
    error_of(body)
    assert cloud.db.list_keypairs('AUTH_test') == []


def test_keypair_duplicate_is_409(cloud):
    spec = {'keypair': {'name': 'k', 'public_key': PUBKEY}}
    assert cloud.call('POST', '/v2.1/os-keypairs', spec)[0] == 201
    status, body = cloud.call('POST', '/v2.1/os-keypairs', spec)
    assert status == 409
    assert 'already exists' in error_of(body)


# --- server create ----------------------------------------------------------

def test_boot_without_hosts_ends_in_error_no_valid_host(cloud):
    status, body = cloud.boot()
    assert status == 202
    server = body['server']
    assert server['status'] == 'BUILD'
    assert server['task_state'] == 'spawning'
    assert server['flavor'] == {'name': 'm1.tiny', 'vcpus': 1, 'ram': 512,
                                'disk': 1}
    cloud.idle(server['id'])
    status, body = cloud.call('GET', '/v2.1/servers/' + server['id'])
    assert status == 200
    assert body['server']['status'] == 'ERROR'
    assert body['server']['fault']['message'].startswith(
        'No valid host was found.')
    assert 'no compute hosts are registered' in \
        body['server']['fault']['message']
    assert body['server']['host'] is None


def test_flavor_too_big_for_the_only_host_says_why(cloud):
    assert cloud.register(ram_mb=1024)[0] == 200
    status, body = cloud.boot(flavorRef='m1.small')
    cloud.idle(body['server']['id'])
    row = cloud.db.get_instance(body['server']['id'])
    assert row['status'] == 'ERROR'
    assert 'No valid host was found' in row['fault_message']
    assert 'RamFilter' in row['fault_message']
    host = cloud.db.get_host('host1')
    assert host['ram_mb_used'] == 0 and host['vcpus_used'] == 0


def test_agent_unreachable_build_errors_and_releases_claim(cloud):
    cloud.register()
    status, body = cloud.boot(user_data=base64.b64encode(b'#!/bin/sh\n')
                              .decode())
    row = cloud.idle(body['server']['id'])
    assert row['status'] == 'ERROR'
    assert 'cannot reach' in row['fault_message']
    assert row['host'] is None
    host = cloud.db.get_host('host1')
    assert (host['vcpus_used'], host['ram_mb_used'],
            host['disk_gb_used']) == (0, 0, 0)
    assert row['user_data'] == b'#!/bin/sh\n'


def test_flavor_by_url_reference(cloud):
    status, body = cloud.boot(flavorRef='http://x/v2.1/flavors/m1.nano')
    assert status == 202
    assert body['server']['flavor']['name'] == 'm1.nano'


def big_user_data():
    return base64.b64encode(b'x' * (64 * 1024 + 1)).decode()


@pytest.mark.parametrize('spec,needle', [
    ({'imageRef': str(uuidlib.uuid4())}, 'not found'),
    ({'imageRef': OTHERS}, 'not found'),         # test2's private image
    ({'imageRef': ORPHAN}, 'kernel_id'),
    ({'imageRef': KERNEL}, 'aki'),
    ({'imageRef': BIG}, 'min_ram'),
    ({'flavorRef': 'm9.huge'}, 'flavor m9.huge'),
    ({'flavorRef': None}, 'flavorRef'),
    ({'user_data': 'not base64!'}, 'base64'),
    ({'user_data': big_user_data()}, 'limit'),
    ({'name': ''}, 'non-empty'),
    ({'name': '   '}, 'non-empty'),
    ({'name': 'x' * 256}, 'longer'),
    ({'name': 'bad\x07name'}, 'control'),
    ({'name': 42}, 'non-empty'),
    ({'key_name': 'nokey'}, 'key pair nokey'),
    ({'metadata': ['a']}, 'metadata'),
])
def test_boot_bad_input_is_400_and_creates_nothing(cloud, spec, needle):
    status, body = cloud.boot(**spec)
    assert status == 400, body
    assert needle in error_of(body)
    assert cloud.db.list_instances(include_deleted=True) == []


@pytest.mark.parametrize('raw', ['{not json', '[]', '', '{"server": 1}'])
def test_boot_body_not_a_server_object_is_400(cloud, raw):
    status, body = cloud.call('POST', '/v2.1/servers', raw=raw)
    assert status == 400
    error_of(body)


def test_unexpected_error_is_500_one_line(cloud):
    status, body = cloud.boot(imageRef=BOOM)
    assert status == 500
    message = error_of(body)
    assert 'exploded' not in message and 'Traceback' not in message


def test_machine_image_with_key_and_metadata(cloud):
    cloud.call('POST', '/v2.1/os-keypairs', {
        'keypair': {'name': 'mine', 'public_key': PUBKEY}})
    status, body = cloud.boot(key_name='mine', metadata={'role': 'web'})
    assert status == 202
    assert body['server']['key_name'] == 'mine'
    assert body['server']['metadata'] == {'role': 'web'}
    assert body['server']['image'] == {'id': MACHINE}


# --- server show / list / isolation ---------------------------------------

def test_unknown_and_foreign_servers_are_404(cloud):
    uuid = cloud.boot()[1]['server']['id']
    assert cloud.call('GET', '/v2.1/servers/' + str(uuidlib.uuid4()))[0] \
        == 404
    status, body = cloud.call('GET', '/v2.1/servers/' + uuid,
                              user='test2:tester2')
    assert status == 404
    assert cloud.call('DELETE', '/v2.1/servers/' + uuid,
                      user='test2:tester2')[0] == 404
    assert cloud.call('GET', '/v2.1/servers', user='test2:tester2')[1] == \
        {'servers': []}


def test_list_filters(cloud):
    one = cloud.boot(name='alpha')[1]['server']['id']
    two = cloud.boot(name='beta')[1]['server']['id']
    cloud.idle(one), cloud.idle(two)
    status, body = cloud.call('GET', '/v2.1/servers/detail?name=alp')
    assert [s['id'] for s in body['servers']] == [one]
    status, body = cloud.call('GET', '/v2.1/servers?status=error')
    assert sorted(s['id'] for s in body['servers']) == sorted([one, two])
    status, body = cloud.call('GET', '/v2.1/servers?status=ACTIVE')
    assert body['servers'] == []
    status, body = cloud.call('GET', '/v2.1/servers?status=SLEEPY')
    assert status == 400
    assert 'unknown status' in error_of(body)


# --- actions and delete ---------------------------------------------------

def test_illegal_and_unknown_actions(cloud):
    uuid = cloud.boot()[1]['server']['id']
    cloud.idle(uuid)                                  # ERROR, no host
    path = '/v2.1/servers/%s/action' % uuid
    status, body = cloud.call('POST', path, {'os-stop': None})
    assert status == 409
    assert 'ERROR' in error_of(body)
    assert cloud.call('POST', path, {'os-start': None})[0] == 409
    assert cloud.call('POST', path, {'reboot': {'type': 'SOFT'}})[0] == 409
    assert cloud.call('POST', path, {'os-fly': None})[0] == 400
    assert cloud.call('POST', path, {'reboot': {'type': 'GENTLE'}})[0] \
        == 400
    assert cloud.call('POST', path, raw='nope')[0] == 400
    assert cloud.call('POST', path, {'a': 1, 'b': 2})[0] == 400
    status, body = cloud.call('POST', path, {'os-getConsoleOutput': {}})
    assert status == 409
    assert cloud.db.get_instance(uuid)['status'] == 'ERROR'


def test_delete_of_hostless_server_is_immediate_and_final(cloud):
    uuid = cloud.boot()[1]['server']['id']
    cloud.idle(uuid)
    assert cloud.call('DELETE', '/v2.1/servers/' + uuid)[0] == 204
    row = cloud.wait(uuid, lambda r: r['status'] == 'DELETED')
    assert row['deleted_at'] is not None
    assert cloud.call('GET', '/v2.1/servers/' + uuid)[0] == 404
    assert cloud.call('DELETE', '/v2.1/servers/' + uuid)[0] == 404


def test_stop_with_unreachable_agent_reverts_like_nova(cloud):
    cloud.register()
    uuid = cloud.active_instance()
    path = '/v2.1/servers/%s/action' % uuid
    assert cloud.call('POST', path, {'os-stop': None}) == (202, None)
    row = cloud.idle(uuid)
    assert row['status'] == 'ACTIVE'
    status, body = cloud.call('GET', '/v2.1/servers/' + uuid)
    assert 'fault' not in body['server']


def test_reboot_with_unreachable_agent_goes_to_error(cloud):
    cloud.register()
    uuid = cloud.active_instance()
    path = '/v2.1/servers/%s/action' % uuid
    assert cloud.call('POST', path, {'reboot': {'type': 'HARD'}})[0] == 202
    row = cloud.idle(uuid)
    assert row['status'] == 'ERROR'
    status, body = cloud.call('GET', '/v2.1/servers/' + uuid)
    assert 'reboot_hard failed' in body['server']['fault']['message']


def test_delete_with_unreachable_agent_keeps_host_for_a_retry(cloud):
    cloud.register()
    uuid = cloud.active_instance()
    assert cloud.call('DELETE', '/v2.1/servers/' + uuid)[0] == 204
    row = cloud.idle(uuid)
    assert row['status'] == 'ERROR'
    assert 'delete failed' in row['fault_message']
    assert row['host'] == 'host1'
    assert cloud.db.get_host('host1')['ram_mb_used'] == 512


def test_console_with_unreachable_agent_is_502(cloud):
    cloud.register()
    uuid = cloud.active_instance()
    status, body = cloud.call('POST', '/v2.1/servers/%s/action' % uuid,
                              {'os-getConsoleOutput': {'length': 5}})
    assert status == 502
    assert 'console' in error_of(body)
    status, body = cloud.call('POST', '/v2.1/servers/%s/action' % uuid,
                              {'os-getConsoleOutput': {'length': 'x'}})
    assert status == 400


def test_console_length_infinity_is_400_not_500(cloud):
    cloud.register()
    uuid = cloud.active_instance()
    status, body = cloud.call(
        'POST', '/v2.1/servers/%s/action' % uuid,
        raw='{"os-getConsoleOutput": {"length": Infinity}}')
    assert status == 400, body
    assert 'Infinity' in error_of(body)


# --- request bodies ---------------------------------------------------------

@pytest.mark.parametrize('size_line', [b'-1', b'+5', b'0x10', b'zz', b''])
def test_chunked_reader_refuses_a_bad_chunk_size(size_line):
    body = io.BytesIO(size_line + b'\r\n' + b'x' * 100000)
    with pytest.raises(HttpError) as err:
        ChunkedReader(body).read(1024)
    assert err.value.status == 400
    assert body.tell() <= len(size_line) + 2    # no byte of data read


def test_chunked_reader_decodes_chunks_and_skips_trailers():
    body = io.BytesIO(b'5;x=1\r\nhello\r\n6\r\n world\r\n0\r\n'
                      b'X-Trailer: 1\r\n\r\n')
    reader = ChunkedReader(body)
    assert b''.join(iter(lambda: reader.read(4), b'')) == b'hello world'
    assert body.read() == b''


def test_unsigned_request_with_odd_content_length_is_400_not_500(cloud):
    # '\xb2' is a digit to str.isdigit() once the header is latin-1 text
    with socket.create_connection(('127.0.0.1', cloud.server.server_port),
                                  timeout=10) as sock:
        sock.sendall(b'POST /internal/events HTTP/1.0\r\n'
                     b'Content-Length: \xb2\r\n\r\n')
        answer = sock.makefile('rb').read()
    assert answer.split(b' ', 2)[1] == b'400', answer


# --- hosts and internal endpoints -------------------------------------------

def test_host_registration_and_os_hosts(cloud):
    status, body = cloud.register(vcpus=2, ram_mb=2048, disk_gb=20)
    assert status == 200
    cloud.active_instance()
    status, body = cloud.call('GET', '/v2.1/os-hosts')
    assert status == 200
    [host] = body['hosts']
    assert host == {
        'name': 'host1', 'state': 'up', 'status': 'enabled',
        'hypervisor_type': 'qemu', 'architecture': 'x86_64', 'vcpus': 2,
        'vcpus_used': 1, 'ram_mb': 2048, 'ram_mb_used': 512, 'disk_gb': 20,
        'disk_gb_used': 1, 'instances': 1}
    cloud.now += 31
    assert cloud.call('GET', '/v2.1/os-hosts')[1]['hosts'][0]['state'] == \
        'down'
    # a heartbeat (re-registration) brings it back, keeping the claims
    cloud.register(vcpus=2, ram_mb=2048, disk_gb=20)
    host = cloud.call('GET', '/v2.1/os-hosts')[1]['hosts'][0]
    assert (host['state'], host['ram_mb_used']) == ('up', 512)


def test_os_hosts_needs_admin(cloud):
    status, body = cloud.call('GET', '/v2.1/os-hosts', user='test:tester3')
    assert status == 403
    error_of(body)


@pytest.mark.parametrize('kind', ['unsigned', 'wrong-secret', 'user-token'])
def test_internal_endpoints_refuse_unsigned_requests(cloud, kind):
    body = {'agent_url': 'http://127.0.0.1:9', 'vcpus': 1}
    if kind == 'wrong-secret':
        status, answer = cloud.internal('PUT', '/internal/hosts/evil', body,
                                        secret='0' * 32)
    else:
        status, answer = cloud.call(
            'PUT', '/internal/hosts/evil', body,
            user='test:tester' if kind == 'user-token' else None)
    assert status == 401
    assert isinstance(answer['error'], str)
    assert cloud.db.get_host('evil') is None


def test_signature_binds_the_body(cloud):
    data = json.dumps({'agent_url': 'http://127.0.0.1:9'}).encode()
    headers = sign_headers(SECRET, 'PUT', '/internal/hosts/h', data,
                           {'Content-Length': str(len(data))})
    other = json.dumps({'agent_url': 'http://evil.example:9'}).encode()
    headers['Content-Length'] = str(len(other))
    resp = requests.put(cloud.url + '/internal/hosts/h', data=other,
                        headers=headers, timeout=10)
    assert resp.status_code == 401
    assert cloud.db.get_host('h') is None


@pytest.mark.parametrize('body', [
    {'agent_url': 'ftp://x', 'vcpus': 1},
    {'agent_url': 'http://127.0.0.1:9', 'vcpus': -1},
    {'agent_url': 'http://127.0.0.1:9', 'ram_mb': 'lots'},
])
def test_bad_host_registration_is_400(cloud, body):
    status, answer = cloud.internal('PUT', '/internal/hosts/h', body)
    assert status == 400
    assert isinstance(answer['error'], str)
    assert cloud.db.get_host('h') is None


def test_power_events_drive_the_state_machine(cloud):
    cloud.register()
    uuid = cloud.active_instance()
    event = {'uuid': uuid, 'event': 'powered_off', 'power_state': 'shutoff'}
    assert cloud.internal('POST', '/internal/events', event) == \
        (200, {'status': 'SHUTOFF'})
    server = cloud.call('GET', '/v2.1/servers/' + uuid)[1]['server']
    assert (server['status'], server['power_state']) == ('SHUTOFF',
                                                         'shutoff')
    # a repeat is harmless
    assert cloud.internal('POST', '/internal/events', event)[0] == 200
    # now stop is illegal, start legal
    path = '/v2.1/servers/%s/action' % uuid
    assert cloud.call('POST', path, {'os-stop': None})[0] == 409
    event['event'] = 'powered_on'
    assert cloud.internal('POST', '/internal/events', event) == \
        (200, {'status': 'ACTIVE'})
    assert cloud.db.get_instance(uuid)['power_state'] == 'running'


def test_bad_power_events(cloud):
    row = cloud.db.create_instance('vm', 'AUTH_test', MACHINE,
                                   Flavors().get('m1.tiny'))
    # the agent's sync saw it off while the API still builds: refused
    status, body = cloud.internal('POST', '/internal/events', {
        'uuid': row['uuid'], 'event': 'powered_off'})
    assert status == 409
    assert cloud.db.get_instance(row['uuid'])['status'] == 'BUILD'
    assert cloud.internal('POST', '/internal/events', {
        'uuid': str(uuidlib.uuid4()), 'event': 'powered_off'})[0] == 404
    assert cloud.internal('POST', '/internal/events', {
        'uuid': row['uuid'], 'event': 'deleted'})[0] == 400
    assert cloud.internal('POST', '/internal/nothing', {})[0] == 404


# --- restart ---------------------------------------------------------------

def test_recover_after_restart(cloud):
    tiny = Flavors().get('m1.tiny')
    building = cloud.db.create_instance('b', 'AUTH_test', MACHINE, tiny)
    deleting = cloud.db.create_instance('d', 'AUTH_test', MACHINE, tiny)
    cloud.db.apply_action(deleting['uuid'], 'AUTH_test', states.DELETE)
    done = cloud.builder.recover()
    assert done == {building['uuid']: 'build ended in ERROR',
                    deleting['uuid']: 'delete resent'}
    row = cloud.idle(building['uuid'])
    assert row['status'] == 'ERROR'
    assert 'interrupted' in row['fault_message']
    assert cloud.idle(deleting['uuid'])['status'] == 'DELETED'
