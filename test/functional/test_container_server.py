"""The container server as a real process, spoken to over real sockets.

Requests are signed with objstore.common.backend.request like every
internal client; container -> account updates go to a real account
server process (or to a port where nothing listens).
"""
import json
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import msgpack
import pytest

from objstore.common import backend, concurrency, ondisk
from objstore.common.timestamp import Timestamp
from objstore.obj import updates

_clock = [time.time()]


def ts():
    _clock[0] = max(_clock[0] + 0.01, time.time())
    return Timestamp(_clock[0]).internal


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def devices(tmp_path):
    for dev in ('sda', 'sdb'):
        (tmp_path / 'node' / dev).mkdir(parents=True)
    return tmp_path / 'node'


@pytest.fixture
def cluster(start_server, devices, cluster_conf):
    """An account server and a container server sharing one devices dir."""
    acct = start_server('objstore.account.server', 'account-server',
                        devices=devices, mount_check='false', workers=1)
    cont = start_server('objstore.container.server', 'container-server',
                        devices=devices, mount_check='false', workers=2,
                        account_update_delay='0.05',
                        account_update_timeout='2')
    secret = cluster_conf['secret']

    def to(server):
        def req(method, path, headers=None, query='', body=b''):
            return backend.request(secret, '127.0.0.1', server.port, method,
                                   path, headers=headers, query=query,
                                   body=body)
        return req
    yield {'account': to(acct), 'container': to(cont), 'acct': acct,
           'cont': cont}
    for server in (acct, cont):
        assert 'Traceback' not in server.read_log()


def account_headers(port, device='sdb'):
    return {'X-Account-Host': '127.0.0.1:%d' % port,
            'X-Account-Partition': '3', 'X-Account-Device': device}


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def test_container_lifecycle_over_http(cluster):
    c = cluster['container']
    status, _h, _b = c('PUT', '/sda/1/a/c', {
        'X-Timestamp': ts(), 'X-Container-Meta-Color': 'blue',
        'X-Container-Write': 'a:b'})
    assert status == 201
    assert c('PUT', '/sda/1/a/c', {'X-Timestamp': ts()})[0] == 202
    names = ['photos/2024/a.jpg', 'photos/b.jpg', 'notes.txt', 'é & <x>',
             'pct%41 ?#+', 'z']
    for i, name in enumerate(names):
        status, _h, _b = c('PUT', '/sda/1/a/c/' + name, {
            'X-Timestamp': ts(), 'X-Size': str(10 * (i + 1)),
            'X-Content-Type': 'text/plain', 'X-Etag': 'etag%d' % i})
        assert status == 201
    assert c('DELETE', '/sda/1/a/c/z', {'X-Timestamp': ts()})[0] == 204
    status, headers, body = c('HEAD', '/sda/1/a/c')
    assert status == 204
    assert headers['x-container-object-count'] == '5'
    assert headers['x-container-bytes-used'] == str(10 + 20 + 30 + 40 + 50)
    assert headers['x-container-meta-color'] == 'blue'
    assert headers['x-container-write'] == 'a:b'
    assert 'x-timestamp' in headers and 'x-put-timestamp' in headers

    status, headers, body = c('GET', '/sda/1/a/c')
    assert status == 200
    assert body.decode('utf-8').splitlines() == sorted(names[:5])
    assert headers['content-type'] == 'text/plain; charset=utf-8'

    status, headers, body = c('GET', '/sda/1/a/c', query=urlencode(
        {'format': 'json', 'delimiter': '/', 'prefix': 'photos/'}))
    assert headers['content-type'] == 'application/json; charset=utf-8'
    assert json.loads(body) == [
        {'subdir': 'photos/2024/'},
        {'name': 'photos/b.jpg', 'hash': 'etag1', 'bytes': 20,
         'content_type': 'text/plain',
         'last_modified': json.loads(body)[1]['last_modified']}]

    status, headers, body = c('GET', '/sda/1/a/c', {'Accept':
                                                    'application/xml'},
                              query='marker=notes.txt&end_marker=z')
    assert headers['content-type'] == 'application/xml; charset=utf-8'
    root = ET.fromstring(body)
    assert [o.findtext('name') for o in root.iter('object')] == \
        ['pct%41 ?#+', 'photos/2024/a.jpg', 'photos/b.jpg']  # 'é' > 'z'

    status, _h, body = c('GET', '/sda/1/a/c', query='reverse=1&limit=2')
    assert body.decode('utf-8').splitlines() == ['é & <x>', 'photos/b.jpg']

    assert c('POST', '/sda/1/a/c', {'X-Timestamp': ts(),
                                    'X-Container-Meta-Color': ''})[0] == 204
    assert 'x-container-meta-color' not in c('HEAD', '/sda/1/a/c')[1]

    status, _h, body = c('DELETE', '/sda/1/a/c', {'X-Timestamp': ts()})
    assert status == 409 and body == b'container not empty\n'
    for name in names[:5]:
        c('DELETE', '/sda/1/a/c/' + name, {'X-Timestamp': ts()})
    assert c('DELETE', '/sda/1/a/c', {'X-Timestamp': ts()})[0] == 204
    status, headers, _b = c('HEAD', '/sda/1/a/c')
    assert status == 404 and headers['x-backend-deleted'] == 'true'

    assert c('REPLICATE', '/sda/1/' + 'f' * 32)[0] == 404


def test_replicate_over_http(cluster, cluster_conf):
    c = cluster['container']
    c('PUT', '/sda/1/a/c', {'X-Timestamp': ts()})
    c('PUT', '/sda/1/a/c/o', {'X-Timestamp': ts(), 'X-Size': '3'})
    hsh = ondisk.name_hash(cluster_conf['prefix'], cluster_conf['suffix'],
                           'a', 'c')
    status, headers, body = c('REPLICATE', '/sda/1/' + hsh)
    assert status == 200
    assert headers['content-type'] == 'application/x-msgpack'
    info = msgpack.unpackb(body)
    assert (info['account'], info['container']) == ('a', 'c')
    assert info['object_count'] == 1 and info['max_row'] == 1
    row = {'ROWID': 9, 'name': 'p', 'created_at': ts(), 'size': 5,
           'content_type': 't', 'etag': 'e', 'deleted': 0}
    status, _h, _b = c('REPLICATE', '/sda/1/' + hsh, body=msgpack.packb(
        {'op': 'merge_items', 'items': [row], 'source_id': 'peer'}))
    assert status == 202
    status, _h, body = c('REPLICATE', '/sda/1/' + hsh, body=msgpack.packb(
        {'op': 'info', 'remote_id': 'peer'}))
    info = msgpack.unpackb(body)
    assert info['sync_point'] == 9 and info['object_count'] == 2


def test_bad_requests_over_http(cluster, cluster_conf):
    c = cluster['container']
    c('PUT', '/sda/1/a/c', {'X-Timestamp': ts()})
    assert c('GET', '/sda/1/a/c', query='limit=10001')[0] == 412
    assert c('GET', '/sda/1/a/c', query='delimiter=%2F%2F')[0] == 412
    assert c('PUT', '/sda/1/a/c2', {'X-Timestamp': 'x'})[0] == 400
    assert c('PUT', '/nodev/1/a/c2', {'X-Timestamp': ts()})[0] == 507
    assert c('PUT', '/sda/1/a/' + 'n' * 257, {'X-Timestamp': ts()})[0] == \
        400
    status, _h, body = backend.request(b'not-the-secret', '127.0.0.1',
                                       cluster['cont'].port, 'PUT',
                                       '/sda/1/a/c3',
                                       {'X-Timestamp': ts()})
    assert (status, body) == (401, b'bad signature\n')
    assert c('HEAD', '/sda/1/a/c3')[0] == 404


def test_stats_reach_a_real_account_server(cluster, devices):
    a, c = cluster['account'], cluster['container']
    target = account_headers(cluster['acct'].port)
    assert a('PUT', '/sdb/3/acct', {'X-Timestamp': ts()})[0] == 201
    assert c('PUT', '/sda/1/acct/photos', dict(
        target, **{'X-Timestamp': ts()}))[0] == 201
    status, headers, body = a('GET', '/sdb/3/acct', query='format=json')
    assert json.loads(body) == [{
        'name': 'photos', 'count': 0, 'bytes': 0,
        'last_modified': json.loads(body)[0]['last_modified']}]
    assert headers['x-account-container-count'] == '1'
    for i in range(6):
        assert c('PUT', '/sda/1/acct/photos/p%d' % i, {
            'X-Timestamp': ts(), 'X-Size': '100', 'X-Content-Type': 'x/y',
            'X-Etag': 'e'})[0] == 201
    c('DELETE', '/sda/1/acct/photos/p0', {'X-Timestamp': ts()})

    def account_stats():
        h = a('HEAD', '/sdb/3/acct')[1]
        return (h['x-account-object-count'], h['x-account-bytes-used']) == \
            ('5', '500')
    assert wait_for(account_stats)
    # nothing undelivered
    assert not (devices / 'sda' / 'async_pending_containers').exists()
    # deleting the container removes it from the account
    for i in range(1, 6):
        c('DELETE', '/sda/1/acct/photos/p%d' % i, {'X-Timestamp': ts()})
    assert c('DELETE', '/sda/1/acct/photos', dict(
        target, **{'X-Timestamp': ts()}))[0] == 204
    headers = a('HEAD', '/sdb/3/acct')[1]
    assert headers['x-account-container-count'] == '0'
    assert a('GET', '/sdb/3/acct')[0] == 204


def test_container_put_for_missing_account_is_404(cluster):
    c = cluster['container']
    target = account_headers(cluster['acct'].port)
    status, _h, body = c('PUT', '/sda/1/nobody/c', dict(
        target, **{'X-Timestamp': ts()}))
    assert (status, body) == (404, b'account not found\n')


def test_async_pending_when_account_server_is_down(cluster, devices):
    c = cluster['container']
    dead = free_port()
    assert c('PUT', '/sda/1/acct/c', dict(account_headers(dead),
                                          **{'X-Timestamp': ts()}))[0] == 201
    pending_root = devices / 'sda' / 'async_pending_containers'

    def pendings():
        return sorted(p for p in pending_root.rglob('*') if p.is_file())
    [first] = pendings()
    record = msgpack.unpackb(first.read_bytes())
    assert record['account'] == 'acct' and record['container'] == 'c'
    assert record['partition'] == 3
    assert record['nodes'] == [{'host': '127.0.0.1:%d' % dead,
                                'device': 'sdb'}]
    assert record['headers']['X-Object-Count'] == '0'
    # a stats change is reported to the remembered (dead) target too
    assert c('PUT', '/sda/1/acct/c/o', {
        'X-Timestamp': ts(), 'X-Size': '7', 'X-Content-Type': 't',
        'X-Etag': 'e'})[0] == 201
    assert wait_for(lambda: len(pendings()) == 2)
    latest = msgpack.unpackb(pendings()[-1].read_bytes())
    assert latest['headers']['X-Object-Count'] == '1'
    assert latest['headers']['X-Bytes-Used'] == '7'
    assert not list((devices / 'sda' / 'tmp').iterdir())


# -- object rows in bulk (UPDATE), as object servers batch them -----------

def updates_at_once(batcher, port, names, device='sda'):
    """Each name's update from its own green thread; their failures."""
    target = [('127.0.0.1', port, device)]

    def one(name):
        op, headers = ('DELETE', {}) if name.startswith('gone') else (
            'PUT', {'X-Size': '7', 'X-Content-Type': 'text/plain',
                    'X-Etag': 'e-' + name})
        headers['X-Timestamp'] = ts()
        return batcher.update(target, '3', op, 'a', 'c', name, headers)
    pool = concurrency.GreenPool(len(names))
    return list(pool.imap(one, names))


def test_object_updates_waiting_together_go_in_one_request(cluster,
                                                             cluster_conf):
    cont = cluster['container']
    assert cont('PUT', '/sda/3/a/c', {'X-Timestamp': ts()})[0] == 201
    batcher = updates.UpdateBatcher(cluster_conf['secret'], 5)
    port = cluster['cont'].port
    assert updates_at_once(batcher, port, ['gone']) == [[]]  # a lone row
    names = ['o%02d' % i for i in range(12)] + ['gone-%d' % i for i in
                                                range(3)]
    assert updates_at_once(batcher, port, names) == [[]] * 15
    status, headers, body = cont('GET', '/sda/3/a/c', query='format=json')
    listed = json.loads(body)
    assert [o['name'] for o in listed] == names[:12]
    assert listed[0]['bytes'] == 7 and listed[0]['hash'] == 'e-o00'
    assert headers['x-container-object-count'] == '12'
    log = cluster['cont'].read_log()
    # the lone row went alone, the next fifteen together
    assert log.count('"UPDATE /sda/3/a/c HTTP/1.1" 202') == 2
    assert '"PUT /sda/3/a/c/' not in log


def test_object_updates_that_fail_are_reported_as_failed(cluster,
                                                          cluster_conf):
    batcher = updates.UpdateBatcher(cluster_conf['secret'], 5)
    port = cluster['cont'].port
    target = ('127.0.0.1', port, 'sda')
    # no such container: every row of the batch fails (and would be saved
    # as an async pending by the object server)
    assert updates_at_once(batcher, port, ['a', 'b']) == [[target]] * 2
    # a device that is not there: 507
    assert updates_at_once(batcher, port, ['a'], device='sdz') == [
        [('127.0.0.1', port, 'sdz')]]


def test_bad_update_bodies_are_refused_and_change_nothing(cluster):
    cont = cluster['container']
    assert cont('PUT', '/sda/3/a/c', {'X-Timestamp': ts()})[0] == 201
    good = {'name': 'o', 'created_at': ts(), 'size': 1,
            'content_type': 't', 'etag': 'e', 'deleted': 0}
    cases = [
        ('not msgpack', b'\xc1\xc1', 400),
        ('not a list', msgpack.packb({'name': 'o'}), 400),
        ('empty', msgpack.packb([]), 400),
        ('missing field', msgpack.packb([{'name': 'o'}]), 400),
        ('bad timestamp', msgpack.packb([dict(good, created_at='x')]), 400),
        ('bad size', msgpack.packb([dict(good, size=-1)]), 400),
        ('bad name', msgpack.packb([dict(good, name='a' * 1025)]), 400),
        ('name not text', msgpack.packb([dict(good, name=b'o')]), 400),
        ('one bad row of two', msgpack.packb(
            [dict(good, name='fine'), dict(good, deleted=7)]), 400),
        ('too many rows', msgpack.packb([good] * 1001), 413),
    ]
    for what, body, expected in cases:
        status, _h, reply = cont('UPDATE', '/sda/3/a/c', body=body)
        assert status == expected, (what, reply)
    assert cont('UPDATE', '/sda/3/a/c/o', body=msgpack.packb([good]))[0] \
        == 400
    assert cont('GET', '/sda/3/a/c')[2] == b''
    # and a good one still goes in
    assert cont('UPDATE', '/sda/3/a/c', body=msgpack.packb([good]))[0] == \
        202
    assert cont('GET', '/sda/3/a/c')[2] == b'o\n'
