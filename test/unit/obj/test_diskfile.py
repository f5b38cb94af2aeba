"""DiskFile on real temp directories: real xattrs, real fsync, real renames."""
import fcntl
import hashlib
import os
import time
import zlib

import pytest
import xattr

from objstore.common.crc import crc32c
from objstore.common.timestamp import Timestamp
from objstore.obj import direct_io, diskfile, fileset, hashes
from objstore.obj import metadata as md
from objstore.obj.diskfile import (DiskFileConflict, DiskFileDeleted,
                                   DiskFileExpired, DiskFileNoSpace,
                                   DiskFileNotExist, DiskFileQuarantined)


@pytest.fixture
def mgr(tmp_path):
    (tmp_path / 'sda').mkdir()
    return diskfile.DiskFileManager(str(tmp_path), mount_check=False,
                                    hash_prefix=b'pre', hash_suffix=b'suf')


def ts(offset=0.0):
    return Timestamp(time.time() + offset)


def put(mgr, body, timestamp, obj='o', extra=None, chunk=65536):
    df = mgr.get_diskfile('sda', 7, 'a', 'c', obj)
    writer = df.writer(len(body))
    try:
        for i in range(0, len(body), chunk):
            writer.write(body[i:i + chunk])
        meta = {'name': df.name, 'X-Timestamp': timestamp.internal,
                'Content-Type': 'a/b', 'Content-Length': writer.upload_size,
                'ETag': writer.etag}
        meta.update(extra or {})
        writer.commit(timestamp, meta)
    finally:
        writer.close()
    return df


def read(mgr, obj='o', **kw):
    df = mgr.get_diskfile('sda', 7, 'a', 'c', obj).open()
    try:
        return b''.join(df.reader(**kw)), df
    finally:
        df.close()


def object_files(df):
    return sorted(os.listdir(df.hash_dir))


def test_write_then_read(mgr):
    body = os.urandom(200001)
    t = ts()
    df = put(mgr, body, t, extra={'X-Object-Meta-A': 'b'})
    assert object_files(df) == [t.internal + '.data']
    assert df.hash_dir.endswith('/sda/objects/7/%s/%s'
                                % (df.hash[-3:], df.hash))
    got, opened = read(mgr)
    assert got == body
    assert opened.etag == hashlib.md5(body).hexdigest()
    assert opened.content_length == len(body)
    assert opened.metadata['X-Object-Meta-A'] == 'b'
    assert opened.timestamp == t and opened.data_timestamp == t
    assert read(mgr, start=10, stop=70000)[0] == body[10:70000]
    assert read(mgr, verify=True)[0] == body
    # the temp file is gone and metadata is in the xattr
    assert os.listdir(os.path.join(mgr.devices, 'sda', 'tmp')) == []
    path = os.path.join(df.hash_dir, t.internal + '.data')
    assert xattr.getxattr(path, md.XATTR_KEY)
    assert os.path.getsize(path) == len(body)


def test_not_there(mgr):
    with pytest.raises(DiskFileNotExist) as e:
        mgr.get_diskfile('sda', 7, 'a', 'c', 'o').open()
    assert e.value.timestamp is None
    with pytest.raises(diskfile.DeviceUnavailable):
        mgr.get_diskfile('sdz', 7, 'a', 'c', 'o')


def test_newest_wins_and_old_files_are_cleaned(mgr):
    t1, t2 = ts(-10), ts(-5)
    put(mgr, b'two', t2)
    with pytest.raises(DiskFileConflict) as e:
        put(mgr, b'one', t1)
    assert e.value.timestamp == t2
    with pytest.raises(DiskFileConflict):
        put(mgr, b'same', t2)
    assert read(mgr)[0] == b'two'
    t3 = ts()
    df = put(mgr, b'three', t3)
    assert read(mgr)[0] == b'three'
    assert object_files(df) == [t3.internal + '.data']
    # a refused write leaves no temp file behind
    assert os.listdir(os.path.join(mgr.devices, 'sda', 'tmp')) == []


def test_an_open_reader_keeps_its_version(mgr):
    put(mgr, b'old' * 1000, ts(-5))
    df = mgr.get_diskfile('sda', 7, 'a', 'c', 'o').open()
    put(mgr, b'new', ts())
    assert b''.join(df.reader()) == b'old' * 1000
    df.close()
    assert read(mgr)[0] == b'new'


def test_tombstone_hides_data(mgr):
    t1, t2 = ts(-5), ts()
    df = put(mgr, b'x', t1)
    df.write_tombstone(t2)
    with pytest.raises(DiskFileDeleted) as e:
        df.open()
    assert e.value.timestamp == t2
    assert object_files(df) == [t2.internal + '.ts']
    with pytest.raises(DiskFileConflict):
        put(mgr, b'late', t1)
    with pytest.raises(DiskFileConflict):
        df.write_tombstone(t1)
    t3 = ts(1)
    put(mgr, b'back', t3)
    assert read(mgr)[0] == b'back'
    assert object_files(df) == [t3.internal + '.data']


def test_meta_replaces_user_metadata(mgr):
    t1, t2 = ts(-5), ts()
    df = put(mgr, b'body', t1, extra={'X-Object-Meta-A': '1',
                                      'X-Delete-At': str(int(time.time())
                                                         + 999),
                                      'X-Object-Sysmeta-S': 'keep'})
    df.write_meta(t2, {'X-Object-Meta-B': '2', 'Content-Type': 'new/type'})
    got, opened = read(mgr)
    assert got == b'body'
    meta = opened.metadata
    assert meta['X-Object-Meta-B'] == '2' and 'X-Object-Meta-A' not in meta
    assert 'X-Delete-At' not in meta
    assert meta['Content-Type'] == 'new/type'
    assert meta['X-Object-Sysmeta-S'] == 'keep'
    assert opened.timestamp == t2 and opened.data_timestamp == t1
    assert sorted(object_files(df)) == [t1.internal + '.data',
                                        t2.internal + '.meta']
    with pytest.raises(DiskFileConflict):
        df.write_meta(t2, {})
    t3 = ts(1)
    df.write_meta(t3, {'X-Object-Meta-C': '3'})
    assert object_files(df) == [t1.internal + '.data', t3.internal + '.meta']
    # a newer PUT makes the old .meta obsolete
    t4 = ts(2)
    put(mgr, b'fresh', t4)
    assert object_files(df) == [t4.internal + '.data']
    assert 'X-Object-Meta-C' not in read(mgr)[1].metadata


def test_expired_objects_read_as_missing(mgr):
    when = int(time.time()) + 100
    put(mgr, b'x', ts(), extra={'X-Delete-At': str(when)})
    df = mgr.get_diskfile('sda', 7, 'a', 'c', 'o')
    df.open(now=when - 1)
    df.close()
    with pytest.raises(DiskFileExpired) as e:
        df.open(now=when)
    assert e.value.timestamp is not None


def test_maximal_metadata_overflows_into_the_file(mgr):
    """90 items, 4096 bytes of user metadata, a 1024-byte name."""
    obj = 'o' * 1024
    extra = {'X-Object-Meta-%02d' % i: 'v' * 43 for i in range(90)}
    extra['X-Object-Meta-89'] = 'v' * (4096 - 90 * 2 - 89 * 43)
    assert sum(len(k) - 14 + len(v) for k, v in extra.items()) == 4096
    body = os.urandom(100000)
    t = ts()
    df = put(mgr, body, t, obj=obj, extra=extra)
    path = os.path.join(df.hash_dir, t.internal + '.data')
    assert os.path.getsize(path) > len(body)  # the tail holds metadata
    got, opened = read(mgr, obj=obj, verify=True)
    assert got == body
    assert {k: opened.metadata[k] for k in extra} == extra
    assert read(mgr, obj=obj, start=99990)[0] == body[99990:]
    # a .meta with as much metadata overflows the same way
    t2 = ts(1)
    df.write_meta(t2, extra)
    assert os.path.getsize(os.path.join(df.hash_dir,
                                        t2.internal + '.meta')) > 4096
    assert read(mgr, obj=obj)[1].metadata['X-Object-Meta-00'] == 'v' * 43


CHUNK = diskfile.READ_CHUNK_SIZE


@pytest.mark.parametrize('verify', [False, True])
def test_multi_chunk_read_is_exact_in_whole_chunks(mgr, verify):
    body = os.urandom(2 * CHUNK + 12345)
    put(mgr, body, ts())
    hand_offs = []

    def counting_run(func, *args):
        hand_offs.append(func)
        return func(*args)
    mgr.run = counting_run
    df = mgr.get_diskfile('sda', 7, 'a', 'c', 'o').open()
    try:
        chunks = list(df.reader(verify=verify))
    finally:
        df.close()
    assert b''.join(chunks) == body
    assert [len(c) for c in chunks] == [CHUNK, CHUNK, 12345]
    # one thread-pool call per chunk, the MD5 update included
    assert len(hand_offs) == len(chunks)


@pytest.mark.parametrize('start, stop', [
    (0, CHUNK), (CHUNK - 1, CHUNK + 1), (10, 2 * CHUNK + 10),
    (CHUNK, 2 * CHUNK), (2 * CHUNK - 3, None), (3 * CHUNK, None),
    (CHUNK + 5, CHUNK + 5)])
def test_ranges_across_chunk_boundaries_are_exact(mgr, start, stop):
    body = os.urandom(3 * CHUNK + 7)
    put(mgr, body, ts())
    df = mgr.get_diskfile('sda', 7, 'a', 'c', 'o').open()
    try:
        chunks = list(df.reader(start, stop))
    finally:
        df.close()
    assert b''.join(chunks) == body[start:stop]
    assert all(0 < len(c) <= CHUNK for c in chunks)


@pytest.mark.parametrize('offset', [70000, 3 * CHUNK + 2])
def test_corrupt_content_is_quarantined_before_the_last_chunk(mgr, offset):
    body = os.urandom(3 * CHUNK + 5)
    t = ts()
    df = put(mgr, body, t)
    path = os.path.join(df.hash_dir, t.internal + '.data')
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(b'\x00' if body[offset] else b'\x01')
    with open(path, 'rb') as f:
        damaged = f.read(len(body))
    opened = mgr.get_diskfile('sda', 7, 'a', 'c', 'o').open()
    got = []
    with pytest.raises(DiskFileQuarantined):
        for chunk in opened.reader(verify=True):
            got.append(chunk)
    opened.close()
    # every chunk but the last is given out as read; the last never is
    assert got == [damaged[i:i + CHUNK] for i in range(0, 3 * CHUNK, CHUNK)]
    qdir = os.path.join(mgr.devices, 'sda', 'quarantined', 'objects',
                        df.hash)
    assert os.listdir(qdir) == [t.internal + '.data']
    assert not os.path.exists(df.hash_dir)
    with pytest.raises(DiskFileNotExist):
        df.open()


def test_short_file_is_quarantined_by_a_verified_read(mgr):
    """Content shorter than its metadata says (truncated after open)."""
    body = os.urandom(2 * CHUNK + 9)
    t = ts()
    df = put(mgr, body, t)
    opened = mgr.get_diskfile('sda', 7, 'a', 'c', 'o').open()
    os.truncate(os.path.join(df.hash_dir, t.internal + '.data'),
                CHUNK + 100)
    got = []
    with pytest.raises(DiskFileQuarantined):
        for chunk in opened.reader(verify=True):
            got.append(chunk)
    opened.close()
    assert got == [body[:CHUNK]]
    assert not os.path.exists(df.hash_dir)


@pytest.mark.parametrize('damage', ['drop-xattr', 'garbage-xattr',
                                    'truncate', 'wrong-name'])
def test_unreadable_metadata_is_quarantined(mgr, damage):
    t = ts()
    df = put(mgr, b'hello world', t)
    path = os.path.join(df.hash_dir, t.internal + '.data')
    if damage == 'drop-xattr':
        xattr.removexattr(path, md.XATTR_KEY)
    elif damage == 'garbage-xattr':
        xattr.setxattr(path, md.XATTR_KEY, b'\xc1\xc1\xc1')
    elif damage == 'truncate':
        os.truncate(path, 5)
    else:
        os.rename(path, os.path.join(df.hash_dir, ts(1).internal + '.data'))
    with pytest.raises(DiskFileQuarantined):
        df.open()
    assert os.path.isdir(os.path.join(mgr.devices, 'sda', 'quarantined',
                                      'objects', df.hash))


def test_quarantine_twice_keeps_both(mgr):
    for _ in range(2):
        df = put(mgr, b'x', ts())
        df.quarantine('test')
    qdir = os.path.join(mgr.devices, 'sda', 'quarantined', 'objects')
    assert len(os.listdir(qdir)) == 2


def test_writes_invalidate_the_suffix_hash(mgr):
    df = put(mgr, b'x', ts(-5))
    first = mgr.get_hashes('sda', 7)
    assert list(first) == [df.suffix]
    assert mgr.get_hashes('sda', 7) == first
    df.write_tombstone(ts())
    assert open(os.path.join(df.partition_dir,
                             hashes.INVALID_FILE)).read() == df.suffix + '\n'
    second = mgr.get_hashes('sda', 7)
    assert second[df.suffix] != first[df.suffix]


def test_reserve_and_fallocate(tmp_path):
    (tmp_path / 'sda').mkdir()
    full = diskfile.DiskFileManager(str(tmp_path), mount_check=False,
                                    fallocate_reserve='100%')
    df = full.get_diskfile('sda', 1, 'a', 'c', 'o')
    with pytest.raises(DiskFileNoSpace):
        df.writer(10)
    st = os.statvfs(str(tmp_path))
    free = st.f_bavail * st.f_frsize
    huge = diskfile.DiskFileManager(str(tmp_path), mount_check=False,
                                    fallocate_reserve=str(free // 2))
    with pytest.raises(DiskFileNoSpace):
        huge.get_diskfile('sda', 1, 'a', 'c', 'o').writer(free)
    assert os.listdir(str(tmp_path / 'sda' / 'tmp')) == []
    ok = diskfile.DiskFileManager(str(tmp_path), mount_check=False,
                                  fallocate_reserve='1')
    writer = ok.get_diskfile('sda', 1, 'a', 'c', 'o').writer(1 << 20)
    try:
        assert os.fstat(writer.fd).st_blocks * 512 >= 1 << 20
    finally:
        writer.close()
    # a small body is not preallocated, and is stored at its own size
    df = ok.get_diskfile('sda', 1, 'a', 'c', 'small')
    writer = df.writer(4096)
    try:
        assert os.fstat(writer.fd).st_blocks == 0
        writer.write(b'x' * 100)
        writer.commit(Timestamp.now(), {'name': df.name})
    finally:
        writer.close()
    [name] = os.listdir(df.hash_dir)
    assert os.path.getsize(os.path.join(df.hash_dir, name)) == 100


def test_parse_reserve():
    assert diskfile.parse_reserve('5%') == (0, 5.0)
    assert diskfile.parse_reserve('1024') == (1024, 0.0)
    for bad in ('-1', 'lots', '120%'):
        with pytest.raises(ValueError):
            diskfile.parse_reserve(bad)


def test_clean_tmp_spares_live_writers(mgr):
    df = mgr.get_diskfile('sda', 1, 'a', 'c', 'o')
    live = df.writer(None)
    live.write(b'in flight')
    tmp = os.path.join(mgr.devices, 'sda', 'tmp')
    stale = os.path.join(tmp, 'leftover.tmp')
    with open(stale, 'wb') as f:
        f.write(b'crashed')
    future = time.time() + 60
    assert mgr.clean_tmp(future) == 1
    assert os.listdir(tmp) == [os.path.basename(live.tmp_path)]
    # files changed after the start are spared too
    with open(stale, 'wb') as f:
        f.write(b'new')
    assert mgr.clean_tmp(time.time() - 60) == 0
    live.close()
    assert mgr.clean_tmp(future) == 1
    assert os.listdir(tmp) == []


def test_commit_survives_cleanup_removing_the_hash_dir(mgr):
    """A tombstone reclaim may rmdir the hash dir between makedirs and
    rename; commit tries again."""
    df = mgr.get_diskfile('sda', 7, 'a', 'c', 'o')
    old = Timestamp(time.time() - 10 * 24 * 3600)
    df.write_tombstone(old)
    assert fileset.cleanup_dir(df.hash_dir).tombstone is None
    assert not os.path.exists(df.hash_dir)
    put(mgr, b'again', ts())
    assert read(mgr)[0] == b'again'


def test_commit_survives_its_directory_vanishing_once(tmp_path, monkeypatch):
    """A rehash may rmdir an empty suffix dir between the writer's mkdir
    and its rename; the commit makes the directory again."""
    import shutil
    from objstore.obj import diskfile as dfmod
    (tmp_path / 'sda').mkdir()
    mgr = dfmod.DiskFileManager(str(tmp_path), mount_check=False,
                                hash_prefix=b'p', hash_suffix=b's',
                                run=lambda f, *a, **k: f(*a, **k))
    df = mgr.get_diskfile('sda', 3, 'a', 'c', 'o')
    real = dfmod.ondisk.make_dirs
    calls = []

    def racing(path, made=None):
        created = real(path, made)
        if os.sep + 'objects' + os.sep in path:
            calls.append(path)
            if len(calls) == 1:
                # the suffix dir goes before the rename
                shutil.rmtree(os.path.dirname(path))
        return created
    monkeypatch.setattr(dfmod.ondisk, 'make_dirs', racing)
    writer = df.writer(5)
    writer.write(b'hello')
    ts = Timestamp.now()
    writer.commit(ts, {'name': df.name, 'X-Timestamp': ts.internal,
                       'Content-Length': 5, 'ETag': writer.etag,
                       'Content-Type': 'a/b'})
    writer.close()
    assert len(calls) >= 2
    assert df.open().content_length == 5
    df.close()


def test_data_files_keep_the_crc32c_of_their_content(mgr):
    body = os.urandom(3 * 65536 + 11)
    t = ts()
    df = put(mgr, body, t)
    path = os.path.join(df.hash_dir, t.internal + '.data')
    with open(path, 'rb') as f:
        meta, _ = md.read_metadata(f.fileno())
    assert meta[diskfile.CRC_KEY] == '%08x' % crc32c(body)
    assert diskfile.LEGACY_CRC_KEY not in meta
    got, opened = read(mgr, verify=True)
    assert got == body
    assert opened.checksum[1:] == (meta[diskfile.CRC_KEY], 'CRC-32C')
    # tombstones carry none
    df.write_tombstone(ts(1))
    tomb = [n for n in object_files(df) if n.endswith('.ts')][0]
    meta, _ = md.read_metadata_path(os.path.join(df.hash_dir, tomb))
    assert diskfile.CRC_KEY not in meta


def rewrite_metadata(path, change):
    with open(path, 'r+b') as f:
        meta, tail = md.read_metadata(f.fileno())
        assert tail == 0
        change(meta)
        md.write_metadata(f.fileno(), meta)


def keep_legacy_crc32(body):
    """A file written before CRC-32C: zlib's CRC-32 instead."""
    def change(meta):
        meta.pop(diskfile.CRC_KEY)
        meta[diskfile.LEGACY_CRC_KEY] = '%08x' % zlib.crc32(body)
    return change


@pytest.mark.parametrize('kind, what', [
    ('crc32c', 'CRC-32C'), ('crc32 (older file)', 'CRC-32 '),
    ('md5 (no crc kept)', 'ETag')])
def test_verified_read_catches_damage_with_any_checksum(mgr, kind, what):
    body = os.urandom(2 * CHUNK + 100)
    t = ts()
    df = put(mgr, body, t)
    path = os.path.join(df.hash_dir, t.internal + '.data')
    if kind != 'crc32c':
        rewrite_metadata(path, keep_legacy_crc32(body)
                         if kind.startswith('crc32 ')
                         else lambda meta: meta.pop(diskfile.CRC_KEY))
        assert read(mgr, verify=True)[0] == body
    with open(path, 'r+b') as f:
        f.seek(CHUNK + 1)
        f.write(bytes([body[CHUNK + 1] ^ 0x40]))
    opened = mgr.get_diskfile('sda', 7, 'a', 'c', 'o').open()
    with pytest.raises(DiskFileQuarantined) as caught:
        list(opened.reader(verify=True))
    opened.close()
    assert what in str(caught.value)


def test_a_crc32_that_does_not_match_quarantines(mgr):
    """The CRC is what a whole read trusts: a wrong one is damage too."""
    body = b'hello world'
    t = ts()
    df = put(mgr, body, t)
    path = os.path.join(df.hash_dir, t.internal + '.data')
    rewrite_metadata(path, lambda meta: meta.update(
        {diskfile.CRC_KEY: '%08x' % (crc32c(body) ^ 1)}))
    with pytest.raises(DiskFileQuarantined):
        read(mgr, verify=True)


def test_etag_read_checks_the_md5_even_with_a_crc32(mgr):
    """The auditor's read: an ETag that does not match the content is
    caught although the CRC-32 (made from the same bytes) agrees."""
    body = b'hello world'
    t = ts()
    df = put(mgr, body, t)
    path = os.path.join(df.hash_dir, t.internal + '.data')
    rewrite_metadata(path, lambda meta: meta.update({'ETag': 'f' * 32}))
    assert read(mgr, verify=True)[0] == body
    with pytest.raises(DiskFileQuarantined) as caught:
        read(mgr, verify=True, etag=True)
    assert 'ETag' in str(caught.value)


def is_direct(fd):
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)


def test_large_bodies_go_around_the_page_cache_both_ways(mgr):
    body = os.urandom(direct_io.MIN_SIZE + 3 * CHUNK + 7)
    flags = []

    def run(func, *args):
        flags.append(is_direct(writer.fd))
        return func(*args)
    mgr.run = run
    df = mgr.get_diskfile('sda', 7, 'a', 'c', 'o')
    writer = df.writer(len(body))
    try:
        for i in range(0, len(body), 65536):
            writer.write(body[i:i + 65536])
        t = ts()
        writer.commit(t, {'name': df.name, 'X-Timestamp': t.internal,
                          'Content-Type': 'a/b', 'Content-Length':
                          writer.upload_size, 'ETag': writer.etag})
    finally:
        writer.close()
    # one hand-off per whole buffer, each written with O_DIRECT on
    assert flags and all(flags)
    assert len(flags) == len(body) // direct_io.BLOCK
    reads = []

    def read_run(func, *args):
        reads.append(is_direct(func.__self__.fd))
        return func(*args)
    mgr.run = read_run
    got, opened = read(mgr, verify=True)
    assert reads and all(reads)
    assert got == body
    assert opened.etag == hashlib.md5(body).hexdigest()
    assert opened.content_length == len(body)
    for start, stop in ((5, CHUNK + 9), (len(body) - 10, None)):
        assert read(mgr, start=start, stop=stop)[0] == body[start:stop]


def test_a_large_read_closed_midway_waits_for_the_read_ahead(mgr):
    body = os.urandom(direct_io.MIN_SIZE + 3)
    put(mgr, body, ts())
    df = mgr.get_diskfile('sda', 7, 'a', 'c', 'o').open()
    chunks = df.reader(verify=True)
    assert next(chunks) == body[:CHUNK]
    # the next blocks were asked for before the first was given out
    assert df._ahead is not None
    df.close()
    assert df._ahead is None and df._direct is None
    assert read(mgr, start=CHUNK - 1, stop=3 * CHUNK + 1)[0] == \
        body[CHUNK - 1:3 * CHUNK + 1]


def test_writer_makes_tmp_dir_again_when_it_is_gone(mgr):
    put(mgr, b'first', ts())
    tmp = os.path.join(mgr.devices, 'sda', 'tmp')
    os.rmdir(tmp)
    put(mgr, b'second', ts())
    assert read(mgr)[0] == b'second'
    assert os.listdir(tmp) == []


def test_commit_lists_only_a_hash_dir_it_did_not_make(tmp_path, monkeypatch):
    """A hash dir the commit has just made holds nothing to conflict
    with or clean up; one that was there is checked and cleaned."""
    from objstore.obj import diskfile as dfmod
    (tmp_path / 'sda').mkdir()
    mgr = dfmod.DiskFileManager(str(tmp_path), mount_check=False,
                                hash_prefix=b'p', hash_suffix=b's',
                                run=lambda f, *a, **k: f(*a, **k))
    listed = []
    real_cleanup = dfmod.fileset.cleanup_dir
    real_check = dfmod.DiskFile.check_conflict

    def cleanup(path, *args):
        listed.append(('cleanup', path))
        return real_cleanup(path, *args)

    def check(df, *args):
        listed.append(('check', df.hash_dir))
        return real_check(df, *args)
    monkeypatch.setattr(dfmod.fileset, 'cleanup_dir', cleanup)
    monkeypatch.setattr(dfmod.DiskFile, 'check_conflict', check)

    def put(body):
        df = mgr.get_diskfile('sda', 3, 'a', 'c', 'o')
        writer = df.writer(len(body))
        try:
            writer.write(body)
            writer.commit(Timestamp.now(), {'name': df.name})
        finally:
            writer.close()
        return df
    df = put(b'first')
    assert listed == []
    df = put(b'second')
    assert listed == [('check', df.hash_dir), ('cleanup', df.hash_dir)]
    [name] = os.listdir(df.hash_dir)     # the first one is gone
    assert os.path.getsize(os.path.join(df.hash_dir, name)) == 6


def test_commit_into_a_new_partition_makes_every_new_entry_durable(
        tmp_path, monkeypatch):
    """The partition, suffix and hash dirs a first object needs are all
    new: the entry of each (in objects/, the partition, the suffix) is
    fsynced before the commit returns, and the file's in the hash dir."""
    from objstore.obj import diskfile as dfmod
    (tmp_path / 'sda' / 'objects').mkdir(parents=True)
    mgr = dfmod.DiskFileManager(str(tmp_path), mount_check=False,
                                hash_prefix=b'p', hash_suffix=b's',
                                run=lambda f, *a, **k: f(*a, **k))
    df = mgr.get_diskfile('sda', 5, 'a', 'c', 'o')
    writer = df.writer(5)
    synced = []
    monkeypatch.setattr(dfmod.ondisk, 'fsync_dir', synced.append)
    try:
        writer.write(b'hello')
        writer.commit(Timestamp.now(), {'name': df.name})
    finally:
        writer.close()
    suffix_dir = os.path.dirname(df.hash_dir)
    assert synced == [df.hash_dir, suffix_dir, df.partition_dir,
                      os.path.dirname(df.partition_dir)]
