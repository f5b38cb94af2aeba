"""Objects on a device: write, read, delete, POST metadata, quarantine.

Layout: ``<device>/objects/<part>/<suffix>/<hash>/<timestamp>.data|.ts|
.meta`` (fileset.py decides which files count). A write goes to a temp
file in ``<device>/tmp`` (same filesystem), is fsync'd with its metadata
attached (metadata.py), renamed into the hash dir and the dir fsync'd —
only then is it acknowledged. A half-written object is never visible: the
rename is the commit. Readers keep the file open, so a concurrent newer
write or cleanup never changes what a started GET sends.

Calls that fsync or read content (commit, tombstones, metadata writes,
reads) are meant to run through the manager's ``run``
(concurrency.run_in_thread by default), off the hub. open() and
writer() only touch metadata (a listdir, an open, a stat, an xattr
read, a temp file), microseconds from the kernel's caches: the object
server runs them inline, since a hand-off to the thread pool costs more
(two context switches and a GIL round trip, ~25% of a small PUT's CPU
here) than the work itself.
"""
import errno
import fcntl
import hashlib
import logging
import os
import time
import zlib

from objstore.common import ondisk
from objstore.common.crc import Crc32c
from objstore.common.concurrency import run_in_thread, spawn
from objstore.common.timestamp import Timestamp
from objstore.obj import direct_io, expiry, fileset, hashes
from objstore.obj import metadata as md

DATADIR = 'objects'
TMP_DIR = 'tmp'
QUARANTINE_DIR = ondisk.QUARANTINE_DIR
CHUNK_SIZE = 65536
# Bodies from this size on get their blocks reserved up front (early
# ENOSPC, one extent). A smaller one is a few blocks the fsync allocates
# anyway: preallocating it would only cost two more system calls.
PREALLOCATE_MIN = 65536
# Object bodies are read (GET, audit) one thread-pool call per chunk, and
# at 64 KiB the hand-off to the pool, not the disk, bounded a large GET:
# 1 MiB raised 64 MiB GETs through the proxy from ~240 to ~340 MB/s.
# Memory stays fixed: a verified read holds at most two chunks. Writes
# and replication keep CHUNK_SIZE.
READ_CHUNK_SIZE = 1024 * 1024
log = logging.getLogger('objstore.obj.diskfile')
# The CRC-32C of the content (common/crc.py), kept in a data file's
# metadata (8 hex digits) by every writer; never sent to clients. A
# whole-object read checks it instead of the MD5: it catches the same
# damage (bit rot, a torn or misplaced write) at a tenth of the CPU,
# and MD5 was most of a large GET's cost. The auditor still checks the
# MD5 against the ETag. Files written before CRC-32C keep a zlib CRC-32
# (LEGACY_CRC_KEY), checked as such, and older ones only the MD5.
CRC_KEY = 'crc32c'
LEGACY_CRC_KEY = 'crc32'


# Metadata a POST replaces as a whole (absent from the POST = removed).
POST_REPLACED_PREFIXES = ('x-object-meta-',)
POST_REPLACED = frozenset((
    'x-delete-at', 'content-disposition', 'content-encoding',
    'x-object-manifest', 'cache-control', 'content-language', 'expires',
    'x-robots-tag'))


class DiskFileError(Exception):
    """Base of the errors the object server turns into statuses."""


class DeviceUnavailable(DiskFileError):
    """The device is missing or not mounted (507)."""


class DiskFileNoSpace(DiskFileError):
    """Not enough free space beyond the reserve (507)."""


class DiskFileConflict(DiskFileError):
    """A write at or after this timestamp is already on disk (409)."""

    def __init__(self, timestamp):
        super().__init__('newer or equal timestamp %s on disk' % timestamp)
        self.timestamp = timestamp


class DiskFileNotExist(DiskFileError):
    """No object (404). ``timestamp``: of the tombstone/expired object."""

    def __init__(self, msg='object not found', timestamp=None):
        super().__init__(msg)
        self.timestamp = timestamp


class DiskFileDeleted(DiskFileNotExist):
    """The newest file is a tombstone."""


class DiskFileExpired(DiskFileNotExist):
    """X-Delete-At has passed."""

    def __init__(self, timestamp, metadata):
        super().__init__('object expired', timestamp)
        self.metadata = metadata


class DiskFileQuarantined(DiskFileNotExist):
    """The object was damaged and has been moved to quarantine."""


def parse_reserve(value):
    """'1024' (bytes) or '5%' -> (bytes, percent); ValueError if bad."""
    text = str(value or '0').strip()
    try:
        if text.endswith('%'):
            pct = float(text[:-1])
            if 0 <= pct <= 100:
                return 0, pct
        elif int(text) >= 0:
            return int(text), 0.0
    except ValueError:
        pass
    raise ValueError('fallocate_reserve must be bytes or 0-100%%, not %r'
                     % text)


def is_post_replaced(key):
    lkey = key.lower()
    return lkey in POST_REPLACED or lkey.startswith(POST_REPLACED_PREFIXES)


def merge_post_metadata(data_meta, post_meta):
    """The metadata a client sees: the data's, with the POST's on top."""
    merged = {k: v for k, v in data_meta.items() if not is_post_replaced(k)}
    for key, value in post_meta.items():
        if key != 'name':
            merged[key] = value
    return merged


class DiskFileManager:
    """Settings shared by every DiskFile of one server."""

    def __init__(self, devices, mount_check=True, hash_prefix=b'',
                 hash_suffix=b'', fallocate_reserve='0',
                 reclaim_age=fileset.DEFAULT_RECLAIM_AGE, run=run_in_thread):
        self.devices = devices
        self.mount_check = mount_check
        self.hash_prefix = hash_prefix
        self.hash_suffix = hash_suffix
        self.reserve = parse_reserve(fallocate_reserve)
        self.reclaim_age = reclaim_age
        self.run = run

    def device_path(self, device):
        return ondisk.device_path(self.devices, device, self.mount_check)

    def get_diskfile(self, device, partition, account, container, obj):
        path = self.device_path(device)
        if path is None:
            raise DeviceUnavailable(device)
        return DiskFile(self, path, partition, account, container, obj)

    def partition_dir(self, device_path, partition):
        return os.path.join(device_path, DATADIR, str(partition))

    def check_space(self, device_path, size):
        """Raise DiskFileNoSpace when ``size`` more bytes eat the reserve."""
        st = os.statvfs(device_path)
        free = st.f_bavail * st.f_frsize - (size or 0)
        reserve_bytes, reserve_pct = self.reserve
        if free < reserve_bytes:
            raise DiskFileNoSpace('free space below reserve')
        if reserve_pct and st.f_blocks and \
                free * 100.0 / (st.f_blocks * st.f_frsize) < reserve_pct:
            raise DiskFileNoSpace('free space below reserve')

    def get_hashes(self, device, partition, recalculate=()):
        """Suffix hashes of a partition (blocking)."""
        path = self.device_path(device)
        if path is None:
            raise DeviceUnavailable(device)
        return hashes.get_hashes(self.partition_dir(path, partition),
                                 recalculate, self.reclaim_age)

    def clean_tmp(self, before):
        """Remove temp files left by a crash, on every device.

        A file goes when it was last changed before ``before`` (this
        process's start) and no live writer holds its lock, so uploads
        in flight in another process on the same devices are spared.
        Returns how many were removed. Runs before workers fork: plain
        blocking calls, no thread pool.
        """
        removed = 0
        try:
            devices = os.listdir(self.devices)
        except OSError:
            return 0
        for device in devices:
            path = self.device_path(device)
            if path is None:
                continue
            tmp = os.path.join(path, TMP_DIR)
            for name in fileset.list_dir(tmp):
                removed += _remove_if_stale(os.path.join(tmp, name), before)
        return removed


def _remove_if_stale(path, before):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return 0
    try:
        if not os.path.isfile(path) or os.fstat(fd).st_mtime >= before:
            return 0
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # a live writer holds it
        os.unlink(path)
        return 1
    except OSError:
        return 0
    finally:
        os.close(fd)


class DiskFile:
    """One object on one device: /<account>/<container>/<object>."""

    def __init__(self, mgr, device_path, partition, account, container, obj):
        self.mgr = mgr
        self.device_path = device_path
        self.partition = partition
        self.name = '/%s/%s/%s' % (account, container, obj)
        self.hash = ondisk.name_hash(mgr.hash_prefix, mgr.hash_suffix,
                                     account, container, obj)
        self.suffix = self.hash[-3:]
        self.partition_dir = mgr.partition_dir(device_path, partition)
        self.hash_dir = os.path.join(self.partition_dir, self.suffix,
                                     self.hash)
        self.metadata = None
        self.data_timestamp = None
        self.timestamp = None
        self.content_length = None
        self.etag = None
        self.checksum = None    # (CRC class, its hex value, name) or None
        self._fd = None
        self._direct = None     # a direct_io.DirectReader for large reads
        self._ahead = None      # ((pos, size, digest), green thread)

    # -- reading -----------------------------------------------------------

    def current(self):
        """FileSet of the hash dir as it is now (no cleanup)."""
        return fileset.resolve(fileset.list_dir(self.hash_dir),
                               reclaim_age=self.mgr.reclaim_age)

    def open(self, now=None):
        """Load the newest state; raise DiskFileNotExist and kin.

        Blocking. On success the data file stays open for reader()
        until close().
        """
        now = time.time() if now is None else now
        for _ in range(3):
            current = self.current()
            if current.tombstone:
                raise DiskFileDeleted('object deleted', Timestamp(
                    fileset.parse_name(current.tombstone)[0]))
            if current.data is None:
                raise DiskFileNotExist()
            try:
                fd = os.open(os.path.join(self.hash_dir, current.data),
                             os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # replaced while we looked; look again
            break
        else:
            raise DiskFileNotExist()
        try:
            data_meta = self._check_data(fd, current.data)
            merged = data_meta
            if current.meta:
                post = self._read_meta_file(current.meta)
                if post is not None:
                    merged = merge_post_metadata(data_meta, post)
        except md.MetadataError as e:
            os.close(fd)
            self.quarantine(str(e))
            raise DiskFileQuarantined(str(e))
        except BaseException:
            os.close(fd)
            raise
        self.data_timestamp = Timestamp(data_meta['X-Timestamp'])
        self.timestamp = Timestamp(merged['X-Timestamp'])
        delete_at = merged.get('X-Delete-At')
        if delete_at is not None and _int_or_none(delete_at) is not None \
                and int(delete_at) <= now:
            os.close(fd)
            raise DiskFileExpired(self.timestamp, merged)
        self._fd = fd
        self.metadata = merged
        self.content_length = int(data_meta['Content-Length'])
        self.etag = data_meta['ETag']
        self.checksum = _content_checksum(data_meta)
        return self

    def _check_data(self, fd, name):
        meta, tail = md.read_metadata(fd)
        for key in ('name', 'X-Timestamp', 'Content-Length', 'ETag'):
            if key not in meta:
                raise md.MetadataError('metadata lacks %s' % key)
        if meta['name'] != self.name:
            raise DiskFileNotExist('hash collision: %r' % meta['name'])
        try:
            length = int(meta['Content-Length'])
            file_ts = fileset.parse_name(name)[0]
            if Timestamp(meta['X-Timestamp']) != file_ts:
                raise ValueError('timestamp differs from file name')
        except (TypeError, ValueError) as e:
            raise md.MetadataError('bad metadata: %s' % e)
        size = os.fstat(fd).st_size
        if size != length + tail:
            raise md.MetadataError('file size %d, metadata says %d'
                                   % (size - tail, length))
        return meta

    def _read_meta_file(self, name):
        try:
            meta, _ = md.read_metadata_path(os.path.join(self.hash_dir,
                                                         name))
        except FileNotFoundError:
            return None
        if 'X-Timestamp' not in meta:
            raise md.MetadataError('.meta lacks X-Timestamp')
        return meta

    def reader(self, start=0, stop=None, verify=False, etag=False):
        """Chunks of content [start, stop), READ_CHUNK_SIZE at most each.

        With ``verify`` (a whole-object read) the content is checked
        before the last chunk is given out: against its CRC-32C (or the
        CRC-32 of an older file) where the file keeps one, else its MD5
        against the ETag; with ``etag`` too, always the MD5 (the
        auditor). On a mismatch the object is quarantined and
        DiskFileQuarantined raised, so a client never receives the
        complete bad object.
        """
        if self.content_length >= direct_io.MIN_SIZE and \
                self._direct is None:
            self._direct = direct_io.DirectReader(self._fd)
        if verify:
            return self._verified_chunks(etag)
        stop = self.content_length if stop is None else stop
        return self._range_chunks(start, stop)

    def _read(self, pos, end, digest=None):
        """The next chunk of [pos, end): up to READ_CHUNK_SIZE bytes at
        ``pos``, added to ``digest`` (an MD5 or CRC) if given.

        The buffer is made here, on the hub's thread, and only filled in
        the thread pool: a 1 MiB object a pool thread allocates comes
        from that thread's own malloc arena, and with twenty threads the
        arenas kept an object server 36 MiB larger after a 2 GiB GET.
        """
        size = min(READ_CHUNK_SIZE, end - pos)
        if self._direct is not None:
            ahead = min(READ_CHUNK_SIZE, end - pos - size)
            return self._read_direct(size, pos, digest, ahead)
        buf = bytearray(size)
        got = self.mgr.run(_fill, self._fd, buf, pos, digest)
        return bytes(buf) if got == size else bytes(memoryview(buf)[:got])

    def _read_direct(self, size, pos, digest, ahead):
        """A direct read, the next one started before this one returns.

        Direct reads get no readahead from the kernel, so the read of
        the next block (``ahead`` bytes) goes to the pool at once and the
        device works while this chunk is sent. It fills the buffer only
        after this chunk has been copied out of it.
        """
        pending, self._ahead = self._ahead, None
        if pending is not None and pending[0] == (pos, size, digest):
            first, length = pending[1].wait()
        else:
            if pending is not None:
                _wait_quietly(pending[1])
            first, length = self.mgr.run(self._direct.fill, pos, size,
                                         digest)
        data = self._direct.take(first, length)
        if ahead > 0 and length == size:
            args = (pos + size, ahead, digest)
            self._ahead = (args, spawn(self.mgr.run, self._direct.fill,
                                       *args))
        return data

    def _range_chunks(self, start, stop):
        pos = start
        while pos < stop:
            chunk = self._read(pos, stop)
            if not chunk:
                raise DiskFileError('short read of %s' % self.name)
            pos += len(chunk)
            yield chunk

    def _verified_chunks(self, etag):
        """The whole content, each chunk given out only once the next is
        read, so the last one waits for the checksum's verdict."""
        if not etag and self.checksum is not None:
            crc_class, expected, what = self.checksum
            digest = crc_class()
        else:
            digest = hashlib.md5(usedforsecurity=False)
            expected, what = self.etag, 'ETag'
        held = None
        pos = 0
        size = self.content_length
        while pos < size:
            chunk = self._read(pos, size, digest)
            if not chunk:
                break
            pos += len(chunk)
            if held is not None:
                yield held
            held = chunk
        if pos != size or digest.hexdigest() != expected:
            reason = 'content does not match %s %s' % (what, expected)
            self.mgr.run(self.quarantine, reason)
            raise DiskFileQuarantined(reason)
        if held is not None:
            yield held

    def close(self):
        if self._ahead is not None:
            # a read still filling the buffer: let it end before freeing
            _wait_quietly(self._ahead[1])
            self._ahead = None
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- writing -----------------------------------------------------------

    def writer(self, size=None, md5=True):
        """A DiskFileWriter for new content (blocking: fallocate).

        ``md5=False``: the content's MD5 is known already (the proxy sent
        it, common/body_checksums.py); only the CRC-32C is computed."""
        return DiskFileWriter(self, size, md5=md5)

    def check_conflict(self, timestamp, ext):
        """Raise DiskFileConflict if ``timestamp`` is not the newest."""
        current = self.current()
        names = [current.data, current.tombstone]
        if ext == fileset.META:
            names.append(current.meta)
        for name in names:
            if name:
                existing = fileset.parse_name(name)[0]
                if existing >= timestamp:
                    raise DiskFileConflict(existing)

    def write_tombstone(self, timestamp):
        """Commit a .ts (blocking)."""
        self._write_empty(timestamp, fileset.TOMBSTONE, {})

    def write_meta(self, timestamp, metadata):
        """Commit a .meta holding POSTed metadata (blocking)."""
        self._write_empty(timestamp, fileset.META, metadata)

    def _write_empty(self, timestamp, ext, metadata):
        timestamp = Timestamp(timestamp)
        meta = dict(metadata, name=self.name,
                    **{'X-Timestamp': timestamp.internal})
        writer = DiskFileWriter(self, None, check_space=False)
        try:
            writer.commit(timestamp, meta, ext)
        finally:
            writer.close()

    def quarantine(self, reason):
        """Move the hash dir to <device>/quarantined/objects/ (blocking)."""
        dest = ondisk.quarantine(self.device_path, self.hash_dir, DATADIR)
        if dest is None:
            return None
        hashes.invalidate(self.partition_dir, self.suffix)
        log.warning('quarantined %s to %s: %s', self.hash_dir, dest, reason)
        return dest


class DiskFileWriter:
    """A temp file in <device>/tmp that becomes the object on commit().

    The temp file is flock'd while open, so startup cleanup can tell a
    live upload from a crash's leftover.
    """

    def __init__(self, diskfile, size=None, check_space=True, md5=True):
        self.df = diskfile
        tmp_dir = os.path.join(diskfile.device_path, TMP_DIR)
        self.tmp_path = os.path.join(tmp_dir, '%s-%s.tmp' % (
            diskfile.hash, os.urandom(16).hex()))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            self.fd = os.open(self.tmp_path, flags, 0o644)
        except FileNotFoundError:
            # a new device (or an operator emptied it): tmp/ comes back
            ondisk.makedirs_durable(tmp_dir)
            self.fd = os.open(self.tmp_path, flags, 0o644)
        self.committed = False
        self.upload_size = 0
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._crc = Crc32c()
        self._direct = None
        self._preallocated = False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if check_space:
                diskfile.mgr.check_space(diskfile.device_path, size)
            if size and size >= PREALLOCATE_MIN:
                self._preallocate(size)
            if size and size >= direct_io.MIN_SIZE:
                self._direct = direct_io.DirectAppender(
                    self.fd, diskfile.mgr.run)
        except BaseException:
            self.close()
            raise

    def _preallocate(self, size):
        self._preallocated = True
        try:
            os.posix_fallocate(self.fd, 0, size)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFileNoSpace('cannot allocate %d bytes' % size)
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise

    @property
    def etag(self):
        """MD5 of what was written (None if made with md5=False)."""
        return None if self._md5 is None else self._md5.hexdigest()

    @property
    def crc32c(self):
        return self._crc.hexdigest()

    def write(self, chunk):
        """Append a chunk: through the page cache, or for a large body
        (a size of at least direct_io.MIN_SIZE was given) around it;
        the fsync is in commit."""
        if self._md5 is not None:
            self._md5.update(chunk)
        self._crc.update(chunk)
        try:
            if self._direct is not None:
                self._direct.write(chunk)
            else:
                direct_io.pwrite_all(self.fd, chunk, self.upload_size)
            self.upload_size += len(chunk)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFileNoSpace('disk full')
            raise

    def commit(self, timestamp, metadata, ext=fileset.DATA):
        """Make the temp file the object's ``<timestamp><ext>`` (blocking).

        Raises DiskFileConflict when a newer (or equal) file is there.
        """
        df = self.df
        timestamp = Timestamp(timestamp)
        fd = self.fd
        if self._direct is not None:
            try:
                self._direct.finish()
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise DiskFileNoSpace('disk full')
                raise
        if self._preallocated and os.fstat(fd).st_size != self.upload_size:
            # the client sent less than it announced
            os.ftruncate(fd, self.upload_size)
        if ext == fileset.DATA:
            metadata = dict(metadata, **{CRC_KEY: self._crc.hexdigest()})
        md.write_metadata(fd, metadata, offset=self.upload_size)
        os.fsync(fd)
        if 'X-Delete-At' in metadata:
            # noted before the rename: a crash leaves a stale entry at
            # worst, never an expiring object the expirer cannot find
            self._record_expiry(timestamp, metadata['X-Delete-At'])
        target = os.path.join(df.hash_dir, fileset.file_name(timestamp, ext))
        created = []
        for attempt in range(3):
            try:
                made = []
                created += ondisk.make_dirs(df.hash_dir, made)
                # in a hash dir this call just made there is nothing to
                # conflict with or clean up: spare listing it twice
                fresh = df.hash_dir in made
                # the suffix is marked stale and renamed into under one
                # hold of the partition lock (hashes.changing). After
                # make_dirs: a new partition dir is then among the dirs
                # whose entries are fsynced below.
                with hashes.changing(df.partition_dir, df.suffix):
                    if not fresh:
                        df.check_conflict(timestamp, ext)
                    os.rename(self.tmp_path, target)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
                # a cleanup or rehash removed an empty hash or suffix dir
                # (or the replicator an emptied partition) between our
                # mkdir and the rename; make it again
        self.committed = True
        # the file's entry, then those of the dirs made for it (a new
        # object usually needs a new hash and suffix dir)
        ondisk.fsync_dir(df.hash_dir)
        ondisk.fsync_parents(created)
        if not fresh:
            fileset.cleanup_dir(df.hash_dir, df.mgr.reclaim_age)

    def _record_expiry(self, timestamp, delete_at):
        """Add the object to its device's expiry index (expiry.py)."""
        when = expiry.parse_delete_at(delete_at)
        if when is None:
            log.warning('%s: ignoring unusable X-Delete-At %r', self.df.name,
                        delete_at)
            return
        df = self.df
        expiry.record(df.device_path, when, df.partition, df.hash, df.name,
                      timestamp)

    def close(self):
        """Release the temp file; remove it unless committed."""
        if self._direct is not None:
            self._direct.close()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if not self.committed:
            try:
                os.unlink(self.tmp_path)
            except FileNotFoundError:
                pass


def _content_checksum(meta):
    """(CRC class, expected hex, name) for a data file's metadata, None
    when it keeps no CRC (then reads check the MD5)."""
    for key, crc_class, name in ((CRC_KEY, Crc32c, 'CRC-32C'),
                                 (LEGACY_CRC_KEY, Crc32, 'CRC-32')):
        value = meta.get(key)
        if isinstance(value, str) and len(value) == 8:
            return crc_class, value, name
    return None


class Crc32:
    """zlib.crc32 with hashlib's update/hexdigest (8 hex digits): the
    checksum files written before CRC-32C keep."""

    def __init__(self):
        self.value = 0

    def update(self, data):
        self.value = zlib.crc32(data, self.value)

    def hexdigest(self):
        return '%08x' % self.value


def _wait_quietly(thread):
    """Wait for a read started ahead; its error, if any, no longer
    matters to anyone."""
    try:
        thread.wait()
    except Exception:
        pass


def _fill(fd, buf, offset, digest):
    """Read into ``buf`` (and add what was read to ``digest``) in one call,
    so both run in the thread pool: hashing a large chunk releases the
    GIL there instead of holding the hub. Returns the bytes read."""
    got = os.preadv(fd, [buf], offset)
    if digest is not None:
        digest.update(memoryview(buf)[:got])
    return got


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
