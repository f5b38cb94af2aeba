"""The object expirer and the account reaper on a real four-node cluster.

The `aio_cluster` fixture runs the storage servers and a proxy; the
daemons are run here the way an operator would, one
``python -m <daemon> <node's server conf> --once`` per node (all nodes at
once). What is checked is what users and operators see: GET answers,
container listings, and the files on every node's device.
"""
import configparser
import json
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
import requests

from objstore.cli import aio
from objstore.common import backend, config, ondisk
from objstore.common.timestamp import Timestamp
from objstore.obj import expiry
from rings.ring import Ring

NODES = 4


def auth(auth_url, user, key):
    r = requests.get(auth_url, timeout=10,
                     headers={'X-Auth-User': user, 'X-Auth-Key': key})
    assert r.status_code == 200, r.text
    return r.headers['X-Storage-Url'], r.headers['X-Auth-Token']


class Cluster:
    """The aio cluster plus what the checks need: rings, secrets, a
    user's storage URL and token."""

    def __init__(self, aio):
        self.var = aio['var']
        self.conf = aio['conf']
        etc = os.path.join(self.var, 'etc')
        self.rings = {kind: Ring(os.path.join(etc, kind + '.ring.gz'))
                      for kind in ('account', 'container', 'object')}
        self.secret = config.backend_secret(self.conf)
        self.prefix, self.suffix = config.hash_secret(self.conf)
        self.url, token = auth(aio['auth_url'], 'test:tester', 'testing')
        self.headers = {'X-Auth-Token': token}
        self.daemon_logs = []

    def request(self, method, path='', **kw):
        kw.setdefault('timeout', 20)
        headers = dict(self.headers, **kw.pop('headers', {}))
        return requests.request(method, self.url + path, headers=headers,
                                **kw)

    def node_conf(self, node, kind):
        return os.path.join(self.var, 'etc', 'node%d' % node,
                            '%s-server.conf' % kind)

    def device(self, node):
        return os.path.join(self.var, 'srv', 'node%d' % node, 'd%d' % node)

    def run_daemon(self, module, kind, confs=None):
        """``python -m module CONF --once`` on every node, all at once;
        returns each node's counts (and fails on a non-zero exit)."""
        confs = confs or [self.node_conf(n, kind)
                          for n in range(1, NODES + 1)]
        env = dict(os.environ, OBJSTORE_CONF=self.conf)
        procs = [subprocess.Popen(
            [sys.executable, '-m', module, conf, '--once'], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for conf in confs]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
            assert b'Traceback' not in err, err.decode()
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
            self.daemon_logs.append(err.decode())
        return results

    def object_files(self, account, container, obj):
        """{node: [file names]} of the object's hash dir on every node."""
        hsh = ondisk.name_hash(self.prefix, self.suffix, account, container,
                               obj)
        part = self.rings['object'].get_part(account, container, obj)
        out = {}
        for node in range(1, NODES + 1):
            path = ondisk.storage_dir(
                os.path.dirname(self.device(node)), 'd%d' % node, 'objects',
                part, hsh)
            try:
                out[node] = sorted(os.listdir(path))
            except FileNotFoundError:
                out[node] = []
        return out

    def backend_status(self, kind, method, account, container=None,
                       obj=None):
        """The statuses of ``method`` on every primary of a resource."""
        part, nodes = self.rings[kind].get_nodes(account, container, obj)
        statuses = []
        for node in nodes:
            path = backend.device_path_of(node['device'], part, account,
                                          container, obj)
            status, _h, _b = backend.request(
                self.secret, node['ip'], node['port'], method, path,
                timeout=10)
            statuses.append(status)
        return statuses


@pytest.fixture(scope='module')
def cluster(aio_cluster):
    return Cluster(aio_cluster)


def wait_until(when):
    """Sleep until the wall clock is past ``when`` (seconds)."""
    delay = when - time.time() + 0.05
    if delay > 0:
        time.sleep(delay)


def put_expiring(cluster, path, after):
    resp = cluster.request('PUT', path, data=b'bye',
                           headers={'X-Delete-After': str(after)})
    assert resp.status_code == 201, resp.text
    head = cluster.request('HEAD', path)
    assert head.status_code == 200
    return int(head.headers['X-Delete-At'])


def listing(cluster, container):
    resp = cluster.request('GET', '/' + container, params={'format': 'json'})
    assert resp.status_code in (200, 204)
    return [item['name'] for item in resp.json()] \
        if resp.status_code == 200 else []


def data_files(files_by_node):
    return [name for names in files_by_node.values() for name in names
            if name.endswith('.data')]


def tombstones(files_by_node):
    return [name for names in files_by_node.values() for name in names
            if name.endswith('.ts')]


def expire(cluster):
    stats = cluster.run_daemon('objstore.obj.expirer', 'object')
    assert all(s['failures'] == 0 for s in stats), stats
    return stats


# -- object expirer ----------------------------------------------------------

def test_expired_object_leaves_get_listing_and_disk(cluster):
    assert cluster.request('PUT', '/exp1').status_code in (201, 202)
    delete_at = put_expiring(cluster, '/exp1/short', 2)
    assert cluster.request('PUT', '/exp1/stays',
                           data=b'x').status_code == 201
    assert listing(cluster, 'exp1') == ['short', 'stays']
    wait_until(delete_at)
    # expired objects read 404 at once, but stay listed and on disk
    assert cluster.request('GET', '/exp1/short').status_code == 404
    assert listing(cluster, 'exp1') == ['short', 'stays']
    assert len(data_files(cluster.object_files(
        'AUTH_test', 'exp1', 'short'))) == 3
    stats = expire(cluster)
    assert sum(s['expired'] for s in stats) >= 3
    assert cluster.request('GET', '/exp1/short').status_code == 404
    assert listing(cluster, 'exp1') == ['stays']
    # every container primary heard of it, not only the one listed above
    for status in cluster.backend_status('container', 'GET', 'AUTH_test',
                                         'exp1'):
        assert status == 200
    part, nodes = cluster.rings['container'].get_nodes('AUTH_test', 'exp1')
    for node in nodes:
        _s, _h, body = backend.request(
            cluster.secret, node['ip'], node['port'], 'GET',
            backend.device_path_of(node['device'], part, 'AUTH_test',
                                   'exp1'), query='format=json')
        assert [o['name'] for o in json.loads(body)] == ['stays']
    # on disk: only tombstones stamped with the expiry time, on the three
    # primaries, and no index entry left behind
    files = cluster.object_files('AUTH_test', 'exp1', 'short')
    assert data_files(files) == []
    assert tombstones(files) == [Timestamp(delete_at).internal + '.ts'] * 3
    for node in range(1, NODES + 1):
        assert [e for e in expiry.due(cluster.device(node), time.time())
                if e.name == '/AUTH_test/exp1/short'] == []
    assert cluster.request('GET', '/exp1/stays').content == b'x'


def test_post_moving_x_delete_at_later_keeps_the_object_until_then(cluster):
    assert cluster.request('PUT', '/exp2').status_code in (201, 202)
    first = put_expiring(cluster, '/exp2/moved', 2)
    resp = cluster.request('POST', '/exp2/moved',
                           headers={'X-Delete-After': '10'})
    assert resp.status_code == 202
    later = int(cluster.request('HEAD', '/exp2/moved')
                .headers['X-Delete-At'])
    assert later > first
    wait_until(first)
    expire(cluster)
    done = time.time()
    files = cluster.object_files('AUTH_test', 'exp2', 'moved')
    # never expired at the old time, on any replica
    assert Timestamp(first).internal + '.ts' not in tombstones(files)
    if done < later:
        # (on a machine so loaded that the pass ended after the later
        # time, the object may rightly be gone already)
        assert len(data_files(files)) == 3 and tombstones(files) == []
        assert listing(cluster, 'exp2') == ['moved']
        resp = cluster.request('GET', '/exp2/moved')
        if time.time() < later:
            assert resp.content == b'bye'
    wait_until(later)
    expire(cluster)
    assert cluster.request('GET', '/exp2/moved').status_code == 404
    assert listing(cluster, 'exp2') == []
    files = cluster.object_files('AUTH_test', 'exp2', 'moved')
    assert data_files(files) == []
    assert set(tombstones(files)) == {Timestamp(later).internal + '.ts'}


def test_reput_without_x_delete_at_is_not_deleted(cluster):
    assert cluster.request('PUT', '/exp3').status_code in (201, 202)
    delete_at = put_expiring(cluster, '/exp3/reput', 2)
    resp = cluster.request('PUT', '/exp3/reput', data=b'kept')
    assert resp.status_code == 201
    assert 'X-Delete-At' not in cluster.request('HEAD', '/exp3/reput').headers
    wait_until(delete_at)
    stats = expire(cluster)
    assert sum(s['skipped'] for s in stats) >= 3  # the stale entries
    assert cluster.request('GET', '/exp3/reput').content == b'kept'
    assert listing(cluster, 'exp3') == ['reput']
    assert len(data_files(cluster.object_files(
        'AUTH_test', 'exp3', 'reput'))) == 3


def test_garbled_index_entries_are_skipped_and_removed(cluster):
    dev = cluster.device(2)
    hour = os.path.join(dev, expiry.EXPIRING_DIR, expiry.bucket_of(1000))
    os.makedirs(hour, exist_ok=True)
    junk = {'garbage': b'\x00\xff',
            '0000001000-1-%s-1.00000' % ('f' * 32): b'\xc1 not msgpack',
            '0000001001-1-%s-1.00000' % ('e' * 32): b'\x81\xa4name\xa3a/b',
            '0000001002-99999999-%s-1.00000' % ('d' * 32):
                b'\x81\xa4name\xa6/a/c/o'}
    for name, body in junk.items():
        with open(os.path.join(hour, name), 'wb') as f:
            f.write(body)
    stray = os.path.join(dev, expiry.EXPIRING_DIR, 'stray-file')
    with open(stray, 'wb') as f:
        f.write(b'?')
    stats = expire(cluster)
    assert stats[1]['skipped'] >= len(junk) + 1
    assert not os.path.exists(hour)  # emptied and pruned
    assert not os.path.exists(stray)
    assert os.listdir(os.path.join(dev, expiry.EXPIRING_DIR)) == [] or \
        all(n.isdigit() for n in os.listdir(
            os.path.join(dev, expiry.EXPIRING_DIR)))


# -- account reaper ----------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def manager_proxy(cluster):
    """A proxy of our own over the cluster that allows account PUT and
    DELETE to reseller admins (aio's own proxy does not)."""
    port = free_port()
    conf = os.path.join(cluster.var, 'etc', 'reaper-proxy-server.conf')
    with open(conf, 'w') as f:
        f.write(aio.proxy_conf_text(port, account_autocreate='true',
                                    allow_account_management='true'))
    log = open(os.path.join(cluster.var, 'reaper-proxy.log'), 'wb')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'objstore.proxy.server', conf],
        env=dict(os.environ, OBJSTORE_CONF=cluster.conf), stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), 0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    'proxy did not start'
                time.sleep(0.05)
        yield 'http://127.0.0.1:%d' % port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        log.close()


def reaper_confs(cluster, tmp_path):
    """Each node's account-server.conf with a tiny listing page, so the
    reaper pages through listings (and the account DB) as it deletes."""
    out = []
    for node in range(1, NODES + 1):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(cluster.node_conf(node, 'account'))
        if not parser.has_section('account-reaper'):
            parser.add_section('account-reaper')
        parser.set('account-reaper', 'listing_limit', '2')
        parser.set('account-reaper', 'node_timeout', '5')
        path = tmp_path / ('node%d-account-server.conf' % node)
        with open(path, 'w') as f:
            parser.write(f)
        out.append(str(path))
    return out


def test_reaper_removes_containers_and_objects_of_a_deleted_account(
        cluster, manager_proxy, tmp_path):
    _url, token = auth(manager_proxy + '/auth/v1.0', 'admin:admin', 'admin')
    account = 'AUTH_reapme'
    base = manager_proxy + '/v1/' + account
    h = {'X-Auth-Token': token}
    assert requests.put(base, headers=h, timeout=20).status_code in (201,
                                                                      202)
    contents = {'r1': ['a', 'b', 'c/d', 'é ü', 'e'], 'r2': ['x'],
                'r3': [], 'r4': ['y', 'z']}
    for container, objs in contents.items():
        assert requests.put(base + '/' + container, headers=h,
                            timeout=20).status_code in (201, 202)
        for obj in objs:
            assert requests.put(base + '/%s/%s' % (container, quote(obj)),
                                data=obj.encode(), headers=h,
                                timeout=20).status_code == 201
    # a live account nearby must not be touched
    assert cluster.request('PUT', '/keep').status_code in (201, 202)
    assert cluster.request('PUT', '/keep/k', data=b'k').status_code == 201
    # a reaper pass before the delete changes nothing
    stats = cluster.run_daemon('objstore.account.reaper', 'account',
                               reaper_confs(cluster, tmp_path))
    assert sum(s['accounts'] for s in stats) == 0

    resp = requests.delete(base, headers=h, timeout=20)
    assert resp.status_code == 204, resp.text
    # deleted, but everything it held is still stored
    assert cluster.backend_status('object', 'HEAD', account, 'r1',
                                  'a') == [200] * 3

    stats = cluster.run_daemon('objstore.account.reaper', 'account',
                               reaper_confs(cluster, tmp_path))
    assert sum(s['accounts'] for s in stats) == 3  # each replica's node
    assert sum(s['failures'] for s in stats) == 0, cluster.daemon_logs[-4:]
    assert sum(s['objects_deleted'] for s in stats) >= 8
    assert sum(s['containers_deleted'] for s in stats) >= 4
    for container, objs in contents.items():
        assert cluster.backend_status('container', 'GET', account,
                                      container) == [404] * 3
        for obj in objs:
            assert cluster.backend_status('object', 'HEAD', account,
                                          container, obj) == [404] * 3
            files = cluster.object_files(account, container, obj)
            assert data_files(files) == [] and len(tombstones(files)) == 3
    # a second pass finds nothing left to do and fails on nothing
    stats = cluster.run_daemon('objstore.account.reaper', 'account',
                               reaper_confs(cluster, tmp_path))
    assert [(s['objects_deleted'], s['containers_deleted'], s['failures'])
            for s in stats] == [(0, 0, 0)] * NODES
    assert cluster.request('GET', '/keep/k').content == b'k'
