"""Probe 6: one device full.

Node 2's device is a small filesystem of its own (loop-mounted ext4, or
a size-limited tmpfs where loop devices are unavailable) that the test
fills to the last byte. Writes whose primary is that device must go to a
handoff and succeed; once space is freed, replication moves them home and
nothing is lost: every object on every primary, handoffs empty, every
container replica listing every object.
"""
import os

import pytest

from cluster import missing, totals
from convergence import (Ledger, check_handoffs_empty, check_listings,
                         check_primaries, check_proxy, converge,
                         partitions_of)
from proxyclient import etag_of

REPLICATOR = 'objstore.obj.replicator'
UPDATER = 'objstore.obj.updater'
FULL = 2
CLUSTER_OPTIONS = {'small_devices': {FULL: 32 << 20}}
OBJECTS = 40
pytestmark = pytest.mark.skipif(
    missing(REPLICATOR, UPDATER),
    reason='needs %s' % ', '.join(missing(REPLICATOR, UPDATER)))


def test_full_device_writes_go_to_handoffs(cluster, record):
    client = cluster.client()
    client.put_container('full')
    ledger = Ledger(client.account, 'full')
    filled = cluster.fill_device(FULL)
    full_dev = 'd%d' % FULL
    for i in range(OBJECTS):
        body = os.urandom(8192 + i)
        name = 'obj-%02d' % i
        reply = client.put_object('full', name, body)
        assert reply.status == 201, reply
        ledger.wrote(name, etag_of(body))

    diverted = 0
    for name in ledger.written:
        part, nodes = cluster.object_nodes(ledger.account, 'full', name)
        devices = {d['device'] for d in nodes}
        holders = set(cluster.object_dirs(ledger.account, 'full', name))
        assert full_dev not in holders, '%s written to the full device' % name
        if full_dev in devices:
            diverted += 1
            assert len(holders) == 3 and len(holders - devices) == 1, \
                '%s: want 2 primaries and a handoff, got %s' % (name,
                                                                holders)
    assert diverted, 'some objects should have %s as primary' % full_dev
    assert check_proxy(client, ledger) == []

    cluster.free_device(FULL)
    parts = partitions_of(cluster, ledger)
    counts = {}

    def passes():
        counts['replicator'] = totals(cluster.run_daemon(REPLICATOR))
        counts['updater'] = totals(cluster.run_daemon(UPDATER))

    result = converge(passes, lambda: check_primaries(cluster, ledger) +
                      check_handoffs_empty(cluster, parts) +
                      check_listings(cluster, ledger), max_rounds=3)
    record(converged_seconds=result.seconds, passes=result.rounds,
           objects_checked=len(ledger), diverted_to_handoffs=diverted,
           device=cluster.small_device_kind, filler_bytes=filled,
           counts=counts)
    assert not result.problems, result.summary()
    assert client.listing('full') == ledger.written
