"""Device layout helpers and durable writes, on real directories."""
import os

import pytest

from objstore.common import ondisk


def test_write_durably_creates_dirs_and_replaces_whole(tmp_path):
    target = tmp_path / 'dev' / 'async_pending' / 'abc' / 'hash-1'
    tmp_dir = tmp_path / 'dev' / 'tmp'
    ondisk.write_durably(str(target), b'first', str(tmp_dir))
    assert target.read_bytes() == b'first'
    assert oct(target.stat().st_mode & 0o777) == '0o600'
    ondisk.write_durably(str(target), b'second, longer', str(tmp_dir))
    assert target.read_bytes() == b'second, longer'
    assert os.listdir(tmp_dir) == []


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / 'f'
    tmp_dir = tmp_path / 'tmp'
    ondisk.write_durably(str(target), b'old', str(tmp_dir))

    def no_rename(src, dst):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, 'replace', no_rename)
    with pytest.raises(OSError):
        ondisk.write_durably(str(target), b'new', str(tmp_dir))
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_dir) == []


def test_storage_dir_and_device_path(tmp_path):
    assert ondisk.storage_dir('/srv', 'sda', 'objects', 7, 'ab12f') == \
        '/srv/sda/objects/7/12f/ab12f'
    (tmp_path / 'sda').mkdir()
    assert ondisk.device_path(str(tmp_path), 'sda', False) == \
        str(tmp_path / 'sda')
    assert ondisk.device_path(str(tmp_path), 'sda', True) is None  # no mount
    for bad in ('', '..', 'a/b', 'missing'):
        assert ondisk.device_path(str(tmp_path), bad, False) is None


def test_make_dirs_names_what_it_created_and_fsync_parents_syncs_them(
        tmp_path, monkeypatch):
    (tmp_path / 'objects' / '7').mkdir(parents=True)
    target = tmp_path / 'objects' / '7' / 'abc' / 'hash'
    made = []
    created = ondisk.make_dirs(str(target), made)
    assert created == [str(tmp_path / 'objects' / '7' / 'abc'), str(target)]
    assert made == created
    assert target.is_dir()
    assert ondisk.make_dirs(str(target)) == []
    synced = []
    monkeypatch.setattr(ondisk, 'fsync_dir', synced.append)
    # a retry may name the same directories twice; each parent once,
    # innermost first
    ondisk.fsync_parents(created + created)
    assert synced == [str(tmp_path / 'objects' / '7' / 'abc'),
                      str(tmp_path / 'objects' / '7')]


def test_makedirs_durable_fsyncs_every_new_entry(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(ondisk, 'fsync_dir', synced.append)
    ondisk.makedirs_durable(str(tmp_path / 'a' / 'b'))
    assert (tmp_path / 'a' / 'b').is_dir()
    assert synced == [str(tmp_path / 'a'), str(tmp_path)]


def test_make_dirs_counts_a_dir_made_meanwhile_by_another(tmp_path,
                                                        monkeypatch):
    """Seen missing, then made by someone else before our mkdir: its
    entry may not be durable yet, so its parent is ours to fsync too."""
    target = tmp_path / 'a'
    real = os.mkdir

    def racing(path, *args):
        real(path, *args)
        raise FileExistsError(17, 'File exists', path)
    monkeypatch.setattr(os, 'mkdir', racing)
    made = []
    assert ondisk.make_dirs(str(target), made) == [str(target)]
    assert made == []       # but it is not ours: it may hold files
