"""The account reaper's choices, on real account databases and rings.

No servers run here (the rings name free ports, so every request the
reaper makes fails); functional/test_expirer_reaper.py reaps a real
cluster.
"""
import os
import time

import pytest

from objstore.account.broker import AccountBroker
from objstore.account.reaper import AccountReaper, pair_headers
from objstore.cli import aio
from objstore.common import db, ondisk
from objstore.common.timestamp import Timestamp


@pytest.fixture
def node(tmp_path, cluster_conf, free_aio_ports):
    base, _proxy = free_aio_ports
    etc = tmp_path / 'etc'
    etc.mkdir()
    for kind in aio.KINDS:
        aio.build_ring(str(etc), kind, base)
    devices = tmp_path / 'srv'
    (devices / 'd1').mkdir(parents=True)
    conf = {'devices': str(devices), 'mount_check': 'false',
            'bind_ip': '127.0.0.1',
            'bind_port': str(aio.port_for('account', 1, base)),
            'ring_dir': str(etc), 'node_timeout': '1'}
    return {'conf': conf, 'devices': str(devices), 'cluster': cluster_conf}


def make_account(node, account, containers=(), deleted_at=None):
    hsh = ondisk.name_hash(node['cluster']['prefix'],
                           node['cluster']['suffix'], account)
    db_file = os.path.join(ondisk.storage_dir(
        node['devices'], 'd1', 'accounts', 17, hsh), hsh + '.db')
    broker = AccountBroker(db_file, account=account)
    created = Timestamp(time.time() - 100)
    broker.initialize(created, os.path.join(node['devices'], 'd1', 'tmp'))
    for name in containers:
        broker.put_container(name, created.internal, '0', 1, 10,
                             created.internal)
    if deleted_at is not None:
        broker.delete_account(Timestamp(deleted_at))
    return broker


def reaper(node, **settings):
    return AccountReaper(dict(node['conf'], **settings))


def test_live_accounts_are_not_reaped(node):
    make_account(node, 'AUTH_live', ['c1', 'c2'])
    assert reaper(node).run_once() == {
        'accounts': 0, 'containers_deleted': 0, 'objects_deleted': 0,
        'failures': 0}


def test_a_deleted_account_with_unreachable_nodes_fails_per_container(node):
    # every container primary is down: each container is a failure, the
    # pass goes on with the next one and ends normally
    make_account(node, 'AUTH_gone', ['c1', 'c2', 'c3'],
                 deleted_at=time.time() - 10)
    stats = reaper(node).run_once()
    assert stats == {'accounts': 1, 'containers_deleted': 0,
                     'objects_deleted': 0, 'failures': 3}


def test_delay_reaping_gives_a_grace_period(node):
    make_account(node, 'AUTH_recent', ['c1'], deleted_at=time.time() - 10)
    assert reaper(node, delay_reaping='3600').run_once()['accounts'] == 0
    assert reaper(node, delay_reaping='5').run_once()['accounts'] == 1


def test_an_empty_deleted_account_is_visited_without_requests(node):
    make_account(node, 'AUTH_empty', deleted_at=time.time() - 10)
    assert reaper(node).run_once() == {
        'accounts': 1, 'containers_deleted': 0, 'objects_deleted': 0,
        'failures': 0}


def test_a_damaged_database_is_a_failure_not_a_crash(node):
    broker = make_account(node, 'AUTH_bad', ['c1'])
    with open(broker.db_file, 'r+b') as f:
        f.write(b'this is not sqlite' * 10)
    db.POOL.clear()  # no connection opened before the damage is reused
    make_account(node, 'AUTH_gone', ['c1'], deleted_at=time.time() - 10)
    stats = reaper(node).run_once()
    assert stats['failures'] == 2  # the damaged DB, the unreachable c1
    assert stats['accounts'] == 1


def test_pair_headers_spread_replicas_over_the_level_above():
    nodes = [{'ip': '10.0.0.%d' % i, 'port': 6000 + i, 'device': 'd%d' % i}
             for i in range(3)]
    assert pair_headers('Container', 9, nodes, 1) == {
        'X-Container-Host': '10.0.0.1:6001', 'X-Container-Partition': '9',
        'X-Container-Device': 'd1'}
    assert pair_headers('Account', 0, nodes, 4)['X-Account-Device'] == 'd1'
