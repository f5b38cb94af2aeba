"""Probe 8: a fifth node joins and the rings are rebalanced under reads.

Clients keep reading while the operator adds node 5 to the account,
container and object rings (at most one replica of a partition moves per
rebalance) and the replicators move the data. No read may fail at any
point: before the servers reload the new ring, while new primaries are
still empty, or after the old holders let go. At the end every object is
on its new primaries, nothing is left where the ring no longer wants it,
and the container's databases answer from their new primaries.
"""
import os
import time

import pytest

from cluster import missing, totals
from convergence import (Ledger, check_handoffs_empty, check_listings,
                         check_primaries, converge, partitions_of)
from proxyclient import etag_of
from workload import ReadLoad

REPLICATORS = ('objstore.obj.replicator', 'objstore.container.replicator',
               'objstore.account.replicator')
OBJECTS = 60
# servers and proxy look at the ring file every 15 s; read past that
RING_RELOAD = 16.0
pytestmark = pytest.mark.skipif(
    missing(*REPLICATORS),
    reason='needs %s' % ', '.join(missing(*REPLICATORS)))


def primaries(cluster, ledger):
    ring = cluster.ring('object')
    return {name: {d['device'] for d in ring.get_nodes(
        ledger.account, ledger.container, name)[1]}
        for name in ledger.written}


def check_databases(cluster, ledger):
    """Problems: container/account DBs away from their primaries."""
    problems = []
    for kind, names in (('container', (ledger.account, ledger.container)),
                        ('account', (ledger.account,))):
        part, nodes = cluster.ring(kind).get_nodes(*names)
        wanted = {d['device'] for d in nodes}
        holders = set(cluster.hash_dirs(part, kind))
        if holders != wanted:
            problems.append('%s DB of part %d on %s, want %s' % (
                kind, part, sorted(holders), sorted(wanted)))
    return problems


def test_add_node_and_rebalance_under_reads(cluster, record):
    client = cluster.client()
    client.put_container('moving')
    ledger = Ledger(client.account, 'moving')
    for i in range(OBJECTS):
        body = os.urandom(600 + 11 * i)
        name = 'obj-%02d' % i
        assert client.put_object('moving', name, body).status == 201
        ledger.wrote(name, etag_of(body))
    before = primaries(cluster, ledger)
    load = ReadLoad(client, ledger, threads=2).start()
    try:
        load.wait_for(20)
        number, moved_parts = cluster.add_node()
        ring_written = time.monotonic()
        after = primaries(cluster, ledger)
        moved = [n for n in ledger.written if before[n] != after[n]]
        new_dev = 'd%d' % number
        assert moved and all(new_dev in after[n] for n in moved)
        parts = sorted(set(partitions_of(cluster, ledger)))
        counts = {}

        def passes():
            for module in REPLICATORS:
                counts[module.split('.')[1]] = totals(
                    cluster.run_daemon(module))

        result = converge(passes, lambda: check_primaries(cluster, ledger) +
                          check_handoffs_empty(cluster, parts) +
                          check_databases(cluster, ledger) +
                          check_listings(cluster, ledger), max_rounds=3)
        reads_before_done = load.requests
        while time.monotonic() - ring_written < RING_RELOAD:
            time.sleep(0.2)
        load.wait_for(reads_before_done + 20)
    finally:
        load.stop()
    record(converged_seconds=result.seconds, passes=result.rounds,
           objects_checked=len(ledger), objects_moved=len(moved),
           partitions_moved=moved_parts, reads=load.requests,
           failed_reads=len(load.failures),
           slowest_read_seconds=round(load.slowest, 2), counts=counts)
    assert not result.problems, result.summary()
    assert not load.failures, load.failures[:10]
    assert client.listing('moving') == ledger.written
