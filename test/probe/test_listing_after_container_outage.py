"""Probe 4: a container server down while objects are written.

The object servers cannot tell that container replica about the new
objects, so they leave async pendings; the writes still succeed. Once
the container server is back, one object-updater pass must make every
container replica list every acknowledged object with its ETag.
"""
import os

import pytest

from cluster import missing, totals
from convergence import (Ledger, check_listings, check_primaries,
                         converge)
from proxyclient import etag_of

UPDATER = 'objstore.obj.updater'
OBJECTS = 30
pytestmark = pytest.mark.skipif(missing(UPDATER),
                                reason='%s not written yet' % UPDATER)


def test_listing_complete_after_updater(cluster, record):
    client = cluster.client()
    client.put_container('listed')
    ledger = Ledger(client.account, 'listed')
    cpart, cnodes = cluster.ring('container').get_nodes(ledger.account,
                                                       'listed')
    down = cluster.node_of(cnodes[0])
    cluster.stop_server(down.number, 'container')
    for i in range(OBJECTS):
        body = os.urandom(700 + i)
        name = 'obj-%03d' % i
        reply = client.put_object('listed', name, body)
        assert reply.status == 201, reply
        ledger.wrote(name, etag_of(body))
    pending = sum(len(cluster.async_pendings(n)) for n in cluster.nodes)
    assert pending >= OBJECTS, 'expected an async pending per object'
    cluster.start_server(down.number, 'container')
    stale = cluster.direct_listing(cnodes[0], cpart, ledger.account,
                                   'listed')
    assert not stale, 'the restarted replica should list nothing yet'

    counts = {}
    result = converge(
        lambda: counts.update(totals(cluster.run_daemon(UPDATER))),
        lambda: check_listings(cluster, ledger), max_rounds=2)
    left = sum(len(cluster.async_pendings(n)) for n in cluster.nodes)
    record(converged_seconds=result.seconds, updater_passes=result.rounds,
           objects_checked=len(ledger), async_pendings_before=pending,
           async_pendings_after=left, updater_counts=counts)
    assert not result.problems, result.summary()
    assert result.rounds == 1, 'one updater pass should be enough'
    assert left == 0
    assert check_primaries(cluster, ledger) == []
    assert client.listing('listed') == ledger.written
