"""Async pendings are written durably where the updater will look."""
import os

import pytest

from objstore.obj import async_pending


def test_save_load_and_iterate(tmp_path):
    dev = str(tmp_path / 'sda')
    os.mkdir(dev)
    hsh = '0123456789abcdef0123456789abc123'
    update = {'op': 'PUT', 'account': 'a', 'container': 'c', 'obj': 'o',
              'headers': {'X-Size': '3'}, 'container_host': '1.2.3.4:5',
              'container_partition': '1', 'container_device': 'sdb'}
    path = async_pending.save(dev, hsh, '1700000000.00001', update)
    assert path == os.path.join(dev, 'async_pending', '123',
                                hsh + '-1700000000.00001')
    assert async_pending.load(path) == update
    async_pending.save(dev, 'f' * 32, '1700000000.00002', update)
    assert [os.path.basename(p) for p in async_pending.iter_pending(dev)] \
        == [hsh + '-1700000000.00001', 'f' * 32 + '-1700000000.00002']
    assert os.listdir(os.path.join(dev, 'tmp')) == []


def test_nothing_pending(tmp_path):
    assert list(async_pending.iter_pending(str(tmp_path))) == []


def test_damaged_file_raises_value_error(tmp_path):
    path = tmp_path / 'p'
    path.write_bytes(b'\xc1\xc1')
    with pytest.raises(ValueError):
        async_pending.load(str(path))
