"""The object sync protocol between replicators and object servers, sans I/O.

Replication needs no rsync daemon: a replicator talks to the object server
of another node with one signed verb, ``SYNC /<device>/<partition>``, in
two steps (``?op=check`` then ``?op=push``, both with ``part_power=N``):

* **check** — the sender lists, for each object hash it holds, the file
  names that count (``<timestamp>.data|.ts|.meta``) as a msgpack map
  ``{hash: [name, ...]}``; the receiver answers ``{hash: [wanted name,
  ...]}`` for the files it lacks. :func:`wanted_files` makes that decision.
* **push** — one chunked request body of frames: a 4-byte big-endian
  length, a msgpack header ``{hash, file, metadata, size}``, then ``size``
  raw bytes of content (0 for ``.ts``/``.meta``); a zero length ends the
  stream (so a cut connection is never mistaken for a complete push). The
  receiver answers a msgpack summary ``{results: [[hash, file, status,
  reason]], files, bytes}``; status is ``ok`` (committed, durable),
  ``newer`` (it already had something at or after it) or ``refused``
  (content did not match its metadata: a corrupted replica is never
  spread).

This module only builds and parses those messages and makes the decisions
(pure functions, no sockets, no disk), in the manner of h11; the object
server side is sync_receiver.py, the replicator side sync_sender.py.
"""
import re
import struct
import time
from collections import namedtuple

import msgpack

from objstore.common.constraints import MAX_FILE_SIZE
from objstore.common.timestamp import Timestamp
from objstore.obj import fileset

CHUNK_SIZE = 65536
# a header is one object's metadata: user metadata is capped at 4 KiB by
# the API, system metadata adds little; anything far bigger is garbage
MAX_HEADER = 256 * 1024
# one push request carries at most this many files, and no more bytes than
# this unless it is a single file (so a 5 GiB object still fits)
MAX_PUSH_FILES = 1000
MAX_PUSH_BYTES = 64 * 1024 * 1024
# one check request names at most this many hashes
MAX_CHECK_HASHES = 10000
MAX_CHECK_BODY = 16 * 1024 * 1024
MAX_NAMES_PER_HASH = 8
END_FRAME = b'\x00\x00\x00\x00'
_LENGTH = struct.Struct('>I')
_HASH_RE = re.compile(r'^[0-9a-f]{32}$')
_ETAG_RE = re.compile(r'^[0-9a-f]{32}$')


class ProtocolError(ValueError):
    """A message breaks the protocol; the reason is safe to show (400)."""


FileHeader = namedtuple('FileHeader',
                        'hash file timestamp ext metadata size')
FileHeader.__doc__ = """A checked push frame header: ``timestamp`` a
Timestamp, ``ext`` one of fileset.EXTENSIONS."""

# decoder events
Header = namedtuple('Header', 'fields')
Body = namedtuple('Body', 'data')
BodyEnd = namedtuple('BodyEnd', '')
End = namedtuple('End', '')
NEED_DATA = object()


def is_hash(value):
    return isinstance(value, str) and bool(_HASH_RE.match(value))


def partition_of(hsh, part_power):
    """The partition an object hash (hex) falls in: its top bits."""
    return int(hsh[:8], 16) >> (32 - part_power)


def parse_part_power(value):
    """The ``part_power`` query value as an int 0-32, or ProtocolError."""
    if value is None or not str(value).isdigit() or int(value) > 32:
        raise ProtocolError('part_power must be an integer 0-32')
    return int(value)


def split_name(name):
    """'/a/c/o' -> (a, c, o), or ProtocolError."""
    if not isinstance(name, str) or not name.startswith('/'):
        raise ProtocolError('object name must start with "/"')
    parts = name.split('/', 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise ProtocolError('object name %r is not /account/container/'
                            'object' % name[:200])
    return parts[1], parts[2], parts[3]


def check_file_name(name):
    """(Timestamp, ext) of a canonical object file name, or ProtocolError.

    Canonical means exactly what fileset.file_name writes, so no path
    tricks or duplicate spellings of one timestamp get through.
    """
    info = fileset.parse_name(name) if isinstance(name, str) else None
    if info is None or fileset.file_name(*info) != name:
        raise ProtocolError('bad file name %r' % (str(name)[:200],))
    return info


# -- check --------------------------------------------------------------------

def encode_offers(offers):
    """{hash: [names]} -> request body."""
    return msgpack.packb(offers, use_bin_type=True)


def decode_offers(body, partition=None, part_power=None):
    """Parse and check a check request body; ProtocolError when bad.

    With ``part_power`` every hash must fall in ``partition``.
    """
    try:
        offers = msgpack.unpackb(body, raw=False)
    except Exception:
        raise ProtocolError('check body is not msgpack')
    if not isinstance(offers, dict):
        raise ProtocolError('check body must be a map')
    if len(offers) > MAX_CHECK_HASHES:
        raise ProtocolError('more than %d hashes in one check'
                            % MAX_CHECK_HASHES)
    for hsh, names in offers.items():
        if not is_hash(hsh):
            raise ProtocolError('bad hash %r' % (str(hsh)[:64],))
        if part_power is not None and \
                partition_of(hsh, part_power) != partition:
            raise ProtocolError('hash %s is not in partition %s'
                                % (hsh, partition))
        if not isinstance(names, list) or len(names) > MAX_NAMES_PER_HASH:
            raise ProtocolError('names of %s must be a short list' % hsh)
        for name in names:
            check_file_name(name)
    return offers


def encode_wanted(wanted):
    return msgpack.packb(wanted, use_bin_type=True)


def decode_wanted(body, offers):
    """The receiver's answer to a check; only names that were offered."""
    try:
        wanted = msgpack.unpackb(body, raw=False)
    except Exception:
        raise ProtocolError('check answer is not msgpack')
    if not isinstance(wanted, dict):
        raise ProtocolError('check answer must be a map')
    out = {}
    for hsh, names in wanted.items():
        offered = offers.get(hsh)
        if offered is None or not isinstance(names, list) or \
                not set(names) <= set(offered):
            raise ProtocolError('check answer names files never offered')
        if names:
            out[hsh] = list(names)
    return out


def _base_key(name):
    """Sort key of a .data/.ts: newer wins, a tombstone wins a tie."""
    ts, ext = fileset.parse_name(name)
    return ts, 1 if ext == fileset.TOMBSTONE else 0


def wanted_files(have, offered, now=None,
                 reclaim_age=fileset.DEFAULT_RECLAIM_AGE):
    """Which ``offered`` file names a receiver holding ``have`` wants.

    * the newest offered ``.data``/``.ts`` when the receiver has no
      ``.data``/``.ts`` at or after its timestamp (a tombstone past the
      reclaim age only when it still has older data to delete: stored
      alone it would be reclaimed at once);
    * the newest offered ``.meta`` when it is newer than the receiver's
      ``.meta`` and newer than the ``.data`` the receiver will hold after
      the push (metadata on top of a tombstone or of newer data counts
      for nothing).

    Everything not wanted is superseded or matched by what the receiver
    has: that is what lets a handoff delete its copy.
    """
    now = time.time() if now is None else now
    current = fileset.resolve(have, now=now, reclaim_age=reclaim_age)
    base = current.data or current.tombstone
    bases, metas = [], []
    for name in offered:
        info = fileset.parse_name(name)
        if info is None:
            continue
        (metas if info[1] == fileset.META else bases).append(name)
    want = []
    if bases:
        newest = max(bases, key=_base_key)
        ts, ext = fileset.parse_name(newest)
        reclaimable = ext == fileset.TOMBSTONE and \
            float(ts) + reclaim_age < now
        if base is None:
            newer = not reclaimable
        else:
            newer = ts > fileset.parse_name(base)[0]
        if newer:
            want.append(newest)
            base = newest
    if metas:
        newest = max(metas, key=lambda n: fileset.parse_name(n)[0])
        ts = fileset.parse_name(newest)[0]
        base_is_data = base is not None and \
            fileset.parse_name(base)[1] == fileset.DATA
        newer_meta = current.meta is None or \
            ts > fileset.parse_name(current.meta)[0]
        if base_is_data and newer_meta and \
                ts > fileset.parse_name(base)[0]:
            want.append(newest)
    return want


# -- push ---------------------------------------------------------------------

def encode_header(hsh, file_name, metadata, size):
    """One frame header: 4-byte length + msgpack map."""
    blob = msgpack.packb({'hash': hsh, 'file': file_name,
                          'metadata': metadata, 'size': size},
                         use_bin_type=True)
    if len(blob) > MAX_HEADER:
        raise ProtocolError('metadata of %s/%s too large to send'
                            % (hsh, file_name))
    return _LENGTH.pack(len(blob)) + blob


def _metadata_value_ok(value):
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def check_header(fields):
    """A decoded header map -> FileHeader, or ProtocolError.

    Checks everything that needs no disk: field types, a canonical file
    name whose timestamp is the metadata's X-Timestamp, and for ``.data``
    a size equal to Content-Length and a well-formed ETag. The caller
    checks that metadata['name'] hashes to ``hash`` (it needs the
    cluster's hash secret) and the partition.
    """
    if not isinstance(fields, dict) or \
            set(fields) != {'hash', 'file', 'metadata', 'size'}:
        raise ProtocolError('frame header must have hash, file, metadata '
                            'and size')
    hsh, name, meta, size = (fields['hash'], fields['file'],
                             fields['metadata'], fields['size'])
    if not is_hash(hsh):
        raise ProtocolError('bad hash %r' % (str(hsh)[:64],))
    timestamp, ext = check_file_name(name)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ProtocolError('bad size %r' % (size,))
    if size > MAX_FILE_SIZE:
        raise ProtocolError('file larger than %d bytes' % MAX_FILE_SIZE)
    if not isinstance(meta, dict) or not all(
            isinstance(k, str) and _metadata_value_ok(v)
            for k, v in meta.items()):
        raise ProtocolError('metadata must map strings to strings/ints')
    split_name(meta.get('name'))
    try:
        meta_ts = Timestamp(meta.get('X-Timestamp'))
    except ValueError:
        raise ProtocolError('metadata has no valid X-Timestamp')
    if meta_ts != timestamp:
        raise ProtocolError('X-Timestamp %s does not match file %s'
                            % (meta_ts.internal, name))
    if ext == fileset.DATA:
        length = meta.get('Content-Length')
        if str(length) != str(size):
            raise ProtocolError('size %d does not match Content-Length %r'
                                % (size, length))
        if not isinstance(meta.get('ETag'), str) or \
                not _ETAG_RE.match(meta['ETag']):
            raise ProtocolError('metadata has no valid ETag')
    elif size:
        raise ProtocolError('%s files carry no content' % ext)
    return FileHeader(hsh, name, timestamp, ext, meta, size)


class FrameDecoder:
    """Turns push-body bytes into events, in fixed memory.

    feed() bytes as they arrive, then call next_event() until it returns
    NEED_DATA: Header(fields) starts a file, Body(data) pieces of its
    content follow (never more than was fed), BodyEnd() closes it, End()
    ends the stream. Raises ProtocolError on bad framing; after End any
    further byte is an error. feed_eof() when the input ends: an error
    unless the stream reached End.
    """

    def __init__(self, max_header=MAX_HEADER):
        self.max_header = max_header
        self._buf = bytearray()
        self._remaining = None   # content bytes still due for this file
        self._done = False

    def feed(self, data):
        if data:
            if self._done:
                raise ProtocolError('data after the end of the stream')
            self._buf += data

    def feed_eof(self):
        if not self._done:
            raise ProtocolError('stream ended before its end marker')

    @property
    def done(self):
        return self._done

    def next_event(self):
        buf = self._buf
        if self._remaining is not None:
            if self._remaining == 0:
                self._remaining = None
                return BodyEnd()
            if not buf:
                return NEED_DATA
            take = min(len(buf), self._remaining)
            data = bytes(buf[:take])
            del buf[:take]
            self._remaining -= take
            return Body(data)
        if self._done:
            if buf:
                raise ProtocolError('data after the end of the stream')
            return NEED_DATA
        if len(buf) < _LENGTH.size:
            return NEED_DATA
        (length,) = _LENGTH.unpack_from(buf)
        if length == 0:
            del buf[:_LENGTH.size]
            self._done = True
            if buf:
                raise ProtocolError('data after the end of the stream')
            return End()
        if length > self.max_header:
            raise ProtocolError('frame header of %d bytes is too large'
                                % length)
        if len(buf) < _LENGTH.size + length:
            return NEED_DATA
        blob = bytes(buf[_LENGTH.size:_LENGTH.size + length])
        del buf[:_LENGTH.size + length]
        try:
            fields = msgpack.unpackb(blob, raw=False)
        except Exception:
            raise ProtocolError('frame header is not msgpack')
        size = fields.get('size') if isinstance(fields, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError('frame header has no valid size')
        self._remaining = size
        return Header(fields)


class PushLimits:
    """What one push request may carry (both sides apply the same rule)."""

    def __init__(self, max_files=None, max_bytes=None):
        self.max_files = MAX_PUSH_FILES if max_files is None else max_files
        self.max_bytes = MAX_PUSH_BYTES if max_bytes is None else max_bytes
        self.files = 0
        self.bytes = 0

    def fits(self, size):
        """May one more file of ``size`` bytes go in this request?"""
        if self.files >= self.max_files:
            return False
        return self.files == 0 or self.bytes + size <= self.max_bytes

    def add(self, size):
        self.files += 1
        self.bytes += size


def encode_summary(results, files, nbytes):
    return msgpack.packb({'results': results, 'files': files,
                          'bytes': nbytes}, use_bin_type=True)


def decode_summary(body):
    try:
        summary = msgpack.unpackb(body, raw=False)
    except Exception:
        raise ProtocolError('push answer is not msgpack')
    if not isinstance(summary, dict) or \
            not isinstance(summary.get('results'), list):
        raise ProtocolError('push answer must be a map with results')
    return summary
