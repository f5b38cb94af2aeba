"""Probe 2: a byte flips in one replica on disk.

Rotten replicas on different nodes: one the auditor finds, one a client
read meets first. The auditor must quarantine its find, the object server
must quarantine the one a read meets (and the read fail over to a good
replica), no GET may hand out the rotten bytes, and the replicator must
put a good copy back on every primary.

An object bigger than one read chunk whose *first* chunk rotted is a
case apart: the object server only knows the MD5 is wrong after it has
streamed the early chunks (it holds back the last one), so those bytes
are on the wire before anyone can know. What must never happen is a
complete 200 body that differs from its ETag.
"""
import os

import pytest

from cluster import missing, totals
from convergence import Ledger, check_primaries, converge
from proxyclient import etag_of

from objstore.obj.diskfile import READ_CHUNK_SIZE

AUDITOR = 'objstore.obj.auditor'
REPLICATOR = 'objstore.obj.replicator'
CLUSTER_OPTIONS = {'daemon_conf': {'object-auditor': {
    'files_per_second': '0', 'bytes_per_second': '0'}}}
READS = 6
pytestmark = pytest.mark.skipif(
    missing(AUDITOR, REPLICATOR),
    reason='needs %s' % ', '.join(missing(AUDITOR, REPLICATOR)))


def flip_byte(hash_dir, offset):
    """Invert one content byte of the replica's .data file."""
    data = [f for f in os.listdir(hash_dir) if f.endswith('.data')]
    assert len(data) == 1, os.listdir(hash_dir)
    path = os.path.join(hash_dir, data[0])
    fd = os.open(path, os.O_RDWR)
    try:
        byte = os.pread(fd, 1, offset)
        os.pwrite(fd, bytes([byte[0] ^ 0xff]), offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_objects(client, container, bodies):
    client.put_container(container)
    ledger = Ledger(client.account, container)
    for name, body in bodies.items():
        assert client.put_object(container, name, body).status == 201
        ledger.wrote(name, etag_of(body))
    return ledger


def rot(cluster, ledger, name, replica, offset):
    """Flip a byte of the replica on the ``replica``-th primary (ring
    order: the proxy reads that one first when replica is 0)."""
    part, nodes = cluster.object_nodes(ledger.account, ledger.container,
                                       name)
    dev = nodes[replica]
    hash_dir = cluster.object_dirs(ledger.account, ledger.container,
                                   name)[dev['device']]
    flip_byte(hash_dir, offset)
    return dev, part, hash_dir


def read_back(client, ledger, names, reads=READS):
    """(complete bodies with the wrong bytes, incomplete/failed reads)."""
    bad, incomplete = [], []
    for _ in range(reads):
        for name in names:
            reply = client.get_object(ledger.container, name)
            if reply.status == 200 and reply.headers.get(
                    'content-length') == str(len(reply.body)):
                if etag_of(reply.body) != ledger.written[name]:
                    bad.append(name)
            else:
                incomplete.append('%s: %r' % (name, reply))
    return bad, incomplete


def replicate(cluster, ledger, record, **figures):
    counts = {}
    result = converge(
        lambda: counts.update(totals(cluster.run_daemon(REPLICATOR))),
        lambda: check_primaries(cluster, ledger), max_rounds=2)
    record(converged_seconds=result.seconds, replicator_passes=result.rounds,
           objects_checked=len(ledger), replicator_counts=counts, **figures)
    assert not result.problems, result.summary()


def test_rotten_replicas_quarantined_and_restored(cluster, record):
    client = cluster.client()
    bodies = {'audited': os.urandom(6000), 'read': os.urandom(5000)}
    bodies.update(('other-%d' % i, os.urandom(3000)) for i in range(10))
    ledger = write_objects(client, 'rot', bodies)
    audited = rot(cluster, ledger, 'audited', 1, 100)
    read = rot(cluster, ledger, 'read', 0, 100)

    # the auditor finds one
    dev, part, hash_dir = audited
    node = cluster.node_of(dev)
    audit = cluster.run_daemon(AUDITOR, node.number)[node.number]
    # (the other rotten replica may sit on the same node: fresh secrets
    # place objects anew on every run)
    same_node = cluster.node_of(read[0]).number == node.number
    assert audit.get('quarantined') == 1 + same_node, audit
    assert not os.path.exists(hash_dir)
    assert os.path.basename(hash_dir) in cluster.quarantined(node.number)
    assert cluster.direct_object(dev, part, ledger.account, 'rot',
                                 'audited')[0] == 404

    # a read meets the other: it fails over, the server quarantines
    bad, incomplete = read_back(client, ledger, ['audited', 'read'])
    assert not bad and not incomplete, (bad, incomplete)
    dev, part, hash_dir = read
    assert not os.path.exists(hash_dir)
    assert os.path.basename(hash_dir) in \
        cluster.quarantined(cluster.node_of(dev).number)

    replicate(cluster, ledger, record, rotten_replicas=2,
              auditor_counts=audit)
    for name in ('audited', 'read'):
        dirs = cluster.object_dirs(ledger.account, 'rot', name)
        assert len(dirs) == 3, dirs


def test_rotten_first_chunk_never_served_whole(cluster, record):
    client = cluster.client()
    ledger = write_objects(client, 'rot-big', {
        # three read chunks: the first two go out before the MD5 check
        'big': os.urandom(3 * READ_CHUNK_SIZE), 'small': os.urandom(100)})
    dev, part, hash_dir = rot(cluster, ledger, 'big', 0, 10)
    bad, incomplete = read_back(client, ledger, ['big'])
    assert not os.path.exists(hash_dir), 'a read should quarantine it'
    replicate(cluster, ledger, record, rotten_replicas=1,
              whole_bad_bodies=len(bad), incomplete_reads=len(incomplete))
    # the proxy resumes at a good replica only if the bytes it already
    # sent match that replica's; rotten early chunks cut the response
    assert not bad, '%d of %d GETs returned 200 with the full length but ' \
        'wrong bytes' % (len(bad), READS)
