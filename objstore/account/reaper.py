"""objstore-account-reaper: empty the accounts a reseller admin deleted.

An account DELETE only marks the account database deleted; its
containers and objects stay where they are. This daemon finds the
deleted account databases on its node's devices and, once
``delay_reaping`` seconds have passed since the delete (a grace period
for noticing a mistaken delete before any data goes), removes what they
held:

for every container the local account database lists, it pages through
the container's listing (a signed GET to the first container primary
that answers), DELETEs each object on all of its object primaries (one
X-Timestamp per object, with X-Container-Host/-Partition/-Device so the
listing follows), then DELETEs the container on its primaries (with
X-Account-Host/... so the account hears of it).

Every step is an idempotent request with a fresh timestamp, so every
node holding a copy of the account database reaps it (simpler and more
robust than electing one: no reaper waits for a dead peer; the price is
that the copies' reapers list the same containers), a killed pass leaves
nothing half-done that the next one cannot finish, and reapers running
at once only repeat requests: an object DELETE refused with 409 because
another reaper's newer tombstone is there counts as done once a HEAD
says 404. A failure (a node down, a container that still lists objects)
leaves that container for the next pass; the pass goes on with the
others.
"""
import json
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from objstore.account.broker import AccountBroker
from objstore.common import backend
from objstore.common.config import backend_secret
from objstore.common.daemon import (Daemon, conf_float, conf_int,
                                    daemon_main, iter_databases, load_ring)
from objstore.common.db import DatabaseError
from objstore.common.timestamp import Timestamp

DATADIR = 'accounts'
LISTING_LIMIT = 1000


class ReapFailed(Exception):
    """A container could not be emptied or deleted in this pass."""


def _host(node):
    return '%s:%d' % (node['ip'], node['port'])


def pair_headers(kind, part, nodes, index):
    """X-<Kind>-Host/-Partition/-Device naming ``nodes[index]`` (each of
    the N replicas we write tells a different replica of the level
    above, as the proxy does)."""
    node = nodes[index % len(nodes)]
    return {'X-%s-Host' % kind: _host(node),
            'X-%s-Partition' % kind: str(part),
            'X-%s-Device' % kind: node['device']}


class AccountReaper(Daemon):
    """Remove the containers and objects of deleted accounts."""

    section = 'account-reaper'
    server_section = 'account-server'
    kind = 'account'
    default_interval = 3600.0

    def __init__(self, conf):
        super().__init__(conf)
        self.delay_reaping = conf_float(conf, 'delay_reaping', 0.0)
        self.concurrency = max(1, conf_int(conf, 'concurrency', 4))
        self.node_timeout = conf_float(conf, 'node_timeout', 10.0)
        # names per container listing page (and account DB page)
        self.listing_limit = max(1, conf_int(conf, 'listing_limit',
                                             LISTING_LIMIT))
        self.secret = backend_secret()
        self._rings = {}

    def ring_of(self, kind):
        if kind == self.kind:
            return self.ring
        if kind not in self._rings:
            self._rings[kind] = load_ring(kind, self.conf)
        return self._rings[kind]

    # -- the pass -------------------------------------------------------

    def run_once(self):
        stats = Counter(accounts=0, containers_deleted=0, objects_deleted=0,
                        failures=0)
        now = time.time()
        with ThreadPoolExecutor(self.concurrency) as pool:
            for _dev, path in self.local_devices():
                for _part, _hash, db_file in iter_databases(path, DATADIR):
                    found = self._reapable(db_file, now, stats)
                    if found is None:
                        continue
                    stats['accounts'] += 1
                    try:
                        self.reap_account(*found, pool=pool, stats=stats)
                    except Exception:
                        # one bad database must not stop the others
                        self.log.exception('reaping %s failed', db_file)
                        stats['failures'] += 1
        return dict(stats)

    def _reapable(self, db_file, now, stats):
        """(broker, account name) when the database was deleted at least
        delay_reaping seconds ago, else None."""
        broker = AccountBroker(db_file)
        try:
            info = broker.get_info()
        except DatabaseError:
            return None  # removed meanwhile
        except Exception as e:
            self.log.warning('cannot read %s: %s', db_file, e)
            stats['failures'] += 1
            return None
        if not broker.info_is_deleted(info) or not info.get('account'):
            return None
        if float(Timestamp(info['delete_timestamp'])) + \
                self.delay_reaping > now:
            return None
        return broker, info['account']

    def reap_account(self, broker, account, pool, stats):
        """Reap every container the account database lists."""
        marker = ''
        while True:
            try:
                rows = broker.list_containers(self.listing_limit,
                                              marker=marker)
            except DatabaseError:
                return
            if not rows:
                return
            for row in rows:
                try:
                    if self.reap_container(account, row['name'], pool,
                                           stats):
                        stats['containers_deleted'] += 1
                except ReapFailed as e:
                    self.log.warning('reaping /%s/%s: %s', account,
                                     row['name'], e)
                    stats['failures'] += 1
            marker = rows[-1]['name']

    # -- one container --------------------------------------------------

    def reap_container(self, account, container, pool, stats):
        """Delete the container's objects, then the container.

        True when this call deleted it; False when it was gone already;
        ReapFailed when it must wait for the next pass. A replica that
        refuses the DELETE as not empty (it lists rows the first listing
        lacked, or another reaper's container updates are still on their
        way) is emptied from its own listing and asked once more.
        """
        part, nodes = self.ring_of('container').get_nodes(account, container)
        if not self.empty_container(account, container, part, nodes, nodes,
                                    pool, stats):
            return False  # no container (any more)
        statuses = self.delete_container(account, container, part, nodes)
        if all(s == 404 for s in statuses):
            return False
        refused = [n for n, s in zip(nodes, statuses) if s == 409]
        if refused:
            self.empty_container(account, container, part, nodes, refused,
                                 pool, stats)
            again = self.delete_container(account, container, part, nodes)
            statuses = [s if s == 204 else s2
                        for s, s2 in zip(statuses, again)]
        if sum(s in (204, 404) for s in statuses) > len(nodes) // 2:
            return True
        raise ReapFailed('container DELETE answers %s' % statuses)

    def empty_container(self, account, container, part, nodes, sources,
                        pool, stats):
        """DELETE every object the listing of ``sources`` (some of the
        container's primary ``nodes``) names; False when none of them has
        the container, ReapFailed when an object could not be deleted."""
        failed = 0
        marker = ''
        while True:
            names = self.list_objects(account, container, part, sources,
                                      marker)
            if names is None:
                if marker:
                    break  # deleted under us by another reaper
                return False
            if not names:
                break
            results = pool.map(
                lambda obj: self.delete_object(account, container, obj,
                                               part, nodes), names)
            for ok in results:
                if ok:
                    stats['objects_deleted'] += 1
                else:
                    failed += 1
            marker = names[-1]
        if failed:
            raise ReapFailed('%d objects not deleted' % failed)
        return True

    def list_objects(self, account, container, part, nodes, marker):
        """A page of object names after ``marker``; None when the
        container does not exist; ReapFailed when no primary answers."""
        query = urlencode({'format': 'json', 'marker': marker,
                           'limit': str(self.listing_limit)})
        missing = 0
        for node in nodes:
            path = backend.device_path_of(node['device'], part, account,
                                          container)
            try:
                status, _headers, body = backend.request(
                    self.secret, node['ip'], node['port'], 'GET', path,
                    query=query, timeout=self.node_timeout)
            except backend.BackendError as e:
                self.log.info('listing: %s', e)
                continue
            if status == 404:
                missing += 1
                continue
            if status == 204:
                return []
            if status == 200:
                try:
                    return [item['name'] for item in json.loads(body)
                            if 'name' in item]
                except (ValueError, TypeError) as e:
                    self.log.warning('bad listing from %s: %s',
                                     _host(node), e)
                    continue
            self.log.info('listing /%s/%s on %s: %d', account, container,
                          _host(node), status)
        if missing == len(nodes):
            return None
        raise ReapFailed('no container primary gave a listing')

    def delete_object(self, account, container, obj, container_part,
                      container_nodes):
        """DELETE one object on all its primaries; True when a majority
        took it (404 counts: nothing there to delete)."""
        part, nodes = self.ring_of('object').get_nodes(account, container,
                                                       obj)
        timestamp = Timestamp.now().internal
        path_args = (part, account, container, obj)
        done = 0
        for index, node in enumerate(nodes):
            headers = {'X-Timestamp': timestamp}
            headers.update(pair_headers('Container', container_part,
                                        container_nodes, index))
            status = self._send(node, 'DELETE', path_args, headers)
            if status == 409:
                # a newer file is there: another reaper's tombstone
                # (done) or a write newer than ours (not done)
                status = self._send(node, 'HEAD', path_args, {})
            if status in (204, 404):
                done += 1
        return done > len(nodes) // 2

    def delete_container(self, account, container, part, nodes):
        """DELETE the container on its primaries; their statuses."""
        account_part, account_nodes = self.ring.get_nodes(account)
        timestamp = Timestamp.now().internal
        statuses = []
        for index, node in enumerate(nodes):
            headers = {'X-Timestamp': timestamp}
            headers.update(pair_headers('Account', account_part,
                                        account_nodes, index))
            statuses.append(self._send(node, 'DELETE',
                                       (part, account, container), headers))
        return statuses

    def _send(self, node, method, path_args, headers):
        """Status of a signed request, None when the node did not answer."""
        path = backend.device_path_of(node['device'], *path_args)
        try:
            status, _headers, _body = backend.request(
                self.secret, node['ip'], node['port'], method, path,
                headers=headers, timeout=self.node_timeout)
        except backend.BackendError as e:
            self.log.info('reaper: %s', e)
            return None
        if status not in (204, 404, 409):
            self.log.info('reaper: %s %s on %s: %d', method, path,
                          _host(node), status)
        return status


main = daemon_main(AccountReaper)


if __name__ == '__main__':
    sys.exit(main())
