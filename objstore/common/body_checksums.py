"""An object body hashed once, by the proxy, and checked on each hop.

Why: MD5 (the ETag) runs at about 700 MB/s per core here, and every
replica's object server hashed the whole body again: three MD5s of each
upload, the largest part of a large PUT's CPU. For a streamed upload the
proxy now computes the body's MD5 and CRC-32C as the client sends it,
and sends both to every object server in the trailer of a chunked
request. An object server then computes only the CRC-32C (a tenth of the
CPU, common/crc.py), which it keeps with the object anyway, and
stores the object only if it matches the proxy's, so a body damaged
between the two is still refused; the ETag it stores is the proxy's MD5.
The client's own ETag, when given, is checked by the proxy before the
end of the body goes out, so no replica commits a body that fails it.

Request headers (proxy to object server):
  X-Backend-Checksums-In-Trailer: true   the trailer carries them
  X-Backend-Obj-Content-Length: N        the body's length, when known
                                          (the request itself is chunked)
Trailer fields: X-Object-Etag (32 hex digits), X-Object-Crc32c (8).

An object server that does not know the header hashes the body itself
and ignores the trailer, so either side can be upgraded first.
"""
import hashlib
import re

from objstore.common.crc import crc32c
from objstore.common.http import unquote_etag

HEADER = 'X-Backend-Checksums-In-Trailer'
LENGTH_HEADER = 'X-Backend-Obj-Content-Length'
ETAG_FIELD = 'X-Object-Etag'
CRC_FIELD = 'X-Object-Crc32c'
_MD5_HEX = re.compile(r'[0-9a-f]{32}')
_CRC_HEX = re.compile(r'[0-9a-f]{8}')


class BodyChecksums:
    """The MD5 and CRC-32C of a body, fed chunk by chunk."""

    def __init__(self):
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._crc = 0

    def update(self, chunk):
        self._md5.update(chunk)
        self._crc = crc32c(chunk, self._crc)

    @property
    def etag(self):
        return self._md5.hexdigest()

    @property
    def crc32c(self):
        return '%08x' % self._crc

    def trailer(self):
        """The trailer fields, as they go after the last chunk."""
        return ('%s: %s\r\n%s: %s\r\n' % (ETAG_FIELD, self.etag, CRC_FIELD,
                                          self.crc32c)).encode('ascii')


def normalize_etag(value):
    """A client's ETag header as an MD5 hex digest compares: unquoted,
    lower case."""
    return unquote_etag(value).lower()


def from_trailers(trailers):
    """(etag, crc32c) from a request's trailers (names lower-cased, as
    http_server gives them); ValueError saying what is missing or bad."""
    if trailers is None:
        raise ValueError('the body ended without a trailer')
    etag = trailers.get(ETAG_FIELD.lower(), '').strip().lower()
    crc = trailers.get(CRC_FIELD.lower(), '').strip().lower()
    if not _MD5_HEX.fullmatch(etag):
        raise ValueError('trailer lacks a valid %s' % ETAG_FIELD)
    if not _CRC_HEX.fullmatch(crc):
        raise ValueError('trailer lacks a valid %s' % CRC_FIELD)
    return etag, crc
