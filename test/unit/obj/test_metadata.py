"""Object metadata in xattrs, with the file's tail as overflow (real ext4)."""
import os

import msgpack
import pytest
import xattr

from objstore.obj import metadata as md


def new_file(tmp_path, content=b''):
    path = str(tmp_path / 'f')
    with open(path, 'wb') as f:
        f.write(content)
    return path


def test_small_metadata_goes_inline(tmp_path):
    path = new_file(tmp_path, b'hello')
    fd = os.open(path, os.O_RDWR)
    try:
        assert md.write_metadata(fd, {'name': '/a/c/o', 'n': 5}) == 0
        assert md.read_metadata(fd) == ({'name': '/a/c/o', 'n': 5}, 0)
    finally:
        os.close(fd)
    assert os.path.getsize(path) == 5


def test_metadata_ext4_cannot_hold_goes_to_the_tail(tmp_path):
    path = new_file(tmp_path, b'content!')
    big = {'X-Object-Meta-%d' % i: 'v' * 100 for i in range(60)}
    fd = os.open(path, os.O_RDWR)
    try:
        tail = md.write_metadata(fd, big, offset=8)
        assert tail > 4096
        assert md.read_metadata(fd) == (big, tail)
    finally:
        os.close(fd)
    with open(path, 'rb') as f:
        assert f.read(8) == b'content!'
    assert os.path.getsize(path) == 8 + tail
    # the xattr holds only a small pointer
    assert len(xattr.getxattr(path, md.XATTR_KEY)) < 100
    assert md.read_metadata_path(path) == (big, tail)


def test_latin1_header_values_round_trip(tmp_path):
    path = new_file(tmp_path)
    meta = {'X-Object-Meta-\xe9': 'caf\xc3\xa9 \xff'}
    fd = os.open(path, os.O_RDWR)
    try:
        md.write_metadata(fd, meta)
        assert md.read_metadata(fd)[0] == meta
    finally:
        os.close(fd)


def test_missing_metadata_is_an_error(tmp_path):
    path = new_file(tmp_path, b'x')
    with pytest.raises(md.MetadataError, match='no metadata'):
        md.read_metadata_path(path)


@pytest.mark.parametrize('raw', [
    b'\xc1garbage', msgpack.packb([9, 'i', b'x']), msgpack.packb('str'),
    msgpack.packb([1, 'i', b'\xc1']), msgpack.packb([1, 'i', msgpack.packb(
        [1, 2])]), msgpack.packb([1, 't', 'x', 1, 'y'])])
def test_damaged_xattr_is_an_error(tmp_path, raw):
    path = new_file(tmp_path, b'x')
    xattr.setxattr(path, md.XATTR_KEY, raw)
    with pytest.raises(md.MetadataError):
        md.read_metadata_path(path)


def test_damaged_or_truncated_tail_is_an_error(tmp_path):
    path = new_file(tmp_path, b'abc')
    fd = os.open(path, os.O_RDWR)
    try:
        md.write_metadata(fd, {'k%d' % i: 'v' * 200 for i in range(40)},
                          offset=3)
    finally:
        os.close(fd)
    with open(path, 'r+b') as f:
        f.seek(100)
        f.write(b'X')
    with pytest.raises(md.MetadataError, match='damaged'):
        md.read_metadata_path(path)
    os.truncate(path, 50)
    with pytest.raises(md.MetadataError):
        md.read_metadata_path(path)
