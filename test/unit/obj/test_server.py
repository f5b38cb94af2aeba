"""The object server's WSGI app in-process (real dirs, real signing).

The HTTP behaviour through a real socket is in
test/functional/test_object_server.py; this covers the app factory and
request handling that needs no socket.
"""
import glob
import hashlib
import io
import os
import time
from urllib.parse import quote

import pytest

from objstore.common import body_checksums, signing
from objstore.common.config import ConfigError
from objstore.common.http import Request
from objstore.common.http_server import Input
from objstore.common.timestamp import Timestamp
from objstore.obj import direct_io, server
from objstore.obj.diskfile import READ_CHUNK_SIZE, DiskFileQuarantined


@pytest.fixture
def devices(tmp_path):
    (tmp_path / 'srv' / 'sda').mkdir(parents=True)
    return str(tmp_path / 'srv')


def make_app(devices, **conf):
    return server.app_factory(dict({'devices': devices,
                                    'mount_check': 'false'}, **conf))


def call(app, secret, method, path, headers=None, body=b''):
    headers = dict(headers or {})
    if body:
        headers['Content-Length'] = str(len(body))
    wire = quote(path, safe='/')
    signed = signing.sign(secret, method, wire, headers)
    req = Request.blank(wire, method=method, headers=signed)
    req.environ['RAW_PATH_INFO'] = wire
    if body:
        req.body = body
    return req.get_response(app)


def test_factory_removes_stale_temp_files(devices, cluster_conf):
    tmp = os.path.join(devices, 'sda', 'tmp')
    os.makedirs(tmp)
    stale = os.path.join(tmp, 'x.tmp')
    open(stale, 'wb').close()
    old = time.time() - 10
    os.utime(stale, (old, old))
    make_app(devices)
    assert os.listdir(tmp) == []


def test_bad_settings_are_config_errors(devices, cluster_conf):
    with pytest.raises(ConfigError, match='fallocate_reserve'):
        make_app(devices, fallocate_reserve='lots')
    with pytest.raises(ConfigError):
        make_app(devices, container_update_timeout='soon')


def test_put_get_in_process(devices, cluster_conf):
    app = make_app(devices)
    secret = cluster_conf['secret']
    resp = call(app, secret, 'PUT', '/sda/0/a/c/o', {
        'X-Timestamp': Timestamp.now().internal, 'Content-Type': 'a/b'},
        b'hello')
    assert resp.status_int == 201
    resp = call(app, secret, 'GET', '/sda/0/a/c/o')
    assert resp.status_int == 200 and resp.body == b'hello'


def put_object(app, secret, body):
    resp = call(app, secret, 'PUT', '/sda/0/a/c/o', {
        'X-Timestamp': Timestamp.now().internal, 'Content-Type': 'a/b'},
        body)
    assert resp.status_int == 201


def test_multi_chunk_get_and_ranges_are_exact(devices, cluster_conf):
    app = make_app(devices)
    secret = cluster_conf['secret']
    body = os.urandom(2 * READ_CHUNK_SIZE + 1000)
    put_object(app, secret, body)
    resp = call(app, secret, 'GET', '/sda/0/a/c/o')
    assert resp.status_int == 200 and resp.body == body
    first, last = READ_CHUNK_SIZE - 10, 2 * READ_CHUNK_SIZE + 9
    resp = call(app, secret, 'GET', '/sda/0/a/c/o',
                {'Range': 'bytes=%d-%d' % (first, last)})
    assert resp.status_int == 206 and resp.body == body[first:last + 1]
    resp = call(app, secret, 'GET', '/sda/0/a/c/o',
                {'Range': 'bytes=0-9,%d-%d' % (first, last)})
    assert resp.status_int == 206
    assert int(resp.headers['Content-Length']) == len(resp.body)
    assert body[:10] in resp.body and body[first:last + 1] in resp.body


def test_damaged_multi_chunk_get_is_cut_before_the_last_chunk(
        devices, cluster_conf):
    app = make_app(devices)
    secret = cluster_conf['secret']
    body = os.urandom(2 * READ_CHUNK_SIZE + 1000)
    put_object(app, secret, body)
    [data] = glob.glob(os.path.join(devices, 'sda', 'objects', '*', '*',
                                    '*', '*.data'))
    with open(data, 'r+b') as f:
        f.seek(10)
        f.write(bytes([body[10] ^ 0xff]))
    damaged = body[:10] + bytes([body[10] ^ 0xff]) + body[11:]
    wire = '/sda/0/a/c/o'
    req = Request.blank(wire, headers=signing.sign(secret, 'GET', wire, {}))
    req.environ['RAW_PATH_INFO'] = wire
    status, _, app_iter = req.call_application(app)
    assert status.startswith('200')
    got = []
    with pytest.raises(DiskFileQuarantined):
        for chunk in app_iter:
            got.append(chunk)
    app_iter.close()
    # the early chunks went out as read; the response never completes
    assert b''.join(got) == damaged[:2 * READ_CHUNK_SIZE]
    assert call(app, secret, 'GET', wire).status_int == 404


def test_unknown_method_is_405_with_allow(devices, cluster_conf):
    app = make_app(devices)
    resp = call(app, cluster_conf['secret'], 'PATCH', '/sda/0/a/c/o')
    assert resp.status_int == 405
    assert 'PUT' in resp.headers['Allow']


def test_unsigned_is_401_before_anything_else(devices, cluster_conf):
    app = make_app(devices)
    req = Request.blank('/nodev/x/a', method='PUT')
    resp = req.get_response(app)
    assert resp.status_int == 401
    assert resp.body == b'request is not signed\n'


def test_a_full_disk_anywhere_is_507_not_500(devices, cluster_conf,
                                             monkeypatch):
    import errno
    from objstore.obj import diskfile
    app = make_app(devices)
    secret = cluster_conf['secret']

    def full(path):
        raise OSError(errno.ENOSPC, 'No space left on device', path)
    monkeypatch.setattr(diskfile.ondisk, 'makedirs_durable', full)
    resp = call(app, secret, 'PUT', '/sda/0/a/c/o', {
        'X-Timestamp': Timestamp.now().internal, 'Content-Type': 'a/b'},
        b'hello')
    assert resp.status_int == 507 and b'device full' in resp.body
    resp = call(app, secret, 'DELETE', '/sda/0/a/c/o', {
        'X-Timestamp': Timestamp.now().internal})
    assert resp.status_int == 507
    monkeypatch.undo()
    resp = call(app, secret, 'GET', '/sda/0/a/c/o')
    assert resp.status_int == 404


def test_an_announced_container_update_never_outlives_its_write(
        devices, cluster_conf, monkeypatch):
    """A write announces its container update before its commit (see
    updates.UpdateBatcher); whether the commit fails or the update does,
    nothing stays announced for later batches to wait on."""
    import errno
    import socket
    from objstore.obj import diskfile
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]      # nothing listens here
    app = make_app(devices)
    secret = cluster_conf['secret']
    target = {'X-Container-Host': '127.0.0.1:%d' % port,
              'X-Container-Partition': '3', 'X-Container-Device': 'sdb'}
    announced = app.updates._batches._announced

    def full(*args):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(diskfile.DiskFileWriter, 'commit', full)
    monkeypatch.setattr(diskfile.DiskFile, 'write_tombstone', full)
    resp = call(app, secret, 'PUT', '/sda/0/a/c/o', dict(target, **{
        'X-Timestamp': Timestamp.now().internal, 'Content-Type': 'a/b'}),
        b'hello')
    assert resp.status_int == 507 and announced == {}
    resp = call(app, secret, 'DELETE', '/sda/0/a/c/o', dict(
        target, **{'X-Timestamp': Timestamp.now().internal}))
    assert resp.status_int == 507 and announced == {}
    monkeypatch.undo()
    # the container server is down: the update becomes an async pending
    resp = call(app, secret, 'PUT', '/sda/0/a/c/o', dict(target, **{
        'X-Timestamp': Timestamp.now().internal, 'Content-Type': 'a/b'}),
        b'hello')
    assert resp.status_int == 201 and announced == {}
    assert os.listdir(os.path.join(devices, 'sda', 'async_pending'))


def proxy_hashed_put(app, secret, body, sums=None, trailer=None, headers=None,
                     pieces=65536):
    """A PUT as the proxy streams it: chunked, checksums in the trailer,
    read through the real HTTP server's body decoder."""
    if sums is None:
        sums = body_checksums.BodyChecksums()
        sums.update(body)
    if trailer is None:
        trailer = sums.trailer()
    wire = '/sda/0/a/c/o'
    headers = dict({'X-Timestamp': Timestamp.now().internal,
                    'Content-Type': 'a/b', 'Transfer-Encoding': 'chunked',
                    body_checksums.HEADER: 'true'}, **(headers or {}))
    signed = signing.sign(secret, 'PUT', wire, headers)
    req = Request.blank(wire, method='PUT', headers=signed)
    req.environ['RAW_PATH_INFO'] = wire
    coded = b''.join(b'%x\r\n%s\r\n' % (len(body[i:i + pieces]),
                                        body[i:i + pieces])
                     for i in range(0, len(body), pieces))
    req.environ['wsgi.input'] = Input(
        None, io.BytesIO(coded + b'0\r\n' + trailer + b'\r\n'), None, True)
    return req.get_response(app)


def stored_files(devices):
    return glob.glob(os.path.join(devices, 'sda', 'objects', '*', '*', '*',
                                  '*.data'))


@pytest.mark.parametrize('size', [0, 100, direct_io.MIN_SIZE + 5])
def test_proxy_hashed_put_stores_the_proxys_etag(devices, cluster_conf, size):
    app = make_app(devices)
    secret = cluster_conf['secret']
    body = os.urandom(size)
    resp = proxy_hashed_put(app, secret, body, headers={
        body_checksums.LENGTH_HEADER: str(size)})
    assert resp.status_int == 201
    assert resp.headers['Etag'] == hashlib.md5(body).hexdigest()
    resp = call(app, secret, 'GET', '/sda/0/a/c/o')
    assert resp.body == body
    assert resp.headers['Etag'] == hashlib.md5(body).hexdigest()


def test_proxy_hashed_put_refuses_a_body_changed_on_the_way(
        devices, cluster_conf):
    app = make_app(devices)
    secret = cluster_conf['secret']
    sums = body_checksums.BodyChecksums()
    sums.update(b'what the proxy sent')
    resp = proxy_hashed_put(app, secret, b'what the proxy sent'[:-1] + b'T',
                            sums=sums)
    assert resp.status_int == 422
    assert b'CRC-32' in resp.body
    assert stored_files(devices) == []


@pytest.mark.parametrize('trailer, extra, why', [
    (b'', {}, b'X-Object-Etag'),
    (b'X-Object-Etag: %s\r\n' % (b'a' * 32), {}, b'X-Object-Crc32'),
    (None, {body_checksums.LENGTH_HEADER: '4'}, b'body of 5 bytes'),
    (None, {body_checksums.LENGTH_HEADER: '6'}, b'client sent 5 of 6'),
    (None, {body_checksums.LENGTH_HEADER: 'five'}, b'invalid'),
    (None, {'Etag': 'a' * 32}, b'does not match ETag')])
def test_proxy_hashed_put_with_bad_trailer_or_headers_stores_nothing(
        devices, cluster_conf, trailer, extra, why):
    app = make_app(devices)
    resp = proxy_hashed_put(app, cluster_conf['secret'], b'hello',
                            trailer=trailer, headers=extra)
    assert 400 <= resp.status_int < 500
    assert why in resp.body
    assert stored_files(devices) == []


def test_proxy_hashed_put_needs_a_chunked_body(devices, cluster_conf):
    app = make_app(devices)
    resp = call(app, cluster_conf['secret'], 'PUT', '/sda/0/a/c/o', {
        'X-Timestamp': Timestamp.now().internal, 'Content-Type': 'a/b',
        body_checksums.HEADER: 'true'}, b'hello')
    assert resp.status_int == 400
    assert b'chunked' in resp.body
    assert stored_files(devices) == []
