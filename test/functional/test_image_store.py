"""The image store against a real all-in-one objstore cluster.

Each test works in containers of its own (`img-<random>` and its
`_segments` twin) so the tests do not depend on each other; what is
checked is what objstore ends up holding: objects, segments, metadata and
the bytes that come back.
"""
import hashlib
import io
import json
import os
import uuid

import pytest
import requests

from compute.image.store import (ImageChecksumError, ImageInvalid,
                                 ImageNotFound, ImageStore, MANIFEST_TYPE)
from compute.image.swift import NotFound, SwiftError, SwiftSession

KIB = 1024


@pytest.fixture(scope='module')
def session(aio_cluster):
    s = SwiftSession(aio_cluster['auth_url'], 'test:tester', 'testing')
    yield s
    s.close()


@pytest.fixture
def store(session):
    return ImageStore(session, container='img-' + uuid.uuid4().hex[:8])


@pytest.fixture
def seg_store(session):
    return ImageStore(session, container='seg-' + uuid.uuid4().hex[:8],
                      segment_size=256 * KIB)


def names(session, container):
    try:
        return [o['name'] for o in session.list_objects(container)]
    except NotFound:
        return []


def assert_empty(store):
    assert names(store.session, store.container) == []
    assert names(store.session, store.segment_container) == []


class Unsized(io.RawIOBase):
    """A stream whose length cannot be known in advance (like a pipe)."""

    def __init__(self, data):
        self._buf = io.BytesIO(data)

    def readable(self):
        return True

    def seekable(self):
        return False

    def read(self, n=-1):
        return self._buf.read(n)


def read_all(store, image_id, **kw):
    return b''.join(store.open(image_id, **kw))


def test_small_image_round_trip(store, session):
    data = os.urandom(100 * KIB)
    seen = []
    image = store.upload(io.BytesIO(data), {'name': 'cirros', 'min_ram': 64,
                                            'architecture': 'x86_64'},
                         progress=seen.append)
    assert str(uuid.UUID(image['id'])) == image['id']
    assert image['status'] == 'active'
    assert image['size'] == len(data)
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert image['sha256'] == hashlib.sha256(data).hexdigest()
    assert image['disk_format'] == 'raw'
    assert image['container_format'] == 'bare'
    assert image['visibility'] == 'private'
    assert image['owner'] == session.account == 'AUTH_test'
    assert seen[-1] == len(data)
    assert store.show(image['id']) == image
    assert store.list() == [image]
    assert read_all(store, image['id']) == data
    # one plain object, no segments
    assert names(session, store.container) == [image['id']]
    assert names(session, store.segment_container) == []
    head = session.head_object(store.container, image['id'])
    assert head['X-Object-Meta-Image-Name'] == 'cirros'
    assert head['X-Object-Meta-Image-Min-Ram'] == '64'


def test_unicode_name_and_empty_image(store):
    image = store.upload(io.BytesIO(b''), {'name': ' Debian 12 — «bookworm» '})
    assert image['size'] == 0
    shown = store.show(image['id'])
    assert shown['name'] == ' Debian 12 — «bookworm» '
    assert read_all(store, image['id']) == b''


def test_segmented_image(seg_store, session):
    data = os.urandom(1024 * KIB)
    seen = []
    image = seg_store.upload(io.BytesIO(data), {'name': 'big',
                                                'disk_format': 'qcow2'},
                             progress=seen.append)
    assert image['size'] == len(data)
    assert image['checksum'] == hashlib.md5(data).hexdigest()
    assert image['sha256'] == hashlib.sha256(data).hexdigest()
    assert seen == sorted(seen) and seen[-1] == len(data)
    segments = names(session, seg_store.segment_container)
    assert segments == ['%s/%08d' % (image['id'], n) for n in (1, 2, 3, 4)]
    for n, name in enumerate(segments):
        _h, chunks = session.get_object(seg_store.segment_container, name)
        assert b''.join(chunks) == data[n * 256 * KIB:(n + 1) * 256 * KIB]
    head, chunks = session.get_object(seg_store.container, image['id'])
    assert head['Content-Type'].startswith(MANIFEST_TYPE)
    manifest = json.loads(b''.join(chunks))
    assert [m['name'] for m in manifest] == segments
    assert all(m['size'] == 256 * KIB for m in manifest)
    assert seg_store.show(image['id']) == image
    assert read_all(seg_store, image['id']) == data

    seg_store.delete(image['id'])
    assert_empty(seg_store)
    with pytest.raises(ImageNotFound):
        seg_store.show(image['id'])
    with pytest.raises(ImageNotFound):
        seg_store.delete(image['id'])


def test_segmented_uneven_and_unknown_length(seg_store, session):
    data = os.urandom(600 * KIB + 7)
    image = seg_store.upload(Unsized(data), {'name': 'piped'})
    assert image['size'] == len(data)
    segs = names(session, seg_store.segment_container)
    assert len(segs) == 3
    _h, chunks = session.get_object(seg_store.segment_container, segs[-1])
    assert b''.join(chunks) == data[512 * KIB:]
    assert read_all(seg_store, image['id']) == data
    # a small body of unknown length still makes a readable image
    small = seg_store.upload(Unsized(b'tiny'), {'name': 'tiny'})
    assert read_all(seg_store, small['id']) == b'tiny'
    assert small['checksum'] == hashlib.md5(b'tiny').hexdigest()


@pytest.mark.parametrize('length', [10 * KIB, 700 * KIB])
def test_wrong_expected_md5_leaves_nothing(seg_store, length):
    data = os.urandom(length)
    with pytest.raises(ImageChecksumError):
        seg_store.upload(io.BytesIO(data), {'name': 'x'},
                         expected_md5=hashlib.md5(b'other').hexdigest())
    assert_empty(seg_store)
    good = seg_store.upload(io.BytesIO(data), {'name': 'x'},
                            expected_md5=hashlib.md5(data).hexdigest())
    assert good['checksum'] == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize('length', [10 * KIB, 700 * KIB])
def test_stream_size_mismatch_leaves_nothing(seg_store, length):
    data = os.urandom(length)
    with pytest.raises(ImageInvalid, match='ended after'):
        seg_store.upload(Unsized(data), {'name': 'short'}, size=length + 5)
    assert_empty(seg_store)
    with pytest.raises(ImageInvalid, match='longer than'):
        seg_store.upload(Unsized(data), {'name': 'long'}, size=length - 5)
    assert_empty(seg_store)


def test_kernel_and_ramdisk_checked(store):
    with pytest.raises(ImageInvalid, match='no such image'):
        store.upload(io.BytesIO(b'disk'), {'name': 'm', 'disk_format': 'ami',
                                           'kernel_id': str(uuid.uuid4())})
    assert_empty(store)
    kernel = store.upload(io.BytesIO(b'kernel'), {'name': 'k',
                                                  'disk_format': 'aki'})
    ramdisk = store.upload(io.BytesIO(b'initrd'), {'name': 'r',
                                                   'disk_format': 'ari'})
    with pytest.raises(ImageInvalid, match='not aki'):
        store.upload(io.BytesIO(b'disk'), {'name': 'm', 'disk_format': 'ami',
                                           'kernel_id': ramdisk['id']})
    with pytest.raises(ImageInvalid, match='not ari'):
        store.upload(io.BytesIO(b'disk'), {'name': 'm', 'disk_format': 'ami',
                                           'ramdisk_id': kernel['id']})
    assert len(store.list()) == 2
    machine = store.upload(io.BytesIO(b'disk'), {
        'name': 'm', 'disk_format': 'ami', 'kernel_id': kernel['id'],
        'ramdisk_id': ramdisk['id']})
    assert store.show(machine['id'])['kernel_id'] == kernel['id']
    assert store.show(machine['id'])['container_format'] == 'ami'
    assert [i['id'] for i in store.list({'disk_format': 'aki'})] == \
        [kernel['id']]
    assert store.list({'name': 'nope'}) == []


def test_bad_properties_refused_before_storing(store):
    for props in ({'name': ''}, {'name': 'x', 'disk_format': 'vhd'},
                  {'name': 'x', 'checksum': '0' * 32},
                  {'name': 'x', 'min_disk': -1},
                  {'name': 'x', 'disk_format': 'aki',
                   'kernel_id': str(uuid.uuid4())}):
        with pytest.raises(ImageInvalid):
            store.upload(io.BytesIO(b'data'), props)
    with pytest.raises(ImageInvalid):
        store.upload(io.BytesIO(b'data'), {'name': 'x'}, expected_md5='abc')
    assert_empty(store)


def test_overwritten_object_fails_checksum(store, session):
    image = store.upload(io.BytesIO(b'A' * 5000), {'name': 'victim'})
    head = session.head_object(store.container, image['id'])
    meta = {k: v for k, v in head.items()
            if k.lower().startswith('x-object-meta-')}
    resp = requests.put(session._url(store.container, image['id']),
                        data=b'B' * 5000, timeout=10,
                        headers=dict(meta, **{'X-Auth-Token': session.token}))
    assert resp.status_code == 201
    assert store.show(image['id'])['checksum'] == image['checksum']
    with pytest.raises(ImageChecksumError):
        read_all(store, image['id'])
    assert read_all(store, image['id'], verify=False) == b'B' * 5000


def test_overwritten_segment_fails_checksum(seg_store, session):
    data = os.urandom(300 * KIB)
    image = seg_store.upload(io.BytesIO(data), {'name': 'victim'})
    name = '%s/%08d' % (image['id'], 2)
    session.put_object(seg_store.segment_container, name,
                       b'\0' * (44 * KIB))
    chunks = seg_store.open(image['id'])
    first = next(chunks)
    assert data.startswith(first)
    with pytest.raises(ImageChecksumError, match='segment'):
        for _chunk in chunks:
            pass


def test_missing_images(store):
    for bad in ('not-a-uuid', str(uuid.uuid4()), '../etc'):
        with pytest.raises(ImageNotFound):
            store.show(bad)
        with pytest.raises(ImageNotFound):
            store.open(bad)
        with pytest.raises(ImageNotFound):
            store.delete(bad)
    assert store.list() == []


def test_session_basics(session, aio_cluster):
    container = 'sess-' + uuid.uuid4().hex[:8]
    session.put_container(container)
    odd = 'dir/with space/ünïcode?#%'
    headers = session.put_object(container, odd, iter([b'ab', b'cd']))
    assert headers['Etag'].strip('"') == hashlib.md5(b'abcd').hexdigest()
    session.post_object(container, odd, {'X-Object-Meta-Color': 'blue'})
    assert session.head_object(container, odd)['X-Object-Meta-Color'] == \
        'blue'
    for n in range(5):
        session.put_object(container, 'o%d' % n, b'x', content_length=1)
    listed = [o['name'] for o in session.list_objects(container, page_size=2)]
    assert listed == sorted(['o0', 'o1', 'o2', 'o3', 'o4', odd])
    assert [o['name'] for o in session.list_objects(
        container, prefix='dir/')] == [odd]
    _h, chunks = session.get_object(container, odd, chunk_size=1)
    assert list(chunks) == [b'a', b'b', b'c', b'd']
    session.delete_object(container, odd)
    with pytest.raises(NotFound) as info:
        session.head_object(container, odd)
    assert info.value.status == 404

    # a stale token is renewed once; a borrowed token cannot be
    session.token = 'AUTH_tkbogus'
    assert session.head_object(container, 'o1')['Content-Length'] == '1'
    borrowed = SwiftSession.from_token(session.storage_url, session.token)
    assert borrowed.head_object(container, 'o1')['Content-Length'] == '1'
    stale = SwiftSession.from_token(session.storage_url, 'AUTH_tkbogus')
    with pytest.raises(SwiftError) as info:
        stale.head_object(container, 'o1')
    assert info.value.status == 401
    wrong = SwiftSession(aio_cluster['auth_url'], 'test:tester', 'nope')
    with pytest.raises(SwiftError) as info:
        wrong.head_object(container, 'o1')
    assert info.value.status == 401
