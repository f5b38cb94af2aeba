"""Which files of a hash dir count: pure resolve() and real cleanup_dir()."""
import os

from objstore.obj import fileset

NOW = 1700000000.0


def name(offset, ext):
    return fileset.file_name(NOW + offset, ext)


def test_parse_name():
    ts, ext = fileset.parse_name('1700000000.12345.data')
    assert ts.internal == '1700000000.12345' and ext == '.data'
    assert fileset.parse_name('1700000000.12345_000000000000000a.ts')[1] \
        == '.ts'
    for bad in ('junk', 'x.data', '1700000000.12345.tmp', '.lock'):
        assert fileset.parse_name(bad) is None


def test_newest_data_wins_and_older_files_are_obsolete():
    names = [name(1, '.data'), name(2, '.data'), name(0, '.ts'),
             name(1.5, '.meta'), 'hashes.invalid']
    fs = fileset.resolve(names, now=NOW)
    assert fs.data == name(2, '.data') and fs.meta is None
    assert fs.tombstone is None
    assert sorted(fs.obsolete) == sorted(names[:1] + names[2:4])


def test_newer_meta_applies_to_data():
    names = [name(1, '.data'), name(3, '.meta'), name(2, '.meta')]
    fs = fileset.resolve(names, now=NOW)
    assert fs.data == name(1, '.data') and fs.meta == name(3, '.meta')
    assert fs.obsolete == [name(2, '.meta')]


def test_tombstone_hides_older_data_and_meta():
    names = [name(1, '.data'), name(2, '.ts'), name(3, '.meta')]
    fs = fileset.resolve(names, now=NOW)
    assert fs.tombstone == name(2, '.ts') and fs.data is None
    assert fs.meta is None
    assert sorted(fs.obsolete) == sorted([name(1, '.data'),
                                          name(3, '.meta')])


def test_newer_data_replaces_a_tombstone():
    fs = fileset.resolve([name(1, '.ts'), name(2, '.data')], now=NOW)
    assert fs.data == name(2, '.data') and fs.obsolete == [name(1, '.ts')]


def test_equal_timestamps_prefer_the_tombstone():
    fs = fileset.resolve([name(1, '.data'), name(1, '.ts')], now=NOW)
    assert fs.tombstone == name(1, '.ts')


def test_old_tombstones_are_reclaimed():
    fs = fileset.resolve([name(-100, '.ts')], now=NOW, reclaim_age=50)
    assert fs.tombstone is None and fs.obsolete == [name(-100, '.ts')]
    fs = fileset.resolve([name(-10, '.ts')], now=NOW, reclaim_age=50)
    assert fs.tombstone == name(-10, '.ts')


def test_cleanup_dir_removes_obsolete_files_and_empty_dirs(tmp_path):
    hash_dir = tmp_path / 'abc'
    hash_dir.mkdir()
    for n in (name(1, '.data'), name(2, '.data'), name(0, '.meta')):
        (hash_dir / n).write_bytes(b'')
    fs = fileset.cleanup_dir(str(hash_dir), now=NOW)
    assert os.listdir(hash_dir) == [name(2, '.data')]
    assert fs.data == name(2, '.data')
    (hash_dir / name(-100, '.ts')).write_bytes(b'')
    os.unlink(hash_dir / name(2, '.data'))
    fileset.cleanup_dir(str(hash_dir), reclaim_age=50, now=NOW)
    assert not hash_dir.exists()
    assert fileset.cleanup_dir(str(hash_dir)).data is None
