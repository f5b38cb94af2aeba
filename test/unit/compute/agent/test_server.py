"""The agent's WSGI app through a real threaded server and a real
SignedClient, over a real AgentManager on libvirt's test driver.

Signature checks, routing, status codes and the JSON error shape are what
is tested here; what the manager does is in test_manager.py.
"""
import base64
import hashlib
import json
import uuid

import pytest
import requests

pytest.importorskip('libvirt')

from compute.agent import manager as mgr  # noqa: E402
from compute.agent.image_cache import ImageCache  # noqa: E402
from compute.agent.server import AgentApp  # noqa: E402
from compute.common import signed_http, wsgi_server  # noqa: E402
from compute.image.store import ImageNotFound  # noqa: E402
from compute.virt.libvirt_driver import LibvirtDriver  # noqa: E402

SECRET = 'f00dfeed' * 4
NODE_XML = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores>
       <threads>1</threads><mhz>1000</mhz><model>x86_64</model></cpu>
  <memory>%d</memory>
</node>
""" % (4 * 1024 * 1024)


class DictStoreForAgent:
    """show()/open() over a dict of images, like ImageStore's."""

    def __init__(self):
        self.data, self.props = {}, {}

    def add(self, data, disk_format='raw'):
        image_id = str(uuid.uuid4())
        self.data[image_id] = data
        self.props[image_id] = {
            'id': image_id, 'size': len(data), 'status': 'active',
            'checksum': hashlib.md5(data).hexdigest(),
            'disk_format': disk_format}
        return dict(self.props[image_id])

    def show(self, image_id):
        if image_id not in self.props:
            raise ImageNotFound('no image %s' % image_id)
        return dict(self.props[image_id])

    def open(self, image_id, verify=True):
        return iter([self.data[image_id]])


@pytest.fixture
def store():
    return DictStoreForAgent()


@pytest.fixture
def agent(tmp_path, store):
    """(base URL, manager) of an agent app served on a free port."""
    node = tmp_path / 'node.xml'
    node.write_text(NODE_XML)
    driver = LibvirtDriver('test://' + str(node),
                           instances_path=str(tmp_path / 'agent'))
    manager = mgr.AgentManager(
        driver, ImageCache(str(tmp_path / 'agent' / 'image-cache')),
        str(tmp_path / 'agent'), 'host-a',
        store_factory=lambda url, token: store, stop_timeout=0.05)
    server = wsgi_server.serve_in_thread(AgentApp(manager, SECRET))
    yield 'http://127.0.0.1:%d' % server.server_port, manager
    server.shutdown()
    server.server_close()
    driver.close()


@pytest.fixture
def client(agent):
    c = signed_http.SignedClient(agent[0], SECRET, timeout=10)
    yield c
    c.close()


def spawn_body(image, instance_uuid=None, **extra):
    instance_uuid = instance_uuid or str(uuid.uuid4())
    body = {'uuid': instance_uuid, 'name': 'vm',
            'domain_name': 'instance-' + instance_uuid,
            'flavor': {'name': 'm1.tiny', 'vcpus': 1, 'ram_mb': 128,
                       'disk_gb': 1},
            'image': image, 'kernel': None, 'ramdisk': None,
            'storage_url': 'http://127.0.0.1:1/v1/AUTH_test',
            'token': 'AUTH_tk', 'user_data': None, 'metadata': {},
            'key_name': None, 'public_key': None}
    body.update(extra)
    return body


def assert_error(answer, status, code, fragment=''):
    """The JSON error shape every compute service answers with."""
    got_status, body = answer
    assert got_status == status
    assert body['error']['code'] == code
    assert fragment in body['error']['message']
    assert '\n' not in body['error']['message']


# --- signatures ---------------------------------------------------------------

def test_unsigned_request_is_401(agent):
    resp = requests.get(agent[0] + '/v1/instances', timeout=10)
    assert resp.status_code == 401
    assert resp.json()['error']['code'] == 401
    assert 'Traceback' not in resp.text


def test_wrong_secret_is_401(agent):
    other = signed_http.SignedClient(agent[0], 'a' * 32, timeout=10)
    try:
        assert_error(other.request('GET', '/v1/host'), 401, 401, 'refused')
    finally:
        other.close()


def test_tampered_body_is_401_and_spawns_nothing(agent, store):
    url, manager = agent
    body = json.dumps(spawn_body(store.add(b'\0' * 512))).encode()
    instance_uuid = json.loads(body)['uuid']
    path = '/v1/instances/' + instance_uuid
    headers = signed_http.sign_headers(
        SECRET, 'PUT', path, body, {'Content-Length': str(len(body))})
    evil = body.replace(b'AUTH_tk', b'AUTH_xx')
    resp = requests.put(url + path, data=evil, headers=headers, timeout=10)
    assert resp.status_code == 401
    assert 'body signature' in resp.json()['error']['message']
    assert manager.instance_uuids() == []


def test_signature_for_another_path_is_401(agent):
    url, _ = agent
    headers = signed_http.sign_headers(SECRET, 'GET', '/v1/host', b'',
                                       {'Content-Length': '0'})
    resp = requests.get(url + '/v1/instances', headers=headers, timeout=10)
    assert resp.status_code == 401


# --- routes -------------------------------------------------------------------

def test_spawn_act_console_delete(client, agent, store):
    _, manager = agent
    body = spawn_body(store.add(b'\0' * 4096))
    path = '/v1/instances/' + body['uuid']
    assert client.request('PUT', path, body) == \
        (201, {'power_state': 'running'})
    assert client.request('GET', '/v1/instances') == \
        (200, {'instances': [{'uuid': body['uuid'],
                              'power_state': 'running'}]})
    assert client.request('GET', path) == \
        (200, {'uuid': body['uuid'], 'power_state': 'running'})
    assert client.request('POST', path + '/action', {'action': 'stop'}) == \
        (200, {'power_state': 'shutoff'})
    assert client.request('POST', path + '/action', {'action': 'start'}) == \
        (200, {'power_state': 'running'})
    assert client.request('POST', path + '/action',
                          {'action': 'reboot_hard'}) == \
        (200, {'power_state': 'running'})
    with open(manager._file(body['uuid'], 'console.log'), 'ab') as f:
        f.write(b'one\ntwo\nthree\n')
    assert client.request('GET', path + '/console', query='length=2') == \
        (200, {'output': 'two\nthree\n'})
    assert client.request('GET', path + '/console') == \
        (200, {'output': 'one\ntwo\nthree\n'})
    assert client.request('DELETE', path) == (204, None)
    assert client.request('DELETE', path) == (204, None)   # idempotent
    assert client.request('GET', '/v1/instances') == (200, {'instances': []})


def test_duplicate_spawn_is_409(client, store):
    body = spawn_body(store.add(b'\0' * 4096))
    path = '/v1/instances/' + body['uuid']
    assert client.request('PUT', path, body)[0] == 201
    assert_error(client.request('PUT', path, body), 409, 409,
                 'already exists')


def test_host_capacity(client):
    status, cap = client.request('GET', '/v1/host')
    assert status == 200
    assert (cap['vcpus'], cap['ram_mb']) == (2, 4096)
    assert cap['hypervisor_type'] == 'test'


def test_bad_spawn_requests_are_400(client, agent, store):
    image = store.add(b'\0' * 4096)
    good = spawn_body(image)
    path = '/v1/instances/' + good['uuid']
    assert_error(client.request('PUT', path, dict(good, uuid=str(
        uuid.uuid4()))), 400, 400, 'not the one in the path')
    assert_error(client.request('PUT', path, dict(good, user_data=(
        base64.b64encode(b'x' * 70000).decode()))), 400, 400, 'user_data')
    kernel = store.add(b'k', 'aki')
    assert_error(client.request('PUT', '/v1/instances/%s' % good['uuid'],
                                dict(good, image=kernel)), 400, 400,
                 'not a bootable machine image')
    missing = {'id': str(uuid.uuid4()), 'disk_format': 'raw'}
    assert_error(client.request('PUT', path, dict(good, image=missing)),
                 400, 400, 'no image')
    assert_error(client.request('PUT', '/v1/instances/NOT-A-UUID',
                                dict(good, uuid='NOT-A-UUID')), 400, 400,
                 'UUID')
    assert agent[1].instance_uuids() == []


def test_body_that_is_not_a_json_object_is_400(agent):
    url, _ = agent
    path = '/v1/instances/' + str(uuid.uuid4())
    for body in (b'not json', b'[1, 2]', b''):
        headers = signed_http.sign_headers(
            SECRET, 'PUT', path, body, {'Content-Length': str(len(body))})
        resp = requests.put(url + path, data=body, headers=headers,
                            timeout=10)
        assert resp.status_code == 400, body
        assert resp.json()['error']['code'] == 400


def test_unknown_things_are_404_or_405(client):
    unknown = '/v1/instances/' + str(uuid.uuid4())
    assert_error(client.request('GET', '/v1/nothing'), 404, 404,
                 'no such resource')
    assert_error(client.request('GET', unknown), 404, 404, 'no instance')
    assert_error(client.request('POST', unknown + '/action',
                                {'action': 'stop'}), 404, 404)
    assert_error(client.request('GET', unknown + '/console'), 404, 404)
    assert_error(client.request('POST', '/v1/host'), 405, 405)
    assert_error(client.request('POST', unknown + '/action',
                                {'action': 'dance'}), 400, 400, 'action')
    assert_error(client.request('GET', unknown + '/console',
                                query='length=x'), 400, 400, 'length')


def test_unexpected_error_is_500_in_one_line(client, agent, monkeypatch):
    def broken():
        raise RuntimeError('disk on fire\nsecond line')
    monkeypatch.setattr(agent[1], 'list', broken)
    status, body = client.request('GET', '/v1/instances')
    assert status == 500
    assert body['error']['message'] == \
        'internal error: RuntimeError: disk on fire second line'


# --- heartbeat and the process's start --------------------------------------

class Recorder:
    """A stand-in for the API's /internal/hosts: records signed PUTs."""

    def __init__(self):
        self.bodies = []

    def __call__(self, environ, start_response):
        from compute.common import jsonapi
        body = jsonapi.read_body(environ)
        if signed_http.verify_request(SECRET, environ, body):
            return jsonapi.respond(start_response, 401,
                                   jsonapi.error_body(401, 'unsigned'))
        self.bodies.append((environ['PATH_INFO'], json.loads(body)))
        return jsonapi.respond(start_response, 200, {})


def test_heartbeat_sends_capacity_and_survives_a_dead_api(agent):
    from compute.agent.server import Heartbeat
    recorder = Recorder()
    server = wsgi_server.serve_in_thread(recorder)
    url = 'http://127.0.0.1:%d' % server.server_port
    api = signed_http.SignedClient(url, SECRET, timeout=5)
    beat = Heartbeat(agent[1], api, 'http://127.0.0.1:9999')
    try:
        beat()
        assert beat.sent == 1
        path, body = recorder.bodies[0]
        assert path == '/internal/hosts/host-a'
        assert body['agent_url'] == 'http://127.0.0.1:9999'
        assert (body['vcpus'], body['ram_mb']) == (2, 4096)
        server.shutdown()
        server.server_close()
        beat()   # the API is gone: logged, not raised
        assert beat.sent == 1
    finally:
        api.close()


def test_periodic_task_keeps_running_after_errors():
    import threading
    from compute.agent.server import Periodic
    calls, stop = [], threading.Event()

    def task():
        calls.append(1)
        if len(calls) >= 3:
            stop.set()
        raise RuntimeError('boom')
    thread = Periodic('t', 0.01, task, stop)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert len(calls) == 3


def test_main_refuses_a_config_without_secret(tmp_path, caplog):
    from compute.agent.server import main
    conf = tmp_path / 'compute.conf'
    conf.write_text('[agent]\nname = a\nlibvirt_uri = test:///default\n')
    assert main(['--conf', str(conf)]) == 1
    assert 'agent_secret' in caplog.text
    assert main(['--conf', str(tmp_path / 'missing.conf')]) == 1
