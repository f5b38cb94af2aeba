"""The container updater's records, choices and bookkeeping, without servers.

Real container databases and real rings in a temp dir; account servers
are ports nothing listens on (a real connection refusal). Delivery to live
account servers is in test/functional/test_updaters.py.
"""
import json
import os
import socket

import msgpack
import pytest

from objstore.common import ondisk
from objstore.common.timestamp import Timestamp
from objstore.container import account_update, updater
from objstore.container.account_update import (
    ASYNC_DIR, needs_report, parse_async_pending, record_nodes, settled,
    with_nodes, write_async_pending)
from objstore.container.broker import ContainerBroker
from objstore.container.updater import ContainerUpdater
from rings.builder import RingBuilder


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def build_ring(ring_dir, kind, devs, replicas):
    builder = RingBuilder(2, replicas, 1)
    for i, (port, device) in enumerate(devs):
        builder.add_dev({'region': 1, 'zone': i + 1, 'ip': '127.0.0.1',
                         'port': port, 'device': device, 'weight': 100})
    builder.rebalance(seed=1)
    builder.get_ring().save(os.path.join(ring_dir, '%s.ring.gz' % kind))


HEADERS = {'X-Put-Timestamp': '1700000001.00000',
           'X-Delete-Timestamp': '0000000000.00000', 'X-Object-Count': '2',
           'X-Bytes-Used': '7', 'X-Timestamp': '1700000002.00000'}


def a_record(**changes):
    rec = {'op': 'PUT', 'account': 'a', 'container': 'c', 'partition': 3,
           'headers': dict(HEADERS),
           'nodes': [{'host': '127.0.0.1:6202', 'device': 'sdb'},
                     {'host': '[::1]:6002', 'device': 'sdc'}]}
    rec.update(changes)
    return rec


@pytest.fixture
def node(tmp_path, cluster_conf):
    """One container node (sda); account ring of two unreachable nodes."""
    devices = tmp_path / 'srv'
    (devices / 'sda').mkdir(parents=True)
    ring_dir = tmp_path / 'rings'
    ring_dir.mkdir()
    port = free_port()
    build_ring(str(ring_dir), 'container', [(port, 'sda')], 1)
    aports = [free_port(), free_port()]
    build_ring(str(ring_dir), 'account',
               [(aports[0], 'a1'), (aports[1], 'a2')], 2)
    conf = {'devices': str(devices), 'mount_check': 'false',
            'bind_ip': '127.0.0.1', 'bind_port': str(port),
            'ring_dir': str(ring_dir), 'node_timeout': '1'}
    return {'conf': conf, 'dev': str(devices / 'sda'), 'aports': aports,
            'ring_dir': str(ring_dir), 'prefix': cluster_conf['prefix'],
            'suffix': cluster_conf['suffix']}


def make_db(node, account, container, objects=0):
    hsh = ondisk.name_hash(node['prefix'], node['suffix'], account,
                           container)
    path = os.path.join(ondisk.storage_dir(
        os.path.dirname(node['dev']), 'sda', 'containers', 1, hsh),
        hsh + '.db')
    broker = ContainerBroker(path, account=account, container=container)
    broker.initialize(Timestamp.now(), os.path.join(node['dev'], 'tmp'))
    for i in range(objects):
        broker.put_object('o%d' % i, Timestamp.now().internal, 10 + i,
                          'text/plain', 'e')
    return broker


def records(dev):
    root = os.path.join(dev, ASYNC_DIR)
    out = []
    for dirpath, _dirs, files in os.walk(root):
        out += [os.path.join(dirpath, f) for f in files]
    return sorted(out)


# -- pure helpers in account_update -----------------------------------------

def test_parse_async_pending_reads_what_write_async_pending_wrote(tmp_path):
    path = write_async_pending(str(tmp_path), 'ab' * 16, 'a', 'c',
                              [('127.0.0.1', 6202, 'sdb')], 4, HEADERS)
    with open(path, 'rb') as f:
        rec = parse_async_pending(f.read())
    assert rec['partition'] == 4 and rec['headers'] == HEADERS
    assert record_nodes(rec) == [('127.0.0.1', 6202, 'sdb')]


@pytest.mark.parametrize('changes', [
    {'op': 'DELETE'},
    {'account': ''},
    {'container': 3},
    {'partition': '3'},
    {'partition': -1},
    {'headers': {'X-Object-Count': '2'}},
    {'headers': {'X-Timestamp': 5}},
    {'nodes': None},
    {'nodes': [{'host': '127.0.0.1', 'device': 'sdb'}]},
    {'nodes': [{'host': '127.0.0.1:70000', 'device': 'sdb'}]},
    {'nodes': [{'host': '127.0.0.1:6202', 'device': '../x'}]},
    {'nodes': ['127.0.0.1:6202/sdb']},
])
def test_parse_async_pending_refuses_damaged_records(changes):
    with pytest.raises(ValueError):
        parse_async_pending(msgpack.packb(a_record(**changes)))


@pytest.mark.parametrize('data', [b'', b'\xc1', msgpack.packb([1, 2])])
def test_parse_async_pending_refuses_non_records(data):
    with pytest.raises(ValueError):
        parse_async_pending(data)


def test_nodes_of_a_record_and_striking_them_off():
    rec = a_record()
    assert record_nodes(rec) == [('127.0.0.1', 6202, 'sdb'),
                                 ('::1', 6002, 'sdc')]
    left = with_nodes(rec, [('::1', 6002, 'sdc')])
    assert record_nodes(left) == [('::1', 6002, 'sdc')]
    assert left['headers'] == rec['headers']
    assert len(rec['nodes']) == 2  # the original is untouched


def test_settled():
    assert settled(201) and settled(204) and settled(404)
    assert not settled(None) and not settled(500)
    assert not settled(503) and not settled(507)


def test_needs_report():
    info = {'object_count': 2, 'bytes_used': 7,
            'put_timestamp': '1700000001.00000',
            'delete_timestamp': '0000000000.00000',
            'reported_object_count': 2, 'reported_bytes_used': 7,
            'reported_put_timestamp': '1700000001.00000',
            'reported_delete_timestamp': '0000000000.00000'}
    assert not needs_report(info)
    for key, value in (('object_count', 3), ('bytes_used', 8),
                       ('delete_timestamp', '1700000009.00000'),
                       ('put_timestamp', '1700000009.00000')):
        assert needs_report(dict(info, **{key: value}))


# -- the daemon ----------------------------------------------------------

def test_unreachable_accounts_keep_records_and_stale_stats(node):
    path = write_async_pending(
        node['dev'], 'ab' * 16, 'a', 'c',
        [('127.0.0.1', port, 'a%d' % (i + 1))
         for i, port in enumerate(node['aports'])], 1, HEADERS)
    with open(path, 'rb') as f:
        before = f.read()
    stale = make_db(node, 'acct', 'stale', objects=2)
    daemon = ContainerUpdater(node['conf'])
    for _ in range(2):
        stats = daemon.run_once()
        assert (stats['pending'], stats['pending_left'],
                stats['pending_done']) == (1, 1, 0)
        assert (stats['containers'], stats['failures'],
                stats['reported']) == (1, 1, 0)
        assert stats['errors'] == 0
        with open(path, 'rb') as f:
            assert f.read() == before
        assert stale.get_info()['reported_object_count'] == -1


def test_reported_containers_are_not_sent_again(node):
    broker = make_db(node, 'acct', 'done', objects=3)
    info = broker.get_info()
    broker.reported(info['put_timestamp'], info['delete_timestamp'],
                    info['object_count'], info['bytes_used'])
    stats = ContainerUpdater(node['conf']).run_once()
    assert (stats['containers'], stats['failures'], stats['reported']) == \
        (1, 0, 0)
    # a change since makes it stale again
    broker.put_object('new', Timestamp.now().internal, 1, 't', 'e')
    stats = ContainerUpdater(node['conf']).run_once()
    assert (stats['containers'], stats['failures']) == (1, 1)


def test_damaged_records_are_quarantined(node):
    dev = node['dev']
    torn = account_update.async_pending_path(dev, 'cd' * 16,
                                             '1700000003.00000')
    os.makedirs(os.path.dirname(torn))
    with open(torn, 'wb') as f:
        f.write(msgpack.packb(a_record())[:20])
    stats = ContainerUpdater(node['conf']).run_once()
    assert stats['quarantined'] == 1 and stats['pending'] == 0
    assert records(dev) == []
    assert os.listdir(os.path.join(dev, 'quarantined', ASYNC_DIR)) == \
        [os.path.basename(torn)]


def test_database_without_names_is_an_error_not_a_crash(node):
    broker = make_db(node, 'acct', 'c')
    with broker.transaction() as conn:
        conn.execute('UPDATE db_info SET account = NULL')
    stats = ContainerUpdater(node['conf']).run_once()
    assert stats['errors'] == 1 and stats['failures'] == 0


def test_main_prints_the_counts(node, tmp_path, capsys):
    c = node['conf']
    conf = tmp_path / 'container-server.conf'
    conf.write_text('[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = %s\n'
                    '[container-server]\ndevices = %s\nmount_check = false\n'
                    'ring_dir = %s\n[container-updater]\nnode_timeout = 1\n'
                    % (c['bind_port'], c['devices'], c['ring_dir']))
    make_db(node, 'acct', 'c', objects=1)
    assert updater.main([str(conf), '--once']) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats['containers'], stats['failures']) == (1, 1)
