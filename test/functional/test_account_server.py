"""The account server as a real process, spoken to over real sockets."""
import json
import time
import xml.etree.ElementTree as ET

import msgpack
import pytest

from objstore.common import backend, ondisk
from objstore.common.timestamp import Timestamp

_clock = [time.time()]


def ts():
    _clock[0] = max(_clock[0] + 0.01, time.time())
    return Timestamp(_clock[0]).internal


@pytest.fixture
def account(start_server, tmp_path, cluster_conf):
    (tmp_path / 'node' / 'sda').mkdir(parents=True)
    server = start_server('objstore.account.server', 'account-server',
                          devices=tmp_path / 'node', mount_check='false',
                          workers=2)

    def req(method, path, headers=None, query='', body=b''):
        return backend.request(cluster_conf['secret'], '127.0.0.1',
                               server.port, method, path, headers=headers,
                               query=query, body=body)
    yield req
    assert 'Traceback' not in server.read_log()


def report(req, name, count, used, put=None, delete='0'):
    return req('PUT', '/sda/0/AUTH_x/' + name, {
        'X-Timestamp': ts(), 'X-Put-Timestamp': put or ts(),
        'X-Delete-Timestamp': delete, 'X-Object-Count': str(count),
        'X-Bytes-Used': str(used)})


def test_account_lifecycle_over_http(account, cluster_conf):
    assert account('HEAD', '/sda/0/AUTH_x')[0] == 404
    status, _h, _b = account('PUT', '/sda/0/AUTH_x', {
        'X-Timestamp': ts(), 'X-Account-Meta-Subject': 'Literature'})
    assert status == 201
    assert account('PUT', '/sda/0/AUTH_x', {'X-Timestamp': ts()})[0] == 202
    assert report(account, 'janeausten', 0, 0)[0] == 201
    assert report(account, 'marktwain', 1, 14)[0] == 201
    assert report(account, 'tmp-1', 2, 2)[0] == 201
    status, headers, _b = account('HEAD', '/sda/0/AUTH_x')
    assert status == 204
    assert (headers['x-account-container-count'],
            headers['x-account-object-count'],
            headers['x-account-bytes-used']) == ('3', '3', '16')
    assert headers['x-account-meta-subject'] == 'Literature'

    status, headers, body = account('GET', '/sda/0/AUTH_x')
    assert (status, body) == (200, b'janeausten\nmarktwain\ntmp-1\n')
    status, headers, body = account('GET', '/sda/0/AUTH_x',
                                    query='format=json&delimiter=-')
    assert headers['content-type'] == 'application/json; charset=utf-8'
    data = json.loads(body)
    assert [d.get('name', d.get('subdir')) for d in data] == \
        ['janeausten', 'marktwain', 'tmp-']
    assert data[1]['count'] == 1 and data[1]['bytes'] == 14
    status, headers, body = account('GET', '/sda/0/AUTH_x',
                                    {'Accept': 'text/xml'},
                                    query='marker=janeausten&limit=1')
    assert headers['content-type'] == 'text/xml; charset=utf-8'
    root = ET.fromstring(body)
    assert root.get('name') == 'AUTH_x'
    assert [c.findtext('name') for c in root] == ['marktwain']

    assert account('POST', '/sda/0/AUTH_x', {
        'X-Timestamp': ts(), 'X-Account-Meta-Subject': ''})[0] == 204
    assert 'x-account-meta-subject' not in account('HEAD',
                                                   '/sda/0/AUTH_x')[1]

    # a container's delete report removes it from listings and stats
    assert report(account, 'tmp-1', 0, 0, put='1', delete=ts())[0] == 204
    headers = account('HEAD', '/sda/0/AUTH_x')[1]
    assert headers['x-account-container-count'] == '2'

    hsh = ondisk.name_hash(cluster_conf['prefix'], cluster_conf['suffix'],
                           'AUTH_x')
    status, _h, body = account('REPLICATE', '/sda/0/' + hsh)
    assert status == 200
    info = msgpack.unpackb(body)
    assert info['container_count'] == 2 and info['max_row'] == 4

    assert account('DELETE', '/sda/0/AUTH_x', {'X-Timestamp': ts()})[0] == \
        204
    status, headers, _b = account('GET', '/sda/0/AUTH_x')
    assert status == 404 and headers['x-backend-deleted'] == 'true'


@pytest.mark.parametrize('method,path,headers,query,expected', [
    ('PUT', '/sda/0/AUTH_y', {'X-Timestamp': 'soon'}, '', 400),
    ('PUT', '/sda/0/AUTH_x/c', {'X-Timestamp': '1', 'X-Object-Count': '-1'},
     '', 400),
    ('GET', '/sda/0/AUTH_x', {}, 'limit=10001', 412),
    ('GET', '/sda/0/AUTH_x', {'Accept': 'application/pdf'}, '', 406),
    ('PUT', '/sdq/0/AUTH_y', {'X-Timestamp': '1'}, '', 507),
])
def test_bad_requests_over_http(account, method, path, headers, query,
                                expected):
    account('PUT', '/sda/0/AUTH_x', {'X-Timestamp': ts()})
    before = account('GET', '/sda/0/AUTH_x', query='format=json')
    status, _h, body = account(method, path, headers, query=query)
    assert status == expected and body.endswith(b'\n')
    assert account('HEAD', '/sda/0/AUTH_y')[0] == 404
    after = account('GET', '/sda/0/AUTH_x', query='format=json')
    assert after[0] == before[0] and after[2] == before[2]
