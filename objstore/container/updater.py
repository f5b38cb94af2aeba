"""Container updater: brings every account's view of its containers up to
date (object count, bytes used, put and delete times).

The container server reports a container's stats to its account as they
change (account_update.Reporter), but an account server that is down or
slow misses those reports. Each pass of this daemon repairs that in two
ways, on every device of the node:

1. It replays ``<device>/async_pending_containers/``: each record names
   one account update and the account replicas still owed it. Nodes that
   take it (2xx), or refuse it for good (4xx), are struck off and the
   record rewritten (durably); the file goes when no node is left. An
   unreadable record is moved to ``<device>/quarantined/
   async_pending_containers/``.
2. It walks the container databases and, for each whose stats differ from
   what was last acknowledged (the broker's ``reported_*`` columns), sends
   the current stats to the account's primaries in the current account
   ring, and records them as reported once every primary answered 2xx.
   This catches what no record covers (a crash before the record was
   written, a record for a replica the ring has since moved).

Every update carries the time its stats were taken (X-Timestamp); the
account keeps the newest, so replays in any order, by two updaters at
once, are harmless. Plain blocking code with a thread pool, no eventlet.
"""
import concurrent.futures
import itertools
import os
import sqlite3
import sys
import threading

import msgpack

from objstore.common import backend, config, ondisk
from objstore.common.daemon import (Daemon, conf_float, conf_positive_int,
                                    daemon_main, iter_databases, load_ring)
from objstore.common.db import DatabaseError, DatabaseNotFound
from objstore.common.timestamp import Timestamp
from objstore.container import account_update
from objstore.container.broker import ContainerBroker
from objstore.obj import async_pending
from rings.ring import RingError

DATADIR = 'containers'
DEFAULT_NODE_TIMEOUT = 3.0
DEFAULT_CONCURRENCY = 4


class ContainerUpdater(Daemon):
    """Push container stats to the account servers."""

    section = 'container-updater'
    server_section = 'container-server'
    kind = 'container'
    # every pass opens every container database of the node
    default_interval = 300.0

    def __init__(self, conf):
        super().__init__(conf)
        self.node_timeout = conf_float(conf, 'node_timeout',
                                       DEFAULT_NODE_TIMEOUT)
        self.concurrency = conf_positive_int(conf, 'concurrency',
                                             DEFAULT_CONCURRENCY)
        self.secret = config.backend_secret()
        self._ring_lock = threading.Lock()
        self.account_ring = None

    def run_once(self):
        stats = {'pending': 0, 'pending_done': 0, 'pending_left': 0,
                 'quarantined': 0, 'containers': 0, 'reported': 0,
                 'failures': 0, 'errors': 0}
        try:
            self.account_ring = load_ring('account', self.conf)
        except RingError as e:
            # the records still name their nodes; only the walk needs it
            self.log.error('no account ring: %s', e)
            self.account_ring = None
            stats['errors'] += 1
        with concurrent.futures.ThreadPoolExecutor(
                self.concurrency) as pool:
            for _dev, device_path in self.local_devices():
                records = async_pending.iter_pending(
                    device_path, account_update.ASYNC_DIR)
                self._each(pool, stats, records,
                           lambda p: self.replay(device_path, p))
                if self.account_ring is not None:
                    dbs = (db for _p, _h, db in iter_databases(device_path,
                                                               DATADIR))
                    self._each(pool, stats, dbs, self.report)
        return stats

    def _each(self, pool, stats, items, func):
        """Run func on every item in the pool; add up the counts."""
        items = iter(items)
        while True:
            batch = list(itertools.islice(items, 16 * self.concurrency))
            if not batch:
                return
            for counts in pool.map(func, batch):
                for key in counts:
                    stats[key] += 1

    # -- 1: replay undelivered updates --------------------------------

    def replay(self, device_path, path):
        """Send one saved update to the nodes still owed it."""
        try:
            try:
                with open(path, 'rb') as f:
                    record = account_update.parse_async_pending(f.read())
            except FileNotFoundError:
                return ()  # another updater finished it
            except ValueError as e:
                dest = ondisk.quarantine(device_path, path,
                                         account_update.ASYNC_DIR)
                if dest is None:
                    return ()
                self.log.warning('quarantined %s to %s: %s', path, dest, e)
                return ('quarantined',)
            nodes = account_update.record_nodes(record)
            left = [node for node in nodes if not account_update.settled(
                self.send(node, record['partition'], record['account'],
                          record['container'], record['headers']))]
            if not left:
                async_pending.remove(path)
                return ('pending', 'pending_done')
            if len(left) < len(nodes):
                ondisk.write_durably(
                    path, msgpack.packb(
                        account_update.with_nodes(record, left),
                        use_bin_type=True),
                    os.path.join(device_path, 'tmp'))
            return ('pending', 'pending_left')
        except Exception:
            self.log.exception('cannot replay %s', path)
            return ('errors',)

    # -- 2: report stale stats ----------------------------------------

    def report(self, db_file):
        """Send a container's stats if its account has not got them."""
        broker = ContainerBroker(db_file)
        try:
            try:
                info = broker.get_info()
            except DatabaseNotFound:
                return ()  # removed (replicated away) since we listed it
            if not account_update.needs_report(info):
                return ('containers',)
            if not info.get('account') or not info.get('container'):
                self.log.error('%s does not name its container', db_file)
                return ('containers', 'errors')
            with self._ring_lock:
                part, nodes = self.account_ring.get_nodes(info['account'])
            headers = account_update.update_headers(info, Timestamp.now())
            statuses = [self.send((dev['ip'], int(dev['port']),
                                   dev['device']), part, info['account'],
                                  info['container'], headers)
                        for dev in nodes]
            if not all(s is not None and 200 <= s < 300 for s in statuses):
                return ('containers', 'failures')
            broker.reported(info['put_timestamp'], info['delete_timestamp'],
                            info['object_count'], info['bytes_used'])
            return ('containers', 'reported')
        except (DatabaseError, sqlite3.Error, OSError) as e:
            self.log.error('cannot report %s: %s', db_file, e)
            return ('errors',)
        except Exception:
            self.log.exception('cannot report %s', db_file)
            return ('errors',)

    def send(self, node, partition, account, container, headers):
        """PUT the update to one account node; its status, None if none."""
        ip, port, device = node
        path = account_update.account_path(device, partition, account,
                                           container)
        try:
            status, _h, _b = backend.request(self.secret, ip, port, 'PUT',
                                             path, headers=headers,
                                             timeout=self.node_timeout)
        except backend.BackendError as e:
            self.log.info('account update not delivered: %s', e)
            return None
        self.log.debug('PUT %s:%d%s -> %d', ip, port, path, status)
        return status


main = daemon_main(ContainerUpdater)


if __name__ == '__main__':
    sys.exit(main())
