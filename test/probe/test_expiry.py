"""Probe 5: objects with X-Delete-After: 2 really go away.

A read answers 404 as soon as X-Delete-At has passed; the expirer must
then remove the objects from every replica (a tombstone at the delete-at
time) and from every container replica's listing, and leave the
objects without an expiry alone.
"""
import os
import time

import pytest

from cluster import missing, totals
from convergence import (Ledger, check_listings, check_primaries,
                         converge)
from proxyclient import etag_of

EXPIRER = 'objstore.obj.expirer'
pytestmark = pytest.mark.skipif(missing(EXPIRER),
                                reason='%s not written yet' % EXPIRER)


def test_expired_objects_leave_disk_and_listing(cluster, record):
    client = cluster.client()
    client.put_container('expiring')
    ledger = Ledger(client.account, 'expiring')
    short = ['short-%d' % i for i in range(5)]
    for name in short + ['keeper-%d' % i for i in range(5)]:
        body = os.urandom(900)
        headers = {'X-Delete-After': '2'} if name in short else {}
        reply = client.put_object('expiring', name, body, headers)
        assert reply.status == 201, reply
        ledger.wrote(name, etag_of(body))
    assert set(client.listing('expiring')) == set(ledger.written)
    delete_at = max(int(client.request('HEAD', 'expiring', name).headers[
        'x-delete-at']) for name in short)
    time.sleep(max(0.0, delete_at - time.time()) + 0.2)
    for name in short:
        assert client.get_object('expiring', name).status == 404
        ledger.delete(name)
    assert set(client.listing('expiring')) >= set(short), \
        'the listing should still show expired objects before the expirer'

    counts = {}
    result = converge(
        lambda: counts.update(totals(cluster.run_daemon(EXPIRER))),
        lambda: check_primaries(cluster, ledger) +
        check_listings(cluster, ledger), max_rounds=2)
    record(converged_seconds=result.seconds, expirer_passes=result.rounds,
           objects_checked=len(ledger), expired=len(short),
           expirer_counts=counts)
    assert not result.problems, result.summary()
    for name in short:
        part, nodes = cluster.object_nodes(ledger.account, 'expiring', name)
        dirs = cluster.object_dirs(ledger.account, 'expiring', name)
        for dev in nodes:
            files = os.listdir(dirs[dev['device']])
            assert [f for f in files if f.endswith('.ts')], \
                '%s on %s: no tombstone, files %s' % (name, dev['device'],
                                                      files)
            assert not [f for f in files if f.endswith('.data')], files
    assert client.listing('expiring') == ledger.written
