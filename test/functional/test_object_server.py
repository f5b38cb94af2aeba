"""The object server over HTTP: a real process on a real socket.

Requests are signed with objstore.common.backend.request the way the
proxy will send them; unsigned ones go through plain http.client.
"""
import hashlib
import http.client
import os
import signal
import socket
import threading
import time
from email.utils import formatdate

import msgpack
import pytest

from objstore.common import backend, signing
from objstore.common.timestamp import Timestamp
from objstore.obj.diskfile import READ_CHUNK_SIZE

MODULE = 'objstore.obj.server'
SECTION = 'object-server'


class ObjectServerClient:
    """A started object server plus signed-request helpers."""

    def __init__(self, server, devices, secret):
        self.server, self.devices, self.secret = server, devices, secret
        self.port = server.port

    def request(self, method, path, headers=None, body=b'', query=''):
        return backend.request(self.secret, '127.0.0.1', self.port, method,
                               path, headers=headers, body=body, query=query)

    def put(self, path, body=b'data', ts=None, **headers):
        hdrs = {'X-Timestamp': ts or Timestamp.now().internal,
                'Content-Type': 'application/octet-stream'}
        hdrs.update({k.replace('_', '-'): v for k, v in headers.items()})
        return self.request('PUT', path, hdrs, body)

    def raw(self, method, path, headers, body=None, sign=True,
            chunks=None):
        """A hand-made request, signed over ``path`` (already quoted).

        ``body`` None sends no body and no Content-Length; ``chunks``
        sends a chunked body.
        """
        headers = dict(headers)
        if body is not None and chunks is None:
            headers.setdefault('Content-Length', str(len(body)))
        if sign:
            headers = signing.sign(self.secret, method, path, headers)
        conn = http.client.HTTPConnection('127.0.0.1', self.port,
                                          timeout=10)
        try:
            conn.putrequest(method, path, skip_host=False,
                            skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            if chunks is not None:
                conn.putheader('Transfer-Encoding', 'chunked')
            conn.endheaders()
            if chunks is not None:
                for chunk in chunks:
                    conn.send(b'%x\r\n%s\r\n' % (len(chunk), chunk))
                conn.send(b'0\r\n\r\n')
            elif body:
                conn.send(body)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in
                                 resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def files(self, device='sda'):
        found = []
        for root, _, names in os.walk(os.path.join(self.devices, device)):
            found += [os.path.join(root, n) for n in names]
        return found

    def object_files(self, device='sda'):
        """The .data/.ts/.meta files under objects/."""
        root = os.path.join(self.devices, device, 'objects') + '/'
        return [f for f in self.files(device) if f.startswith(root) and
                f.endswith(('.data', '.ts', '.meta'))]


def make_devices(tmp_path, *names):
    devices = tmp_path / 'srv'
    for name in names:
        (devices / name).mkdir(parents=True)
    return str(devices)


@pytest.fixture
def objsrv(tmp_path, start_server, cluster_conf, request):
    devices = make_devices(tmp_path, 'sda', 'sdb')
    server = start_server(MODULE, SECTION, devices=devices,
                          mount_check='false', workers=1)
    yield ObjectServerClient(server, devices, cluster_conf['secret'])
    if 'quarantine' not in request.node.name:
        # (a quarantine found mid-stream aborts the response by raising,
        # which eventlet logs with its traceback)
        assert 'Traceback' not in server.read_log()


def ts_after(seconds=0.0):
    return Timestamp(time.time() + seconds).internal


# -- basic verbs -----------------------------------------------------------

def test_put_get_head_roundtrip(objsrv):
    body = os.urandom(200000)
    ts = Timestamp.now()
    status, headers, _ = objsrv.put('/sda/3/a/c/o', body, ts=ts.internal,
                                    X_Object_Meta_Color='blue',
                                    Content_Type='image/png',
                                    Content_Disposition='inline')
    assert status == 201
    assert headers['etag'] == hashlib.md5(body).hexdigest()
    status, headers, got = objsrv.request('GET', '/sda/3/a/c/o')
    assert status == 200 and got == body
    assert headers['content-length'] == str(len(body))
    assert headers['content-type'] == 'image/png'
    assert headers['etag'] == hashlib.md5(body).hexdigest()
    assert headers['x-object-meta-color'] == 'blue'
    assert headers['content-disposition'] == 'inline'
    assert headers['x-timestamp'] == ts.normal
    assert headers['x-backend-timestamp'] == ts.internal
    assert headers['last-modified'] == formatdate(
        -(-float(ts) // 1), usegmt=True)
    status, headers, got = objsrv.request('HEAD', '/sda/3/a/c/o')
    assert status == 200 and got == b''
    assert headers['content-length'] == str(len(body))
    # one .data file in the layout DESIGN.md gives, nothing left in tmp
    datas = [f for f in objsrv.files() if f.endswith('.data')]
    assert len(datas) == 1
    assert os.path.basename(datas[0]) == ts.internal + '.data'
    assert '/objects/3/' in datas[0]
    assert os.listdir(os.path.join(objsrv.devices, 'sda', 'tmp')) == []


def test_chunked_put_streams_a_large_body(objsrv):
    pieces = [os.urandom(100000) for _ in range(7)]
    body = b''.join(pieces)
    status, headers, _ = objsrv.raw(
        'PUT', '/sda/1/a/c/big', {'X-Timestamp': ts_after(),
                                  'Content-Type': 'x/y'}, chunks=pieces)
    assert status == 201, headers
    status, headers, got = objsrv.request('GET', '/sda/1/a/c/big')
    assert status == 200 and got == body
    assert headers['etag'] == hashlib.md5(body).hexdigest()


def test_put_with_wrong_etag_is_422_and_stores_nothing(objsrv):
    status, _, body = objsrv.put('/sda/1/a/c/o', b'abc', ETag='0' * 32)
    assert status == 422 and b'ETag' in body
    assert objsrv.request('GET', '/sda/1/a/c/o')[0] == 404
    status, _, _ = objsrv.put('/sda/1/a/c/o', b'abc',
                              ETag='"%s"' % hashlib.md5(b'abc').hexdigest())
    assert status == 201


def test_newest_timestamp_wins(objsrv):
    old, new = ts_after(-10), ts_after()
    assert objsrv.put('/sda/1/a/c/o', b'new', ts=new)[0] == 201
    status, headers, _ = objsrv.put('/sda/1/a/c/o', b'old', ts=old)
    assert status == 409 and headers['x-backend-timestamp'] == new
    assert objsrv.put('/sda/1/a/c/o', b'same', ts=new)[0] == 409
    assert objsrv.request('GET', '/sda/1/a/c/o')[2] == b'new'
    newer = ts_after(1)
    assert objsrv.put('/sda/1/a/c/o', b'newer', ts=newer)[0] == 201
    assert objsrv.request('GET', '/sda/1/a/c/o')[2] == b'newer'
    datas = objsrv.object_files()
    assert [os.path.basename(f) for f in datas] == [newer + '.data']


def test_delete_leaves_a_tombstone_that_hides_older_data(objsrv):
    put_ts, del_ts = ts_after(-5), ts_after()
    objsrv.put('/sda/1/a/c/o', b'x', ts=put_ts)
    status, headers, _ = objsrv.request('DELETE', '/sda/1/a/c/o',
                                        {'X-Timestamp': del_ts})
    assert status == 204
    status, headers, _ = objsrv.request('GET', '/sda/1/a/c/o')
    assert status == 404 and headers['x-backend-timestamp'] == del_ts
    status, headers, _ = objsrv.request('HEAD', '/sda/1/a/c/o')
    assert status == 404 and headers['x-backend-timestamp'] == del_ts
    # an older PUT arriving late (e.g. from a slow proxy) stays hidden
    assert objsrv.put('/sda/1/a/c/o', b'late', ts=ts_after(-3))[0] == 409
    assert objsrv.request('DELETE', '/sda/1/a/c/o',
                          {'X-Timestamp': ts_after(-1)})[0] == 409
    names = [os.path.basename(f) for f in objsrv.object_files()]
    assert names == [del_ts + '.ts']
    # deleting what is not there answers 404 but still records the delete
    status, _, _ = objsrv.request('DELETE', '/sda/1/a/c/other',
                                  {'X-Timestamp': ts_after()})
    assert status == 404


def test_post_replaces_metadata(objsrv):
    objsrv.put('/sda/1/a/c/o', b'body', ts=ts_after(-5),
               X_Object_Meta_A='1', X_Object_Meta_B='2',
               Content_Type='text/plain')
    post_ts = ts_after()
    status, _, _ = objsrv.request('POST', '/sda/1/a/c/o', {
        'X-Timestamp': post_ts, 'X-Object-Meta-C': '3',
        'Content-Type': 'text/html'})
    assert status == 202
    status, headers, body = objsrv.request('GET', '/sda/1/a/c/o')
    assert status == 200 and body == b'body'
    assert headers['x-object-meta-c'] == '3'
    assert 'x-object-meta-a' not in headers
    assert headers['content-type'] == 'text/html'
    assert headers['x-timestamp'] == post_ts
    assert objsrv.request('POST', '/sda/1/a/c/o', {
        'X-Timestamp': ts_after(-2)})[0] == 409
    assert objsrv.request('POST', '/sda/1/a/c/nothing', {
        'X-Timestamp': ts_after()})[0] == 404
    assert any(f.endswith(post_ts + '.meta') for f in objsrv.files())


def test_post_without_content_type_keeps_the_type(objsrv):
    objsrv.put('/sda/1/a/c/typed', b'body', ts=ts_after(-5),
               Content_Type='image/x-cat')
    status, _, _ = objsrv.request('POST', '/sda/1/a/c/typed', {
        'X-Timestamp': ts_after(), 'X-Object-Meta-C': '3'})
    assert status == 202
    status, headers, _ = objsrv.request('HEAD', '/sda/1/a/c/typed')
    assert headers['content-type'] == 'image/x-cat'
    assert headers['x-object-meta-c'] == '3'


def test_x_delete_at_expires_the_object(objsrv):
    when = int(time.time()) + 2
    assert objsrv.put('/sda/1/a/c/o', b'soon gone',
                      X_Delete_At=str(when))[0] == 201
    status, headers, _ = objsrv.request('HEAD', '/sda/1/a/c/o')
    assert status == 200 and headers['x-delete-at'] == str(when)
    while time.time() < when + 0.05:
        time.sleep(0.1)
    status, headers, _ = objsrv.request('GET', '/sda/1/a/c/o')
    assert status == 404 and 'x-backend-timestamp' in headers
    status, _, _ = objsrv.request('POST', '/sda/1/a/c/o',
                                  {'X-Timestamp': ts_after()})
    assert status == 404


# -- ranges and conditionals -----------------------------------------------

@pytest.fixture
def stored(objsrv):
    body = bytes(range(256)) * 400  # 102400 bytes, two read chunks
    objsrv.put('/sda/1/a/c/r', body, ts=ts_after(-30), Content_Type='x/y')
    return objsrv, body


@pytest.mark.parametrize('spec, start, stop', [
    ('bytes=0-9', 0, 10), ('bytes=100-', 100, 102400),
    ('bytes=-500', 101900, 102400), ('bytes=65530-65545', 65530, 65546),
    ('bytes=102000-999999', 102000, 102400)])
def test_single_range(stored, spec, start, stop):
    objsrv, body = stored
    status, headers, got = objsrv.request('GET', '/sda/1/a/c/r',
                                          {'Range': spec})
    assert status == 206 and got == body[start:stop]
    assert headers['content-range'] == 'bytes %d-%d/%d' % (
        start, stop - 1, len(body))


def test_multiple_ranges_are_multipart(stored):
    objsrv, body = stored
    status, headers, got = objsrv.request(
        'GET', '/sda/1/a/c/r', {'Range': 'bytes=0-2,70000-70004,-3'})
    assert status == 206
    ctype = headers['content-type']
    assert ctype.startswith('multipart/byteranges; boundary=')
    boundary = ctype.split('boundary=')[1].encode()
    assert int(headers['content-length']) == len(got)
    parts = got.split(b'--' + boundary)
    assert parts[0] == b'' and parts[-1] == b'--\r\n'
    found = []
    for part in parts[1:-1]:
        head, _, data = part.partition(b'\r\n\r\n')
        assert data.endswith(b'\r\n')
        assert b'Content-Type: x/y' in head
        found.append((head.split(b'Content-Range: ')[1].decode(),
                      data[:-2]))
    assert found == [('bytes 0-2/102400', body[0:3]),
                     ('bytes 70000-70004/102400', body[70000:70005]),
                     ('bytes 102397-102399/102400', body[-3:])]


def test_unsatisfiable_range_is_416_and_bad_syntax_is_ignored(stored):
    objsrv, body = stored
    status, headers, _ = objsrv.request('GET', '/sda/1/a/c/r',
                                        {'Range': 'bytes=200000-'})
    assert status == 416 and headers['content-range'] == 'bytes */102400'
    status, _, got = objsrv.request('GET', '/sda/1/a/c/r',
                                    {'Range': 'bytes=9-1'})
    assert status == 200 and got == body
    status, _, got = objsrv.request('GET', '/sda/1/a/c/r',
                                    {'Range': 'pages=1-2'})
    assert status == 200 and got == body


def test_conditionals(stored):
    objsrv, body = stored
    etag = hashlib.md5(body).hexdigest()
    path = '/sda/1/a/c/r'

    def get(method='GET', **headers):
        return objsrv.request(method, path, {k.replace('_', '-'): v
                                             for k, v in headers.items()})
    assert get(If_Match='"%s"' % etag)[0] == 200
    assert get(If_Match='*')[0] == 200
    status, headers, _ = get(If_Match='"nope"')
    assert status == 412 and headers['etag'] == etag
    status, headers, got = get(If_None_Match='"%s"' % etag)
    assert status == 304 and got == b'' and headers['etag'] == etag
    assert get('HEAD', If_None_Match='*')[0] == 304
    assert get(If_None_Match='"other"')[0] == 200
    last_modified = get('HEAD')[1]['last-modified']
    assert get(If_Modified_Since=last_modified)[0] == 304
    assert get(If_Modified_Since=formatdate(time.time() - 3600,
                                            usegmt=True))[0] == 200
    assert get(If_Unmodified_Since=formatdate(time.time() - 3600,
                                              usegmt=True))[0] == 412
    assert get(If_Unmodified_Since=last_modified)[0] == 200
    # If-None-Match wins over If-Modified-Since; bad dates are ignored
    assert get(If_None_Match='"other"',
               If_Modified_Since=last_modified)[0] == 200
    assert get(If_Modified_Since='not a date')[0] == 200
    # conditionals apply before ranges
    assert get(If_Match='"nope"', Range='bytes=0-1')[0] == 412
    # If-Match can never hold for an object that is not there
    assert objsrv.request('GET', '/sda/1/a/c/none',
                          {'If-Match': '*'})[0] == 412
    # PUT If-None-Match: * refuses to overwrite
    status, _, _ = objsrv.put(path, b'x', If_None_Match='*')
    assert status == 412
    assert objsrv.request('GET', path)[2] == body


# -- replication, signing, devices ---------------------------------------

def test_replicate_returns_suffix_hashes(objsrv):
    status, _, body = objsrv.request('REPLICATE', '/sda/5')
    assert status == 200 and msgpack.unpackb(body) == {}
    objsrv.put('/sda/5/a/c/o1', b'1')
    status, _, body = objsrv.request('REPLICATE', '/sda/5')
    first = msgpack.unpackb(body)
    assert len(first) == 1
    (suffix, digest), = first.items()
    assert len(suffix) == 3 and len(digest) == 32
    objsrv.request('DELETE', '/sda/5/a/c/o1', {'X-Timestamp': ts_after()})
    status, _, body = objsrv.request('REPLICATE', '/sda/5/%s' % suffix)
    assert status == 200
    assert msgpack.unpackb(body)[suffix] != digest
    assert objsrv.request('REPLICATE', '/sda/5/zzz')[0] == 400
    assert objsrv.request('REPLICATE', '/sdz/5')[0] == 507


def test_unsigned_or_forged_requests_get_401(objsrv):
    objsrv.put('/sda/1/a/c/o', b'secret stuff')
    for method in ('GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'REPLICATE'):
        status, _, _ = objsrv.raw(method, '/sda/1/a/c/o', {
            'X-Timestamp': ts_after(), 'Content-Length': '0'}, sign=False)
        assert status == 401, method
    signed = signing.sign(objsrv.secret, 'GET', '/sda/1/a/c/o', {})
    status, _, body = objsrv.raw('GET', '/sda/1/a/c/other', signed,
                                 sign=False)
    assert status == 401 and b'signature' in body
    forged = signing.sign(b'wrong secret', 'GET', '/sda/1/a/c/o', {})
    assert objsrv.raw('GET', '/sda/1/a/c/o', forged, sign=False)[0] == 401
    stale = signing.sign(objsrv.secret, 'GET', '/sda/1/a/c/o', {},
                         now=time.time() - 3600)
    assert objsrv.raw('GET', '/sda/1/a/c/o', stale, sign=False)[0] == 401
    # a signed header changed in flight breaks the signature
    headers = signing.sign(objsrv.secret, 'DELETE', '/sda/1/a/c/o',
                           {'X-Timestamp': ts_after()})
    headers['X-Timestamp'] = ts_after(100)
    assert objsrv.raw('DELETE', '/sda/1/a/c/o', headers,
                      sign=False)[0] == 401
    assert objsrv.request('GET', '/sda/1/a/c/o')[2] == b'secret stuff'


def test_missing_device_is_507(objsrv):
    status, _, body = objsrv.put('/nodev/1/a/c/o', b'x')
    assert status == 507 and b'nodev' in body
    assert objsrv.request('GET', '/nodev/1/a/c/o')[0] == 507


def test_mount_check_refuses_plain_directories(tmp_path, start_server,
                                               cluster_conf):
    devices = make_devices(tmp_path, 'sda')
    server = start_server(MODULE, SECTION, devices=devices,
                          mount_check='true', workers=0)
    client = ObjectServerClient(server, devices, cluster_conf['secret'])
    assert client.put('/sda/1/a/c/o', b'x')[0] == 507
    assert client.files() == []


def test_free_space_reserve_gives_507(tmp_path, start_server, cluster_conf):
    devices = make_devices(tmp_path, 'sda')
    server = start_server(MODULE, SECTION, devices=devices,
                          mount_check='false', workers=0,
                          fallocate_reserve='100%')
    client = ObjectServerClient(server, devices, cluster_conf['secret'])
    status, _, body = client.put('/sda/1/a/c/o', b'x' * 1000)
    assert status == 507 and b'reserve' in body
    assert client.object_files() == []


def test_names_with_percent_and_unicode(objsrv):
    for name in ('50%25 off', 'caf\u00e9/\u2603', 'a%2Fb', 'x?y#z'):
        path = '/sda/1/a/c/' + name
        assert objsrv.put(path, name.encode())[0] == 201, name
        status, _, body = objsrv.request('GET', path)
        assert status == 200 and body == name.encode(), name
    # the literal name '50%25 off' differs from '50% off'
    assert objsrv.request('GET', '/sda/1/a/c/50% off')[0] == 404


def test_maximal_metadata_object(objsrv):
    """90 items, 4096 bytes of user metadata, a 1024-byte name: on ext4
    this cannot fit in xattrs, and must still work."""
    name = 'n' * 1024
    meta = {}
    for i in range(90):
        key = 'K%02d' % i
        meta['X-Object-Meta-' + key] = 'v' * 42
    meta['X-Object-Meta-K89'] = 'v' * (4096 - 90 * 3 - 89 * 42)
    assert sum(len(k) - 14 + len(v) for k, v in meta.items()) == 4096
    body = os.urandom(70000)
    headers = dict(meta, **{'X-Timestamp': ts_after(-5),
                            'Content-Type': 'a/b'})
    status, _, _ = objsrv.request('PUT', '/sda/1/a/c/' + name, headers,
                                  body)
    assert status == 201
    status, got_headers, got = objsrv.request('GET', '/sda/1/a/c/' + name)
    assert status == 200 and got == body
    for key, value in meta.items():
        assert got_headers[key.lower()] == value
    status, _, got = objsrv.request('GET', '/sda/1/a/c/' + name,
                                    {'Range': 'bytes=-10'})
    assert got == body[-10:]
    post = dict(meta, **{'X-Timestamp': ts_after()})
    assert objsrv.request('POST', '/sda/1/a/c/' + name, post)[0] == 202
    status, got_headers, _ = objsrv.request('HEAD', '/sda/1/a/c/' + name)
    assert status == 200 and got_headers['x-object-meta-k00'] == 'v' * 42


def test_failed_container_update_leaves_an_async_pending(objsrv):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        dead = s.getsockname()[1]  # nothing listens there
    ts = ts_after()
    status, _, _ = objsrv.put('/sda/1/a/c/o', b'abc', ts=ts, **{
        'X-Container-Host': '127.0.0.1:%d' % dead,
        'X-Container-Partition': '7', 'X-Container-Device': 'sdc'})
    assert status == 201
    pending = [f for f in objsrv.files() if '/async_pending/' in f]
    assert len(pending) == 1 and pending[0].endswith('-' + ts)
    with open(pending[0], 'rb') as f:
        update = msgpack.unpackb(f.read())
    assert update['op'] == 'PUT' and update['obj'] == 'o'
    assert update['container_device'] == 'sdc'
    assert update['container_partition'] == '7'
    assert update['headers']['X-Size'] == '3'
    assert update['headers']['X-Etag'] == hashlib.md5(b'abc').hexdigest()
    assert update['headers']['X-Timestamp'] == ts


# -- quarantine ------------------------------------------------------------

def test_flipped_byte_is_quarantined_and_never_served(objsrv):
    for size in (1000, 2 * READ_CHUNK_SIZE + 1000):
        path = '/sda/1/a/c/q%d' % size
        body = os.urandom(size)
        objsrv.put(path, body)
        data, = objsrv.object_files()
        hsh = os.path.basename(os.path.dirname(data))
        with open(data, 'r+b') as f:
            f.seek(size // 2)
            byte = f.read(1)
            f.seek(size // 2)
            f.write(bytes([byte[0] ^ 0xFF]))
        if size <= READ_CHUNK_SIZE:
            # found before any byte is sent: a clean 404
            status, _, got = objsrv.request('GET', path)
            assert status == 404
        else:
            # found while streaming: the connection is cut before the
            # last chunk, so the client never holds a complete response
            with pytest.raises(backend.BackendError, match='Incomplete'):
                objsrv.request('GET', path)
        quarantined = os.path.join(objsrv.devices, 'sda', 'quarantined',
                                   'objects', hsh)
        assert os.path.isdir(quarantined)
        assert os.listdir(quarantined) == [os.path.basename(data)]
        assert objsrv.request('GET', path)[0] == 404


# -- bad input: 4xx, and nothing stored changes --------------------------

GOOD = '/sda/1/a/c/o'
BAD_INPUTS = [
    # (id, method, path, headers, body, expected status)
    ('no-timestamp', 'PUT', GOOD, {'Content-Type': 'a/b'}, b'x', 400),
    ('bad-timestamp', 'PUT', GOOD, {'X-Timestamp': 'yesterday',
                                    'Content-Type': 'a/b'}, b'x', 400),
    ('bad-content-length', 'PUT', GOOD, {'X-Timestamp': 'NOW',
                                         'Content-Type': 'a/b',
                                         'Content-Length': '12abc'}, None,
     400),
    ('no-length', 'PUT', GOOD, {'X-Timestamp': 'NOW',
                                'Content-Type': 'a/b'}, None, 411),
    ('too-large', 'PUT', GOOD, {'X-Timestamp': 'NOW', 'Content-Type': 'a/b',
                                'Content-Length': str(5 * 1024 ** 3 + 1)},
     None, 413),
    ('name-too-long', 'PUT', '/sda/1/a/c/' + 'o' * 1025,
     {'X-Timestamp': 'NOW', 'Content-Type': 'a/b'}, b'x', 400),
    ('dotdot-segment', 'PUT', '/sda/1/a/c/x/../o',
     {'X-Timestamp': 'NOW', 'Content-Type': 'a/b'}, b'x', 400),
    ('bad-utf8', 'PUT', '/sda/1/a/c/%FF%FE',
     {'X-Timestamp': 'NOW', 'Content-Type': 'a/b'}, b'x', 400),
    ('nul-in-name', 'PUT', '/sda/1/a/c/o%00x',
     {'X-Timestamp': 'NOW', 'Content-Type': 'a/b'}, b'x', 400),
    ('bad-partition', 'PUT', '/sda/one/a/c/o',
     {'X-Timestamp': 'NOW', 'Content-Type': 'a/b'}, b'x', 400),
    ('too-many-meta', 'POST', GOOD, dict(
        {'X-Timestamp': 'NOW'},
        **{'X-Object-Meta-M%d' % i: 'v' for i in range(91)}), b'', 400),
    ('meta-too-big', 'PUT', GOOD, dict(
        {'X-Timestamp': 'NOW', 'Content-Type': 'a/b'},
        **{'X-Object-Meta-M%d' % i: 'v' * 250 for i in range(17)}), b'x',
     400),
    ('meta-value-too-long', 'POST', GOOD,
     {'X-Timestamp': 'NOW', 'X-Object-Meta-Big': 'v' * 257}, b'', 400),
    ('delete-at-past', 'PUT', GOOD, {'X-Timestamp': 'NOW',
                                     'Content-Type': 'a/b',
                                     'X-Delete-At': '1000'}, b'x', 400),
    ('delete-at-not-int', 'POST', GOOD, {'X-Timestamp': 'NOW',
                                         'X-Delete-At': 'soon'}, b'', 400),
    ('wrong-etag', 'PUT', GOOD, {'X-Timestamp': 'NOW', 'Content-Type': 'a/b',
                                 'ETag': 'f' * 32}, b'x', 422),
    ('older-put', 'PUT', GOOD, {'X-Timestamp': 'OLD',
                                'Content-Type': 'a/b'}, b'x', 409),
    ('older-delete', 'DELETE', GOOD, {'X-Timestamp': 'OLD'}, b'', 409),
    ('post-no-timestamp', 'POST', GOOD, {'X-Object-Meta-A': 'b'}, b'', 400),
    ('delete-bad-timestamp', 'DELETE', GOOD, {'X-Timestamp': '-1'}, b'',
     400),
    ('bad-container-host', 'PUT', GOOD, {
        'X-Timestamp': 'NOW', 'Content-Type': 'a/b',
        'X-Container-Host': 'nohost', 'X-Container-Partition': '1',
        'X-Container-Device': 'sdb'}, b'x', 400),
    ('bad-method', 'PATCH', GOOD, {'X-Timestamp': 'NOW'}, b'', 405),
    ('short-path', 'PUT', '/sda/1/a/c', {'X-Timestamp': 'NOW',
                                         'Content-Type': 'a/b'}, b'x', 400),
    ('unsigned', 'DELETE', GOOD, {'X-Timestamp': 'NOW', 'UNSIGNED': '1'},
     b'', 401),
    ('if-none-match-exists', 'PUT', GOOD, {
        'X-Timestamp': 'NOW', 'Content-Type': 'a/b', 'If-None-Match': '*'},
     b'x', 412),
]


@pytest.fixture(scope='function')
def with_object(objsrv):
    ts = ts_after(-60)
    status, _, _ = objsrv.put(GOOD, b'precious', ts=ts,
                              X_Object_Meta_Keep='yes',
                              Content_Type='text/plain')
    assert status == 201
    return objsrv, ts


def snapshot(objsrv):
    status, headers, body = objsrv.request('GET', GOOD)
    keep = {k: v for k, v in headers.items() if k != 'date'}
    files = sorted(objsrv.object_files() + [
        f for f in objsrv.files() if '/async_pending/' in f])
    return status, keep, body, files


@pytest.mark.parametrize('case', BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_and_changes_nothing(with_object, case):
    objsrv, stored_ts = with_object
    _, method, path, headers, body, expected = case
    before = snapshot(objsrv)
    stamp = {'NOW': ts_after(), 'OLD': ts_after(-120)}
    headers = {k: stamp.get(v, v) for k, v in headers.items()}
    if headers.pop('UNSIGNED', None):
        status, _, reply = objsrv.raw(method, path, headers, body,
                                      sign=False)
    elif body is None or '%' in path:
        status, _, reply = objsrv.raw(method, path, headers, body)
    else:
        status, _, reply = objsrv.request(method, path, headers, body)
    assert status == expected, reply
    # eventlet itself refuses a malformed Content-Length, without a reason
    if case[0] != 'bad-content-length':
        assert reply.endswith(b'\n') and reply.count(b'\n') == 1
        assert b'Traceback' not in reply
    assert snapshot(objsrv) == before


# -- process lifecycle -------------------------------------------------------

def test_sigterm_lets_a_slow_upload_finish(tmp_path, start_server,
                                           cluster_conf):
    devices = make_devices(tmp_path, 'sda')
    server = start_server(MODULE, SECTION, devices=devices,
                          mount_check='false', workers=2)
    client = ObjectServerClient(server, devices, cluster_conf['secret'])
    body = os.urandom(300000)
    path = '/sda/1/a/c/slow'
    headers = signing.sign(client.secret, 'PUT', path, {
        'X-Timestamp': ts_after(), 'Content-Type': 'a/b',
        'Content-Length': str(len(body))})
    conn = http.client.HTTPConnection('127.0.0.1', client.port, timeout=20)
    conn.putrequest('PUT', path, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(body[:100000])
    time.sleep(0.3)
    os.killpg(server.proc.pid, signal.SIGTERM)
    time.sleep(0.3)
    conn.send(body[100000:])
    resp = conn.getresponse()
    assert resp.status == 201
    resp.read()
    conn.close()
    assert server.proc.wait(15) == 0
    data = [f for f in client.files() if f.endswith('.data')]
    assert len(data) == 1
    with open(data[0], 'rb') as f:
        assert f.read(len(body)) == body


def test_workers_serve_concurrently_and_stop_cleanly(objsrv, tmp_path,
                                                     start_server,
                                                     cluster_conf):
    devices = make_devices(tmp_path, 'sdw')
    server = start_server(MODULE, SECTION, devices=devices,
                          mount_check='false', workers=3)
    client = ObjectServerClient(server, devices, cluster_conf['secret'])
    errors = []

    def work(i):
        try:
            path = '/sdw/%d/a/c/o%d' % (i, i)
            assert client.put(path, b'%d' % i)[0] == 201
            assert client.request('GET', path)[2] == b'%d' % i
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert server.stop() == 0


# -- container updates against a real container server -------------------

def test_put_and_delete_update_a_real_container_server(objsrv,
                                                      start_server):
    import json
    cont = start_server('objstore.container.server', 'container-server',
                        devices=objsrv.devices, mount_check='false',
                        workers=0)

    def c(method, path, headers=None, query=''):
        return backend.request(objsrv.secret, '127.0.0.1', cont.port,
                               method, path, headers=headers, query=query)
    assert c('PUT', '/sdb/4/a/c', {'X-Timestamp': ts_after(-10)})[0] == 201
    where = {'X-Container-Host': '127.0.0.1:%d' % cont.port,
             'X-Container-Partition': '4', 'X-Container-Device': 'sdb'}
    body = b'listed'
    assert objsrv.put('/sda/1/a/c/o', body, Content_Type='text/x',
                      **where)[0] == 201
    status, _, listing = c('GET', '/sdb/4/a/c', query='format=json')
    assert status == 200
    row, = json.loads(listing)
    assert row['name'] == 'o' and row['bytes'] == len(body)
    assert row['hash'] == hashlib.md5(body).hexdigest()
    assert row['content_type'] == 'text/x'
    headers = dict(where, **{'X-Timestamp': ts_after()})
    assert objsrv.request('DELETE', '/sda/1/a/c/o', headers)[0] == 204
    assert json.loads(c('GET', '/sdb/4/a/c', query='format=json')[2]) == []
    assert [f for f in objsrv.files() if '/async_pending/' in f] == []


OVERRIDES = {
    'X-Object-Sysmeta-Container-Update-Override-Size': '12345',
    'X-Object-Sysmeta-Container-Update-Override-Etag': 'abc; slo_etag=def',
    'X-Object-Sysmeta-Container-Update-Override-Content-Type':
        'text/x;symlink_target=c/t'}


def test_container_update_overrides_reach_the_listing_and_survive_post(
        objsrv, start_server):
    import json
    cont = start_server('objstore.container.server', 'container-server',
                        devices=objsrv.devices, mount_check='false',
                        workers=0)
    assert backend.request(objsrv.secret, '127.0.0.1', cont.port, 'PUT',
                           '/sdb/4/a/c', headers={
                               'X-Timestamp': ts_after(-10)})[0] == 201
    where = {'X-Container-Host': '127.0.0.1:%d' % cont.port,
             'X-Container-Partition': '4', 'X-Container-Device': 'sdb'}
    assert objsrv.put('/sda/1/a/c/big', b'manifest', Content_Type='text/x',
                      **dict(where, **OVERRIDES))[0] == 201
    _, _, listing = backend.request(objsrv.secret, '127.0.0.1', cont.port,
                                    'GET', '/sdb/4/a/c', query='format=json')
    row, = json.loads(listing)
    assert (row['bytes'], row['hash'], row['content_type']) == (
        12345, 'abc; slo_etag=def', 'text/x;symlink_target=c/t')
    # the object itself is what was stored
    status, headers, body = objsrv.request('GET', '/sda/1/a/c/big')
    assert body == b'manifest' and headers['content-length'] == '8'
    # a metadata POST keeps the overrides (system metadata)
    assert objsrv.request('POST', '/sda/1/a/c/big', {
        'X-Timestamp': ts_after(), 'X-Object-Meta-K': 'v'})[0] == 202
    status, headers, _ = objsrv.request('HEAD', '/sda/1/a/c/big')
    assert headers['x-object-meta-k'] == 'v'
    assert headers['x-object-sysmeta-container-update-override-size'] == \
        '12345'


def test_async_pending_keeps_the_overrides(objsrv):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        dead = s.getsockname()[1]
    assert objsrv.put('/sda/1/a/c/o2', b'abc', ts=ts_after(), **dict(
        OVERRIDES, **{'X-Container-Host': '127.0.0.1:%d' % dead,
                      'X-Container-Partition': '7',
                      'X-Container-Device': 'sdc'}))[0] == 201
    pending = [f for f in objsrv.files() if '/async_pending/' in f and
               f.endswith(tuple('0123456789'))]
    updates = []
    for path in pending:
        with open(path, 'rb') as f:
            updates.append(msgpack.unpackb(f.read()))
    update, = [u for u in updates if u['obj'] == 'o2']
    assert update['headers']['X-Size'] == '12345'
    assert update['headers']['X-Etag'] == 'abc; slo_etag=def'
    assert update['headers']['X-Content-Type'] == \
        'text/x;symlink_target=c/t'


def test_empty_object(objsrv):
    assert objsrv.put('/sda/1/a/c/empty', b'')[0] == 201
    status, headers, body = objsrv.request('GET', '/sda/1/a/c/empty')
    assert status == 200 and body == b''
    assert headers['etag'] == hashlib.md5(b'').hexdigest()
    assert headers['content-length'] == '0'
    status, headers, _ = objsrv.request('GET', '/sda/1/a/c/empty',
                                        {'Range': 'bytes=0-'})
    assert status == 416 and headers['content-range'] == 'bytes */0'
