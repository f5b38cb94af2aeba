"""SYNCDB, the verb a DB replicator sends a whole database with, called
in-process on the real container and account WSGI apps with real
databases; the same over real sockets is in
test/functional/test_db_replicator.py.
"""
import os

import pytest

from objstore.account.broker import AccountBroker
from objstore.account.server import AccountServer
from objstore.common import backend, db, signing
from objstore.common.http import Request
from objstore.common.timestamp import Timestamp
from objstore.container.broker import ContainerBroker
from objstore.container.server import ContainerServer

SECRET = b'unit-secret'
HASH = (b'pre', b'suf')
_clock = [1700000000.0]


def ts():
    _clock[0] += 1
    return Timestamp(_clock[0]).internal


@pytest.fixture
def devices(tmp_path):
    (tmp_path / 'sda').mkdir()
    (tmp_path / 'src').mkdir()
    yield tmp_path
    db.POOL.clear()


@pytest.fixture
def app(devices):
    return ContainerServer({'devices': str(devices), 'mount_check': 'false'},
                           secret=SECRET, hash_secret=HASH)


def call(app, method, path, headers=None, body=b'', sign=True,
         length=None):
    headers = dict(headers or {})
    headers['Content-Length'] = str(len(body) if length is None else length)
    wire = backend.quote_path(path)
    if sign:
        headers = signing.sign(SECRET, method, wire, headers)
    req = Request.blank(wire, method=method)
    req.body = body
    req.headers.update(headers)
    resp = req.get_response(app)
    return resp.status_int, resp.body


def copy_of(app, devices, account='a', container='c', rows=2,
            broker_class=ContainerBroker):
    """The bytes of a database made elsewhere (the 'src' device)."""
    hsh = app.name_hash(account, container)
    path = os.path.join(str(devices), 'src', '%s-%s.db' % (hsh, ts()))
    b = broker_class(path, account=account, container=container)
    b.initialize(ts(), str(devices / 'src' / 'tmp'))
    for i in range(rows):
        if broker_class is ContainerBroker:
            b.put_object('o%d' % i, ts(), 5, 'text/plain', 'e%d' % i)
        else:
            b.put_container('c%d' % i, ts(), 0, 1, 5, ts())
    snap = path + '.snap'
    b.snapshot(snap)
    with open(snap, 'rb') as f:
        return f.read()


def listing(app):
    return call(app, 'GET', '/sda/1/a/c')[1]


def test_syncdb_installs_then_merges(app, devices):
    hsh = app.name_hash('a', 'c')
    status, _ = call(app, 'SYNCDB', '/sda/1/' + hsh,
                     body=copy_of(app, devices, rows=2))
    assert status == 201
    assert listing(app) == b'o0\no1\n'
    status, _ = call(app, 'SYNCDB', '/sda/1/' + hsh,
                     body=copy_of(app, devices, rows=3))
    assert status == 202
    assert listing(app) == b'o0\no1\no2\n'
    assert os.listdir(str(devices / 'sda' / 'tmp')) == []


def test_syncdb_to_the_account_server(devices):
    app = AccountServer({'devices': str(devices), 'mount_check': 'false'},
                        secret=SECRET, hash_secret=HASH)
    hsh = app.name_hash('acct')
    body = copy_of(app, devices, 'acct', None, 2, AccountBroker)
    assert call(app, 'SYNCDB', '/sda/4/' + hsh, body=body)[0] == 201
    assert call(app, 'GET', '/sda/4/acct')[1] == b'c0\nc1\n'
    # a container database is not an account database
    cont = copy_of(app, devices, 'acct', None, 1, ContainerBroker)
    assert call(app, 'SYNCDB', '/sda/4/' + hsh, body=cont)[0] == 400


def test_syncdb_refuses_bad_bodies_and_keeps_the_database(app, devices):
    hsh = app.name_hash('a', 'c')
    assert call(app, 'PUT', '/sda/1/a/c', {'X-Timestamp': ts()})[0] == 201
    assert call(app, 'PUT', '/sda/1/a/c/keep', {
        'X-Timestamp': ts(), 'X-Size': '1', 'X-Content-Type': 't',
        'X-Etag': 'e'})[0] == 201
    before = listing(app)
    good = copy_of(app, devices)
    other = copy_of(app, devices, container='other')
    acct = copy_of(app, devices, 'a', None, 1, AccountBroker)
    path = '/sda/1/' + hsh
    cases = [
        ('not sqlite', dict(body=b'hello, world' * 500), 400),
        ('garbage with a header', dict(
            body=b'SQLite format 3\x00' + os.urandom(8000)), 400),
        ('truncated', dict(body=good[:len(good) // 2]), 400),
        ('wrong kind', dict(body=acct), 400),
        ('names elsewhere', dict(body=other), 400),
        ('short body', dict(body=good[:1000], length=len(good)), 400),
        ('empty', dict(body=b''), 400),
        ('unsigned', dict(body=good, sign=False), 401),
    ]
    for what, kwargs, expected in cases:
        status, body = call(app, 'SYNCDB', path, **kwargs)
        assert status == expected, (what, body)
        assert listing(app) == before, what
    assert call(app, 'SYNCDB', '/sda/1/xyz', body=good)[0] == 400
    assert call(app, 'SYNCDB', '/sdz/1/' + hsh, body=good)[0] == 507
    assert os.listdir(str(devices / 'sda' / 'tmp')) == []
    # and the database still takes a good copy
    assert call(app, 'SYNCDB', path, body=copy_of(app, devices))[0] == 202


def test_a_full_disk_is_507_not_500(app, devices, monkeypatch):
    import errno
    import sqlite3
    assert call(app, 'PUT', '/sda/1/a/c', {'X-Timestamp': ts()})[0] == 201

    def sqlite_full(*args, **kwargs):
        raise sqlite3.OperationalError('database or disk is full')
    monkeypatch.setattr(ContainerBroker, 'put_objects', sqlite_full)
    status, body = call(app, 'PUT', '/sda/1/a/c/o', {
        'X-Timestamp': ts(), 'X-Size': '1', 'X-Content-Type': 'a/b',
        'X-Etag': 'e'})
    assert status == 507 and b'device full' in body

    def os_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(ContainerBroker, 'initialize', os_full)
    status, body = call(app, 'PUT', '/sda/2/a/c2', {'X-Timestamp': ts()})
    assert status == 507
    monkeypatch.undo()
    assert call(app, 'GET', '/sda/1/a/c')[0] == 204
