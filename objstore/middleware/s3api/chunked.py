"""aws-chunked request bodies, decoded as they are read.

With ``x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` the body
is a series of frames::

    <hex size>;chunk-signature=<64 hex>\\r\\n<size bytes>\\r\\n
    ...
    0;chunk-signature=<64 hex>\\r\\n\\r\\n

Each chunk's signature signs its data and the previous signature (the
first one chains from the request's own, the "seed"), so a chunk cannot
be altered, dropped or reordered. ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``
(what AWS SDKs send over TLS) has bare ``<hex size>\\r\\n`` frames and
ends with trailer lines such as ``x-amz-checksum-crc32:<base64>``.

``ChunkedInput`` is a file-like ``wsgi.input`` that hands out only
verified data. It never holds more than one chunk (capped at
``max_chunk`` bytes); the decoded length must be the announced
``x-amz-decoded-content-length``. The final frame is read and checked
before the last data byte is handed out, so a reader that stops at the
announced length still sees a bad ending. Errors are S3Errors, also
kept in ``.error`` for a caller that only sees the reader fail.
"""
import base64
import hashlib
import hmac
import re
import zlib

from objstore.common.crc import crc32c
from objstore.middleware.s3api.errors import S3Error
from objstore.middleware.s3api.sigv4 import EMPTY_SHA256

CHUNK_ALGORITHM = 'AWS4-HMAC-SHA256-PAYLOAD'
MAX_CHUNK = 16 * 1024 * 1024   # SDKs send 64 KiB - 1 MiB chunks
MAX_LINE = 1024                # a frame head or a trailer line
MAX_TRAILERS = 16
READ_SIZE = 65536
_SIGNED_HEAD = re.compile(
    rb'^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})$')
_UNSIGNED_HEAD = re.compile(rb'^([0-9a-fA-F]{1,16})$')


def chunk_string_to_sign(amz_date, credential_scope, previous, data):
    """What a chunk's signature signs (AWS's chunk string to sign)."""
    return '\n'.join([CHUNK_ALGORITHM, amz_date, credential_scope, previous,
                      EMPTY_SHA256, hashlib.sha256(data).hexdigest()])


class ChunkSigner:
    """Signs chunk after chunk, each signature chained to the last."""

    def __init__(self, key, amz_date, credential_scope, seed_signature):
        self.key, self.amz_date = key, amz_date
        self.scope, self.previous = credential_scope, seed_signature

    def expected(self, data):
        sts = chunk_string_to_sign(self.amz_date, self.scope, self.previous,
                                   data)
        return hmac.new(self.key, sts.encode('utf-8'),
                        hashlib.sha256).hexdigest()

    def accept(self, data, signature):
        """Move the chain on, or SignatureDoesNotMatch."""
        want = self.expected(data)
        if not hmac.compare_digest(want.encode('ascii'), signature):
            raise S3Error('SignatureDoesNotMatch',
                          'The chunk signature we calculated does not '
                          'match the signature you provided.')
        self.previous = want


def encode(data, signer=None, chunk_size=65536):
    """The aws-chunked body of ``data`` (signed when a signer is given):
    what an SDK sends; used by tests and by tools of ours."""
    out = []
    pieces = [data[i:i + chunk_size]
              for i in range(0, len(data), chunk_size)] + [b'']
    for piece in pieces:
        if signer is None:
            out.append(b'%x\r\n' % len(piece))
        else:
            signature = signer.expected(piece)
            signer.previous = signature
            out.append(b'%x;chunk-signature=%s\r\n'
                       % (len(piece), signature.encode('ascii')))
        if piece or signer is not None:
            out.append(piece + b'\r\n')
    return b''.join(out)


_CRCS = {'x-amz-checksum-crc32': zlib.crc32,
         'x-amz-checksum-crc32c': crc32c}


class _TrailerChecksum:
    """The checksum an ``x-amz-trailer`` announces, computed as data
    passes. CRC64NVME needs a library we do not have: its trailer is
    accepted unchecked."""

    def __init__(self, name):
        self.name = name
        self.crc = 0
        self.crc_func = _CRCS.get(name)
        self.hasher = {'x-amz-checksum-sha256': hashlib.sha256,
                       'x-amz-checksum-sha1': hashlib.sha1}.get(name)
        self.hasher = self.hasher() if self.hasher else None

    def update(self, data):
        if self.crc_func is not None:
            self.crc = self.crc_func(data, self.crc)
        elif self.hasher is not None:
            self.hasher.update(data)

    def value(self):
        if self.crc_func is not None:
            digest = self.crc.to_bytes(4, 'big')
        elif self.hasher is not None:
            digest = self.hasher.digest()
        else:
            return None
        return base64.b64encode(digest).decode('ascii')


class ChunkedInput:
    """A decoding, verifying ``wsgi.input`` over an aws-chunked body.

    ``raw`` is the client's stream and ``raw_length`` its Content-Length
    (None: read to EOF); ``signer`` a ChunkSigner, or None for unsigned
    frames; ``trailer`` the announced trailer header name, if any.
    """

    def __init__(self, raw, raw_length, decoded_length, signer=None,
                 trailer=None, max_chunk=MAX_CHUNK):
        self.raw, self.raw_left = raw, raw_length
        self.decoded_length = decoded_length
        self.signer, self.max_chunk = signer, max_chunk
        self.checksum = _TrailerChecksum(trailer.lower()) if trailer else None
        self.buf = bytearray()  # raw bytes read but not yet parsed
        self.chunk = b''        # the verified chunk being handed out
        self.pos = 0            # how much of it has been handed out
        self.decoded = 0        # data bytes verified so far
        self.finished = False   # final frame (and trailers) verified
        self.error = None

    # -- file-like ---------------------------------------------------------

    def read(self, size=-1):
        if self.error is not None:
            raise self.error
        try:
            if size is None or size < 0:
                parts = []
                while self._fill_chunk():
                    parts.append(self._hand_out(len(self.chunk)))
                return b''.join(parts)
            if not self._fill_chunk():
                return b''
            return self._hand_out(size)
        except S3Error as e:
            self.error = e
            raise

    def readline(self, size=-1):
        if self.error is not None:
            raise self.error
        parts, got = [], 0
        try:
            while self._fill_chunk():
                end = self.chunk.find(b'\n', self.pos) + 1 or \
                    len(self.chunk)
                want = end - self.pos
                if size is not None and 0 <= size - got < want:
                    want = size - got
                piece = self._hand_out(want)
                parts.append(piece)
                got += len(piece)
                if piece.endswith(b'\n') or \
                        (size is not None and 0 <= size <= got):
                    break
            return b''.join(parts)
        except S3Error as e:
            self.error = e
            raise

    def _hand_out(self, size):
        out = self.chunk[self.pos:self.pos + size]
        self.pos += len(out)
        if self.pos >= len(self.chunk):
            self.chunk, self.pos = b'', 0
        return out

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    # -- frames ------------------------------------------------------------

    def _fill_chunk(self):
        """Make sure verified data is waiting; False at the end."""
        while not self.chunk and not self.finished:
            self._next_frame()
        return bool(self.chunk)

    def _next_frame(self):
        head = self._line()
        match = (_SIGNED_HEAD if self.signer else _UNSIGNED_HEAD).match(head)
        if not match:
            raise self._bad('malformed chunk header %r' % head[:80])
        size = int(match.group(1), 16)
        if size > self.max_chunk:
            raise self._bad('chunk of %d bytes is over the %d byte limit'
                            % (size, self.max_chunk))
        if size:
            data = self._take(size)
            if self._take(2) != b'\r\n':
                raise self._bad('chunk data not followed by CRLF')
        else:
            data = b''
        if self.signer is not None:
            self.signer.accept(data, match.group(2))
        if not size:
            self._finish()
            return
        self.decoded += size
        if self.decoded > self.decoded_length:
            raise self._bad('more data than x-amz-decoded-content-length '
                            '(%d bytes)' % self.decoded_length)
        if self.checksum is not None:
            self.checksum.update(data)
        self.chunk, self.pos = data, 0
        if self.decoded == self.decoded_length:
            # all the data is here: the final frame must follow; check it
            # now, before the last bytes are handed out
            head = self._line()
            match = (_SIGNED_HEAD if self.signer else
                     _UNSIGNED_HEAD).match(head)
            if not match or int(match.group(1), 16) != 0:
                raise self._bad('more data than x-amz-decoded-content-'
                                'length (%d bytes)' % self.decoded_length)
            if self.signer is not None:
                self.signer.accept(b'', match.group(2))
            self._finish()

    def _finish(self):
        """After the zero-size frame: trailers (if announced), the blank
        line, and nothing more."""
        trailers = {}
        while True:
            line = self._line()
            if not line:
                break
            name, colon, value = line.partition(b':')
            if not colon or len(trailers) >= MAX_TRAILERS:
                raise self._bad('malformed trailer %r' % line[:80])
            trailers[name.strip().lower().decode('latin-1')] = \
                value.strip().decode('latin-1')
        if self.decoded != self.decoded_length:
            raise self._bad('got %d bytes, x-amz-decoded-content-length '
                            'says %d' % (self.decoded, self.decoded_length))
        if self.buf or (self.raw_left or 0) > 0:
            raise self._bad('data after the final chunk')
        if self.checksum is not None:
            sent = trailers.get(self.checksum.name)
            if sent is None:
                raise self._bad('missing trailer %s' % self.checksum.name)
            computed = self.checksum.value()
            if computed is not None and computed != sent:
                raise S3Error('BadDigest', 'The %s you specified did not '
                              'match the calculated checksum.'
                              % self.checksum.name[len('x-amz-checksum-'):]
                              .upper())
        self.finished = True

    # -- raw bytes ---------------------------------------------------------

    def _bad(self, why):
        return S3Error('IncompleteBody', 'Malformed aws-chunked body: %s.'
                       % why)

    def _more(self):
        """Read the next block of raw bytes into buf; False at EOF."""
        want = READ_SIZE if self.raw_left is None else \
            min(READ_SIZE, self.raw_left)
        if want <= 0:
            return False
        block = self.raw.read(want)
        if not block:
            return False
        if self.raw_left is not None:
            self.raw_left -= len(block)
        self.buf += block
        return True

    def _line(self):
        """The next CRLF-terminated line, without its CRLF."""
        while True:
            end = self.buf.find(b'\r\n')
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return line
            if len(self.buf) > MAX_LINE:
                raise self._bad('line longer than %d bytes' % MAX_LINE)
            if not self._more():
                raise self._bad('the body ended in the middle of a frame')

    def _take(self, size):
        while len(self.buf) < size:
            if not self._more():
                raise self._bad('the body ended in the middle of a chunk')
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out
