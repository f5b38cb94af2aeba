"""Account update targets, headers, async pendings and the reporter.

Delivery to a live account server is tested with real processes in
test/functional; here the target port has nothing listening, a real
connection refusal.
"""
import os

import msgpack
import pytest

from objstore.common import concurrency
from objstore.common.timestamp import Timestamp
from objstore.container.account_update import (
    ASYNC_DIR, AccountTarget, Reporter, async_pending_path, update_headers,
    write_async_pending)
from objstore.container.broker import ContainerBroker


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_target_from_headers():
    assert AccountTarget.from_headers({}) is None
    t = AccountTarget.from_headers({
        'X-Account-Host': '10.0.0.1:6202, [::1]:6002',
        'X-Account-Partition': '17', 'X-Account-Device': 'sda,sdb'})
    assert t.nodes == [('10.0.0.1', 6202, 'sda'), ('::1', 6002, 'sdb')]
    assert t.partition == 17
    again = AccountTarget.from_text(t.to_text())
    assert (again.nodes, again.partition) == (t.nodes, t.partition)
    assert AccountTarget.from_text('') is None


@pytest.mark.parametrize('headers', [
    {'X-Account-Host': '1.2.3.4:1'},
    {'X-Account-Host': '1.2.3.4', 'X-Account-Partition': '1',
     'X-Account-Device': 'sda'},
    {'X-Account-Host': '1.2.3.4:99999', 'X-Account-Partition': '1',
     'X-Account-Device': 'sda'},
    {'X-Account-Host': '1.2.3.4:1', 'X-Account-Partition': 'one',
     'X-Account-Device': 'sda'},
    {'X-Account-Host': '1.2.3.4:1,5.6.7.8:2', 'X-Account-Partition': '1',
     'X-Account-Device': 'sda'},
    {'X-Account-Host': '1.2.3.4:1', 'X-Account-Partition': '1',
     'X-Account-Device': '..'},
])
def test_bad_targets(headers):
    with pytest.raises(ValueError):
        AccountTarget.from_headers(headers)


def test_update_headers():
    info = {'put_timestamp': '1700000001.00000',
            'delete_timestamp': '0000000000.00000', 'object_count': 3,
            'bytes_used': 12}
    assert update_headers(info, Timestamp(1700000002)) == {
        'X-Put-Timestamp': '1700000001.00000',
        'X-Delete-Timestamp': '0000000000.00000', 'X-Object-Count': '3',
        'X-Bytes-Used': '12', 'X-Timestamp': '1700000002.00000'}


def test_write_async_pending(tmp_path):
    root = str(tmp_path / 'sda')
    headers = {'X-Timestamp': '1700000002.00000', 'X-Object-Count': '1'}
    path = write_async_pending(root, 'ab' * 16, 'a', 'c',
                               [('127.0.0.1', 6202, 'sdb')], 4, headers)
    assert path == async_pending_path(root, 'ab' * 16, '1700000002.00000')
    assert path == os.path.join(root, ASYNC_DIR, 'bab',
                                'ab' * 16 + '-1700000002.00000')
    with open(path, 'rb') as f:
        record = msgpack.unpackb(f.read())
    assert record == {'op': 'PUT', 'account': 'a', 'container': 'c',
                      'partition': 4, 'headers': headers,
                      'nodes': [{'host': '127.0.0.1:6202',
                                 'device': 'sdb'}]}
    assert os.listdir(os.path.join(root, 'tmp')) == []


@pytest.fixture
def broker(tmp_path):
    b = ContainerBroker(str(tmp_path / 'sda' / 'c.db'), account='a',
                        container='c')
    b.initialize(Timestamp(1700000001), str(tmp_path / 'sda' / 'tmp'))
    return b


def test_unreachable_account_leaves_async_pending(tmp_path, broker):
    port = free_port()
    target = AccountTarget([('127.0.0.1', port, 'sdb')], 3)
    reporter = Reporter(b'secret', timeout=2)
    root = str(tmp_path / 'sda')
    statuses = reporter.report(broker, root, 'cd' * 16, target=target)
    assert statuses == [None]
    [name] = os.listdir(os.path.join(root, ASYNC_DIR, 'dcd'))
    with open(os.path.join(root, ASYNC_DIR, 'dcd', name), 'rb') as f:
        record = msgpack.unpackb(f.read())
    assert record['nodes'] == [{'host': '127.0.0.1:%d' % port,
                                'device': 'sdb'}]
    assert record['headers']['X-Put-Timestamp'] == '1700000001.00000'
    # nothing acknowledged, so nothing recorded as reported
    assert broker.get_info()['reported_object_count'] == -1


def test_scheduled_reports_are_coalesced(tmp_path, broker):
    port = free_port()
    broker.set_account_target(AccountTarget(
        [('127.0.0.1', port, 'sdb')], 3).to_text())
    reporter = Reporter(b'secret', timeout=2, delay=0.05)
    root = str(tmp_path / 'sda')
    for i in range(5):
        broker.put_object('o%d' % i, Timestamp(1700000002 + i).internal, 1,
                          't', 'e')
        reporter.schedule(broker, root, 'cd' * 16)
    for _ in range(100):
        concurrency.sleep(0.02)
        if not reporter._running:
            break
    assert not reporter._running
    files = os.listdir(os.path.join(root, ASYNC_DIR, 'dcd'))
    assert len(files) == 1  # five changes, one report
    with open(os.path.join(root, ASYNC_DIR, 'dcd', files[0]), 'rb') as f:
        assert msgpack.unpackb(f.read())['headers']['X-Object-Count'] == '5'
