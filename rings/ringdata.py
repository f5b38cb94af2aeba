"""The ring file format: what a server needs to map partitions to devices.

A ring file is gzip'd and holds, in order:

* 8 bytes of magic, ``b'OBJRING1'``;
* a 4-byte big-endian length, then that many bytes of a msgpack map
  (the header): ``version``, ``part_power``, ``replicas``, ``devs`` (a list
  indexed by device id, ``None`` for a removed id), ``id_bytes`` (2 or 4)
  and ``byteorder`` (always ``'little'``);
* ``replicas`` rows of ``2 ** part_power`` unsigned device ids each, raw
  little-endian (``array`` typecode ``H`` for 2 bytes, ``I`` for 4).

No pickle: a ring file can be read by any language, and reading one cannot
run code. Rows are raw typed bytes so loading a 2**20-partition ring is a
few memcpys, not a million msgpack objects.
"""
import array
import gzip
import struct
import sys
import zlib

import msgpack

from rings.atomic import write_atomically

MAGIC = b'OBJRING1'
FORMAT_VERSION = 1
MAX_PART_POWER = 32
# The device fields servers use; the builder's own bookkeeping stays out.
DEV_FIELDS = ('id', 'region', 'zone', 'ip', 'port', 'replication_ip',
              'replication_port', 'device', 'weight', 'meta')


class RingFileError(Exception):
    """A ring file is missing, truncated or not a ring file."""


def _typecode(id_bytes):
    return {2: 'H', 4: 'I'}[id_bytes]


def _rows_to_native(rows):
    if sys.byteorder != 'little':
        for row in rows:
            row.byteswap()
    return rows


class RingData:
    """The content of a ring file: devices plus replica->part->device rows."""

    def __init__(self, replica2part2dev, devs, part_power, version=0):
        self.replica2part2dev = replica2part2dev
        self.devs = devs
        self.part_power = part_power
        self.version = version

    @property
    def replicas(self):
        return len(self.replica2part2dev)

    @property
    def parts(self):
        return 1 << self.part_power

    def header(self):
        id_bytes = 2 if len(self.devs) <= 0xFFFF else 4
        devs = [None if d is None else {k: d.get(k) for k in DEV_FIELDS}
                for d in self.devs]
        return {'format': FORMAT_VERSION, 'version': self.version,
                'part_power': self.part_power, 'replicas': self.replicas,
                'devs': devs, 'id_bytes': id_bytes, 'byteorder': 'little'}

    def serialize(self, fileobj):
        """Write the ring to an open binary file object (uncompressed)."""
        header = self.header()
        code = _typecode(header['id_bytes'])
        raw = msgpack.packb(header, use_bin_type=True)
        fileobj.write(MAGIC)
        fileobj.write(struct.pack('>I', len(raw)))
        fileobj.write(raw)
        for row in self.replica2part2dev:
            if len(row) != self.parts:
                raise ValueError('row has %d parts, want %d'
                                 % (len(row), self.parts))
            out = array.array(code, row)
            if sys.byteorder != 'little':
                out.byteswap()
            fileobj.write(out.tobytes())

    def save(self, path):
        """Write atomically: a server polling the file never sees half."""
        def write(raw):
            # mtime=0: the same ring always produces the same bytes.
            with gzip.GzipFile(fileobj=raw, mode='wb', mtime=0,
                               compresslevel=6) as gz:
                self.serialize(gz)
        write_atomically(path, write)

    @classmethod
    def load(cls, path):
        """Read a ring file; raise RingFileError on anything malformed."""
        try:
            with gzip.open(path, 'rb') as gz:
                return cls._deserialize(gz, path)
        except OSError as e:  # includes gzip.BadGzipFile
            raise RingFileError('%s: %s' % (path, e.strerror or e))
        except zlib.error as e:
            raise RingFileError('%s: corrupt ring file (%s)' % (path, e))
        except EOFError:
            raise RingFileError('%s: truncated ring file' % path)

    @classmethod
    def _deserialize(cls, gz, path):
        if gz.read(len(MAGIC)) != MAGIC:
            raise RingFileError('%s: not an objstore ring file' % path)
        (hlen,) = struct.unpack('>I', _read_exact(gz, 4, path))
        try:
            header = msgpack.unpackb(_read_exact(gz, hlen, path), raw=False)
            part_power = int(header['part_power'])
            replicas = int(header['replicas'])
            code = _typecode(header['id_bytes'])
            devs = header['devs']
        except (KeyError, TypeError, ValueError,
                msgpack.UnpackException) as e:
            raise RingFileError('%s: bad ring header (%s)' % (path, e))
        if header.get('format') != FORMAT_VERSION:
            raise RingFileError('%s: unsupported ring format %r'
                                % (path, header.get('format')))
        if not 0 <= part_power <= MAX_PART_POWER or replicas < 1:
            raise RingFileError('%s: bad part_power/replicas' % path)
        nbytes = (1 << part_power) * array.array(code).itemsize
        rows = []
        for _ in range(replicas):
            row = array.array(code)
            row.frombytes(_read_exact(gz, nbytes, path))
            rows.append(row)
        _rows_to_native(rows)
        known = {i for i, d in enumerate(devs) if d is not None}
        for row in rows:
            if not known.issuperset(set(row)):
                raise RingFileError('%s: row names an unknown device' % path)
        return cls(rows, devs, part_power, int(header.get('version', 0)))


def _read_exact(f, n, path):
    data = f.read(n)
    if len(data) != n:
        raise RingFileError('%s: truncated ring file' % path)
    return data
