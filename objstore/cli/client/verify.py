"""Checking downloaded bytes against what the cluster says they are.

A plain object's ETag is the MD5 of its bytes. A static large object's
ETag is the MD5 of its segments' ETags, which the bytes alone cannot
prove; so the download fetches the manifest (``?multipart-manifest=get``)
and SegmentChecker hashes the stream segment by segment, comparing each
piece with its manifest entry. Entries that cannot be checked this way
(a ``range`` of a segment, or a nested SLO, whose recorded hash is not
the MD5 of the bytes served) are counted and reported as unverified.
A dynamic large object (X-Object-Manifest) carries no checksum of its
bytes at all: it is downloaded unverified, with a note saying so.
"""
import hashlib


def unquote_etag(value):
    return (value or '').strip().strip('"')


def manifest_pieces(manifest):
    """[(length, md5 or None)] from a manifest as
    ``?multipart-manifest=get`` returns it (Swift's stored form: name,
    hash, bytes, optional range and sub_slo; the PUT form path, etag,
    size_bytes is accepted too)."""
    pieces = []
    for entry in manifest:
        length = entry.get('bytes', entry.get('size_bytes'))
        digest = entry.get('hash', entry.get('etag'))
        rng = entry.get('range')
        if rng:
            first, _, last = str(rng).partition('-')
            if first.isdigit() and last.isdigit():
                length = int(last) - int(first) + 1
            else:
                length = None
            digest = None
        if entry.get('sub_slo'):
            digest = None
        if length is None:
            raise ValueError('manifest entry without a size: %r' % entry)
        pieces.append((int(length), digest))
    return pieces


class SegmentChecker:
    """Fed the object's bytes in order; each complete piece is hashed and
    compared with its expected MD5."""

    def __init__(self, pieces):
        self.pieces = list(pieces)
        self.index = 0
        self.left = self.pieces[0][0] if self.pieces else 0
        self.md5 = hashlib.md5()
        self.mismatches = []   # indexes of segments whose MD5 differ
        self.unverified = 0
        self.extra = 0
        self._skip_empty()

    def _skip_empty(self):
        while self.index < len(self.pieces) and self.left == 0:
            self._close_piece()

    def _close_piece(self):
        expected = self.pieces[self.index][1]
        if expected is None:
            self.unverified += 1
        elif self.md5.hexdigest() != unquote_etag(expected):
            self.mismatches.append(self.index)
        self.index += 1
        self.md5 = hashlib.md5()
        self.left = (self.pieces[self.index][0]
                     if self.index < len(self.pieces) else 0)

    def feed(self, data):
        view = memoryview(data)
        while view:
            if self.index >= len(self.pieces):
                self.extra += len(view)
                return
            take = view[:self.left]
            self.md5.update(take)
            self.left -= len(take)
            view = view[len(take):]
            if self.left == 0:
                self._close_piece()
                self._skip_empty()

    def problem(self):
        """None when every checkable segment matched, else why not."""
        if self.extra:
            return '%d bytes more than the manifest lists' % self.extra
        if self.index < len(self.pieces):
            return 'the object ended in segment %d of %d' % (
                self.index + 1, len(self.pieces))
        if self.mismatches:
            return 'MD5 of segment %s does not match the manifest' % (
                ', '.join(str(i + 1) for i in self.mismatches))
        return None


class WholeChecker:
    """MD5 of the whole stream against a plain object's ETag."""

    def __init__(self, etag):
        self.etag = unquote_etag(etag)
        self.md5 = hashlib.md5()
        self.unverified = 0

    def feed(self, data):
        self.md5.update(data)

    def problem(self):
        got = self.md5.hexdigest()
        if got != self.etag:
            return 'MD5 %s does not match the ETag %s' % (got, self.etag)
        return None


class NoChecker:
    """For dynamic large objects: nothing to check against."""
    unverified = 1

    def feed(self, data):
        pass

    def problem(self):
        return None
