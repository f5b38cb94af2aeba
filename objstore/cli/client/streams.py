"""Reading files in bounded pieces: never a whole file or segment in memory.

RangeReader is the request body of an upload: a file-like view of bytes
[offset, offset + length) of a file that hashes what it hands out and
reports progress. range_md5 hashes the same range without sending it
(to compare with an ETag before deciding to upload).
"""
import hashlib
import os

from objstore.cli.client.verify import unquote_etag

# large reads: per-chunk Python work (hashing, progress) is the cost
CHUNK = 1 << 20


def range_md5(path, offset=0, length=None, chunk=CHUNK):
    """Hex MD5 of ``length`` bytes of ``path`` from ``offset`` (to the
    end when length is None)."""
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        f.seek(offset)
        left = length
        while left is None or left > 0:
            data = f.read(chunk if left is None else min(chunk, left))
            if not data:
                break
            digest.update(data)
            if left is not None:
                left -= len(data)
    return digest.hexdigest()


def file_matches_pieces(path, pieces):
    """Whether the file at ``path`` is exactly the consecutive ``pieces``
    [(length, md5 or None)] (a manifest as verify.manifest_pieces reads
    it): every piece hashes to its MD5; a piece without one cannot
    match."""
    if sum(length for length, _ in pieces) != os.path.getsize(path):
        return False
    offset = 0
    for length, digest in pieces:
        if digest is None or range_md5(path, offset, length) != \
                unquote_etag(digest):
            return False
        offset += length
    return True


class RangeReader:
    """A file-like body for ``requests``: it knows its length (so the
    request carries Content-Length) and reads at most ``chunk`` bytes at
    a time."""

    def __init__(self, path, offset=0, length=None, on_bytes=None,
                 chunk=CHUNK):
        self.file = open(path, 'rb')
        if length is None:
            self.file.seek(0, 2)
            length = self.file.tell() - offset
        self.file.seek(offset)
        self.length, self.left = length, length
        self.on_bytes, self.chunk = on_bytes, chunk
        self.md5 = hashlib.md5()

    def __len__(self):
        return self.length

    def read(self, size=-1):
        if self.left <= 0:
            return b''
        size = self.chunk if size is None or size < 0 else min(size,
                                                                self.chunk)
        data = self.file.read(min(size, self.left))
        if not data:
            raise IOError('%s is shorter than expected (changed while '
                          'uploading?)' % self.file.name)
        self.left -= len(data)
        self.md5.update(data)
        if self.on_bytes:
            self.on_bytes(len(data))
        return data

    def __iter__(self):
        while True:
            data = self.read(self.chunk)
            if not data:
                return
            yield data

    def hexdigest(self):
        return self.md5.hexdigest()

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
