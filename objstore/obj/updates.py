"""Telling the container server about an object PUT or DELETE.

The proxy names the container replica(s) this object server must update
in X-Container-Host/-Partition/-Device (comma-separated lists may name
several). An update that does not get a 2xx in time is saved as an async
pending (async_pending.py) for the updater to retry, so the client's
write still succeeds.
"""
import logging

import msgpack

from objstore.common import backend
from objstore.common.group_commit import GroupCommit, call
from objstore.obj import async_pending

log = logging.getLogger('objstore.obj.updates')


def parse_targets(headers):
    """[(ip, port, device)] and the partition from the request headers.

    Returns ([], None) when no container is named; raises ValueError on
    malformed values (the request is then refused before any write).
    """
    hosts = headers.get('X-Container-Host')
    partition = headers.get('X-Container-Partition')
    devices = headers.get('X-Container-Device')
    if not hosts and not partition and not devices:
        return [], None
    if not (hosts and partition and devices):
        raise ValueError('X-Container-Host, -Partition and -Device go '
                         'together')
    if not partition.strip().isdigit():
        raise ValueError('invalid X-Container-Partition')
    hosts = [h.strip() for h in hosts.split(',')]
    devices = [d.strip() for d in devices.split(',')]
    if len(hosts) != len(devices):
        raise ValueError('X-Container-Host and -Device differ in count')
    targets = []
    for host, device in zip(hosts, devices):
        ip, colon, port = host.rpartition(':')
        if not colon or not ip or not port.isdigit() or \
                not 0 < int(port) < 65536 or not device or '/' in device:
            raise ValueError('invalid X-Container-Host %r' % host)
        targets.append((ip.strip('[]'), int(port), device))
    return targets, partition.strip()


# Stored object metadata with which middleware makes the container row
# show something else than the object itself (an SLO manifest's row shows
# the large object's size; a symlink's row carries its target in the
# content type). Being system metadata, it is kept by a metadata POST
# (diskfile.merge_post_metadata) and never set or seen by clients.
OVERRIDE_PREFIX = 'x-object-sysmeta-container-update-override-'
OVERRIDES = (('size', 'X-Size'), ('etag', 'X-Etag'),
             ('content-type', 'X-Content-Type'))


def put_update_headers(metadata, size, content_type, etag):
    """The X-Size/-Content-Type/-Etag a PUT's container update carries:
    the object's own, or the overrides in its stored ``metadata``
    (a non-integer size override is ignored, never a bad row)."""
    headers = {'X-Size': str(size), 'X-Content-Type': content_type,
               'X-Etag': etag}
    found = {k.lower()[len(OVERRIDE_PREFIX):]: v
             for k, v in metadata.items()
             if k.lower().startswith(OVERRIDE_PREFIX)}
    for suffix, header in OVERRIDES:
        value = found.get(suffix)
        if value is None:
            continue
        value = str(value).strip()
        if header == 'X-Size' and not value.isdigit():
            continue
        headers[header] = value
    return headers


def update_container(secret, targets, partition, op, account, container,
                     obj, headers, timeout):
    """Send the update to each target; return those that failed."""
    failed = []
    for ip, port, device in targets:
        path = backend.device_path_of(device, partition, account, container,
                                      obj)
        try:
            status, _, _ = backend.request(secret, ip, port, op, path,
                                           headers=headers, timeout=timeout)
            if 200 <= status < 300:
                continue
            log.warning('container update %s %s:%d%s -> %d', op, ip, port,
                        path, status)
        except backend.BackendError as e:
            log.warning('container update failed: %s', e)
        failed.append((ip, port, device))
    return failed


def update_row(op, obj, headers):
    """The container row an update carries, as UPDATE sends it."""
    deleted = int(op == 'DELETE')
    return {'name': obj, 'created_at': headers['X-Timestamp'],
            'size': 0 if deleted else int(headers.get('X-Size', 0)),
            'content_type': headers.get('X-Content-Type', ''),
            'etag': headers.get('X-Etag', ''), 'deleted': deleted}


class Announcement:
    """The updates one write announced (UpdateBatcher.announce)."""

    def __init__(self, batches, keys):
        self._batches = batches
        self._keys = keys

    def withdraw(self):
        """The updates are here, or will not come (done once)."""
        keys, self._keys = self._keys, []
        for key in keys:
            self._batches.withdraw(key)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.withdraw()


class UpdateBatcher:
    """An object server's container updates, batched per replica.

    Each update used to be its own request: at concurrency 32 a
    container server spent most of its CPU on HTTP for single rows. The
    updates that queue up for one container replica while a request to
    it is in flight go together in its next request (the container
    server's UPDATE verb, a msgpack list of rows), the same group commit
    the container server does for its database. Every caller still
    waits for its own row's answer, so a failed row becomes an async
    pending exactly as before (which the object updater replays one by
    one as PUT/DELETE); a lone update waits for nobody.

    A PUT or DELETE announces its update (``announce``) before its own
    fsync'd commit, and a batch waits, up to ``MAX_WAIT``, while updates
    are announced and not yet here. In the 4 KiB PUT and DELETE bench at
    concurrency 32 that took the requests to container servers from
    about 10200 to 5100 for 6000 objects, and their CPU down by a third:
    each request a container server does not have to parse is CPU for
    the next object.
    """

    MAX_WAIT = 0.05

    def __init__(self, secret, timeout):
        self.secret = secret
        self.timeout = timeout
        self._batches = GroupCommit(self._send, run=call,
                                    max_wait=self.MAX_WAIT)

    @staticmethod
    def _keys(targets, partition, account, container):
        return [(ip, port, device, partition, account, container)
                for ip, port, device in targets]

    def announce(self, targets, partition, account, container):
        """Announce an update to come, before the write it follows; hand
        the Announcement to ``update``. Use it as a context manager: what
        ``update`` did not take is withdrawn on leaving, so a write that
        fails never leaves a batch waiting for it."""
        keys = self._keys(targets, partition, account, container)
        for key in keys:
            self._batches.expect(key)
        return Announcement(self._batches, keys)

    def update(self, targets, partition, op, account, container, obj,
               headers, announced=None):
        """Send the update to each target; return those that failed.

        ``announced`` is ``announce``'s Announcement for these targets.
        All of them count as here as soon as the first is queued: with
        several targets, a batch for the second must not wait for a row
        queued behind the first's, which may itself wait on a row of a
        write that holds the second's batch."""
        row = update_row(op, obj, headers)
        if announced is not None:
            # no switch to another green thread until submit has queued
            # the row, so the batch it wakes cannot go without it
            announced.withdraw()
        failed = []
        for key in self._keys(targets, partition, account, container):
            if not self._batches.submit(key, key, row):
                failed.append(key[:3])
        return failed

    def _send(self, key, rows):
        """Per row, True when the container replica stored it."""
        ip, port, device, partition, account, container = key
        path = backend.device_path_of(device, partition, account, container)
        try:
            status, _, _ = backend.request(
                self.secret, ip, port, 'UPDATE', path,
                headers={'Content-Type': 'application/x-msgpack'},
                body=msgpack.packb(rows, use_bin_type=True),
                timeout=self.timeout)
        except backend.BackendError as e:
            log.warning('container update failed: %s', e)
            return [False] * len(rows)
        if not 200 <= status < 300:
            log.warning('container update UPDATE %s:%d%s (%d rows) -> %d',
                        ip, port, path, len(rows), status)
        return [200 <= status < 300] * len(rows)


def save_pending(device_path, hsh, timestamp, failed, partition, op,
                 account, container, obj, headers):
    """One async pending per failed target (blocking: fsync)."""
    for ip, port, device in failed:
        update = {'op': op, 'account': account, 'container': container,
                  'obj': obj, 'headers': headers,
                  'container_host': '%s:%d' % (ip, port),
                  'container_partition': partition,
                  'container_device': device}
        stamp = timestamp if len(failed) == 1 else \
            '%s.%s' % (timestamp, device)
        async_pending.save(device_path, hsh, stamp, update)
