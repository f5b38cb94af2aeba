"""The real compute-agent process against a real objstore cluster.

The agent runs as `python -m compute.agent.server --conf FILE` on
libvirt's test:///default (no hypervisor), fetches an image uploaded with
ImageStore through the user's token, and registers with a stand-in for
the compute API: a small real HTTP server that verifies the agent's
signatures and records what it is sent on /internal/*.
"""
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

pytest.importorskip('libvirt')

from compute.common import jsonapi, signed_http, wsgi_server  # noqa: E402
from compute.image.store import ImageStore  # noqa: E402
from compute.image.swift import SwiftSession  # noqa: E402

SECRET = 'c0ffee42' * 4


class InternalApiRecorder:
    """/internal/* of the compute API, reduced to recording signed
    requests; unsigned ones are refused as the real API does."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        body = jsonapi.read_body(environ)
        reason = signed_http.verify_request(SECRET, environ, body)
        if reason:
            return jsonapi.respond(start_response, 401,
                                   jsonapi.error_body(401, reason))
        with self.lock:
            self.calls.append((environ['REQUEST_METHOD'],
                               environ['PATH_INFO'], json.loads(body)))
        return jsonapi.respond(start_response, 200, {})

    def seen(self, method, path):
        with self.lock:
            return [b for m, p, b in self.calls if (m, p) == (method, path)]


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError('condition not met in %s s' % timeout)


@pytest.fixture(scope='module')
def user(aio_cluster):
    """(session, store) of test:tester on the cluster."""
    session = SwiftSession(aio_cluster['auth_url'], 'test:tester', 'testing')
    session.authenticate()
    yield session, ImageStore(session)
    session.close()


@pytest.fixture
def recorder():
    app = InternalApiRecorder()
    server = wsgi_server.serve_in_thread(app)
    app.url = 'http://127.0.0.1:%d' % server.server_port
    yield app
    server.shutdown()
    server.server_close()


@pytest.fixture
def agent(tmp_path, recorder):
    """The running agent process: {'proc', 'url', 'state_dir', 'log'}.

    It binds port 0; its URL is learnt from its first heartbeat, which
    names the port it really got."""
    state_dir = tmp_path / 'agent-a'
    conf = tmp_path / 'compute.conf'
    conf.write_text('\n'.join([
        '[DEFAULT]', 'agent_secret = %s' % SECRET,
        '[agent]', 'name = host-a', 'bind_ip = 127.0.0.1',
        'bind_port = 0', 'api_url = %s' % recorder.url,
        'libvirt_uri = test:///default', 'state_dir = %s' % state_dir,
        'heartbeat_interval = 0.2', 'power_sync_interval = 0.2',
        'vcpus = 3', 'ram_mb = 3072', '']))
    log_path = tmp_path / 'agent.log'
    log = open(log_path, 'wb')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'compute.agent.server', '--conf', str(conf)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        beat = wait_until(lambda: proc.poll() is not None or recorder.seen(
            'PUT', '/internal/hosts/host-a'))
        assert proc.poll() is None, log_path.read_text()
        yield {'proc': proc, 'url': beat[0]['agent_url'],
               'state_dir': str(state_dir), 'log': log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_agent_spawns_heartbeats_deletes_and_stops(agent, recorder, user):
    session, store = user
    data = os.urandom(64 * 1024)
    image = store.upload(io.BytesIO(data), {'name': 'tiny',
                                            'disk_format': 'raw'})
    client = signed_http.SignedClient(agent['url'], SECRET, timeout=30)
    try:
        # registered with its capacity and URL, and heartbeating
        beats = wait_until(lambda: len(recorder.seen(
            'PUT', '/internal/hosts/host-a')) >= 2 and recorder.seen(
                'PUT', '/internal/hosts/host-a'))
        assert beats[0]['agent_url'].startswith('http://127.0.0.1:')
        assert (beats[0]['vcpus'], beats[0]['ram_mb']) == (3, 3072)
        assert beats[0]['hypervisor_type'] == 'test'

        instance_uuid = str(uuid.uuid4())
        body = {'uuid': instance_uuid, 'name': 'vm-1',
                'domain_name': 'instance-' + instance_uuid,
                'flavor': {'name': 'm1.tiny', 'vcpus': 1, 'ram_mb': 128,
                           'disk_gb': 1},
                'image': image, 'kernel': None, 'ramdisk': None,
                'storage_url': session.storage_url, 'token': session.token,
                'user_data': None, 'metadata': {}, 'key_name': None,
                'public_key': None}
        path = '/v1/instances/' + instance_uuid
        assert client.request('PUT', path, body) == \
            (201, {'power_state': 'running'})
        cached = os.path.join(agent['state_dir'], 'image-cache', image['id'])
        with open(cached, 'rb') as f:
            assert f.read() == data
        assert client.request('GET', '/v1/instances') == \
            (200, {'instances': [{'uuid': instance_uuid,
                                  'power_state': 'running'}]})

        # a token that objstore refuses: nothing is created
        bad_uuid = str(uuid.uuid4())
        status, answer = client.request('PUT', '/v1/instances/' + bad_uuid,
                                        dict(body, uuid=bad_uuid,
                                             domain_name='i-' + bad_uuid,
                                             token='AUTH_tknotvalid'))
        assert status == 400
        assert '401' in answer['error']['message']
        assert not os.path.exists(os.path.join(
            agent['state_dir'], 'instances', bad_uuid))

        assert client.request('DELETE', path) == (204, None)
        assert os.listdir(os.path.join(agent['state_dir'],
                                       'instances')) == []
        assert client.request('GET', '/v1/instances') == \
            (200, {'instances': []})
    finally:
        client.close()

    agent['proc'].send_signal(signal.SIGTERM)
    assert agent['proc'].wait(15) == 0
    log = agent['log'].read_bytes().decode('utf-8', 'replace')
    assert 'stopped' in log
    assert 'Traceback' not in log
