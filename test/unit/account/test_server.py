"""The account server's WSGI app, called in-process with signed requests."""
import json
import os
import xml.etree.ElementTree as ET

import msgpack
import pytest

from objstore.account.broker import AccountBroker
from objstore.account.server import AccountServer, app_factory
from objstore.common import backend, signing
from objstore.common.http import Request
from objstore.common.timestamp import Timestamp

SECRET = b'unit-secret'
HASH = (b'pre', b'suf')
_clock = [1700000000.0]


def ts():
    _clock[0] += 1
    return Timestamp(_clock[0]).internal


@pytest.fixture
def devices(tmp_path):
    (tmp_path / 'sda').mkdir()
    return tmp_path


@pytest.fixture
def app(devices):
    return AccountServer({'devices': str(devices), 'mount_check': 'false'},
                         secret=SECRET, hash_secret=HASH)


def call(app, method, path, headers=None, query='', body=b'', sign=True,
         wire=None):
    headers = dict(headers or {})
    headers.setdefault('Content-Length', str(len(body)))
    wire = wire or backend.quote_path(path)
    if sign:
        headers = signing.sign(SECRET, method, wire, headers, query)
    req = Request.blank(wire + ('?' + query if query else ''),
                        method=method, headers=headers)
    if body:
        req.body = body
    resp = req.get_response(app)
    return resp.status_int, resp.headers, resp.body


def put_account(app, **headers):
    headers.setdefault('X-Timestamp', ts())
    return call(app, 'PUT', '/sda/1/a', headers)


def report(app, name, count=0, used=0, put=None, delete=None, **headers):
    headers.update({'X-Timestamp': ts(), 'X-Put-Timestamp': put or ts(),
                    'X-Delete-Timestamp': delete or '0',
                    'X-Object-Count': str(count),
                    'X-Bytes-Used': str(used)})
    return call(app, 'PUT', '/sda/1/a/' + name, headers)


def snapshot(devices):
    state = {}
    for root, dirs, files in os.walk(devices):
        for f in files:
            path = os.path.join(root, f)
            if f.endswith(('-wal', '-shm')):
                continue
            if f.endswith('.db'):
                b = AccountBroker(path)
                state[path] = (b.get_info(), b.get_items_since(-1, 10 ** 6))
            else:
                with open(path, 'rb') as fh:
                    state[path] = fh.read()
        state.update({os.path.join(root, d): 'dir' for d in dirs})
    return state


def test_create_stats_and_listing(app):
    assert put_account(app, **{'X-Account-Meta-Owner': 'me'})[0] == 201
    assert put_account(app)[0] == 202
    assert report(app, 'c1', 2, 20)[0] == 201
    assert report(app, 'c2', 1, 5)[0] == 201
    assert report(app, 'c3')[0] == 201
    assert report(app, 'c3', put=Timestamp(1600000000).internal,
                  delete=ts())[0] == 204
    status, headers, body = call(app, 'HEAD', '/sda/1/a')
    assert status == 204
    assert headers['X-Account-Container-Count'] == '2'
    assert headers['X-Account-Object-Count'] == '3'
    assert headers['X-Account-Bytes-Used'] == '25'
    assert headers['X-Account-Meta-Owner'] == 'me'
    status, headers, body = call(app, 'GET', '/sda/1/a')
    assert status == 200 and body == b'c1\nc2\n'
    data = json.loads(call(app, 'GET', '/sda/1/a', query='format=json')[2])
    assert [(d['name'], d['count'], d['bytes']) for d in data] == \
        [('c1', 2, 20), ('c2', 1, 5)]
    assert set(data[0]) == {'name', 'count', 'bytes', 'last_modified'}
    root = ET.fromstring(call(app, 'GET', '/sda/1/a',
                              {'Accept': 'application/xml'})[2])
    assert root.tag == 'account' and root.get('name') == 'a'
    assert [c.findtext('name') for c in root] == ['c1', 'c2']
    body = call(app, 'GET', '/sda/1/a',
                query='reverse=on&limit=1&format=json')[2]
    assert [d['name'] for d in json.loads(body)] == ['c2']
    assert call(app, 'GET', '/sda/1/a', query='prefix=x')[0] == 204


def test_reports_for_missing_or_deleted_account(app):
    assert report(app, 'c')[0] == 404
    put_account(app)
    assert call(app, 'DELETE', '/sda/1/a', {'X-Timestamp': ts()})[0] == 204
    status, headers, _ = report(app, 'c')
    assert status == 404 and headers['X-Backend-Deleted'] == 'true'
    assert call(app, 'HEAD', '/sda/1/a')[0] == 404
    assert call(app, 'DELETE', '/sda/1/a', {'X-Timestamp': ts()})[0] == 404
    assert put_account(app)[0] == 201  # revived by a newer PUT


def test_metadata_post(app):
    put_account(app, **{'X-Account-Meta-A': '1', 'X-Account-Meta-B': '2'})
    assert call(app, 'POST', '/sda/1/a', {
        'X-Timestamp': ts(), 'X-Account-Meta-A': '',
        'X-Account-Sysmeta-Quota': '10'})[0] == 204
    headers = call(app, 'HEAD', '/sda/1/a')[1]
    assert 'X-Account-Meta-A' not in headers
    assert headers['X-Account-Meta-B'] == '2'
    assert headers['X-Account-Sysmeta-Quota'] == '10'
    assert call(app, 'POST', '/sda/1/b', {'X-Timestamp': ts()})[0] == 404


def test_replicate_info(app):
    put_account(app)
    report(app, 'c', 1, 1)
    hsh = app.name_hash('a')
    status, _h, body = call(app, 'REPLICATE', '/sda/1/' + hsh)
    info = msgpack.unpackb(body)
    assert status == 200
    assert info['container_count'] == 1 and info['max_row'] == 1
    assert info['account'] == 'a'


def test_app_factory_reads_cluster_config(cluster_conf, devices):
    app = app_factory({'devices': str(devices), 'mount_check': 'false'})
    assert app.secret == cluster_conf['secret']


BAD_INPUT = [
    ('unsigned', dict(method='PUT', path='/sda/1/a', sign=False), 401),
    ('bad-signature', dict(method='POST', path='/sda/1/a',
                           secret=b'wrong'), 401),
    ('bad-timestamp', dict(method='PUT', path='/sda/1/b',
                           headers={'X-Timestamp': '12x'}), 400),
    ('account-name-too-long', dict(method='PUT', path='/sda/1/' + 'a' * 257),
     400),
    ('bad-object-count', dict(method='PUT', path='/sda/1/a/c2', headers={
        'X-Object-Count': 'many'}), 400),
    ('bad-put-timestamp', dict(method='PUT', path='/sda/1/a/c2', headers={
        'X-Put-Timestamp': 'now'}), 400),
    ('container-name-too-long', dict(method='PUT', path='/sda/1/a/' +
                                     'c' * 257), 400),
    ('meta-too-large', dict(method='POST', path='/sda/1/a', headers={
        'X-Account-Meta-K%d' % i: 'v' * 250 for i in range(17)}), 400),
    ('meta-name-too-long', dict(method='POST', path='/sda/1/a', headers={
        'X-Account-Meta-' + 'n' * 129: 'v'}), 400),
    ('missing-device', dict(method='PUT', path='/nodev/1/b'), 507),
    ('limit-too-large', dict(method='GET', path='/sda/1/a',
                             query='limit=20000'), 412),
    ('limit-negative', dict(method='GET', path='/sda/1/a',
                            query='limit=-5'), 400),
    ('delimiter-too-long', dict(method='GET', path='/sda/1/a',
                                query='delimiter=%2F%2F'), 412),
    ('format-unknown', dict(method='GET', path='/sda/1/a',
                            query='format=csv'), 400),
    ('accept-malformed', dict(method='HEAD', path='/sda/1/a',
                              headers={'Accept': ';;;'}), 400),
    ('delete-container-row', dict(method='DELETE', path='/sda/1/a/c'), 405),
    ('delete-older-than-put', dict(method='DELETE', path='/sda/1/a',
                                   headers={'X-Timestamp': '1500000000'}),
     409),
    ('path-too-deep', dict(method='GET', path='/sda/1/a/c/o'), 400),
]


@pytest.mark.parametrize('case,args,expected', BAD_INPUT,
                         ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_and_changes_nothing(app, devices, case, args,
                                                  expected):
    put_account(app, **{'X-Account-Meta-Keep': 'me'})
    report(app, 'c', 3, 30)
    before = snapshot(devices)
    args = dict(args)
    headers = {'X-Timestamp': ts(), 'X-Put-Timestamp': ts(),
               'X-Object-Count': '1', 'X-Bytes-Used': '1'}
    headers.update(args.pop('headers', {}))
    secret = args.pop('secret', None)
    method, path = args.pop('method'), args.pop('path')
    if secret:
        wire = backend.quote_path(path)
        headers = signing.sign(secret, method, wire, headers)
        args['sign'] = False
    status, _h, body = call(app, method, path, headers, **args)
    assert status == expected, body
    assert b'Traceback' not in body
    assert snapshot(devices) == before
