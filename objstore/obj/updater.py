"""Object updater: replays container updates the object server could not
deliver, until every container listing shows every acknowledged write.

When a container server is down or slow during an object PUT or DELETE,
the object server still answers the client and leaves the update in
``<device>/async_pending/`` (async_pending.py, updates.py). Each pass of
this daemon walks those files on the node's devices and sends each update
again: a signed PUT or DELETE ``/<cdev>/<cpart>/<a>/<c>/<o>`` with the
saved headers, X-Timestamp included, so the container keeps whichever
version is newest however often or late an update arrives.

Where to: the container replica the file names, as long as the current
container ring still makes that device a primary of the container; after
a rebalance moved it away, the current primaries instead (the old device
hands its database over through replication, and would not list the
object once it has). A 2xx from every target removes the file; anything
else keeps it for the next pass. A file that cannot be read as an update
is moved to ``<device>/quarantined/async_pending/`` so it is neither lost
nor retried forever.

Two updaters on one node only send the same idempotent requests twice;
the unlink of a delivered file tolerates the other having removed it.
"""
import concurrent.futures
import itertools
import sys
import threading

from objstore.common import backend, config, ondisk
from objstore.common.daemon import (Daemon, conf_float, conf_positive_int,
                                    daemon_main, load_ring)
from objstore.obj import async_pending, updates
from rings.ring import RingError

OPS = ('PUT', 'DELETE')
DEFAULT_NODE_TIMEOUT = 3.0
DEFAULT_CONCURRENCY = 8


class Update:
    """One saved container update, checked."""

    __slots__ = ('op', 'account', 'container', 'obj', 'headers', 'node',
                 'partition')

    def __init__(self, op, account, container, obj, headers, node,
                 partition):
        self.op, self.account = op, account
        self.container, self.obj = container, obj
        self.headers = headers
        self.node = node              # (ip, port, device) it was meant for
        self.partition = partition    # the container partition, int


def parse_update(record):
    """An Update from the dict async_pending.load returned; ValueError."""
    op = record.get('op')
    if op not in OPS:
        raise ValueError('unknown op %r' % (op,))
    names = [record.get(k) for k in ('account', 'container', 'obj')]
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError('account, container and obj must be names')
    headers = record.get('headers')
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str)
            for k, v in headers.items()):
        raise ValueError('headers must map text to text')
    if 'X-Timestamp' not in headers:
        raise ValueError('no X-Timestamp')
    where = {'X-Container-Host': record.get('container_host'),
             'X-Container-Partition': record.get('container_partition'),
             'X-Container-Device': record.get('container_device')}
    if not all(isinstance(v, str) for v in where.values()):
        raise ValueError('no container host, partition and device')
    targets, partition = updates.parse_targets(where)
    if len(targets) != 1:
        raise ValueError('one container replica per update')
    return Update(op, *names, headers, targets[0], int(partition))


def choose_targets(update, part=None, primaries=None):
    """([(ip, port, device)], partition) to send ``update`` to.

    ``part``/``primaries``: the container's partition and primary devices
    in the current ring (None when there is no ring to ask). The replica
    the update names while it is still a primary, else every primary.
    """
    if primaries is None:
        return [update.node], update.partition
    nodes = [(dev['ip'], int(dev['port']), dev['device'])
             for dev in primaries]
    if update.node in nodes:
        return [update.node], part
    return nodes, part


class ObjectUpdater(Daemon):
    """Retry async pendings until the container listings are right."""

    section = 'object-updater'
    server_section = 'object-server'
    kind = 'object'

    def __init__(self, conf):
        super().__init__(conf)
        self.node_timeout = conf_float(conf, 'node_timeout',
                                       DEFAULT_NODE_TIMEOUT)
        self.concurrency = conf_positive_int(conf, 'concurrency',
                                             DEFAULT_CONCURRENCY)
        self.secret = config.backend_secret()
        self._ring_lock = threading.Lock()
        self.container_ring = None

    def run_once(self):
        stats = {'pending': 0, 'successes': 0, 'failures': 0,
                 'quarantined': 0, 'errors': 0}
        try:
            # read afresh each pass: a rebalance must redirect updates
            self.container_ring = load_ring('container', self.conf)
        except RingError as e:
            self.log.warning('no container ring (%s): updates go to the '
                             'replica they name', e)
            self.container_ring = None
        with concurrent.futures.ThreadPoolExecutor(
                self.concurrency) as pool:
            for _dev, device_path in self.local_devices():
                paths = async_pending.iter_pending(device_path)
                while True:
                    batch = list(itertools.islice(paths,
                                                  16 * self.concurrency))
                    if not batch:
                        break
                    for result in pool.map(
                            lambda p: self.process(device_path, p), batch):
                        if result is not None:
                            stats['pending'] += 1
                            stats[result] += 1
        return stats

    def process(self, device_path, path):
        """Deliver one saved update; returns the count it adds to."""
        try:
            try:
                update = parse_update(async_pending.load(path))
            except FileNotFoundError:
                return None  # delivered by another updater meanwhile
            except ValueError as e:
                dest = ondisk.quarantine(device_path, path,
                                         async_pending.ASYNC_DIR)
                if dest is None:
                    return None
                self.log.warning('quarantined %s to %s: %s', path, dest, e)
                return 'quarantined'
            targets, part = self.targets(update)
            delivered = [self.send(update, node, part) for node in targets]
            if all(delivered):
                async_pending.remove(path)
                return 'successes'
            return 'failures'
        except Exception:
            self.log.exception('cannot process %s', path)
            return 'errors'

    def targets(self, update):
        ring = self.container_ring
        if ring is None:
            return choose_targets(update)
        with self._ring_lock:
            part, primaries = ring.get_nodes(update.account,
                                             update.container)
        return choose_targets(update, part, primaries)

    def send(self, update, node, part):
        """True when the container server took the update (2xx)."""
        ip, port, device = node
        path = backend.device_path_of(device, part, update.account,
                                      update.container, update.obj)
        try:
            status, _, _ = backend.request(
                self.secret, ip, port, update.op, path,
                headers=update.headers, timeout=self.node_timeout)
        except backend.BackendError as e:
            self.log.info('update not delivered: %s', e)
            return False
        if 200 <= status < 300:
            self.log.debug('%s %s:%d%s -> %d', update.op, ip, port, path,
                           status)
            return True
        self.log.info('update %s %s:%d%s -> %d', update.op, ip, port, path,
                      status)
        return False


main = daemon_main(ObjectUpdater)


if __name__ == '__main__':
    sys.exit(main())
