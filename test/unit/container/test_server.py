"""The container server's WSGI app, called in-process with signed requests.

Real databases on real temp directories; the same app runs under
eventlet in test/functional/test_container_server.py.
"""
import json
import os
import xml.etree.ElementTree as ET

import msgpack
import pytest

from objstore.common import backend, concurrency, signing
from objstore.common.http import Request
from objstore.common.timestamp import Timestamp
from objstore.container.broker import ContainerBroker
from objstore.container.server import ContainerServer, app_factory

SECRET = b'unit-secret'
HASH = (b'pre', b'suf')
_clock = [1700000000.0]


def ts():
    """Increasing timestamps, so every write is newer than the last."""
    _clock[0] += 1
    return Timestamp(_clock[0]).internal


@pytest.fixture
def devices(tmp_path):
    (tmp_path / 'sda').mkdir()
    return tmp_path


@pytest.fixture
def app(devices):
    return ContainerServer({'devices': str(devices), 'mount_check': 'false'},
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


def put_container(app, name='c', **headers):
    headers.setdefault('X-Timestamp', ts())
    return call(app, 'PUT', '/sda/1/a/' + name, headers)


def put_object(app, name, size=3, container='c', **headers):
    headers.setdefault('X-Timestamp', ts())
    headers.setdefault('X-Size', str(size))
    headers.setdefault('X-Content-Type', 'text/plain')
    headers.setdefault('X-Etag', 'etag-' + name)
    return call(app, 'PUT', '/sda/1/a/%s/%s' % (container, name), headers)


def snapshot(devices):
    """Everything stored under ``devices``: files and database contents."""
    state = {}
    for root, dirs, files in os.walk(devices):
        for f in files:
            path = os.path.join(root, f)
            if f.endswith(('-wal', '-shm')):
                continue
            if f.endswith('.db'):
                b = ContainerBroker(path)
                state[path] = (b.get_info(), b.get_items_since(-1, 10 ** 6),
                               b.get_syncs(), b.get_syncs(False))
            else:
                with open(path, 'rb') as fh:
                    state[path] = fh.read()
        state.update({os.path.join(root, d): 'dir' for d in dirs})
    return state


def test_create_then_update(app):
    t1 = ts()
    assert put_container(app, **{'X-Timestamp': t1})[0] == 201
    assert put_container(app)[0] == 202
    status, headers, body = call(app, 'HEAD', '/sda/1/a/c')
    assert status == 204
    assert headers['X-Container-Object-Count'] == '0'
    assert headers['X-Container-Bytes-Used'] == '0'
    assert headers['X-Backend-Delete-Timestamp'] == Timestamp(0).internal
    assert Timestamp(headers['X-PUT-Timestamp']) > Timestamp(t1)
    assert headers['Content-Type'] == 'text/plain; charset=utf-8'


def test_never_existed_and_deleted_404s_differ(app):
    status, headers, _ = call(app, 'HEAD', '/sda/1/a/c')
    assert status == 404 and 'X-Backend-Put-Timestamp' not in headers
    put_container(app)
    t = ts()
    assert call(app, 'DELETE', '/sda/1/a/c', {'X-Timestamp': t})[0] == 204
    status, headers, _ = call(app, 'GET', '/sda/1/a/c')
    assert status == 404
    assert headers['X-Backend-Delete-Timestamp'] == t
    assert headers['X-Backend-Deleted'] == 'true'
    assert call(app, 'DELETE', '/sda/1/a/c', {'X-Timestamp': ts()})[0] == 404
    assert put_object(app, 'o')[0] == 404
    assert call(app, 'POST', '/sda/1/a/c', {'X-Timestamp': ts()})[0] == 404
    # PUT revives it
    assert put_container(app)[0] == 201
    assert call(app, 'HEAD', '/sda/1/a/c')[0] == 204


def test_concurrent_object_rows_share_transactions(app, monkeypatch):
    put_container(app)
    batches = []
    real = ContainerBroker.put_objects

    def counting(broker, rows):
        batches.append(len(rows))
        return real(broker, rows)
    monkeypatch.setattr(ContainerBroker, 'put_objects', counting)
    names = ['o%02d' % i for i in range(20)]
    pool = concurrency.GreenPool(len(names))
    statuses = list(pool.imap(lambda n: put_object(app, n, 3)[0], names))
    deleted = list(pool.imap(lambda n: call(
        app, 'DELETE', '/sda/1/a/c/' + n, {'X-Timestamp': ts()})[0],
        names[:5]))
    assert statuses == [201] * 20 and deleted == [204] * 5
    status, headers, body = call(app, 'GET', '/sda/1/a/c')
    assert body.decode().split() == names[5:]
    assert headers['X-Container-Object-Count'] == '15'
    assert headers['X-Container-Bytes-Used'] == '45'
    # every row written once, in fewer transactions than requests
    assert sum(batches) == 25 and len(batches) < 25


def test_object_rows_in_a_deleted_container_are_404(app):
    put_container(app)
    assert call(app, 'DELETE', '/sda/1/a/c', {'X-Timestamp': ts()})[0] == 204
    assert put_object(app, 'o', 1)[0] == 404
    assert call(app, 'DELETE', '/sda/1/a/c/o', {'X-Timestamp': ts()})[0] == \
        404


def test_object_rows_stats_and_listing(app):
    put_container(app)
    for name, size in (('b', 5), ('a/1', 1), ('a/2', 2), ('c', 7)):
        assert put_object(app, name, size)[0] == 201
    assert call(app, 'DELETE', '/sda/1/a/c/c', {'X-Timestamp': ts()})[0] == \
        204
    status, headers, body = call(app, 'GET', '/sda/1/a/c')
    assert status == 200
    assert body == b'a/1\na/2\nb\n'
    assert headers['X-Container-Object-Count'] == '3'
    assert headers['X-Container-Bytes-Used'] == '8'
    status, headers, body = call(app, 'GET', '/sda/1/a/c',
                                 query='format=json&delimiter=/')
    assert headers['Content-Type'] == 'application/json; charset=utf-8'
    data = json.loads(body)
    assert data[0] == {'subdir': 'a/'}
    assert data[1]['name'] == 'b' and data[1]['bytes'] == 5
    assert data[1]['hash'] == 'etag-b'
    assert data[1]['content_type'] == 'text/plain'
    status, headers, body = call(app, 'GET', '/sda/1/a/c',
                                 {'Accept': 'text/xml'},
                                 query='reverse=true&limit=2')
    assert headers['Content-Type'] == 'text/xml; charset=utf-8'
    root = ET.fromstring(body)
    assert [o.findtext('name') for o in root] == ['b', 'a/2']
    # an older version of a row changes nothing, and still answers 201
    old = Timestamp(1600000000).internal
    assert put_object(app, 'b', 99, **{'X-Timestamp': old})[0] == 201
    assert call(app, 'HEAD', '/sda/1/a/c')[1][
        'X-Container-Bytes-Used'] == '8'


def test_empty_listings(app):
    put_container(app)
    assert call(app, 'GET', '/sda/1/a/c')[:3:2] == (204, b'')
    assert call(app, 'GET', '/sda/1/a/c', query='format=json')[:3:2] == \
        (200, b'[]')
    status, _h, body = call(app, 'GET', '/sda/1/a/c', query='format=xml')
    assert status == 200 and ET.fromstring(body).tag == 'container'


def test_metadata_acls_and_removal(app):
    put_container(app, **{'X-Container-Meta-Color': 'blue',
                          'X-Container-Read': '.r:*',
                          'X-Container-Sysmeta-Thing': 'x',
                          'X-Container-Sync-To': '//realm/c/a/c2',
                          'X-Unrelated': 'dropped'})
    headers = call(app, 'HEAD', '/sda/1/a/c')[1]
    assert headers['X-Container-Meta-Color'] == 'blue'
    assert headers['X-Container-Read'] == '.r:*'
    assert headers['X-Container-Sysmeta-Thing'] == 'x'
    assert headers['X-Container-Sync-To'] == '//realm/c/a/c2'
    assert 'X-Unrelated' not in headers
    assert call(app, 'POST', '/sda/1/a/c', {
        'X-Timestamp': ts(), 'X-Remove-Container-Meta-Color': 'x',
        'X-Container-Meta-Size': 'big', 'X-Container-Read': ''})[0] == 204
    headers = call(app, 'HEAD', '/sda/1/a/c')[1]
    assert 'X-Container-Meta-Color' not in headers
    assert 'X-Container-Read' not in headers
    assert headers['X-Container-Meta-Size'] == 'big'
    # an older POST loses item by item
    old = Timestamp(1600000000).internal
    call(app, 'POST', '/sda/1/a/c', {'X-Timestamp': old,
                                     'X-Container-Meta-Size': 'small',
                                     'X-Container-Meta-New': 'n'})
    headers = call(app, 'HEAD', '/sda/1/a/c')[1]
    assert headers['X-Container-Meta-Size'] == 'big'
    assert headers['X-Container-Meta-New'] == 'n'


def test_delete_rules(app):
    put_container(app)
    put_object(app, 'o')
    assert call(app, 'DELETE', '/sda/1/a/c', {'X-Timestamp': ts()})[0] == 409
    call(app, 'DELETE', '/sda/1/a/c/o', {'X-Timestamp': ts()})
    old = Timestamp(1600000000).internal
    assert call(app, 'DELETE', '/sda/1/a/c', {'X-Timestamp': old})[0] == 409
    assert call(app, 'DELETE', '/sda/1/a/c', {'X-Timestamp': ts()})[0] == 204
    # an older PUT does not revive a deleted container
    assert put_container(app, **{'X-Timestamp': old})[0] == 409


def test_replicate(app):
    put_container(app, **{'X-Container-Meta-A': '1'})
    put_object(app, 'o1', 4)
    hsh = app.name_hash('a', 'c')
    status, _h, body = call(app, 'REPLICATE', '/sda/1/' + hsh)
    assert status == 200
    info = msgpack.unpackb(body)
    assert info['object_count'] == 1 and info['max_row'] == 1
    assert info['metadata']['X-Container-Meta-A'][0] == '1'
    peer_id = 'peer-db-id'
    rows = [{'ROWID': 40, 'name': 'o2', 'created_at': ts(), 'size': 6,
             'content_type': 't', 'etag': 'e', 'deleted': 0}]
    pack = msgpack.packb
    assert call(app, 'REPLICATE', '/sda/1/' + hsh, body=pack(
        {'op': 'merge_items', 'items': rows, 'source_id': peer_id}))[0] == \
        202
    newer = ts()
    status, _h, body = call(app, 'REPLICATE', '/sda/1/' + hsh, body=pack({
        'op': 'sync', 'remote_id': peer_id, 'created_at': newer,
        'put_timestamp': newer, 'delete_timestamp': '0',
        'metadata': {'X-Container-Meta-B': ['2', newer]}}))
    info = msgpack.unpackb(body)
    assert info['sync_point'] == 40
    assert info['put_timestamp'] == newer
    assert info['object_count'] == 2 and info['bytes_used'] == 10
    assert info['metadata']['X-Container-Meta-B'] == ['2', newer]
    assert call(app, 'REPLICATE', '/sda/1/' + hsh, body=pack(
        {'op': 'merge_syncs', 'syncs': [{'remote_id': 'x',
                                         'sync_point': 3}]}))[0] == 202
    assert call(app, 'REPLICATE', '/sda/1/' + 'f' * 32)[0] == 404
    headers = call(app, 'HEAD', '/sda/1/a/c')[1]
    assert headers['X-Container-Meta-B'] == '2'


def test_app_factory_reads_cluster_config(cluster_conf, devices):
    app = app_factory({'devices': str(devices), 'mount_check': 'false'})
    assert app.secret == cluster_conf['secret']
    assert (app.hash_prefix, app.hash_suffix) == (cluster_conf['prefix'],
                                                  cluster_conf['suffix'])


def _meta(n, size=10):
    return {'X-Container-Meta-K%02d' % i: 'v' * size for i in range(n)}


# (name, request builder args, expected status); each runs against a
# container holding one object and 80 metadata items, and must change
# nothing that is stored.
BAD_INPUT = [
    ('unsigned', dict(method='PUT', path='/sda/1/a/c/o2',
                      headers={'X-Size': '1'}, sign=False), 401),
    ('stale-signature', dict(method='PUT', path='/sda/1/a/c/o2',
                             headers={'X-Size': '1'}, stale=True), 401),
    ('missing-timestamp', dict(method='PUT', path='/sda/1/a/c2',
                               headers={'X-Timestamp': None}), 400),
    ('bad-timestamp', dict(method='PUT', path='/sda/1/a/c2',
                           headers={'X-Timestamp': 'yesterday'}), 400),
    ('container-name-too-long', dict(method='PUT',
                                     path='/sda/1/a/' + 'c' * 257), 400),
    ('path-not-utf8', dict(method='PUT', path=None,
                           wire='/sda/1/a/c%FF'), 400),
    ('nul-in-object-name', dict(method='PUT', path=None,
                                wire='/sda/1/a/c/o%00',
                                headers={'X-Size': '1'}), 400),
    ('dot-dot-object-name', dict(method='PUT', path='/sda/1/a/c/x/../y',
                                 headers={'X-Size': '1'}), 400),
    ('bad-partition', dict(method='PUT', path='/sda/x/a/c2'), 400),
    ('missing-device', dict(method='PUT', path='/sdz/1/a/c2'), 507),
    ('missing-x-size', dict(method='PUT', path='/sda/1/a/c/o2'), 400),
    ('negative-x-size', dict(method='PUT', path='/sda/1/a/c/o2',
                             headers={'X-Size': '-1'}), 400),
    ('too-many-meta-in-request', dict(method='POST', path='/sda/1/a/c',
                                      headers=_meta(91)), 400),
    ('meta-value-too-long', dict(method='POST', path='/sda/1/a/c', headers={
        'X-Container-Meta-Big': 'x' * 257}), 400),
    ('meta-name-empty', dict(method='PUT', path='/sda/1/a/c2', headers={
        'X-Container-Meta-': 'x'}), 400),
    ('remove-meta-name-empty', dict(method='POST', path='/sda/1/a/c',
                                    headers={'X-Remove-Container-Meta-':
                                             'x'}), 400),
    ('meta-over-limit-combined', dict(method='POST', path='/sda/1/a/c',
                                      headers={'X-Container-Meta-New%d' % i:
                                               'x' for i in range(11)}), 400),
    ('bad-account-host', dict(method='PUT', path='/sda/1/a/c2', headers={
        'X-Account-Host': 'nohost', 'X-Account-Partition': '1',
        'X-Account-Device': 'sda'}), 400),
    ('delete-not-empty', dict(method='DELETE', path='/sda/1/a/c'), 409),
    ('limit-too-large', dict(method='GET', path='/sda/1/a/c',
                             query='limit=10001'), 412),
    ('limit-not-integer', dict(method='GET', path='/sda/1/a/c',
                               query='limit=ten'), 400),
    ('delimiter-too-long', dict(method='GET', path='/sda/1/a/c',
                                query='delimiter=ab'), 412),
    ('unknown-format', dict(method='GET', path='/sda/1/a/c',
                            query='format=yaml'), 400),
    ('not-acceptable', dict(method='GET', path='/sda/1/a/c',
                            headers={'Accept': 'image/png'}), 406),
    ('marker-not-utf8', dict(method='GET', path='/sda/1/a/c',
                             query='marker=%FF'), 400),
    ('method-not-allowed', dict(method='PATCH', path='/sda/1/a/c'), 405),
    ('replicate-bad-hash', dict(method='REPLICATE', path='/sda/1/xyz'), 400),
    ('replicate-bad-body', dict(method='REPLICATE', path='/sda/1/HASH',
                                body=b'\xc1garbage'), 400),
    ('replicate-bad-rows', dict(method='REPLICATE', path='/sda/1/HASH',
                                body=msgpack.packb({
                                    'op': 'merge_items', 'items': [
                                        {'name': 'x', 'created_at': 'no'}]})),
     400),
]


@pytest.mark.parametrize('case,args,expected', BAD_INPUT,
                         ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_and_changes_nothing(app, devices, case, args,
                                                  expected):
    put_container(app, **_meta(80, 20))
    put_object(app, 'o')
    before = snapshot(devices)
    args = dict(args)
    headers = {'X-Timestamp': ts()}
    headers.update(args.pop('headers', {}))
    headers = {k: v for k, v in headers.items() if v is not None}
    path = args.pop('path')
    if path and 'HASH' in path:
        path = path.replace('HASH', app.name_hash('a', 'c'))
    method = args.pop('method')
    if args.pop('stale', False):
        wire = backend.quote_path(path)
        headers = signing.sign(SECRET, method, wire, headers,
                               now=1600000000)
        args['sign'] = False
    status, _h, body = call(app, method, path, headers, **args)
    assert status == expected, body
    assert body.count(b'\n') <= 1 and b'Traceback' not in body
    assert snapshot(devices) == before


def test_busy_database_is_503_and_changes_nothing(devices):
    app = ContainerServer({'devices': str(devices), 'mount_check': 'false',
                           'db_timeout': '0.05'}, secret=SECRET,
                          hash_secret=HASH)
    put_container(app)
    broker = app.broker('sda', 1, 'a', 'c')
    with broker.transaction():
        status, _h, body = put_object(app, 'o')
    assert (status, body) == (503, b'database busy, try again\n')
    assert broker.get_info()['object_count'] == 0


def test_corrupt_database_is_a_one_line_500(app, caplog):
    put_container(app)
    path = app.broker('sda', 1, 'a', 'c').db_file
    with open(path, 'wb') as f:
        f.write(b'this is not a database' * 100)
    status, _h, body = call(app, 'GET', '/sda/1/a/c')
    assert (status, body) == (500, b'internal error\n')
    assert 'Traceback' in caplog.text  # the operator gets the details
