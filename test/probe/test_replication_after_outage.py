"""Probe 1: one object server down during 100 PUTs, then back.

While it is down the proxy writes its replicas to handoff devices, and
every PUT still succeeds. After the server returns, a single
object-replicator pass on every node must put every replica on its
primary and leave the handoffs empty.
"""
import os

import pytest

from cluster import missing, totals
from convergence import (Ledger, check_handoffs_empty, check_primaries,
                         check_proxy, converge, partitions_of)
from proxyclient import etag_of

REPLICATOR = 'objstore.obj.replicator'
DOWN = 2
OBJECTS = 100
pytestmark = pytest.mark.skipif(missing(REPLICATOR),
                                reason='%s not written yet' % REPLICATOR)


def test_one_replication_pass_after_outage(cluster, record):
    client = cluster.client()
    client.put_container('outage')
    ledger = Ledger(client.account, 'outage')
    cluster.stop_server(DOWN, 'object')
    for i in range(OBJECTS):
        body = os.urandom(1024 + 37 * i)
        name = 'obj-%03d' % i
        reply = client.put_object('outage', name, body)
        assert reply.status == 201, reply
        ledger.wrote(name, etag_of(body))
    parts = partitions_of(cluster, ledger)
    on_handoffs = check_handoffs_empty(cluster, parts)
    assert on_handoffs, 'the outage should have sent replicas to handoffs'
    cluster.start_server(DOWN, 'object')

    counts = {}
    result = converge(
        lambda: counts.update(totals(cluster.run_daemon(REPLICATOR))),
        lambda: check_primaries(cluster, ledger) +
        check_handoffs_empty(cluster, parts), max_rounds=1)
    record(converged_seconds=result.seconds, replicator_passes=result.rounds,
           objects_checked=len(ledger), partitions_checked=len(parts),
           handoff_partitions_before=len(on_handoffs),
           replicator_counts=counts)
    assert not result.problems, result.summary()
    assert check_proxy(client, ledger) == []
