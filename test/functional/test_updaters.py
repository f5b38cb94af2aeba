"""The object and container updaters against real servers on loopback.

Object, container and account servers run as real processes; rings are
built with the ring builder into a temp ring_dir that every config names.
A server "down" is a stopped process, brought back on the same port and
devices. The daemons run as operators run them, ``python -m <module>
CONF --once``, and their JSON counts are checked along with what the
servers then list.
"""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from objstore.common import backend
from objstore.common.timestamp import Timestamp
from objstore.container.account_update import ASYNC_DIR as ACCOUNT_ASYNC
from objstore.obj import async_pending
from rings.builder import RingBuilder
from rings.ring import Ring

_clock = [time.time()]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def ts():
    _clock[0] = max(_clock[0] + 0.01, time.time())
    return Timestamp(_clock[0]).internal


def build_ring(ring_dir, kind, devs):
    """One replica over ``devs`` [(port, device)] on 127.0.0.1."""
    builder = RingBuilder(2, 1, 1)
    for i, (port, device) in enumerate(devs):
        builder.add_dev({'region': 1, 'zone': i + 1, 'ip': '127.0.0.1',
                         'port': port, 'device': device, 'weight': 100})
    builder.rebalance(seed=1)
    path = os.path.join(ring_dir, '%s.ring.gz' % kind)
    builder.get_ring().save(path)
    return path


class Node:
    """One storage server's settings: port, devices, config, process."""

    def __init__(self, start_server, tmp_path, module, section, device,
                 ring_dir, **settings):
        self.start_server = start_server
        self.module, self.section, self.device = module, section, device
        self.port = free_port()
        self.devices = tmp_path / ('%s-%d' % (section, self.port))
        (self.devices / device).mkdir(parents=True)
        self.settings = dict(settings, devices=self.devices,
                             mount_check='false', workers=1,
                             ring_dir=ring_dir)
        self.server = None

    @property
    def device_path(self):
        return str(self.devices / self.device)

    @property
    def conf(self):
        return self.server.conf_path

    def start(self):
        self.server = self.start_server(self.module, self.section,
                                        bind_port=self.port, **self.settings)
        return self

    def stop(self):
        self.server.stop()


def request(secret, node, method, path, headers=None, query=''):
    return backend.request(secret, '127.0.0.1', node.port, method, path,
                           headers=headers, query=query, timeout=5)


def run_daemons(module, conf, env_conf, copies=1):
    """``python -m module conf --once``, ``copies`` of it at once; the
    JSON counts of each."""
    env = dict(os.environ, OBJSTORE_CONF=env_conf)
    procs = [subprocess.Popen([sys.executable, '-m', module, conf, '--once'],
                              env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
             for _ in range(copies)]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr.decode()
        assert b'Traceback' not in stderr, stderr.decode()
        out.append(json.loads(stdout))
    return out


def run_daemon(module, conf, env_conf):
    return run_daemons(module, conf, env_conf)[0]


def listing(secret, cont, part, account, container):
    status, _h, body = request(secret, cont, 'GET', '/%s/%d/%s/%s' % (
        cont.device, part, account, container), query='format=json')
    assert status == 200, body
    return {row['name']: row for row in json.loads(body)}


def put_object(secret, obj_node, cont, cpart, name, body):
    status, _h, _b = backend.request(
        secret, '127.0.0.1', obj_node.port, 'PUT',
        '/%s/0/a/c/%s' % (obj_node.device, name),
        headers={'X-Timestamp': ts(), 'Content-Type': 'text/plain',
                 'X-Container-Host': '127.0.0.1:%d' % cont.port,
                 'X-Container-Partition': str(cpart),
                 'X-Container-Device': cont.device},
        body=body, timeout=5)
    assert status == 201


def pending(node):
    return list(async_pending.iter_pending(node.device_path))


@pytest.fixture
def ring_dir(tmp_path):
    path = tmp_path / 'rings'
    path.mkdir()
    return str(path)


@pytest.fixture
def storage(start_server, tmp_path, ring_dir):
    """make(kind, device) -> a Node for an object/container/account server.
    """
    modules = {'object': 'objstore.obj.server',
               'container': 'objstore.container.server',
               'account': 'objstore.account.server'}

    def make(kind, device, **settings):
        return Node(start_server, tmp_path, modules[kind],
                    '%s-server' % kind, device, ring_dir, **settings)
    return make


def test_object_updater_completes_listing_after_container_was_down(
        storage, ring_dir, cluster_conf):
    secret = cluster_conf['secret']
    obj = storage('object', 'sda')
    cont = storage('container', 'sdc')
    build_ring(ring_dir, 'object', [(obj.port, obj.device)])
    cring = Ring(build_ring(ring_dir, 'container',
                            [(cont.port, cont.device)]),
                 cluster_conf['prefix'], cluster_conf['suffix'])
    cpart = cring.get_part('a', 'c')
    obj.start()
    cont.start()
    assert request(secret, cont, 'PUT', '/sdc/%d/a/c' % cpart,
                   {'X-Timestamp': ts()})[0] == 201
    put_object(secret, obj, cont, cpart, 'doomed', b'x')
    assert list(listing(secret, cont, cpart, 'a', 'c')) == ['doomed']

    cont.stop()
    bodies = {'o%02d' % i: os.urandom(i * 100) for i in range(12)}
    for name, body in bodies.items():
        put_object(secret, obj, cont, cpart, name, body)
    status, _h, _b = backend.request(
        secret, '127.0.0.1', obj.port, 'DELETE', '/sda/0/a/c/doomed',
        headers={'X-Timestamp': ts(),
                 'X-Container-Host': '127.0.0.1:%d' % cont.port,
                 'X-Container-Partition': str(cpart),
                 'X-Container-Device': 'sdc'}, timeout=5)
    assert status == 204
    assert len(pending(obj)) == 13

    # the container server is still down: every update is kept
    stats = run_daemon('objstore.obj.updater', obj.conf,
                       cluster_conf['path'])
    assert (stats['pending'], stats['failures'], stats['successes']) == \
        (13, 13, 0)
    assert len(pending(obj)) == 13

    cont.start()
    # two updaters at once: the same idempotent updates, sent twice at most
    both = run_daemons('objstore.obj.updater', obj.conf,
                       cluster_conf['path'], copies=2)
    assert 13 <= sum(s['successes'] for s in both) <= 26
    assert [(s['failures'], s['errors'], s['quarantined']) for s in both] \
        == [(0, 0, 0)] * 2
    assert pending(obj) == []
    assert os.listdir(os.path.join(obj.device_path, 'async_pending')) == []
    rows = listing(secret, cont, cpart, 'a', 'c')
    assert sorted(rows) == sorted(bodies)
    for name, body in bodies.items():
        assert rows[name]['bytes'] == len(body)
    # a second pass has nothing to do and changes nothing
    stats = run_daemon('objstore.obj.updater', obj.conf,
                       cluster_conf['path'])
    assert stats['pending'] == 0
    assert listing(secret, cont, cpart, 'a', 'c') == rows
    for node in (obj, cont):
        assert 'Traceback' not in node.server.read_log()


def test_object_updater_follows_a_ring_change(storage, ring_dir,
                                              cluster_conf):
    secret = cluster_conf['secret']
    obj = storage('object', 'sda')
    old = storage('container', 'sdc')      # never comes back
    new = storage('container', 'sdd')
    build_ring(ring_dir, 'object', [(obj.port, obj.device)])
    build_ring(ring_dir, 'container', [(old.port, old.device)])
    obj.start()
    for i in range(5):
        put_object(secret, obj, old, 1, 'o%d' % i, b'abc')
    assert len(pending(obj)) == 5

    # a rebalance moved the container to a device on another server
    cring = Ring(build_ring(ring_dir, 'container',
                            [(new.port, new.device)]),
                 cluster_conf['prefix'], cluster_conf['suffix'])
    cpart = cring.get_part('a', 'c')
    new.start()
    assert request(secret, new, 'PUT', '/sdd/%d/a/c' % cpart,
                   {'X-Timestamp': ts()})[0] == 201
    stats = run_daemon('objstore.obj.updater', obj.conf,
                       cluster_conf['path'])
    assert (stats['successes'], stats['failures']) == (5, 0)
    assert sorted(listing(secret, new, cpart, 'a', 'c')) == \
        ['o%d' % i for i in range(5)]
    assert pending(obj) == []


def test_container_updater_fixes_account_stats_after_account_was_down(
        storage, ring_dir, cluster_conf):
    secret = cluster_conf['secret']
    acct = storage('account', 'sdb')
    cont = storage('container', 'sdc', account_update_delay='0.05',
                   account_update_timeout='1')
    aring = Ring(build_ring(ring_dir, 'account', [(acct.port, 'sdb')]),
                 cluster_conf['prefix'], cluster_conf['suffix'])
    cring = Ring(build_ring(ring_dir, 'container', [(cont.port, 'sdc')]),
                 cluster_conf['prefix'], cluster_conf['suffix'])
    apart = aring.get_part('acct')
    cpart = cring.get_part('acct', 'box')
    acct.start()
    assert request(secret, acct, 'PUT', '/sdb/%d/acct' % apart,
                   {'X-Timestamp': ts()})[0] == 201
    acct.stop()

    cont.start()
    status, _h, _b = request(secret, cont, 'PUT', '/sdc/%d/acct/box' % cpart,
                             {'X-Timestamp': ts(),
                              'X-Account-Host': '127.0.0.1:%d' % acct.port,
                              'X-Account-Partition': str(apart),
                              'X-Account-Device': 'sdb'})
    assert status == 201
    sizes = [10, 20, 30, 40, 55]
    for i, size in enumerate(sizes):
        status, _h, _b = request(
            secret, cont, 'PUT', '/sdc/%d/acct/box/o%d' % (cpart, i),
            {'X-Timestamp': ts(), 'X-Size': str(size),
             'X-Content-Type': 'text/plain', 'X-Etag': 'e'})
        assert status == 201
    records = os.path.join(cont.device_path, ACCOUNT_ASYNC)
    deadline = time.monotonic() + 10
    while len(list(async_pending.iter_pending(
            cont.device_path, ACCOUNT_ASYNC))) < 2:
        assert time.monotonic() < deadline, 'no stats report was saved'
        time.sleep(0.05)

    acct.start()
    stats = run_daemon('objstore.container.updater', cont.conf,
                       cluster_conf['path'])
    assert stats['pending_done'] >= 2 and stats['pending_left'] == 0
    assert (stats['reported'], stats['failures'], stats['errors']) == \
        (1, 0, 0)
    assert os.listdir(records) == []
    status, headers, body = request(secret, acct, 'GET', '/sdb/%d/acct'
                                    % apart, query='format=json')
    assert status == 200
    [row] = json.loads(body)
    assert (row['name'], row['count'], row['bytes']) == \
        ('box', len(sizes), sum(sizes))
    assert headers['x-account-object-count'] == str(len(sizes))
    assert headers['x-account-bytes-used'] == str(sum(sizes))

    for node in (acct, cont):
        assert 'Traceback' not in node.server.read_log()
    # again: nothing to send, the account unchanged
    stats = run_daemon('objstore.container.updater', cont.conf,
                       cluster_conf['path'])
    assert (stats['pending'], stats['reported'], stats['containers']) == \
        (0, 0, 1)
    assert json.loads(request(secret, acct, 'GET', '/sdb/%d/acct' % apart,
                              query='format=json')[2]) == [row]
