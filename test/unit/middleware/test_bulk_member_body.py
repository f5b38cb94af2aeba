"""bulk.MemberBody: a cut archive reads as a short body (OSError), the
error the proxy maps to 499 (nothing stored), never tarfile's own."""
import io
import os
import tarfile

import pytest

from objstore.middleware.bulk import MemberBody


def archive(data, mode):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        member = tarfile.TarInfo('big')
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize('mode,read_mode', [('w', 'r|'), ('w:gz', 'r|gz'),
                                            ('w:bz2', 'r|bz2')])
def test_cut_member_reads_as_oserror(mode, read_mode):
    # bz2 decompresses in blocks of 900 kB: the cut must fall after one
    data = os.urandom(2000000 if 'bz2' in mode else 200000)
    whole = archive(data, mode)
    tar = tarfile.open(fileobj=io.BytesIO(whole[:len(whole) // 2]),
                       mode=read_mode)
    body = MemberBody(tar.extractfile(next(iter(tar))))
    with pytest.raises(OSError):
        while body.read(65536):
            pass


def test_whole_member_reads_through():
    data = os.urandom(100000)
    tar = tarfile.open(fileobj=io.BytesIO(archive(data, 'w:gz')),
                       mode='r|gz')
    body = MemberBody(tar.extractfile(next(iter(tar))))
    got = b''
    while True:
        chunk = body.read(65536)
        if not chunk:
            break
        got += chunk
    assert got == data
