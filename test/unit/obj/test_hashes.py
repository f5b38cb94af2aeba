"""Suffix hashes of a partition, on a real directory tree."""
import os

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
