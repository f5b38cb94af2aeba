"""Telling the container server about an object PUT or DELETE.

The proxy names the container replica(s) this object server must update
in X-Container-Host/-Partition/-Device (comma-separated lists may name
several). An update that does not get a 2xx in time is saved as an async
pending (async_pending.py) for the updater to retry, so the client's
write still succeeds.
"""
import logging

from objstore.common import backend
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
