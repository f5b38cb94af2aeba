"""Telling the account server about a container: now, or later.

A container PUT or DELETE names the account replica(s) to tell in
X-Account-Host / -Partition / -Device. The container server sends them a
signed PUT ``/<dev>/<part>/<account>/<container>`` with the container's
timestamps and stats, remembers the target in the container database,
and sends the stats again after object updates change them (coalesced:
one report per container in flight, plus one more if anything changed
meanwhile). A report that cannot be delivered is written as an "async
pending" file for the container updater to retry:
``<device>/async_pending_containers/<suffix>/<hash>-<timestamp>``.
"""
import json
import logging
import os

import msgpack

from objstore.common import backend, concurrency, ondisk
from objstore.common.constraints import check_name
from objstore.common.timestamp import Timestamp

ASYNC_DIR = 'async_pending_containers'
log = logging.getLogger('objstore.container')


class AccountTarget:
    """Where an account's replicas are: hosts and devices, one partition."""

    __slots__ = ('nodes', 'partition')

    def __init__(self, nodes, partition):
        self.nodes = nodes          # [(ip, port, device)]
        self.partition = partition

    @classmethod
    def from_headers(cls, headers):
        """The target in request headers, None when absent, ValueError.

        Hosts and devices may be comma-separated lists of equal length.
        """
        host = headers.get('X-Account-Host')
        part = headers.get('X-Account-Partition')
        dev = headers.get('X-Account-Device')
        if host is None and part is None and dev is None:
            return None
        if not host or not part or not dev:
            raise ValueError('X-Account-Host, -Partition and -Device go '
                             'together')
        if not part.strip().isdigit():
            raise ValueError('invalid X-Account-Partition')
        hosts = [h.strip() for h in host.split(',')]
        devs = [d.strip() for d in dev.split(',')]
        if len(hosts) != len(devs):
            raise ValueError('X-Account-Host and X-Account-Device differ '
                             'in length')
        nodes = []
        for h, d in zip(hosts, devs):
            ip, sep, port = h.rpartition(':')
            if not sep or not ip or not port.isdigit() or \
                    not 0 < int(port) < 65536:
                raise ValueError('invalid X-Account-Host %r' % h)
            if check_name(d, 255, 'device') or '/' in d:
                raise ValueError('invalid X-Account-Device %r' % d)
            nodes.append((ip.strip('[]'), int(port), d))
        return cls(nodes, int(part))

    def to_text(self):
        return json.dumps({'nodes': self.nodes, 'partition': self.partition})

    @classmethod
    def from_text(cls, text):
        """The target stored by to_text, or None for ''."""
        if not text:
            return None
        data = json.loads(text)
        return cls([tuple(n) for n in data['nodes']], data['partition'])


def update_headers(info, stats_timestamp):
    """The headers of an account update from a container's db info."""
    return {'X-Put-Timestamp': info['put_timestamp'],
            'X-Delete-Timestamp': info['delete_timestamp'],
            'X-Object-Count': str(info['object_count']),
            'X-Bytes-Used': str(info['bytes_used']),
            'X-Timestamp': Timestamp(stats_timestamp).internal}


def async_pending_path(device_root, hsh, timestamp):
    return os.path.join(device_root, ASYNC_DIR, hsh[-3:],
                        '%s-%s' % (hsh, Timestamp(timestamp).internal))


def write_async_pending(device_root, hsh, account, container, nodes,
                        partition, headers):
    """Save one undelivered account update, atomically and durably.

    The record (msgpack) names the request and the nodes still owed it:
    {'op', 'account', 'container', 'partition', 'headers',
    'nodes': [{'host': 'ip:port', 'device'}]}.
    """
    record = {'op': 'PUT', 'account': account, 'container': container,
              'partition': partition, 'headers': headers,
              'nodes': [{'host': '%s:%d' % (ip, port), 'device': device}
                        for ip, port, device in nodes]}
    path = async_pending_path(device_root, hsh, headers['X-Timestamp'])
    ondisk.write_durably(path, msgpack.packb(record, use_bin_type=True),
                         os.path.join(device_root, 'tmp'))
    return path


def parse_async_pending(data):
    """The record write_async_pending saved, from its bytes.

    Raises ValueError when the bytes are not such a record, so the
    updater can quarantine the file instead of retrying it forever.
    """
    try:
        record = msgpack.unpackb(data, raw=False)
    except Exception as e:
        raise ValueError('not msgpack: %s' % e)
    if not isinstance(record, dict):
        raise ValueError('not a map')
    for key in ('account', 'container'):
        if not isinstance(record.get(key), str) or not record[key]:
            raise ValueError('no %s' % key)
    if record.get('op') != 'PUT':
        raise ValueError('unknown op %r' % (record.get('op'),))
    partition = record.get('partition')
    if not isinstance(partition, int) or isinstance(partition, bool) or \
            partition < 0:
        raise ValueError('bad partition %r' % (partition,))
    headers = record.get('headers')
    if not isinstance(headers, dict) or 'X-Timestamp' not in headers or \
            not all(isinstance(k, str) and isinstance(v, str)
                    for k, v in headers.items()):
        raise ValueError('bad headers')
    record_nodes(record)
    return record


def record_nodes(record):
    """[(ip, port, device)] still owed a record's update (ValueError)."""
    nodes = record.get('nodes')
    if not isinstance(nodes, list):
        raise ValueError('no nodes')
    out = []
    for node in nodes:
        try:
            ip, sep, port = node['host'].rpartition(':')
            device = node['device']
        except (AttributeError, KeyError, TypeError):
            raise ValueError('bad node %r' % (node,))
        if not sep or not ip or not port.isdigit() or \
                not 0 < int(port) < 65536 or not isinstance(device, str) \
                or not device or '/' in device:
            raise ValueError('bad node %r' % (node,))
        out.append((ip.strip('[]'), int(port), device))
    return out


def with_nodes(record, nodes):
    """The record owing its update to ``nodes`` [(ip, port, device)] only.
    """
    return dict(record, nodes=[{'host': '%s:%d' % (ip, port),
                                'device': device}
                               for ip, port, device in nodes])


def settled(status):
    """Does this answer end the retries for a node?

    2xx: delivered. Other 4xx: retrying the same request cannot help (as
    in Reporter.send). None (unreachable) and 5xx/507: try again later.
    """
    return status is not None and status < 500


def needs_report(info):
    """Do a container's stats differ from what its account last heard?"""
    return (info['reported_object_count'], info['reported_bytes_used'],
            info['reported_put_timestamp'],
            info['reported_delete_timestamp']) != (
        info['object_count'], info['bytes_used'], info['put_timestamp'],
        info['delete_timestamp'])


def account_path(device, partition, account, container):
    """The backend path of an account update."""
    return '/%s/%d/%s/%s' % (device, partition, account, container)


class Reporter:
    """Sends account updates; saves the ones that fail.

    ``secret`` signs requests, ``timeout`` bounds each one, ``delay`` is
    how long a stats report waits to gather more changes.
    """

    def __init__(self, secret, timeout=3.0, delay=0.5):
        self.secret = secret
        self.timeout = timeout
        self.delay = delay
        self._pending = {}
        self._running = set()

    def send(self, device_root, hsh, account, container, target, headers):
        """Send to every node of ``target``; return the statuses.

        A node that is unreachable or answers 5xx/507 gets an async
        pending file; a 404 (no such account) is returned for the caller
        to act on, not retried.
        """
        path = '/%s/%d/%s/%s'

        def one(node):
            ip, port, device = node
            try:
                status, _h, _b = backend.request(
                    self.secret, ip, port, 'PUT',
                    path % (device, target.partition, account, container),
                    headers=headers, timeout=self.timeout)
            except backend.BackendError as e:
                log.warning('account update failed: %s', e)
                status = None
            return node, status

        statuses, failed = [], []
        pool = concurrency.GreenPool(len(target.nodes))
        for node, status in pool.imap(one, target.nodes):
            statuses.append(status)
            if status is None or status >= 500:
                failed.append(node)
        if failed:
            concurrency.run_in_thread(
                write_async_pending, device_root, hsh, account, container,
                failed, target.partition, headers)
        return statuses

    def report(self, broker, device_root, hsh, info=None, target=None):
        """Send the container's current state to ``target``.

        Without ``target``, to the one remembered in the database.

        Records what was acknowledged by every node so nothing is sent
        twice; returns the statuses ([] when there is no target).
        """
        if info is None:
            info = concurrency.run_in_thread(broker.get_info)
        if target is None:
            target = AccountTarget.from_text(info.get('account_target'))
        if target is None:
            return []
        headers = update_headers(info, Timestamp.now())
        statuses = self.send(device_root, hsh, broker.account,
                             broker.container, target, headers)
        if statuses and all(s is not None and 200 <= s < 300
                            for s in statuses):
            concurrency.run_in_thread(
                broker.reported, info['put_timestamp'],
                info['delete_timestamp'], info['object_count'],
                info['bytes_used'])
        return statuses

    def schedule(self, broker, device_root, hsh):
        """Report the stats soon, in the background, once per burst."""
        key = broker.db_file
        self._pending[key] = (broker, device_root, hsh)
        if key not in self._running:
            self._running.add(key)
            concurrency.spawn_n(self._run, key)

    def _run(self, key):
        """Report every ``delay`` while the container keeps changing.

        The pause comes before every report, not only the first: under a
        steady stream of object writes a container would otherwise report
        back to back, one account PUT per replica each time, for stats a
        listing shows a moment later anyway.
        """
        try:
            while True:
                concurrency.sleep(self.delay)
                if key not in self._pending:
                    break
                broker, device_root, hsh = self._pending.pop(key)
                try:
                    info = concurrency.run_in_thread(broker.get_info)
                    if (info['reported_object_count'],
                            info['reported_bytes_used'],
                            info['reported_put_timestamp'],
                            info['reported_delete_timestamp']) != (
                            info['object_count'], info['bytes_used'],
                            info['put_timestamp'],
                            info['delete_timestamp']):
                        self.report(broker, device_root, hsh, info)
                except Exception:
                    log.exception('stats report for %s failed', key)
        finally:
            self._running.discard(key)
