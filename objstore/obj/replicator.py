"""The object replicator: every object on all of its primaries, none left
on handoffs.

Each pass walks the partitions on this node's devices:

* A partition whose device is one of its **primaries** is compared with
  each other primary by suffix hashes (REPLICATE). For every suffix whose
  hash differs, the local files that count are offered (SYNC check) and
  those the peer lacks are streamed to it (SYNC push), then the peer
  recomputes those suffixes and the suffix counts as synced when the
  hashes match. Each side pushes only what it has newer, so two primaries
  converge after both ran. A primary that is unreachable or answers 507
  is replaced by the partition's next handoff device, so the replica count
  is kept while it is gone.
* A partition whose device is **not** a primary (a handoff written while a
  primary was down, or a partition the ring moved away) is offered in full
  to every primary and pushed where wanted; then every primary is asked
  again, and the files that **every** primary now says it does not want
  (it has them or something newer) are deleted here, object by object,
  then the empty directories and finally the partition. A file that was
  not in that offer — a PUT that raced in — is never deleted; it goes on
  the next pass. When any primary cannot be reached nothing is deleted.

Deleted objects stay deleted: a tombstone beats older data everywhere
(sync_protocol.wanted_files), and tombstones older than ``reclaim_age``
are dropped when a suffix is rehashed (fileset.cleanup_dir). To make sure
that happens, every suffix of a partition is rehashed on the first pass
of a process and then every ``rehash_interval`` seconds; in between only
suffixes changed by writes are.

Settings, in ``[object-replicator]`` of the object server's config (which
also supplies ``devices``, ``mount_check``, ``bind_ip``/``bind_port`` and
``reclaim_age`` from ``[object-server]``):

``interval``          seconds between the starts of two passes (30)
``concurrency``       partitions replicated at once, in threads (2)
``node_timeout``      seconds to wait on a peer's socket (10)
``reclaim_age``       seconds a tombstone is kept (604800, one week)
``rehash_interval``   seconds between full rehashes of a partition (3600)
``handoffs_first``    replicate handoff partitions before the others (no)
``ring_dir``          where object.ring.gz is (default: the cluster's)

A pass returns counts: partitions, handoff_partitions, suffixes_synced,
suffixes_out_of_sync, files_pushed, bytes_pushed, files_refused,
files_quarantined, handoff_files_removed, handoff_partitions_removed,
handoff_substitutes, nodes_unavailable, failures.

Safe to kill at any moment and to run twice at once: receivers commit by
durable rename and ignore what they already have; handoff deletion only
unlinks files confirmed elsewhere and rmdirs directories (which fails on a
directory that gained a file); the partition dir goes under its lock.
"""
import os
import sys
import time
from collections import Counter, namedtuple
from concurrent.futures import ThreadPoolExecutor

from objstore.common import ondisk
from objstore.common.config import ConfigError, backend_secret, \
    config_true
from objstore.common.daemon import Daemon, conf_float, conf_int, \
    daemon_main, iter_partitions
from objstore.obj import fileset, hashes
from objstore.obj.diskfile import DATADIR
from objstore.obj.sync_sender import LocalFile, NodeUnavailable, \
    SyncClient, SyncError
from rings.ring import RingError

Job = namedtuple('Job', 'device device_path partition part_dir')
Job.__doc__ = """One partition dir on a local device; ``device`` is the
ring's dict for it (None when the ring no longer names the device)."""

# files of hashes.py a partition dir holds besides its suffix dirs
PARTITION_FILES = (hashes.HASHES_FILE, hashes.HASHES_FILE + '.tmp',
                   hashes.INVALID_FILE, hashes.LEGACY_LOCK_FILE)


def same_device(a, b):
    return a is not None and b is not None and \
        (a['ip'], int(a['port']), a['device']) == \
        (b['ip'], int(b['port']), b['device'])


def list_objects(part_dir, suffixes=None, reclaim_age=None, now=None):
    """{hash: [file names that count]} of a partition's objects.

    Only the named ``suffixes`` (all when None). Obsolete files are left
    out: they are never offered and never deleted by name.
    """
    if reclaim_age is None:
        reclaim_age = fileset.DEFAULT_RECLAIM_AGE
    now = time.time() if now is None else now
    if suffixes is None:
        suffixes = [s for s in fileset.list_dir(part_dir)
                    if hashes.is_suffix(s)]
    found = {}
    for suffix in sorted(suffixes):
        suffix_dir = os.path.join(part_dir, suffix)
        for hsh in sorted(fileset.list_dir(suffix_dir)):
            if len(hsh) != 32 or not hsh.endswith(suffix):
                continue
            current = fileset.resolve(
                fileset.list_dir(os.path.join(suffix_dir, hsh)), now=now,
                reclaim_age=reclaim_age)
            names = [n for n in (current.data, current.tombstone,
                                 current.meta) if n]
            if names:
                found[hsh] = names
    return found


def local_files(part_dir, wanted):
    """LocalFile list for {hash: [names]}: each object's base file first,
    so a receiver has the .data before its .meta."""
    order = {fileset.DATA: 0, fileset.TOMBSTONE: 0, fileset.META: 1}
    files = []
    for hsh in sorted(wanted):
        hash_dir = os.path.join(part_dir, hsh[-3:], hsh)
        for name in sorted(wanted[hsh],
                           key=lambda n: order[fileset.parse_name(n)[1]]):
            files.append(LocalFile(hsh, name, os.path.join(hash_dir, name)))
    return files


def delete_confirmed(part_dir, listing, confirmed):
    """Unlink the listed objects all of whose files are ``confirmed``.

    ``listing`` {hash: [names]} as offered; ``confirmed`` a set of (hash,
    name). An object goes whole or not at all; its hash dir and suffix dir
    are removed when that leaves them empty (rmdir: a file that raced in
    keeps them). Returns the number of files removed.
    """
    removed = 0
    touched = set()
    for hsh, names in listing.items():
        if not all((hsh, name) in confirmed for name in names):
            continue
        hash_dir = os.path.join(part_dir, hsh[-3:], hsh)
        # metadata first: a crash halfway leaves the base, offered again
        for name in sorted(names, key=lambda n: not n.endswith(
                fileset.META)):
            try:
                os.unlink(os.path.join(hash_dir, name))
                removed += 1
            except FileNotFoundError:
                pass
        touched.add(hsh[-3:])
        _rmdir(hash_dir)
    for suffix in touched:
        _rmdir(os.path.join(part_dir, suffix))
        hashes.invalidate(part_dir, suffix)
    return removed


def _rmdir(path):
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False


def remove_partition_if_empty(part_dir):
    """Remove a partition dir that holds no suffix dir any more.

    Under the partition lock, so a writer waiting for it finds the dir
    gone and starts over (hashes.partition_lock). True when removed.
    """
    if not os.path.isdir(part_dir):
        return False
    with hashes.partition_lock(part_dir):
        names = fileset.list_dir(part_dir)
        if any(name not in PARTITION_FILES for name in names):
            return False
        for name in names:
            _unlink(os.path.join(part_dir, name))
        removed = _rmdir(part_dir)
    if removed:
        ondisk.fsync_dir(os.path.dirname(part_dir))
    return removed


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def quarantine_file(device_path, path, hsh):
    """Move one bad object file to <device>/quarantined/objects/<hash>/.

    Only that file: a newer good file beside it stays where it is.
    """
    if ondisk.quarantine(device_path, path,
                         os.path.join(DATADIR, hsh)) is None:
        return False
    part_dir = os.path.dirname(os.path.dirname(os.path.dirname(path)))
    hashes.invalidate(part_dir, hsh[-3:])
    return True


class ObjectReplicator(Daemon):
    """Keep every object on its primaries and move handoffs home."""

    section = 'object-replicator'
    server_section = 'object-server'
    kind = 'object'

    def __init__(self, conf):
        super().__init__(conf)
        self.concurrency = conf_int(conf, 'concurrency', 2)
        self.node_timeout = conf_float(conf, 'node_timeout', 10.0)
        self.reclaim_age = conf_float(conf, 'reclaim_age',
                                      fileset.DEFAULT_RECLAIM_AGE)
        self.rehash_interval = conf_float(conf, 'rehash_interval', 3600.0)
        self.handoffs_first = config_true(conf.get('handoffs_first', 'no'))
        if self.concurrency < 1 or self.node_timeout <= 0 or \
                self.reclaim_age < 0 or self.rehash_interval < 0:
            raise ConfigError('concurrency and node_timeout must be > 0, '
                              'reclaim_age and rehash_interval >= 0')
        self.secret = backend_secret()
        # (device path, partition) -> time of its last full rehash
        self._rehashed = {}

    # -- a pass ---------------------------------------------------------------

    def jobs(self):
        """Every partition dir on the local devices; handoffs first when
        asked to."""
        found = []
        for dev, device_path in self.local_devices():
            for partition, part_dir in iter_partitions(device_path,
                                                       DATADIR):
                found.append(Job(dev, device_path, partition, part_dir))
        if self.handoffs_first:
            found.sort(key=lambda job: not self.is_handoff(job))
        return found

    def is_handoff(self, job):
        try:
            primaries = self.ring.get_part_nodes(job.partition)
        except RingError:
            return False
        return not any(same_device(job.device, n) for n in primaries)

    def run_once(self):
        stats = Counter()
        with ThreadPoolExecutor(self.concurrency) as pool:
            for counts in pool.map(self.replicate_safely, self.jobs()):
                stats.update(counts)
        keys = ('partitions', 'handoff_partitions', 'suffixes_synced',
                'suffixes_out_of_sync', 'files_pushed', 'bytes_pushed',
                'files_refused', 'files_quarantined', 'handoff_files_removed',
                'handoff_partitions_removed', 'handoff_substitutes',
                'nodes_unavailable', 'failures')
        return {key: stats.get(key, 0) for key in keys}

    def replicate_safely(self, job):
        try:
            return self.replicate(job)
        except Exception:
            self.log.exception('replicating %s failed', job.part_dir)
            return Counter(partitions=1, failures=1)

    def replicate(self, job):
        """Replicate one partition; returns a Counter."""
        stats = Counter(partitions=1)
        ring = self.ring
        if job.partition >= ring.partition_count:
            self.log.warning('%s: partition not in the ring', job.part_dir)
            stats['failures'] += 1
            return stats
        primaries = ring.get_part_nodes(job.partition)
        local = self.local_hashes(job)
        if any(same_device(job.device, n) for n in primaries):
            self.sync_primary(job, primaries, local, stats)
        else:
            stats['handoff_partitions'] += 1
            self.sync_handoff(job, primaries, stats)
        return stats

    def local_hashes(self, job):
        """Suffix hashes of the partition, rehashing all when due."""
        key = (job.device_path, job.partition)
        now = time.monotonic()
        last = self._rehashed.get(key)
        recalc = ()
        if last is None or now - last >= self.rehash_interval:
            recalc = [s for s in fileset.list_dir(job.part_dir)
                      if hashes.is_suffix(s)]
            self._rehashed[key] = now
        return hashes.get_hashes(job.part_dir, recalc, self.reclaim_age)

    def client(self, node, job):
        return SyncClient(self.secret, node, job.partition,
                          self.ring.part_power, self.node_timeout)

    # -- a partition on one of its primaries ---------------------------------

    def sync_primary(self, job, primaries, local, stats):
        pending = [n for n in primaries if not same_device(job.device, n)]
        handoffs = (n for n in self.ring.get_more_nodes(job.partition)
                    if not same_device(job.device, n))
        substitutes_left = len(pending)
        while pending:
            node = pending.pop(0)
            try:
                self.sync_peer(job, node, local, stats)
            except NodeUnavailable as e:
                stats['nodes_unavailable'] += 1
                self.log.info('%s: %s', job.part_dir, e)
                substitute = next(handoffs, None) if substitutes_left else None
                if substitute is not None:
                    substitutes_left -= 1
                    stats['handoff_substitutes'] += 1
                    pending.append(substitute)
            except SyncError as e:
                stats['failures'] += 1
                self.log.warning('%s: %s', job.part_dir, e)

    def sync_peer(self, job, node, local, stats):
        """Bring ``node`` up to date with what differs from us."""
        if not local:
            return
        client = self.client(node, job)
        remote = client.get_hashes()
        suffixes = sorted(s for s, h in local.items() if remote.get(s) != h)
        if not suffixes:
            return
        offers = list_objects(job.part_dir, suffixes, self.reclaim_age)
        wanted = client.check(offers) if offers else {}
        if wanted:
            self.push(job, client, wanted, stats)
        after = client.get_hashes(recalculate=suffixes)
        synced = sum(1 for s in suffixes if after.get(s) == local[s])
        stats['suffixes_synced'] += synced
        stats['suffixes_out_of_sync'] += len(suffixes) - synced

    def push(self, job, client, wanted, stats):
        outcome = client.push(local_files(job.part_dir, wanted))
        self.log.debug('%s: pushed %d files (%d bytes) to %r', job.part_dir,
                       outcome.files, outcome.bytes, client)
        stats['files_pushed'] += outcome.files
        stats['bytes_pushed'] += outcome.bytes
        for hsh, name, status, reason in outcome.results:
            if status == 'refused':
                stats['files_refused'] += 1
                self.log.warning('%r refused %s/%s: %s', client, hsh, name,
                                 reason)
        for item, reason in outcome.corrupt:
            self.log.warning('%s is corrupt (%s): quarantined', item.path,
                             reason)
            if quarantine_file(job.device_path, item.path, item.hash):
                stats['files_quarantined'] += 1
        return outcome

    # -- a partition on a handoff device -------------------------------------

    def sync_handoff(self, job, primaries, stats):
        listing = list_objects(job.part_dir, None, self.reclaim_age)
        if not listing:
            if remove_partition_if_empty(job.part_dir):
                stats['handoff_partitions_removed'] += 1
            return
        confirmed = None
        complete = True     # every primary answered
        for node in primaries:
            client = self.client(node, job)
            try:
                wanted = client.check(listing)
                if wanted:
                    self.push(job, client, wanted, stats)
                    # confirm from the peer's disk, not from our hopes
                    wanted = client.check({h: listing[h] for h in wanted})
            except NodeUnavailable as e:
                stats['nodes_unavailable'] += 1
                self.log.info('%s: %s; keeping the handoff', job.part_dir, e)
                complete = False
                continue
            except SyncError as e:
                stats['failures'] += 1
                self.log.warning('%s: %s; keeping the handoff',
                                 job.part_dir, e)
                complete = False
                continue
            has = {(h, n) for h, names in listing.items() for n in names
                   if n not in wanted.get(h, ())}
            confirmed = has if confirmed is None else confirmed & has
        if not complete:
            return
        removed = delete_confirmed(job.part_dir, listing, confirmed or set())
        self.log.debug('%s: removed %d handoff files', job.part_dir, removed)
        stats['handoff_files_removed'] += removed
        # rehash what changed: drops emptied dirs, so the partition can go
        hashes.get_hashes(job.part_dir, (), self.reclaim_age)
        if remove_partition_if_empty(job.part_dir):
            stats['handoff_partitions_removed'] += 1


main = daemon_main(ObjectReplicator)


if __name__ == '__main__':
    sys.exit(main())
