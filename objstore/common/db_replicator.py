"""Account and container database replication: what both replicators share.

Every account and container is one SQLite database on each of its
primary devices. A pass of this daemon visits every database on the
node's devices and makes each *peer* (the partition's other primaries;
all of them for a database sitting on a handoff device) hold everything
this copy holds:

1. ``REPLICATE`` op ``sync`` hands the peer our created/put/delete
   timestamps and metadata, which it merges (so a container or account
   delete spreads this way), and our database id; it answers its
   replication info and its *sync point* for us: the highest of our row
   ids it has merged.
2. Rows are never updated in place (every change is a new row with a
   larger ROWID), so the peer lacks exactly our rows above its sync point.
   They go ``per_diff`` at a time (op ``merge_items`` with our id as the
   source, which advances the peer's sync point in the same transaction),
   at most ``max_diffs`` batches per pass.
3. A peer without the database (404), or more than ``per_diff *
   max_diffs`` rows behind, gets the whole database instead: a consistent
   snapshot (SQLite's backup API) streamed with ``SYNCDB`` (see
   db_server.py). The peer installs it, or merges it into its own copy so
   its newer rows survive.
4. Equal content hashes (the XOR of every row) mean the peer has every
   row already: only its sync point is moved up (op ``merge_syncs``).

Once every peer succeeded in this pass:

* a database on a handoff device is removed (under its write lock and
  only when nothing changed since it was sent, so an acknowledged write
  that raced the push is never lost). After a rebalance, a device that is
  no longer a primary of a partition is one of its handoffs, so the same
  step moves databases to their new primaries;
* a deleted database (delete newer than put, no live rows) whose delete
  is older than ``reclaim_age`` is removed; every replica does the same
  once it has spread the delete to its peers;
* tombstone rows older than ``reclaim_age`` are dropped.

Settings, in ``[container-replicator]`` / ``[account-replicator]`` on top
of the server's own section:

``interval`` (30)
    seconds from the start of one pass to the start of the next;
``per_diff`` (1000)
    rows per ``merge_items`` request;
``max_diffs`` (100)
    ``merge_items`` requests per database and peer in one pass; a peer
    further behind than ``per_diff * max_diffs`` gets the whole database;
``concurrency`` (4)
    databases replicated at once (threads);
``node_timeout`` (10)
    seconds to wait on a peer's socket;
``whole_db_timeout`` (120)
    seconds to wait for a peer to check and take a whole database;
``reclaim_age`` (604800, a week)
    age after which deleted databases and tombstone rows are removed.

Counts of a pass: dbs, in_sync, rows_sent, whole_dbs_sent,
handoffs_removed, reclaimed_dbs, reclaimed_rows, diff_capped,
quarantined, failures.

Safe to kill at any moment and to run twice at once: peers change only in
their own idempotent transactions, snapshots are temp files under
``<device>/tmp``, and removals are one directory rename done under the
database's write lock. A database SQLite cannot read is quarantined
(``<device>/quarantined/<datadir>/``) so the peers send a good copy back.
"""
import collections
import concurrent.futures
import http.client
import os
import shutil
import sqlite3
import tempfile
import threading
import time

import msgpack

from objstore.common import backend, ondisk, signing
from objstore.common.config import ConfigError, backend_secret
from objstore.common.daemon import Daemon, conf_float, conf_int, \
    iter_databases
from objstore.common.db import DatabaseNotFound, remove_db_files
from objstore.common.timestamp import Timestamp
from rings.ring import RingError

CHUNK_SIZE = 64 * 1024
# Temp files of ours (and the servers' SYNCDB receptions) left in
# <device>/tmp by a crash are removed once they are this old (seconds).
STALE_TMP_AGE = 24 * 3600
SNAPSHOT_PREFIX = 'dbrepl-'
STALE_PREFIXES = (SNAPSHOT_PREFIX, 'syncdb-')


# REPLICATE bodies are msgpack as db_server.py reads them; its pack/unpack
# are not imported since that module brings eventlet, which a plain
# blocking daemon has no use for.
def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=True)


COUNTS = ('dbs', 'in_sync', 'rows_sent', 'whole_dbs_sent',
          'handoffs_removed', 'reclaimed_dbs', 'reclaimed_rows',
          'diff_capped', 'quarantined', 'failures')


def fingerprint(info):
    """What must not change between pushing a database and removing it."""
    return (info['id'], info['max_row'], info['hash'],
            info['put_timestamp'], info['delete_timestamp'],
            sorted(info['metadata'].items()))


def needs_whole_db(local_max_row, sync_point, per_diff, max_diffs):
    """True when a peer that merged our rows up to ``sync_point`` is too
    far behind for row batches to catch it up in one pass, or claims rows
    we do not have (its sync point is from an earlier life of our file,
    e.g. one restored from a backup)."""
    return local_max_row - sync_point > per_diff * max_diffs or \
        sync_point > local_max_row


class _Job:
    """One database being replicated: its broker, its replication info
    when the pass looked at it, and a snapshot made on first need and
    shared by every peer that needs the whole database."""

    def __init__(self, broker, info, device_path, partition, hsh,
                 reclaimable):
        self.broker = broker
        self.info = info
        self.device_path = device_path
        self.partition = partition
        self.hsh = hsh
        self.reclaimable = reclaimable
        self.snapshot_path = None

    @property
    def tmp_dir(self):
        return os.path.join(self.device_path, 'tmp')

    def snapshot(self):
        if self.snapshot_path is None:
            ondisk.makedirs_durable(self.tmp_dir)
            fd, path = tempfile.mkstemp(prefix=SNAPSHOT_PREFIX,
                                        suffix='.db', dir=self.tmp_dir)
            os.close(fd)
            self.snapshot_path = path
            try:
                self.broker.snapshot(path)
            except BaseException:
                self.cleanup()
                raise
        return self.snapshot_path

    def cleanup(self):
        if self.snapshot_path is not None:
            remove_db_files(self.snapshot_path)
            self.snapshot_path = None


class DatabaseReplicator(Daemon):
    """Replicate databases between primaries and move them off handoffs.

    Subclasses name the ``datadir``, the ``broker_class`` and the
    ``tombstone_column`` (the item column holding a deleted row's delete
    time), besides the Daemon attributes.
    """

    datadir = None
    broker_class = None
    tombstone_column = None

    def __init__(self, conf):
        super().__init__(conf)
        self.per_diff = self._positive(conf_int(conf, 'per_diff', 1000),
                                       'per_diff')
        self.max_diffs = self._positive(conf_int(conf, 'max_diffs', 100),
                                        'max_diffs')
        self.concurrency = self._positive(conf_int(conf, 'concurrency', 4),
                                          'concurrency')
        self.node_timeout = self._positive(
            conf_float(conf, 'node_timeout', 10.0), 'node_timeout')
        self.whole_db_timeout = self._positive(
            conf_float(conf, 'whole_db_timeout', 120.0), 'whole_db_timeout')
        self.reclaim_age = self._positive(
            conf_float(conf, 'reclaim_age', 7 * 24 * 3600), 'reclaim_age')
        self.secret = backend_secret()
        self._counts = collections.Counter()
        self._lock = threading.Lock()

    @staticmethod
    def _positive(value, name):
        if value <= 0:
            raise ConfigError('%s must be positive, got %r' % (name, value))
        return value

    def count(self, name, n=1):
        with self._lock:
            self._counts[name] += n

    # -- a pass -------------------------------------------------------

    def run_once(self):
        self._counts = collections.Counter()
        devices = self.local_devices()
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            pending = set()
            for dev, device_path in devices:
                self.remove_stale_tmp(device_path)
                for partition, hsh, db_file in iter_databases(
                        device_path, self.datadir):
                    if len(pending) >= 2 * self.concurrency:
                        _done, pending = concurrent.futures.wait(
                            pending,
                            return_when=concurrent.futures.FIRST_COMPLETED)
                    pending.add(pool.submit(
                        self._replicate_logged, dev, device_path, partition,
                        hsh, db_file))
            concurrent.futures.wait(pending)
        return {name: self._counts.get(name, 0) for name in COUNTS}

    def _replicate_logged(self, *args):
        try:
            self.replicate_db(*args)
        except Exception:
            self.log.exception('replicating %s failed', args[-1])
            self.count('failures')

    def remove_stale_tmp(self, device_path):
        """Leftovers of a crash in <device>/tmp: our snapshots, SYNCDB
        receptions and removed databases whose deletion was cut short."""
        tmp_dir = os.path.join(device_path, 'tmp')
        try:
            names = os.listdir(tmp_dir)
        except OSError:
            return
        old = time.time() - STALE_TMP_AGE
        for name in names:
            path = os.path.join(tmp_dir, name)
            try:
                if name.startswith('removed-'):
                    shutil.rmtree(path, ignore_errors=True)
                elif name.startswith(STALE_PREFIXES) and \
                        os.stat(path).st_mtime < old:
                    os.unlink(path)
            except OSError:
                pass  # gone already, or another daemon's business

    # -- one database -------------------------------------------------

    def replicate_db(self, dev, device_path, partition, hsh, db_file):
        """Bring every peer up to date with one database, then remove it
        here when it is a handoff or a reclaimable delete."""
        self.count('dbs')
        broker = self.broker_class(db_file)
        try:
            info = broker.get_replication_info()
        except DatabaseNotFound:
            return  # removed since the walk saw it
        except sqlite3.OperationalError as e:
            self.log.warning('%s is busy: %s', db_file, e)
            self.count('failures')
            return
        except sqlite3.DatabaseError as e:
            self.quarantine(device_path, db_file, e)
            return
        try:
            nodes = self.ring.get_part_nodes(partition)
        except RingError as e:
            self.log.warning('%s: %s', db_file, e)
            self.count('failures')
            return
        primary = dev is not None and any(
            node['id'] == dev['id'] for node in nodes)
        peers = [node for node in nodes
                 if not (primary and node['id'] == dev['id'])]
        job = _Job(broker, info, device_path, partition, hsh,
                   self.reclaimable(info))
        try:
            results = [self.sync_peer(job, peer) for peer in peers]
        except DatabaseNotFound:
            return  # removed while we were sending it
        finally:
            job.cleanup()
        if not all(results):
            return
        if job.reclaimable:
            if self.remove(job):
                self.count('reclaimed_dbs')
        elif not primary:
            if self.remove(job):
                self.count('handoffs_removed')
        else:
            cutoff = Timestamp(time.time() - self.reclaim_age)
            gone = broker.reclaim_rows(self.tombstone_column, cutoff)
            if gone:
                self.count('reclaimed_rows', gone)

    def reclaimable(self, info):
        """A delete old enough that nobody needs to learn of it any more."""
        if not self.broker_class.info_is_deleted(info):
            return False
        deleted_at = float(Timestamp(info['delete_timestamp']))
        return deleted_at < time.time() - self.reclaim_age

    def remove(self, job):
        """Remove the database unless it changed since it was pushed."""
        pushed = fingerprint(job.info)
        removed = job.broker.remove(
            job.tmp_dir, keep=lambda now: fingerprint(now) != pushed)
        if removed:
            self.log.debug('removed %s', job.broker.db_file)
        return removed

    def quarantine(self, device_path, db_file, error):
        moved = ondisk.quarantine(device_path, os.path.dirname(db_file),
                                  self.datadir)
        if moved:
            self.log.warning('quarantined %s (%s) to %s', db_file, error,
                             moved)
            self.count('quarantined')

    # -- one peer -----------------------------------------------------

    def sync_peer(self, job, peer):
        """Make ``peer`` hold every row of ``job``; True on success."""
        info = job.info
        path = '/%s/%d/%s' % (peer['device'], job.partition, job.hsh)
        status, remote = self.replicate(peer, path, {
            'op': 'sync', 'created_at': info['created_at'],
            'put_timestamp': info['put_timestamp'],
            'delete_timestamp': info['delete_timestamp'],
            'metadata': info['metadata'], 'remote_id': info['id']})
        if status == 404:
            # nothing to spread when the delete is old enough to forget
            return True if job.reclaimable else \
                self.send_whole(job, peer, path)
        if status != 200 or not isinstance(remote, dict):
            return self.failed(peer, path, 'sync', status)
        point = remote.get('sync_point', -1)
        if not isinstance(point, int):
            point = -1
        if remote.get('hash') == info['hash']:
            self.count('in_sync')
            if point >= info['max_row']:
                return True
            status, _ = self.replicate(peer, path, {
                'op': 'merge_syncs', 'syncs': [
                    {'remote_id': info['id'],
                     'sync_point': info['max_row']}]})
            return status in (200, 202) or \
                self.failed(peer, path, 'merge_syncs', status)
        if needs_whole_db(info['max_row'], point, self.per_diff,
                          self.max_diffs):
            return self.send_whole(job, peer, path)
        return self.send_rows(job, peer, path, point)

    def send_rows(self, job, peer, path, point):
        """Rows above ``point`` in batches; False if more remain."""
        batches = 0
        while True:
            rows = job.broker.get_items_since(point, self.per_diff)
            if not rows:
                return True
            if batches >= self.max_diffs:
                self.count('diff_capped')
                return False
            status, _ = self.replicate(peer, path, {
                'op': 'merge_items', 'items': rows,
                'source_id': job.info['id']})
            if status not in (200, 202):
                return self.failed(peer, path, 'merge_items', status)
            self.count('rows_sent', len(rows))
            point = rows[-1]['ROWID']
            batches += 1

    def send_whole(self, job, peer, path):
        """Stream a snapshot of the database to the peer (SYNCDB)."""
        snapshot = job.snapshot()
        try:
            status = self.send_file(peer, path, snapshot)
        except backend.BackendError as e:
            self.log.warning('SYNCDB %s: %s', path, e)
            status = None
        if status in (201, 202):
            self.count('whole_dbs_sent')
            self.log.debug('sent %s whole to %s:%s%s', job.broker.db_file,
                           peer['ip'], peer['port'], path)
            return True
        return self.failed(peer, path, 'SYNCDB', status)

    def failed(self, peer, path, what, status):
        self.log.warning('%s %s:%s%s failed: %s', what, peer['ip'],
                         peer['port'], path, status)
        self.count('failures')
        return False

    # -- talking to peers ---------------------------------------------

    def replicate(self, peer, path, args):
        """(status, unpacked answer or None); status None when the peer
        could not be reached."""
        try:
            status, _headers, body = backend.request(
                self.secret, peer['ip'], peer['port'], 'REPLICATE', path,
                body=pack(args), timeout=self.node_timeout)
        except backend.BackendError as e:
            self.log.warning('REPLICATE %s: %s', path, e)
            return None, None
        answer = None
        if status == 200 and body:
            try:
                answer = unpack(body)
            except Exception:
                return 'unreadable answer', None
        return status, answer

    def send_file(self, peer, path, file_path):
        """SYNCDB ``file_path`` to the peer in fixed-size chunks; the
        answer's status. Raises BackendError on connection trouble."""
        wire = backend.quote_path(path)
        size = os.path.getsize(file_path)
        headers = signing.sign(self.secret, 'SYNCDB', wire,
                               {'Content-Length': str(size)})
        conn = http.client.HTTPConnection(peer['ip'], int(peer['port']),
                                          timeout=self.node_timeout)
        try:
            conn.putrequest('SYNCDB', wire, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            with open(file_path, 'rb') as f:
                while True:
                    chunk = f.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    conn.send(chunk)
            # the peer checks and merges the copy before it answers
            conn.sock.settimeout(self.whole_db_timeout)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        except (OSError, http.client.HTTPException) as e:
            raise backend.BackendError('SYNCDB %s:%s%s: %s' % (
                peer['ip'], peer['port'], path, e))
        finally:
            conn.close()
