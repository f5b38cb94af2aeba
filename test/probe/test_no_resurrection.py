"""Probe 3: DELETE while one primary is down.

The down primary keeps its old copy of each object. Once it is back and
the replicator has run, the tombstones must win everywhere: every primary
answers 404, no container replica lists the objects, and a second round
of replication (where the stale node pushes what it has) changes nothing.
The objects not deleted must still read back.
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
DOWN = 3
pytestmark = pytest.mark.skipif(
    missing(REPLICATOR, UPDATER),
    reason='needs %s' % ', '.join(missing(REPLICATOR, UPDATER)))


def test_deleted_objects_stay_deleted(cluster, record):
    client = cluster.client()
    client.put_container('undead')
    ledger = Ledger(client.account, 'undead')
    for i in range(30):
        body = os.urandom(800 + i)
        name = 'obj-%02d' % i
        assert client.put_object('undead', name, body).status == 201
        ledger.wrote(name, etag_of(body))
    doomed = sorted(ledger.written)[:20]
    stale = [n for n in doomed if 'd%d' % DOWN in cluster.object_dirs(
        ledger.account, 'undead', n)]
    assert stale, 'node %d should hold some of the doomed objects' % DOWN

    cluster.stop_server(DOWN, 'object')
    for name in doomed:
        reply = client.delete_object('undead', name)
        assert reply.status == 204, reply
        ledger.delete(name)
    cluster.start_server(DOWN, 'object')
    stale_reads = sum(client.get_object('undead', n).status == 200
                      for n in stale)

    parts = partitions_of(cluster, ledger)

    def passes():
        counts['replicator'] = totals(cluster.run_daemon(REPLICATOR))
        counts['updater'] = totals(cluster.run_daemon(UPDATER))

    def check():
        return check_primaries(cluster, ledger) + \
            check_handoffs_empty(cluster, parts) + \
            check_listings(cluster, ledger)

    counts = {}
    result = converge(passes, check, max_rounds=2)
    record(converged_seconds=result.seconds, passes=result.rounds,
           objects_checked=len(ledger), deleted=len(doomed),
           stale_copies=len(stale), stale_reads_before_replication=stale_reads,
           counts=counts)
    assert not result.problems, result.summary()
    # the stale node's own pass happened; another round changes nothing
    passes()
    assert check() == []
    assert check_proxy(client, ledger) == []
    assert client.listing('undead') == ledger.written
