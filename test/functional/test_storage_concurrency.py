"""Three real storage servers together: object, container and account.

The test plays the proxy: it sends signed requests that carry the
container/account update headers a proxy would add, 50 at once.
"""
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from objstore.common import backend
from objstore.common.timestamp import Timestamp

ACCOUNT, CONTAINER = 'AUTH_test', 'race'


@pytest.fixture
def storage_node(tmp_path, start_server):
    devices = tmp_path / 'srv'
    for dev in ('sda', 'sdb', 'sdc'):
        (devices / dev).mkdir(parents=True)
    common = dict(devices=str(devices), mount_check='false')
    return {
        'devices': devices,
        'account': start_server('objstore.account.server', 'account-server',
                                workers=1, **common),
        'container': start_server('objstore.container.server',
                                  'container-server', workers=2,
                                  account_update_delay=0.1, **common),
        'object': start_server('objstore.obj.server', 'object-server',
                               workers=2, **common),
    }


def call(secret, server, method, path, headers=None, body=b'', query=''):
    return backend.request(secret, '127.0.0.1', server.port, method, path,
                           headers=headers, body=body, query=query)


def test_fifty_concurrent_puts_are_all_counted(storage_node, cluster_conf):
    secret = cluster_conf['secret']
    acct, cont, obj = (storage_node['account'], storage_node['container'],
                       storage_node['object'])
    ts = Timestamp.now().internal
    status, _, body = call(secret, acct, 'PUT', '/sda/0/' + ACCOUNT,
                           {'X-Timestamp': ts})
    assert status in (201, 202), body
    status, _, body = call(
        secret, cont, 'PUT', '/sdb/0/%s/%s' % (ACCOUNT, CONTAINER),
        {'X-Timestamp': ts, 'X-Account-Host': '127.0.0.1:%d' % acct.port,
         'X-Account-Partition': '0', 'X-Account-Device': 'sda'})
    assert status in (201, 202), body

    def put(i):
        data = os.urandom(1000 + i)
        status, headers, body = call(
            secret, obj, 'PUT',
            '/sdc/0/%s/%s/obj-%02d' % (ACCOUNT, CONTAINER, i),
            {'X-Timestamp': Timestamp.now().internal,
             'Content-Type': 'application/x-test',
             'X-Container-Host': '127.0.0.1:%d' % cont.port,
             'X-Container-Partition': '0', 'X-Container-Device': 'sdb'},
            body=data)
        return i, status, hashlib.md5(data).hexdigest(), len(data), body

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(put, range(50)))
    assert [r[1] for r in results] == [201] * 50, \
        [r for r in results if r[1] != 201]
    # every container update landed: nothing left for an updater
    pending = storage_node['devices'] / 'sdc' / 'async_pending'
    assert not pending.exists() or not any(pending.rglob('*'))

    status, headers, body = call(
        secret, cont, 'GET', '/sdb/0/%s/%s' % (ACCOUNT, CONTAINER),
        query='format=json')
    assert status == 200, body
    listing = json.loads(body)
    assert [(o['name'], o['hash'], o['bytes']) for o in listing] == \
        [('obj-%02d' % i, md5, size) for i, _, md5, size, _ in results]
    assert all(o['content_type'] == 'application/x-test' for o in listing)
    total = sum(r[3] for r in results)
    assert headers['x-container-object-count'] == '50'
    assert headers['x-container-bytes-used'] == str(total)

    # the container reports its new stats to the account server
    deadline = time.monotonic() + 15
    while True:
        status, headers, _ = call(secret, acct, 'HEAD', '/sda/0/' + ACCOUNT)
        if headers.get('x-account-object-count') == '50' or \
                time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 204
    assert headers['x-account-object-count'] == '50'
    assert headers['x-account-bytes-used'] == str(total)
    assert headers['x-account-container-count'] == '1'
