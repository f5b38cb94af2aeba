"""Object auditor: finds objects that rotted on disk and quarantines them.

A disk can return different bytes than were written (bit rot, a bad
sector, a stray write) and nothing notices until a client reads the
object. The auditor re-reads every object on the node's devices, checks
its content against the MD5 in its metadata and the metadata itself, and
moves a bad one to ``<device>/quarantined/objects/``. Quarantining marks
the suffix changed (hashes.invalidate), so the replicator's next pass
sees this replica differ from the others and pushes a good copy back.

Reading every byte competes with clients for the disk, so a pass is
paced: at most ``bytes_per_second`` (default 10 MiB/s) and
``files_per_second`` (default 20) per process, 0 meaning unlimited. The
pacing is a pure function of a clock (next_slot) so it can be tested
without waiting. Objects are read in fixed-size chunks, never whole.

What counts as bad: metadata that cannot be read or lacks what every
object has (quarantined here, before a name is even known), a file whose
size disagrees with its metadata, or content whose MD5 is not the ETag
(both found by DiskFile.open / reader(verify=True), which quarantine).
An object whose name does not hash to its directory is only reported: a
wrong hash secret in this node's config would otherwise quarantine every
object it holds.
"""
import os
import sys
import time

from objstore.common import config, ondisk
from objstore.common.daemon import (Daemon, conf_float, daemon_main,
                                    iter_hash_dirs, iter_partitions)
from objstore.obj import diskfile, fileset, hashes
from objstore.obj import metadata as md

MIB = 1024 * 1024
DEFAULT_BYTES_PER_SECOND = 10 * MIB
DEFAULT_FILES_PER_SECOND = 20
# How much idle time a limiter may spend as a burst afterwards (seconds).
DEFAULT_BURST = 1.0


def next_slot(allowed_at, now, amount, rate, burst=DEFAULT_BURST):
    """Pace ``amount`` more units at ``rate`` per second.

    ``allowed_at`` is when the units taken so far are paid for. Returns
    (new allowed_at, seconds to sleep now). Time spent not taking units
    (reading metadata, a slow disk) earns credit, but at most ``burst``
    seconds of it, so a long pause is not followed by an unlimited burst.
    A rate of 0 or less means unlimited.
    """
    if rate <= 0:
        return now, 0.0
    start = max(allowed_at, now - burst)
    allowed_at = start + amount / rate
    return allowed_at, max(0.0, allowed_at - now)


class RateLimiter:
    """Sleeps as needed so that take() calls average ``rate`` units/s."""

    def __init__(self, rate, burst=DEFAULT_BURST, clock=time.monotonic,
                 sleep=time.sleep):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.sleep = sleep
        self.allowed_at = clock()

    def take(self, amount=1):
        self.allowed_at, delay = next_slot(self.allowed_at, self.clock(),
                                           amount, self.rate, self.burst)
        if delay > 0:
            self.sleep(delay)


def split_name(name):
    """(account, container, object) of a '/a/c/o' name, or None."""
    if not isinstance(name, str):
        return None
    parts = name.split('/', 3)
    if len(parts) != 4 or parts[0] or not all(parts[1:]):
        return None
    return parts[1], parts[2], parts[3]


def _call(func, *args, **kwargs):
    """DiskFile's ``run``: a daemon blocks, it has no hub to spare."""
    return func(*args, **kwargs)


class ObjectAuditor(Daemon):
    """Re-read every object, quarantine the damaged ones."""

    section = 'object-auditor'
    server_section = 'object-server'
    kind = 'object'
    # what the rate limiters wait with (tests substitute a fake clock)
    clock = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    def __init__(self, conf):
        super().__init__(conf)
        self.bytes_per_second = conf_float(conf, 'bytes_per_second',
                                           DEFAULT_BYTES_PER_SECOND)
        self.files_per_second = conf_float(conf, 'files_per_second',
                                           DEFAULT_FILES_PER_SECOND)
        self.hash_prefix, self.hash_suffix = config.hash_secret()
        self.mgr = diskfile.DiskFileManager(
            self.devices, self.mount_check, self.hash_prefix,
            self.hash_suffix, run=_call)

    def audited_devices(self):
        """Paths of every mounted device of this node.

        The auditor needs no ring: whatever sits on our devices is ours to
        check, wherever the ring places it now.
        """
        try:
            names = sorted(os.listdir(self.devices))
        except OSError:
            return []
        paths = (self.device_path(name) for name in names)
        return [p for p in paths if p is not None]

    def run_once(self):
        stats = self.stats = {'objects': 0, 'bytes': 0, 'quarantined': 0,
                              'errors': 0}
        self.byte_limiter = RateLimiter(self.bytes_per_second,
                                        clock=self.clock, sleep=self.sleep)
        self.file_limiter = RateLimiter(self.files_per_second,
                                        clock=self.clock, sleep=self.sleep)
        for device_path in self.audited_devices():
            for partition, part_dir in iter_partitions(device_path,
                                                       diskfile.DATADIR):
                for suffix, hsh, hash_dir in iter_hash_dirs(part_dir):
                    try:
                        result = self.audit(device_path, partition,
                                            part_dir, suffix, hsh, hash_dir)
                    except OSError as e:  # e.g. EIO: an operator's job
                        self.log.error('cannot audit %s: %s', hash_dir, e)
                        result = 'errors'
                    except Exception:
                        self.log.exception('cannot audit %s', hash_dir)
                        result = 'errors'
                    if result is not None:
                        stats[result] += 1
        return stats

    def audit(self, device_path, partition, part_dir, suffix, hsh,
              hash_dir):
        """Check one hash dir; returns the count it adds to, or None."""
        current = fileset.resolve(fileset.list_dir(hash_dir))
        if current.data is None:
            return None  # a tombstone, or nothing that counts
        self.file_limiter.take(1)
        try:
            meta, _tail = md.read_metadata_path(
                os.path.join(hash_dir, current.data))
        except FileNotFoundError:
            return None  # replaced or deleted while we looked
        except md.MetadataError as e:
            self.quarantine_dir(device_path, part_dir, suffix, hash_dir,
                                str(e))
            return 'quarantined'
        names = split_name(meta.get('name'))
        if names is None:
            self.quarantine_dir(device_path, part_dir, suffix, hash_dir,
                                'metadata has no valid name')
            return 'quarantined'
        if ondisk.name_hash(self.hash_prefix, self.hash_suffix,
                            *names) != hsh:
            self.log.error('%s holds %r, which hashes elsewhere (is the '
                           'hash secret right?)', hash_dir, meta['name'])
            return 'errors'
        df = diskfile.DiskFile(self.mgr, device_path, partition, *names)
        return self.verify(df)

    def verify(self, df):
        """Open and read the whole object, checking its MD5."""
        try:
            # now=0: an object past its X-Delete-At is still on disk and
            # replicated until the expirer removes it, so check it too
            df.open(now=0)
        except diskfile.DiskFileQuarantined:
            return 'quarantined'
        except diskfile.DiskFileNotExist:
            return None  # deleted or replaced since we listed it
        try:
            # the MD5 against the ETag, even where a CRC is kept
            for chunk in df.reader(verify=True, etag=True):
                self.stats['bytes'] += len(chunk)
                self.byte_limiter.take(len(chunk))
        except diskfile.DiskFileQuarantined:
            return 'quarantined'
        finally:
            df.close()
        return 'objects'

    def quarantine_dir(self, device_path, part_dir, suffix, hash_dir,
                       reason):
        """Quarantine a hash dir whose object cannot even be named."""
        dest = ondisk.quarantine(device_path, hash_dir, diskfile.DATADIR)
        if dest is not None:
            hashes.invalidate(part_dir, suffix)
            self.log.warning('quarantined %s to %s: %s', hash_dir, dest,
                             reason)


main = daemon_main(ObjectAuditor)


if __name__ == '__main__':
    sys.exit(main())
