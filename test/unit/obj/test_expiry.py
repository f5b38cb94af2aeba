"""The per-device expiry index and the DiskFileWriter hook that fills it,
on real temp directories."""
import os
import time

import msgpack
import pytest

from objstore.common.timestamp import Timestamp
from objstore.obj import diskfile, expiry
from objstore.obj.diskfile import DiskFileConflict

HASH = 'ab' * 14 + '0f0f'


@pytest.fixture
def dev(tmp_path):
    path = tmp_path / 'sda'
    path.mkdir()
    return str(path)


@pytest.fixture
def mgr(tmp_path, dev):
    return diskfile.DiskFileManager(str(tmp_path), mount_check=False,
                                    hash_prefix=b'pre', hash_suffix=b'suf')


def put(mgr, timestamp, extra=None, obj='o'):
    df = mgr.get_diskfile('sda', 7, 'a', 'c', obj)
    writer = df.writer(3)
    try:
        writer.write(b'abc')
        meta = {'name': df.name, 'X-Timestamp': Timestamp(timestamp).internal,
                'Content-Type': 'a/b', 'Content-Length': 3,
                'ETag': writer.etag}
        meta.update(extra or {})
        writer.commit(timestamp, meta)
    finally:
        writer.close()
    return df


def index_files(dev):
    root = os.path.join(dev, expiry.EXPIRING_DIR)
    out = []
    for dirpath, _dirs, files in os.walk(root):
        out += [os.path.relpath(os.path.join(dirpath, f), root)
                for f in files]
    return sorted(out)


# -- record / due / remove ---------------------------------------------------

def test_record_names_sort_by_time_and_due_yields_only_passed(dev):
    t = Timestamp(1700000000.5)
    for when in (1700007300, 1700000100, 1700003700, 1700000050):
        expiry.record(dev, when, 12, HASH, '/a/c/o%d' % when, t)
    assert index_files(dev) == [
        '1699999200/1700000050-12-%s-1700000000.50000' % HASH,
        '1699999200/1700000100-12-%s-1700000000.50000' % HASH,
        '1700002800/1700003700-12-%s-1700000000.50000' % HASH,
        '1700006400/1700007300-12-%s-1700000000.50000' % HASH]
    got = list(expiry.due(dev, 1700003700))
    assert [(e.delete_at, e.name, e.problem) for e in got] == [
        (1700000050, '/a/c/o1700000050', None),
        (1700000100, '/a/c/o1700000100', None),
        (1700003700, '/a/c/o1700003700', None)]
    assert all(e.partition == 12 and e.hash == HASH and e.timestamp == t
               for e in got)
    assert list(expiry.due(dev, 1700000000)) == []


def test_entry_file_is_durable_msgpack_and_tmp_is_left_clean(dev):
    path = expiry.record(dev, 1700000000, 3, HASH, '/a/c/ü/x',
                         Timestamp(1.0))
    with open(path, 'rb') as f:
        assert msgpack.unpackb(f.read(), raw=False) == {'name': '/a/c/ü/x'}
    assert os.listdir(os.path.join(dev, 'tmp')) == []
    # recording the same thing twice is harmless: one file
    expiry.record(dev, 1700000000, 3, HASH, '/a/c/ü/x', Timestamp(1.0))
    assert len(index_files(dev)) == 1


def test_remove_and_prune(dev):
    expiry.record(dev, 1700000000, 3, HASH, '/a/c/o', Timestamp(1.0))
    expiry.record(dev, 1700009000, 3, HASH, '/a/c/p', Timestamp(1.0))
    [entry] = expiry.due(dev, 1700000000)
    expiry.remove(entry)
    expiry.remove(entry)  # gone already: fine
    # the emptied hour goes once it is over; the later one stays
    assert expiry.prune(dev, 1700000000) == 0
    assert expiry.prune(dev, 1700003600) == 1
    assert os.listdir(os.path.join(dev, expiry.EXPIRING_DIR)) == \
        ['1700006400']
    assert expiry.prune(dev, 1800000000) == 0  # not empty: kept


def test_garbled_entries_come_out_with_a_problem(dev):
    good = expiry.record(dev, 1700000000, 3, HASH, '/a/c/o', Timestamp(1.0))
    hour = os.path.dirname(good)
    bad = {
        'junk': b'x',
        '1700000001-3-%s' % HASH: b'',
        '1700000002-x-%s-1.00000' % HASH: b'',
        '1700000003-3-nothex-1.00000': b'',
        '1700000004-3-%s-notatime' % HASH: b'',
        '1700000005-3-%s-1.00000' % HASH: b'\xc1 not msgpack',
        '1700000006-3-%s-1.00000' % HASH: msgpack.packb({'name': 'a/c'}),
        '1700000007-3-%s-1.00000' % HASH: msgpack.packb(['list']),
        '1700000008-3-%s-1.00000' % HASH: b'\x00' * 9000,
    }
    for name, body in bad.items():
        with open(os.path.join(hour, name), 'wb') as f:
            f.write(body)
    stray = os.path.join(dev, expiry.EXPIRING_DIR, 'stray')
    with open(stray, 'wb') as f:
        f.write(b'?')
    got = list(expiry.due(dev, 1700000100))
    by_path = {e.path: e for e in got}
    assert by_path.pop(good).problem is None
    assert by_path.pop(stray).problem.startswith('stray file')
    assert sorted(os.path.basename(p) for p in by_path) == sorted(bad)
    assert all(e.problem for e in by_path.values())
    for entry in got:
        expiry.remove(entry)
    assert index_files(dev) == []


def test_due_skips_hours_and_entries_still_ahead(dev):
    expiry.record(dev, 1700000000, 1, HASH, '/a/c/o', Timestamp(1.0))
    expiry.record(dev, 1700000500, 1, HASH, '/a/c/o', Timestamp(1.0))
    expiry.record(dev, 1700099999, 1, HASH, '/a/c/o', Timestamp(1.0))
    assert [e.delete_at for e in expiry.due(dev, 1700000499)] == \
        [1700000000]


def test_parse_delete_at():
    assert expiry.parse_delete_at('1700000000') == 1700000000
    assert expiry.parse_delete_at(1700000000) == 1700000000
    for bad in (None, '', 'soon', '1.5', '-3', b'\xff'):
        assert expiry.parse_delete_at(bad) is None


# -- the DiskFileWriter.commit hook -----------------------------------------

def test_put_with_x_delete_at_is_indexed(mgr, dev):
    when = int(time.time()) + 100
    t = Timestamp.now()
    df = put(mgr, t, {'X-Delete-At': str(when)})
    [entry] = expiry.due(dev, when)
    assert (entry.delete_at, entry.partition, entry.hash, entry.timestamp,
            entry.name, entry.problem) == (when, 7, df.hash, t, '/a/c/o',
                                           None)


def test_post_with_x_delete_at_is_indexed_too(mgr, dev):
    df = put(mgr, Timestamp.now())
    assert not os.path.exists(os.path.join(dev, expiry.EXPIRING_DIR))
    when = int(time.time()) + 100
    t = Timestamp.now()
    df.write_meta(t, {'X-Delete-At': str(when)})
    [entry] = expiry.due(dev, when)
    assert (entry.delete_at, entry.timestamp, entry.hash) == \
        (when, t, df.hash)


def test_objects_without_x_delete_at_leave_no_trace(mgr, dev):
    df = put(mgr, Timestamp.now())
    df.write_meta(Timestamp.now(), {'X-Object-Meta-A': 'b'})
    df.write_tombstone(Timestamp.now())
    assert not os.path.exists(os.path.join(dev, expiry.EXPIRING_DIR))


def test_unusable_x_delete_at_does_not_fail_the_write(mgr, dev):
    df = put(mgr, Timestamp.now(), {'X-Delete-At': 'tomorrow'})
    assert df.current().data is not None
    assert index_files(dev) == []


def test_entry_is_written_before_the_object_rename(mgr, dev):
    # a write that loses to a newer file on disk fails at the rename;
    # its entry is already there: stale at worst, never missing
    put(mgr, Timestamp(2000000000.0))
    with pytest.raises(DiskFileConflict):
        put(mgr, Timestamp(1900000000.0), {'X-Delete-At': '1999999999'})
    [entry] = expiry.due(dev, 1999999999)
    assert entry.timestamp == Timestamp(1900000000.0)
