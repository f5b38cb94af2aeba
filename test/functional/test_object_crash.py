"""Crash safety: SIGKILL a real object server in the middle of an upload.

No partial object may ever become visible, the previous version stays
readable, and the next start removes the crash's temp file.
"""
import hashlib
import os
import socket
import time

from objstore.common import backend, signing
from objstore.common.timestamp import Timestamp
from objstore.obj import server as server_module

MODULE = 'objstore.obj.server'
SECTION = 'object-server'


def start(start_server, devices, workers):
    return start_server(MODULE, SECTION, devices=devices,
                        mount_check='false', workers=workers)


def begin_chunked_put(port, secret, path, first_part):
    """Open a chunked PUT, send ``first_part``, leave it hanging."""
    headers = signing.sign(secret, 'PUT', path, {
        'X-Timestamp': Timestamp.now().internal,
        'Content-Type': 'application/octet-stream'})
    sock = socket.create_connection(('127.0.0.1', port), timeout=10)
    head = ['PUT %s HTTP/1.1' % path, 'Host: 127.0.0.1',
            'Transfer-Encoding: chunked']
    head += ['%s: %s' % kv for kv in headers.items()]
    sock.sendall(('\r\n'.join(head) + '\r\n\r\n').encode('latin-1'))
    for i in range(0, len(first_part), 65536):
        piece = first_part[i:i + 65536]
        sock.sendall(b'%x\r\n%s\r\n' % (len(piece), piece))
    return sock


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError('condition not met in %.0fs' % timeout)


def tree(devices):
    out = []
    for root, _, names in os.walk(devices):
        out += [os.path.join(root, n) for n in names]
    return out


def test_sigkill_mid_upload_leaves_nothing_visible(tmp_path, start_server,
                                                   cluster_conf):
    secret = cluster_conf['secret']
    devices = tmp_path / 'srv'
    (devices / 'sda').mkdir(parents=True)
    devices = str(devices)
    tmp_dir = os.path.join(devices, 'sda', 'tmp')
    server = start(start_server, devices, workers=1)

    # an earlier, complete version of one object, and a second object
    # that never existed
    old = os.urandom(50000)
    status, _, _ = backend.request(
        secret, '127.0.0.1', server.port, 'PUT', '/sda/9/a/c/kept',
        {'X-Timestamp': Timestamp(time.time() - 5).internal,
         'Content-Type': 'x/y'}, old)
    assert status == 201

    # whole read chunks: all of it reaches the disk
    part = os.urandom(3 * server_module.CHUNK_SIZE)
    socks = [begin_chunked_put(server.port, secret, path, part)
             for path in ('/sda/9/a/c/kept', '/sda/9/a/c/new')]
    # both uploads are being written to temp files on the device
    wait_for(lambda: len([n for n in os.listdir(tmp_dir)
                          if os.path.getsize(os.path.join(tmp_dir, n))
                          >= len(part)]) == 2)
    server.kill()
    for sock in socks:
        sock.close()

    leftovers = os.listdir(tmp_dir)
    assert len(leftovers) == 2  # the crash left its temp files behind
    datas = [f for f in tree(devices) if f.endswith('.data')]
    assert len(datas) == 1  # only the complete old version

    time.sleep(0.05)  # the leftovers are older than the next start
    server = start(start_server, devices, workers=0)
    assert os.listdir(tmp_dir) == []
    status, _, body = backend.request(secret, '127.0.0.1', server.port,
                                      'GET', '/sda/9/a/c/kept')
    assert status == 200 and body == old
    assert hashlib.md5(body).hexdigest() == hashlib.md5(old).hexdigest()
    status, _, _ = backend.request(secret, '127.0.0.1', server.port,
                                   'GET', '/sda/9/a/c/new')
    assert status == 404
    assert [f for f in tree(devices) if f.endswith('.data')] == datas
