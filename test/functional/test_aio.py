"""objstore-aio: the all-in-one cluster `make run` brings up.

Set up with a free port range, start every server, store an object the
way a proxy will (nodes from the rings, signed requests, container and
account updates), read it back from every replica, stop.
"""
import io
import json
import os
import subprocess
import sys
import time

import pytest

from objstore.cli import aio
from objstore.common import backend
from objstore.common.config import backend_secret, hash_secret
from objstore.common.timestamp import Timestamp
from rings.ring import Ring


@pytest.fixture
def cluster(tmp_path, monkeypatch, free_aio_ports):
    var = str(tmp_path / 'aio')
    base_port, proxy_port = free_aio_ports
    assert aio.setup(var, out=io.StringIO(), base_port=base_port,
                     port=proxy_port) == 0
    monkeypatch.setenv('OBJSTORE_CONF', str(tmp_path / 'aio' / 'etc' /
                                            'objstore.conf'))
    try:
        out = io.StringIO()
        assert aio.start(var, out=out) == 0
        # 12 storage servers + the proxy, then the 8 daemons of each node
        assert out.getvalue().count('started') == 14
        assert 'started 8 daemons' in out.getvalue()
        yield var
    finally:
        aio.stop(var, out=io.StringIO())


def test_start_store_read_stop(cluster):
    """The daemons run too: a replicator may copy what the test stores on
    one replica to the next before the test gets there (201 or 202/409)."""
    var = cluster
    etc = var + '/etc/'
    prefix, suffix = hash_secret()
    secret = backend_secret()
    rings = {kind: Ring(etc + kind + '.ring.gz', prefix, suffix)
             for kind in aio.KINDS}
    assert aio.status(var, out=io.StringIO()) == 0
    ts = Timestamp.now().internal

    apart, anodes = rings['account'].get_nodes('AUTH_test')
    for node in anodes:
        status, _, _ = backend.request(
            secret, node['ip'], node['port'], 'PUT',
            '/%s/%d/AUTH_test' % (node['device'], apart),
            {'X-Timestamp': ts})
        assert status in (201, 202)  # 202: a replicator was first
    cpart, cnodes = rings['container'].get_nodes('AUTH_test', 'photos')
    for node, anode in zip(cnodes, anodes):
        status, _, _ = backend.request(
            secret, node['ip'], node['port'], 'PUT',
            '/%s/%d/AUTH_test/photos' % (node['device'], cpart),
            {'X-Timestamp': ts,
             'X-Account-Host': '%s:%d' % (anode['ip'], anode['port']),
             'X-Account-Partition': str(apart),
             'X-Account-Device': anode['device']})
        assert status in (201, 202)  # 202: a replicator was first
    opart, onodes = rings['object'].get_nodes('AUTH_test', 'photos', 'cat')
    body = b'meow' * 1000
    ts = Timestamp.now().internal
    for node, cnode in zip(onodes, cnodes):
        status, _, _ = backend.request(
            secret, node['ip'], node['port'], 'PUT',
            '/%s/%d/AUTH_test/photos/cat' % (node['device'], opart),
            {'X-Timestamp': ts, 'Content-Type': 'image/x-cat',
             'X-Container-Host': '%s:%d' % (cnode['ip'], cnode['port']),
             'X-Container-Partition': str(cpart),
             'X-Container-Device': cnode['device']}, body=body)
        assert status in (201, 409)  # 409: a replicator was first
    for node in onodes:
        status, headers, data = backend.request(
            secret, node['ip'], node['port'], 'GET',
            '/%s/%d/AUTH_test/photos/cat' % (node['device'], opart))
        assert (status, data) == (200, body)
        assert headers['content-type'] == 'image/x-cat'
    for node in cnodes:
        status, _, data = backend.request(
            secret, node['ip'], node['port'], 'GET',
            '/%s/%d/AUTH_test/photos' % (node['device'], cpart),
            query='format=json')
        assert status == 200
        assert [(o['name'], o['bytes']) for o in json.loads(data)] == \
            [('cat', len(body))]
    # storage servers run under SCHED_BATCH, the proxy does not
    for kind, node in (('object', 1), ('container', 2), ('account', 3),
                       ('proxy', 0)):
        pid = aio.running_pid(var, kind, node)
        want = os.SCHED_OTHER if kind == 'proxy' else os.SCHED_BATCH
        assert os.sched_getscheduler(pid) == want, kind
    out = io.StringIO()
    assert aio.status(var, out=out) == 0
    listed = out.getvalue()
    for section, node, _, _ in aio.daemons(var):
        assert any(line.split()[:3] == [section, 'node', str(node)] and
                   line.endswith('running') for line in listed.splitlines())
    out = io.StringIO()
    assert aio.stop(var, out=out) == 0
    assert 'stopped 32 daemons' in out.getvalue()
    assert out.getvalue().count('stopped') == 14
    assert aio.status(var, out=io.StringIO()) == 1
    assert not any(aio.running_pid(var, section, node)
                   for section, node, _, _ in aio.daemons(var))


def test_commands_need_a_cluster(tmp_path, capsys):
    assert aio.main(['start', '--var', str(tmp_path / 'none')]) == 2
    err = capsys.readouterr().err
    assert 'run objstore-aio setup first' in err and err.count('\n') == 1


def test_the_proxy_serves_the_default_users(cluster):
    import requests
    port = aio.proxy_port(cluster)
    base = 'http://127.0.0.1:%d' % port
    assert requests.get(base + '/healthcheck', timeout=10).text == 'OK'
    out = io.StringIO()
    aio.describe(cluster, out=out)
    assert 'http://127.0.0.1:%d/auth/v1.0' % port in out.getvalue()
    assert 'test:tester / testing' in out.getvalue()
    auth = requests.get(base + '/auth/v1.0', timeout=10, headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
    assert auth.status_code == 200
    url, token = auth.headers['X-Storage-Url'], auth.headers['X-Auth-Token']
    assert url.endswith('/v1/AUTH_test')
    h = {'X-Auth-Token': token}
    assert requests.put(url + '/c', headers=h, timeout=10).status_code in \
        (201, 202)
    assert requests.put(url + '/c/o', data=b'hello', headers=h,
                        timeout=10).status_code == 201
    got = requests.get(url + '/c/o', headers=h, timeout=10)
    assert (got.status_code, got.content) == (200, b'hello')
    bad = requests.get(base + '/auth/v1.0', timeout=10, headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'wrong'})
    assert bad.status_code == 401


def test_a_stop_from_another_shell_ends_a_foreground_run(tmp_path,
                                                         free_aio_ports):
    """`make run` in one terminal, `make stop` in another: the stop must
    not wait out its timeout on servers the foreground run has not
    reaped, and the run must then end by itself (before, it waited for a
    Ctrl-C that nothing would send)."""
    var = str(tmp_path / 'aio')
    base_port, proxy_port = free_aio_ports
    runner = subprocess.Popen(
        [sys.executable, '-m', 'objstore.cli.aio', 'run', '--var', var,
         '--no-daemons', '--nodes', '1', '--replicas', '1',
         '--base-port', str(base_port), '--port', str(proxy_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in runner.stdout:
            lines.append(line)
            if line.startswith('Running;'):
                break
        assert lines and lines[-1].startswith('Running;'), ''.join(lines)
        started = time.monotonic()
        out = io.StringIO()
        assert aio.stop(var, out=out) == 0
        took = time.monotonic() - started
        assert out.getvalue().count('stopped') == 4     # 3 servers + proxy
        # the zombies counted as ended: no wait for aio.STOP_TIMEOUT
        assert took < aio.STOP_TIMEOUT / 2
        rest = runner.communicate(timeout=30)[0]
        assert runner.returncode == 0
        assert 'every server has stopped' in rest
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        aio.stop(var, out=io.StringIO())
