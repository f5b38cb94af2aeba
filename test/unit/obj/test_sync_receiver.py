"""SYNC on the object server, in-process: real dirs, real signing, no sockets.

Two ObjectServer apps on separate device dirs play sender and receiver:
objects are made on the source with PUT/POST/DELETE, their files are
framed by sync_sender.frames straight from the source's disk, and the
receiver's answer and disk are checked.
"""
import hashlib
import os
import time
from urllib.parse import quote

import msgpack
import pytest

from objstore.common import ondisk, signing
from objstore.common.http import Request
from objstore.common.timestamp import Timestamp
from objstore.obj import server, sync_protocol as proto
from objstore.obj.replicator import list_objects, local_files
from objstore.obj.sync_sender import PushOutcome, frames

POWER = 10


def make_app(tmp_path, name):
    devices = tmp_path / name
    (devices / 'sda').mkdir(parents=True)
    return server.app_factory({'devices': str(devices),
                               'mount_check': 'false'}), str(devices)


def call(app, secret, method, path, headers=None, body=b'', query='',
         sign=True):
    headers = dict(headers or {})
    if body or method in ('PUT', 'SYNC'):
        headers['Content-Length'] = str(len(body))
    wire = quote(path, safe='/')
    if sign:
        headers = signing.sign(secret, method, wire, headers, query=query)
    req = Request.blank(wire + ('?' + query if query else ''),
                        method=method, headers=headers)
    req.environ['RAW_PATH_INFO'] = wire
    if body:
        req.body = body
    return req.get_response(app)


class Node:
    """One in-process object server and its device dir."""

    def __init__(self, tmp_path, name, conf):
        self.app, self.devices = make_app(tmp_path, name)
        self.secret = conf['secret']
        self.prefix, self.suffix = conf['prefix'], conf['suffix']

    def hash(self, obj):
        return ondisk.name_hash(self.prefix, self.suffix, 'a', 'c', obj)

    def part(self, obj):
        return proto.partition_of(self.hash(obj), POWER)

    def path(self, obj):
        return '/sda/%d/a/c/%s' % (self.part(obj), obj)

    def req(self, method, obj, headers=None, body=b''):
        return call(self.app, self.secret, method, self.path(obj),
                    headers, body)

    def put(self, obj, body, ts, **headers):
        hdrs = {'X-Timestamp': ts, 'Content-Type': 'text/plain'}
        hdrs.update(headers)
        resp = self.req('PUT', obj, hdrs, body)
        assert resp.status_int == 201
        return resp

    def part_dir(self, obj):
        return os.path.join(self.devices, 'sda', 'objects',
                            str(self.part(obj)))

    def files(self, obj):
        """The object's file names on disk (sorted)."""
        hsh = self.hash(obj)
        path = os.path.join(self.part_dir(obj), hsh[-3:], hsh)
        return sorted(os.listdir(path)) if os.path.isdir(path) else []

    def sync(self, obj, op, body, part=None, part_power=POWER, sign=True):
        part = self.part(obj) if part is None else part
        return call(self.app, self.secret, 'SYNC', '/sda/%d' % part,
                    body=body, query='op=%s&part_power=%d' % (op, part_power),
                    sign=sign)

    def temp_files(self):
        tmp = os.path.join(self.devices, 'sda', 'tmp')
        return os.listdir(tmp) if os.path.isdir(tmp) else []

    def all_files(self):
        found = []
        for root, _, names in os.walk(os.path.join(self.devices, 'sda')):
            found += [n for n in names if n.endswith(('.data', '.ts',
                                                      '.meta'))]
        return sorted(found)


@pytest.fixture
def pair(tmp_path, cluster_conf):
    return Node(tmp_path, 'src', cluster_conf), \
        Node(tmp_path, 'dst', cluster_conf)


def ts(offset=0.0):
    return Timestamp(time.time() + offset).internal


def push_body(src, obj, outcome=None):
    """The push stream of every current file of ``obj`` on ``src``."""
    hsh = src.hash(obj)
    listing = {h: n for h, n in list_objects(src.part_dir(obj)).items()
               if h == hsh}
    return b''.join(frames(local_files(src.part_dir(obj), listing),
                           outcome or PushOutcome()))


def results(resp):
    assert resp.status_int == 200, resp.body
    return msgpack.unpackb(resp.body)['results']


def offers_of(src, obj):
    hsh = src.hash(obj)
    return {hsh: list_objects(src.part_dir(obj))[hsh]}


# -- check ------------------------------------------------------------------

def test_check_names_what_is_missing_then_nothing(pair):
    src, dst = pair
    src.put('o', b'hello', ts())
    offers = offers_of(src, 'o')
    resp = dst.sync('o', 'check', proto.encode_offers(offers))
    assert resp.status_int == 200
    assert msgpack.unpackb(resp.body) == offers
    assert results(dst.sync('o', 'push', push_body(src, 'o')))[0][2] == 'ok'
    resp = dst.sync('o', 'check', proto.encode_offers(offers))
    assert msgpack.unpackb(resp.body) == {}


def test_check_refuses_bad_offers(pair):
    src, dst = pair
    for body in (b'\xc1junk', msgpack.packb({'x': ['y']}),
                 msgpack.packb({src.hash('o'): ['../../x.data']})):
        resp = dst.sync('o', 'check', body)
        assert resp.status_int == 400
    # a hash from another partition
    other = next(o for o in ('p%d' % i for i in range(100))
                 if src.part(o) != src.part('o'))
    resp = dst.sync('o', 'check', proto.encode_offers(
        {src.hash(other): [ts() + '.data']}))
    assert resp.status_int == 400 and b'not in partition' in resp.body


# -- push: what it changes --------------------------------------------------

def test_push_creates_the_same_object(pair):
    src, dst = pair
    body = os.urandom(200000)
    t = ts()
    src.put('o', body, t, **{'X-Object-Meta-Color': 'blue',
                            'Content-Type': 'image/png'})
    res = results(dst.sync('o', 'push', push_body(src, 'o')))
    assert res == [[src.hash('o'), t + '.data', 'ok', '']]
    resp = dst.req('GET', 'o')
    assert resp.status_int == 200 and resp.body == body
    assert resp.headers['ETag'] == hashlib.md5(body).hexdigest()
    assert resp.headers['X-Object-Meta-Color'] == 'blue'
    assert resp.headers['Content-Type'] == 'image/png'
    assert resp.headers['X-Backend-Timestamp'] == t
    assert dst.files('o') == [t + '.data']
    assert dst.temp_files() == []


def test_newer_data_replaces_older_and_not_the_reverse(pair):
    src, dst = pair
    old, new = ts(-10), ts()
    dst.put('o', b'old', old)
    src.put('o', b'new', new)
    assert results(dst.sync('o', 'push', push_body(src, 'o')))[0][2] == 'ok'
    assert dst.req('GET', 'o').body == b'new'
    assert dst.files('o') == [new + '.data']
    # the other way: the receiver keeps its newer copy
    src2, dst2 = dst, src
    dst2.put('p', b'newer', ts())
    src2.put('p', b'older', ts(-10))
    assert results(dst2.sync('p', 'push', push_body(src2, 'p')))[0][2] == \
        'newer'
    assert dst2.req('GET', 'p').body == b'newer'


def test_tombstone_beats_older_data(pair):
    src, dst = pair
    t1 = ts(-10)
    dst.put('o', b'data', t1)
    src.put('o', b'data', t1)
    t2 = ts()
    assert src.req('DELETE', 'o', {'X-Timestamp': t2}).status_int == 204
    assert results(dst.sync('o', 'push', push_body(src, 'o')))[0][2] == 'ok'
    assert dst.req('GET', 'o').status_int == 404
    assert dst.files('o') == [t2 + '.ts']


def test_older_data_does_not_resurrect(pair):
    src, dst = pair
    src.put('o', b'data', ts(-10))
    dst.put('o', b'data', ts(-10))
    assert dst.req('DELETE', 'o', {'X-Timestamp': ts()}).status_int == 204
    res = results(dst.sync('o', 'push', push_body(src, 'o')))
    assert res[0][2] == 'newer'
    assert dst.req('GET', 'o').status_int == 404
    assert [f[-3:] for f in dst.files('o')] == ['.ts']


def test_posted_metadata_is_replicated(pair):
    src, dst = pair
    t1 = ts(-10)
    src.put('o', b'data', t1)
    dst.put('o', b'data', t1)
    t2 = ts()
    assert src.req('POST', 'o', {'X-Timestamp': t2,
                                 'X-Object-Meta-Shape': 'round'}
                   ).status_int == 202
    offers = offers_of(src, 'o')
    wanted = msgpack.unpackb(dst.sync('o', 'check',
                                      proto.encode_offers(offers)).body)
    assert wanted == {src.hash('o'): [t2 + '.meta']}
    hsh = src.hash('o')
    files = local_files(src.part_dir('o'), wanted)
    body = b''.join(frames(files, PushOutcome()))
    assert results(dst.sync('o', 'push', body)) == [
        [hsh, t2 + '.meta', 'ok', '']]
    resp = dst.req('HEAD', 'o')
    assert resp.headers['X-Object-Meta-Shape'] == 'round'
    assert dst.files('o') == [t1 + '.data', t2 + '.meta']


def test_byte_flipped_source_is_refused_and_reported(pair):
    src, dst = pair
    t = ts()
    src.put('o', b'precious bytes', t)
    data = os.path.join(src.part_dir('o'), src.hash('o')[-3:],
                        src.hash('o'), t + '.data')
    with open(data, 'r+b') as f:
        f.write(b'P')
    outcome = PushOutcome()
    res = results(dst.sync('o', 'push', push_body(src, 'o', outcome)))
    assert res[0][2] == 'refused' and 'does not match ETag' in res[0][3]
    assert [item.name for item, _ in outcome.corrupt] == [t + '.data']
    assert dst.all_files() == []
    assert dst.temp_files() == []


# -- push: what it refuses --------------------------------------------------

def frame_for(src, obj, metadata=None, name=None, content=b'data', t=None):
    t = t or ts()
    meta = metadata or {'name': '/a/c/%s' % obj, 'X-Timestamp': t,
                        'Content-Length': len(content),
                        'ETag': hashlib.md5(content).hexdigest(),
                        'Content-Type': 'text/plain'}
    return proto.encode_header(src.hash(obj), name or t + '.data', meta,
                               len(content)) + content


@pytest.mark.parametrize('make,reason', [
    (lambda n: b'\x00\x00\x00\x03abc' + proto.END_FRAME, b'msgpack'),
    (lambda n: frame_for(n, 'o')[:-2], b'end marker'),           # truncated
    (lambda n: proto.END_FRAME + b'x', b'after the end'),
    (lambda n: frame_for(n, 'o', metadata={
        'name': '/a/c/other', 'X-Timestamp': '1700000000.00000',
        'Content-Length': 4, 'ETag': hashlib.md5(b'data').hexdigest()},
        name='1700000000.00000.data') + proto.END_FRAME, b'does not hash'),
    (lambda n: frame_for(n, 'o', name=ts(-5) + '.data') + proto.END_FRAME,
     b'does not match file'),
])
def test_bad_pushes_are_400_and_write_nothing(pair, make, reason):
    src, dst = pair
    resp = dst.sync('o', 'push', make(dst))
    assert resp.status_int == 400, resp.body
    assert reason in resp.body
    assert dst.all_files() == []
    assert dst.temp_files() == []


def test_wrong_partition_is_refused(pair):
    src, dst = pair
    part = (dst.part('o') + 1) % (2 ** POWER)
    resp = dst.sync('o', 'push', frame_for(dst, 'o') + proto.END_FRAME,
                    part=part)
    assert resp.status_int == 400 and b'not in partition' in resp.body
    assert dst.all_files() == []


@pytest.mark.parametrize('tail,reason', [
    (b'\x00\x00\x00\x02??', b'msgpack'),     # a bad frame after it
    (b'', b'end marker'),                       # cut off after it
    (proto.END_FRAME + b'x', b'after the end'),
])
def test_whole_good_file_before_bad_framing_is_kept(pair, tail, reason):
    # each file is checked on its own, so a good one is not lost to what
    # comes after it; the answer still says the stream was bad
    src, dst = pair
    src.put('o', b'good', ts())
    good = push_body(src, 'o')[:-len(proto.END_FRAME)]
    resp = dst.sync('o', 'push', good + tail)
    assert resp.status_int == 400 and reason in resp.body
    assert dst.req('GET', 'o').body == b'good'


@pytest.mark.parametrize('query', [
    'op=push', 'op=push&part_power=x', 'op=push&part_power=40',
    'op=dance&part_power=10', 'part_power=10'])
def test_bad_queries_are_400(pair, query):
    src, dst = pair
    resp = call(dst.app, dst.secret, 'SYNC', '/sda/1', body=proto.END_FRAME,
                query=query)
    assert resp.status_int == 400


def test_partition_out_of_range_and_bad_paths(pair):
    src, dst = pair
    for path in ('/sda/1024', '/sda/x', '/sda', '/sda/1/extra'):
        resp = call(dst.app, dst.secret, 'SYNC', path, body=proto.END_FRAME,
                    query='op=push&part_power=10')
        assert resp.status_int == 400, path


def test_unsigned_sync_is_401(pair):
    src, dst = pair
    src.put('o', b'data', ts())
    resp = dst.sync('o', 'push', push_body(src, 'o'), sign=False)
    assert resp.status_int == 401
    assert dst.all_files() == []


def test_unknown_device_is_507(pair):
    src, dst = pair
    resp = call(dst.app, dst.secret, 'SYNC', '/sdz/1', body=proto.END_FRAME,
                query='op=push&part_power=10')
    assert resp.status_int == 507


def test_a_push_carries_bounded_files(pair, monkeypatch):
    src, dst = pair
    monkeypatch.setattr(proto, 'MAX_PUSH_FILES', 2)
    stream = b''
    names = []
    for i in range(3):
        obj = next(o for o in ('x%d-%d' % (i, j) for j in range(200000))
                   if dst.part(o) == dst.part('o'))
        t = ts(i)
        names.append(t)
        stream += proto.encode_header(
            dst.hash(obj), t + '.ts',
            {'name': '/a/c/' + obj, 'X-Timestamp': t}, 0)
    resp = dst.sync('o', 'push', stream + proto.END_FRAME)
    assert resp.status_int == 413
    # the first two were committed; the third never
    assert sorted(dst.all_files()) == sorted(t + '.ts' for t in names[:2])


def test_empty_push_is_fine(pair):
    src, dst = pair
    resp = dst.sync('o', 'push', proto.END_FRAME)
    assert resp.status_int == 200
    assert msgpack.unpackb(resp.body) == {'results': [], 'files': 0,
                                          'bytes': 0}
