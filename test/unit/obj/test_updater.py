"""The object updater's choices and its handling of files, without servers.

Targets come from real rings built in a temp dir; delivery failures are
real connection refusals (a port nothing listens on). Delivery to live
container servers is in test/functional/test_updaters.py.
"""
import json
import os
import socket

import pytest

from objstore.common import ondisk
from objstore.obj import async_pending, updater, updates
from objstore.obj.updater import (ObjectUpdater, Update, choose_targets,
                                  parse_update)
from rings.builder import RingBuilder


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def build_ring(ring_dir, kind, devs, replicas):
    """devs: [(port, device)] on 127.0.0.1, one zone each."""
    builder = RingBuilder(2, replicas, 1)
    for i, (port, device) in enumerate(devs):
        builder.add_dev({'region': 1, 'zone': i + 1, 'ip': '127.0.0.1',
                         'port': port, 'device': device, 'weight': 100})
    builder.rebalance(seed=1)
    builder.get_ring().save(os.path.join(ring_dir, '%s.ring.gz' % kind))


def record(port=6201, device='sdc', partition='2', **changes):
    rec = {'op': 'PUT', 'account': 'a', 'container': 'c', 'obj': 'o',
           'headers': {'X-Timestamp': '1700000000.00000', 'X-Size': '3',
                       'X-Content-Type': 'text/plain', 'X-Etag': 'e'},
           'container_host': '127.0.0.1:%d' % port,
           'container_partition': partition, 'container_device': device}
    rec.update(changes)
    return rec


@pytest.fixture
def node(tmp_path, cluster_conf):
    """One object node (sda) plus container rings; nothing listening."""
    devices = tmp_path / 'srv'
    (devices / 'sda').mkdir(parents=True)
    ring_dir = tmp_path / 'rings'
    ring_dir.mkdir()
    obj_port = free_port()
    build_ring(str(ring_dir), 'object', [(obj_port, 'sda')], 1)
    cports = [free_port(), free_port()]
    build_ring(str(ring_dir), 'container',
               [(cports[0], 'c1'), (cports[1], 'c2')], 2)
    conf = {'devices': str(devices), 'mount_check': 'false',
            'bind_ip': '127.0.0.1', 'bind_port': str(obj_port),
            'ring_dir': str(ring_dir), 'node_timeout': '1',
            'concurrency': '2'}
    return {'conf': conf, 'dev': str(devices / 'sda'), 'cports': cports,
            'ring_dir': str(ring_dir)}


def pending_files(dev):
    return list(async_pending.iter_pending(dev))


# -- pure parts --------------------------------------------------------------

def test_parse_update():
    update = parse_update(record(port=6201, device='sdc', partition='2'))
    assert (update.op, update.account, update.container, update.obj) == \
        ('PUT', 'a', 'c', 'o')
    assert update.node == ('127.0.0.1', 6201, 'sdc')
    assert update.partition == 2
    assert update.headers['X-Timestamp'] == '1700000000.00000'


@pytest.mark.parametrize('changes', [
    {'op': 'POST'},
    {'obj': ''},
    {'account': None},
    {'headers': {'X-Size': '3'}},
    {'headers': {'X-Timestamp': 1}},
    {'headers': 'X-Timestamp'},
    {'container_host': '127.0.0.1'},
    {'container_host': None},
    {'container_partition': 'two'},
    {'container_device': 'a/b'},
    {'container_host': '127.0.0.1:1,127.0.0.1:2',
     'container_device': 'x,y'},
])
def test_parse_update_refuses_damaged_records(changes):
    with pytest.raises(ValueError):
        parse_update(record(**changes))


def test_choose_targets():
    update = Update('PUT', 'a', 'c', 'o', {}, ('10.0.0.1', 6201, 'sdc'), 5)
    # no ring: the replica the update names
    assert choose_targets(update) == ([('10.0.0.1', 6201, 'sdc')], 5)
    primaries = [{'ip': '10.0.0.1', 'port': 6201, 'device': 'sdc'},
                 {'ip': '10.0.0.2', 'port': 6201, 'device': 'sdd'}]
    # still a primary: only that replica is owed the update
    assert choose_targets(update, 5, primaries) == \
        ([('10.0.0.1', 6201, 'sdc')], 5)
    # moved away by a rebalance: every current primary
    moved = [{'ip': '10.0.0.3', 'port': 6201, 'device': 'sdc'},
             {'ip': '10.0.0.2', 'port': 6201, 'device': 'sdd'}]
    assert choose_targets(update, 5, moved) == \
        ([('10.0.0.3', 6201, 'sdc'), ('10.0.0.2', 6201, 'sdd')], 5)


# -- files ---------------------------------------------------------------

def test_remove_takes_the_empty_suffix_dir_along(tmp_path):
    dev = str(tmp_path)
    a = async_pending.save(dev, 'a' * 29 + '123', '1', record())
    b = async_pending.save(dev, 'b' * 29 + '123', '2', record())
    async_pending.remove(a)
    assert os.path.isdir(os.path.dirname(b))
    async_pending.remove(b)
    assert not os.path.exists(os.path.dirname(b))
    async_pending.remove(b)  # already gone: fine


def test_a_writer_racing_the_rmdir_makes_the_dir_again(tmp_path,
                                                       monkeypatch):
    dev = str(tmp_path)
    real = ondisk.write_atomically
    raced = []

    def rmdir_first(path, *args, **kwargs):
        if not raced:  # the updater removes the empty suffix dir just now
            raced.append(path)
            os.rmdir(os.path.dirname(path))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(ondisk, 'write_atomically', rmdir_first)
    path = async_pending.save(dev, 'c' * 32, '1', record())
    assert raced == [path]
    assert async_pending.load(path) == record()


def test_undeliverable_updates_are_kept(node):
    port = node['cports'][0]
    for i in range(3):
        updates.save_pending(node['dev'], '%032x' % i, '170000000%d.00000'
                             % i, [('127.0.0.1', port, 'c1')], '1', 'PUT',
                             'a', 'c', 'o%d' % i,
                             {'X-Timestamp': '170000000%d.00000' % i,
                              'X-Size': '1'})
    before = pending_files(node['dev'])
    daemon = ObjectUpdater(node['conf'])
    for _ in range(2):
        stats = daemon.run_once()
        assert stats == {'pending': 3, 'successes': 0, 'failures': 3,
                         'quarantined': 0, 'errors': 0}
        assert pending_files(node['dev']) == before


def test_damaged_files_are_quarantined_not_retried(node):
    dev = node['dev']
    torn = async_pending.pending_path(dev, 'd' * 32, '1')
    os.makedirs(os.path.dirname(torn))
    with open(torn, 'wb') as f:
        f.write(b'\x85\xa2op')  # a msgpack map cut short
    nonsense = async_pending.save(dev, 'e' * 32, '2',
                                  record(op='SHRED'))
    daemon = ObjectUpdater(node['conf'])
    stats = daemon.run_once()
    assert (stats['quarantined'], stats['pending']) == (2, 2)
    assert pending_files(dev) == []
    qdir = os.path.join(dev, 'quarantined', 'async_pending')
    assert sorted(os.listdir(qdir)) == sorted(
        [os.path.basename(torn), os.path.basename(nonsense)])
    assert daemon.run_once()['pending'] == 0


def test_no_container_ring_falls_back_to_the_named_replica(node):
    os.unlink(os.path.join(node['ring_dir'], 'container.ring.gz'))
    async_pending.save(node['dev'], 'f' * 32, '1', record(port=free_port()))
    stats = ObjectUpdater(node['conf']).run_once()
    assert (stats['failures'], stats['errors']) == (1, 0)


def test_concurrency_must_be_positive(node, tmp_path, capsys):
    conf = tmp_path / 'object-server.conf'
    conf.write_text('[object-server]\ndevices = %s\n'
                    '[object-updater]\nconcurrency = 0\n' % node['dev'])
    assert updater.main([str(conf), '--once']) == 2
    assert 'concurrency' in capsys.readouterr().err


def test_main_prints_the_counts(node, tmp_path, capsys):
    conf = tmp_path / 'object-server.conf'
    c = node['conf']
    conf.write_text('[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = %s\n'
                    '[object-server]\ndevices = %s\nmount_check = false\n'
                    'ring_dir = %s\n[object-updater]\nnode_timeout = 1\n'
                    % (c['bind_port'], c['devices'], c['ring_dir']))
    async_pending.save(node['dev'], 'f' * 32, '1',
                       record(port=node['cports'][1], device='c2'))
    assert updater.main([str(conf), '--once']) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats['pending'], stats['failures']) == (1, 1)
