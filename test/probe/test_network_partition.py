"""Probe 7: a node cut off from the network during a write load.

A node holding a replica of the container disappears from the network
(its link goes down: peers see timeouts, not refusals; SIGSTOP where
there are no namespaces) while three client threads keep writing, then
comes back. With three replicas on four nodes every write still has two
primaries and a handoff, so quorum allows no failed request at all; a
PUT slower than CLIENT_TIMEOUT counts as failed. After reconnection,
replication (objects and containers) and the updater must converge the
cluster: every acknowledged write on every primary, handoffs empty, every
container replica listing every object.
"""
import pytest

from cluster import missing, totals
from convergence import (Ledger, check_handoffs_empty, check_listings,
                         check_primaries, converge, partitions_of)
from workload import WriteLoad

REPLICATOR = 'objstore.obj.replicator'
UPDATER = 'objstore.obj.updater'
CONTAINER_REPLICATOR = 'objstore.container.replicator'
# A PUT slower than this counts as failed: six times the proxy's
# node_timeout, ample for a proxy that answers at quorum.
CLIENT_TIMEOUT = 30.0
pytestmark = pytest.mark.skipif(
    missing(REPLICATOR, UPDATER, CONTAINER_REPLICATOR),
    reason='needs %s' % ', '.join(missing(REPLICATOR, UPDATER,
                                          CONTAINER_REPLICATOR)))


def test_cut_off_node_during_write_load(cluster, record):
    client = cluster.client(timeout=CLIENT_TIMEOUT)
    client.put_container('partition')
    ledger = Ledger(client.account, 'partition')
    _, cnodes = cluster.ring('container').get_nodes(ledger.account,
                                                   'partition')
    cut = cluster.node_of(cnodes[0]).number
    load = WriteLoad(client, ledger, threads=3).start()
    try:
        load.wait_for(30)
        cluster.cut(cut)
        before_cut = load.requests
        load.wait_for(before_cut + 90)
        during_cut = load.requests - before_cut
        cluster.reconnect(cut)
        load.wait_for(load.requests + 30)
    finally:
        load.stop()
    slowest = round(load.slowest, 2)
    assert not load.failures, (load.failures[:10], slowest)
    assert during_cut >= 90

    parts = partitions_of(cluster, ledger)
    counts = {'replicator': [], 'updater': [], 'container-replicator': []}

    def passes():
        # a container replica that was cut off also misses the updates of
        # writes whose object slot had no node left (quorum without it):
        # the container replicator brings those rows from its peers
        counts['replicator'].append(totals(cluster.run_daemon(REPLICATOR)))
        counts['updater'].append(totals(cluster.run_daemon(UPDATER)))
        counts['container-replicator'].append(
            totals(cluster.run_daemon(CONTAINER_REPLICATOR)))

    result = converge(passes, lambda: check_primaries(cluster, ledger) +
                      check_handoffs_empty(cluster, parts) +
                      check_listings(cluster, ledger), max_rounds=3)
    record(converged_seconds=result.seconds, passes=result.rounds,
           objects_checked=len(ledger), requests=load.requests,
           failed_requests=len(load.failures), writes_while_cut=during_cut,
           slowest_request_seconds=slowest, cut_node=cut, counts=counts)
    assert not result.problems, result.summary()
    assert client.listing('partition') == ledger.written
