"""direct_io on real files: O_DIRECT writes and reads, their alignment."""
import fcntl
import hashlib
import os
import socket

import pytest

from objstore.obj import direct_io
from objstore.obj.direct_io import BLOCK, DirectAppender, DirectReader


def is_direct(fd):
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)


@pytest.fixture
def fd(tmp_path):
    fd = os.open(str(tmp_path / 'body'), os.O_RDWR | os.O_CREAT, 0o644)
    yield fd
    os.close(fd)


def test_set_direct_reports_a_refusal_and_changes_nothing():
    a, b = socket.socketpair()
    try:
        before = fcntl.fcntl(a.fileno(), fcntl.F_GETFL)
        assert direct_io.set_direct(a.fileno(), True) is False
        assert fcntl.fcntl(a.fileno(), fcntl.F_GETFL) == before
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize('size', [3 * BLOCK + 12345, 2 * BLOCK, 777])
def test_appender_writes_whole_buffers_direct_and_the_tail_buffered(
        fd, size):
    body = os.urandom(size)
    calls = []

    def run(func, *args):
        calls.append(is_direct(fd))
        return func(*args)
    appender = DirectAppender(fd, run)
    assert is_direct(fd)
    for i in range(0, size, 65543):
        appender.write(body[i:i + 65543])
    # one hand-off per whole buffer, each written with O_DIRECT on
    assert calls == [True] * (size // BLOCK)
    appender.finish()
    appender.close()
    assert not is_direct(fd)
    assert os.fstat(fd).st_size == size
    assert os.pread(fd, size + 1, 0) == body
    # later writes (the metadata after the body) need no alignment
    assert os.pwrite(fd, b'meta', size) == 4


@pytest.fixture
def big_file(fd):
    body = os.urandom(2 * BLOCK + 5000)
    os.pwrite(fd, body, 0)
    return fd, body


@pytest.mark.parametrize('pos, size', [
    (0, BLOCK), (1, BLOCK), (BLOCK - 3, 10), (4095, 4097),
    (2 * BLOCK, 5000), (2 * BLOCK + 4000, BLOCK), (2 * BLOCK + 5000, 10),
    (3 * BLOCK, 100), (12345, 0)])
def test_reader_gives_exact_ranges_and_their_digest(big_file, pos, size):
    fd, body = big_file
    reader = DirectReader(fd)
    assert is_direct(fd)
    digest = hashlib.md5()
    first, length = reader.fill(pos, size, digest)
    data = reader.take(first, length)
    reader.close()
    assert data == body[pos:pos + size]
    assert digest.hexdigest() == hashlib.md5(body[pos:pos + size]).hexdigest()


def test_reader_refuses_more_than_a_buffer(big_file):
    reader = DirectReader(big_file[0])
    with pytest.raises(ValueError):
        reader.fill(0, BLOCK + 1)
    reader.close()
