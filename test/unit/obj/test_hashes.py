"""Suffix hashes of a partition, on a real directory tree."""
import os
import threading

import time

import msgpack

from objstore.common.timestamp import Timestamp
from objstore.obj import hashes

NOW = Timestamp(time.time() - 100).normal


def make(part_dir, suffix, hsh, *names):
    path = os.path.join(part_dir, suffix, hsh)
    os.makedirs(path, exist_ok=True)
    for name in names:
        open(os.path.join(path, name), 'wb').close()
    return path


def test_empty_or_missing_partition(tmp_path):
    assert hashes.get_hashes(str(tmp_path / 'nope')) == {}
    assert hashes.get_hashes(str(tmp_path)) == {}


def test_hashes_depend_only_on_file_names(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    for part in (a, b):
        make(part, 'abc', 'f' * 29 + 'abc', '1700000000.00000.data')
        make(part, '123', 'e' * 29 + '123', NOW + '.ts')
    ha, hb = hashes.get_hashes(a), hashes.get_hashes(b)
    assert ha == hb and set(ha) == {'abc', '123'}
    make(b, 'abc', 'f' * 29 + 'abc', '1700000002.00000.meta')
    hashes.invalidate(b, 'abc')
    hb = hashes.get_hashes(b)
    assert hb['abc'] != ha['abc'] and hb['123'] == ha['123']


def test_cached_until_invalidated(tmp_path):
    part = str(tmp_path)
    hsh = 'f' * 29 + 'abc'
    make(part, 'abc', hsh, '1700000000.00000.data')
    first = hashes.get_hashes(part)
    with open(os.path.join(part, hashes.HASHES_FILE), 'rb') as f:
        assert msgpack.unpackb(f.read()) == first
    # a change nobody announced is not seen ...
    make(part, 'abc', hsh, '1700000001.00000.data')
    assert hashes.get_hashes(part) == first
    # ... until the suffix is invalidated or named for recalculation
    second = hashes.get_hashes(part, recalculate=['abc'])
    assert second['abc'] != first['abc']
    # recomputation cleaned the obsolete .data
    assert os.listdir(os.path.join(part, 'abc', hsh)) == [
        '1700000001.00000.data']
    hashes.invalidate(part, 'abc')
    hashes.get_hashes(part)
    assert open(os.path.join(part, hashes.INVALID_FILE)).read() == ''


def test_emptied_suffix_disappears(tmp_path):
    part = str(tmp_path)
    path = make(part, 'abc', 'f' * 29 + 'abc', '1700000000.00000.data')
    hashes.get_hashes(part)
    os.unlink(os.path.join(path, '1700000000.00000.data'))
    hashes.invalidate(part, 'abc')
    assert hashes.get_hashes(part) == {}
    assert not os.path.exists(os.path.join(part, 'abc'))


def test_damaged_cache_means_full_rescan(tmp_path):
    part = str(tmp_path)
    make(part, 'abc', 'f' * 29 + 'abc', '1700000000.00000.data')
    first = hashes.get_hashes(part)
    with open(os.path.join(part, hashes.HASHES_FILE), 'wb') as f:
        f.write(b'\xc1 not msgpack')
    assert hashes.get_hashes(part) == first


def test_is_suffix():
    assert hashes.is_suffix('a0f')
    for bad in ('abcd', 'ab', 'xyz', 'ABC', '../'):
        assert not hashes.is_suffix(bad)


def test_no_mark_and_no_lock_file_while_there_is_no_cache(tmp_path):
    part = str(tmp_path / '5')
    hsh = 'f' * 29 + 'abc'
    with hashes.changing(part, 'abc'):
        make(part, 'abc', hsh, '1700000000.00000.data')
    # a new partition: neither a mark nor a lock file, only the suffix
    assert os.listdir(part) == ['abc']
    first = hashes.get_hashes(part)
    assert list(first) == ['abc']
    with hashes.changing(part, 'abc'):
        make(part, 'abc', hsh, '1700000001.00000.data')
    with open(os.path.join(part, hashes.INVALID_FILE)) as f:
        assert f.read() == 'abc\n'
    assert hashes.get_hashes(part)['abc'] != first['abc']


def test_a_rehash_waits_for_a_change_under_way(tmp_path):
    """The mark and the change it announces are one step for get_hashes:
    a rehash that starts in between waits, then sees the change."""
    part = str(tmp_path / '5')
    hsh = 'f' * 29 + 'abc'
    make(part, 'abc', hsh, '1700000000.00000.data')
    first = hashes.get_hashes(part)
    marked, rehashed = threading.Event(), threading.Event()
    result = {}

    def rehash():
        marked.wait(5)
        result['hashes'] = hashes.get_hashes(part)
        rehashed.set()

    thread = threading.Thread(target=rehash)
    thread.start()
    with hashes.changing(part, 'abc'):
        marked.set()
        assert not rehashed.wait(0.2)   # held off by the partition lock
        make(part, 'abc', hsh, '1700000001.00000.data')
    thread.join(5)
    assert rehashed.is_set()
    # the rehash saw the new file (the older one was cleaned up) ...
    assert result['hashes']['abc'] != first['abc']
    assert os.listdir(os.path.join(part, 'abc', hsh)) == [
        '1700000001.00000.data']
    # ... and the cache it saved is what a fresh scan gives
    os.unlink(os.path.join(part, hashes.HASHES_FILE))
    assert hashes.get_hashes(part) == result['hashes']
