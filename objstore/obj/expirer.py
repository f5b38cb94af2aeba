"""objstore-object-expirer: remove objects whose X-Delete-At has passed.

A read already answers 404 once X-Delete-At has passed; this daemon
makes the object really go: from disk and from its container listing.

Every node expires its own replicas, from its devices' expiry indexes
(expiry.py, filled by DiskFileWriter.commit for client writes and
replicated files alike). For each entry that is due, the object itself
decides:

* it still has that X-Delete-At: write a tombstone whose timestamp *is*
  the delete-at time, then send the container primaries a DELETE with
  that same X-Timestamp (a failed one is saved as an async pending for
  the object updater). Any PUT or POST made after the expiry time carries
  a newer timestamp and wins over the tombstone on every replica, and a
  newer file already on disk makes the tombstone write a conflict: such
  objects are left alone. Because every node uses the same timestamp,
  the three expirers (and replication between them) agree;
* its X-Delete-At changed (a POST moved or removed it; the new value has
  an entry of its own), or it is gone: nothing to do.

The entry is removed only after the tombstone and the container update
(or its async pending) are durable; a kill in between leaves the entry,
and the next pass recognises its own tombstone (timestamp == delete-at)
and sends the container update again. Container updates are idempotent,
so two expirers running at once only repeat work.
"""
import itertools
import logging
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from objstore.common.config import backend_secret, hash_secret
from objstore.common.daemon import (Daemon, conf_float, conf_int,
                                    daemon_main, load_ring)
from objstore.common.timestamp import Timestamp
from objstore.obj import diskfile, expiry, fileset, updates
from objstore.obj.diskfile import (DiskFileConflict, DiskFileDeleted,
                                   DiskFileError, DiskFileExpired,
                                   DiskFileNotExist)

EXPIRED, SKIPPED, FAILURES = 'expired', 'skipped', 'failures'
BATCH = 256


class ObjectExpirer(Daemon):
    """Delete objects whose X-Delete-At has passed, from disk and
    listings."""

    section = 'object-expirer'
    server_section = 'object-server'
    kind = 'object'
    default_interval = 300.0

    def __init__(self, conf):
        super().__init__(conf)
        self.concurrency = max(1, conf_int(conf, 'concurrency', 1))
        self.update_timeout = conf_float(conf, 'container_update_timeout',
                                         3.0)
        self.secret = backend_secret()
        prefix, suffix = hash_secret()
        self.mgr = diskfile.DiskFileManager(
            self.devices, mount_check=self.mount_check, hash_prefix=prefix,
            hash_suffix=suffix,
            reclaim_age=conf_float(conf, 'reclaim_age',
                                   fileset.DEFAULT_RECLAIM_AGE),
            run=lambda func, *args: func(*args))
        self._container_ring = None

    @property
    def container_ring(self):
        if self._container_ring is None:
            self._container_ring = load_ring('container', self.conf)
        return self._container_ring

    def run_once(self):
        now = time.time()
        stats = Counter({EXPIRED: 0, SKIPPED: 0, FAILURES: 0})
        with ThreadPoolExecutor(self.concurrency) as pool:
            for _dev, path in self.local_devices():
                device = os.path.basename(path)
                entries = expiry.due(path, now)
                while True:
                    batch = list(itertools.islice(entries, BATCH))
                    if not batch:
                        break
                    stats.update(pool.map(
                        lambda e: self.expire_entry(device, path, e, now),
                        batch))
                expiry.prune(path, now)
        return dict(stats)

    def expire_entry(self, device, device_path, entry, now):
        """Act on one due entry; returns EXPIRED, SKIPPED or FAILURES."""
        try:
            return self._expire_entry(device, device_path, entry, now)
        except Exception:
            self.log.exception('expiring %s failed', entry.path)
            return FAILURES

    def _expire_entry(self, device, device_path, entry, now):
        if entry.problem:
            return self._drop(entry, entry.problem, logging.WARNING)
        account, container, obj = entry.name[1:].split('/', 2)
        try:
            df = self.mgr.get_diskfile(device, entry.partition, account,
                                       container, obj)
        except DiskFileError as e:
            self.log.warning('%s: device unavailable: %s', entry.path, e)
            return FAILURES
        if df.hash != entry.hash:
            return self._drop(entry, 'name %r does not hash to %s'
                              % (entry.name, entry.hash), logging.WARNING)
        delete_at = Timestamp(entry.delete_at)
        state = self._object_state(df, entry, now)
        if state != 'expire' and state != 'tombstoned':
            return self._drop(entry, state)
        if state == 'expire':
            try:
                df.write_tombstone(delete_at)
            except DiskFileConflict as e:
                if e.timestamp != delete_at:
                    return self._drop(entry, 'written again at %s'
                                      % e.timestamp.internal)
                # another expirer's tombstone: its update may be lost
        self._update_container(df, device_path, account, container, obj,
                               delete_at)
        expiry.remove(entry)
        self.log.debug('expired %s (X-Delete-At %d)', entry.name,
                       entry.delete_at)
        return EXPIRED

    def _object_state(self, df, entry, now):
        """'expire' (still carries this X-Delete-At), 'tombstoned' (our
        tombstone is there, the container may not know yet) or why there
        is nothing to do."""
        try:
            df.open(now=max(now, entry.delete_at))
        except DiskFileExpired as e:
            current = expiry.parse_delete_at(e.metadata.get('X-Delete-At'))
            if current != entry.delete_at:
                return 'X-Delete-At is now %s' % current
            return 'expire'
        except DiskFileDeleted as e:
            if e.timestamp == Timestamp(entry.delete_at):
                return 'tombstoned'
            return 'deleted at %s' % e.timestamp.internal
        except DiskFileNotExist as e:
            return 'object gone (%s)' % e
        df.close()
        return 'X-Delete-At removed or moved later'

    def _update_container(self, df, device_path, account, container, obj,
                          delete_at):
        """Tell the container primaries; save failures for the updater."""
        part, nodes = self.container_ring.get_nodes(account, container)
        targets = [(n['ip'], n['port'], n['device']) for n in nodes]
        headers = {'X-Timestamp': delete_at.internal}
        failed = updates.update_container(
            self.secret, targets, str(part), 'DELETE', account, container,
            obj, headers=headers, timeout=self.update_timeout)
        if failed:
            updates.save_pending(device_path, df.hash, delete_at.internal,
                                 failed, str(part), 'DELETE', account,
                                 container, obj, headers)

    def _drop(self, entry, why, level=logging.DEBUG):
        self.log.log(level, 'dropping expiry entry %s: %s', entry.path, why)
        expiry.remove(entry)
        return SKIPPED


main = daemon_main(ObjectExpirer)


if __name__ == '__main__':
    sys.exit(main())
