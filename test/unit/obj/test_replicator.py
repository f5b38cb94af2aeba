"""The object replicator's local work, on real dirs and a real ring file.

No object servers here: peers are ports nobody listens on, which is also
how an unreachable primary looks. Pushing to live servers is in
test/functional/test_object_replicator.py.
"""
import os
import socket
import threading
import time

import pytest

from objstore.common.config import ConfigError
from objstore.common.timestamp import Timestamp
from objstore.obj import diskfile, hashes
from objstore.obj import replicator as rep
from rings.builder import RingBuilder


def unused_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def node(tmp_path, cluster_conf):
    """A ring of 4 devices (part power 4, 3 replicas) on ports nobody
    listens on; this node is sd1."""
    ports = [unused_port() for _ in range(4)]
    builder = RingBuilder(4, 3, 0)
    for i, port in enumerate(ports, 1):
        builder.add_dev({'region': 1, 'zone': i, 'ip': '127.0.0.1',
                         'port': port, 'device': 'sd%d' % i, 'weight': 1})
    builder.rebalance(seed=1)
    ring_dir = tmp_path / 'rings'
    ring_dir.mkdir()
    builder.get_ring().save(str(ring_dir / 'object.ring.gz'))
    devices = tmp_path / 'srv'
    (devices / 'sd1').mkdir(parents=True)
    conf = {'devices': str(devices), 'mount_check': 'false',
            'bind_ip': '127.0.0.1', 'bind_port': str(ports[0]),
            'ring_dir': str(ring_dir), 'node_timeout': '2'}
    mgr = diskfile.DiskFileManager(str(devices), mount_check=False,
                                   hash_prefix=cluster_conf['prefix'],
                                   hash_suffix=cluster_conf['suffix'])
    return {'conf': conf, 'mgr': mgr, 'devices': str(devices)}


def make_replicator(node, **settings):
    return rep.ObjectReplicator(dict(node['conf'], **settings))


def partitions(replicator):
    """(a partition sd1 is primary for, one it is not)."""
    ring = replicator.ring
    mine = other = None
    for part in range(ring.partition_count):
        if any(n['device'] == 'sd1' for n in ring.get_part_nodes(part)):
            mine = part if mine is None else mine
        else:
            other = part if other is None else other
    return mine, other


def name_in(replicator, part, start=0):
    for i in range(start, start + 100000):
        if replicator.ring.get_part('a', 'c', 'o%d' % i) == part:
            return 'o%d' % i
    raise AssertionError('no name for partition %d' % part)


def put(node, part, obj, body=b'x', ts=None):
    df = node['mgr'].get_diskfile('sd1', part, 'a', 'c', obj)
    ts = Timestamp(ts or time.time())
    writer = df.writer(len(body))
    try:
        writer.write(body)
        writer.commit(ts, {'name': df.name, 'X-Timestamp': ts.internal,
                           'Content-Length': len(body),
                           'ETag': writer.etag,
                           'Content-Type': 'text/plain'})
    finally:
        writer.close()
    return df


def job_for(replicator, part):
    return next(j for j in replicator.jobs() if j.partition == part)


# -- settings and jobs ----------------------------------------------------

@pytest.mark.parametrize('key,value', [
    ('concurrency', '0'), ('concurrency', 'many'), ('node_timeout', '0'),
    ('reclaim_age', '-1'), ('rehash_interval', 'hourly')])
def test_bad_settings_are_config_errors(node, key, value):
    with pytest.raises(ConfigError):
        make_replicator(node, **{key: value})


def test_jobs_tell_primaries_from_handoffs(node, tmp_path):
    r = make_replicator(node, handoffs_first='yes')
    mine, other = partitions(r)
    put(node, mine, name_in(r, mine))
    put(node, other, name_in(r, other))
    # a device the ring does not name: all its partitions are handoffs
    os.makedirs(os.path.join(node['devices'], 'gone', 'objects', str(mine)))
    jobs = r.jobs()
    assert len(jobs) == 3
    kinds = [r.is_handoff(j) for j in jobs]
    assert kinds == [True, True, False]     # handoffs first
    assert {(j.device and j.device['device'], j.partition) for j in jobs
            if r.is_handoff(j)} == {('sd1', other), (None, mine)}


# -- listing what to offer ------------------------------------------------

def test_list_objects_offers_only_files_that_count(node):
    r = make_replicator(node)
    mine, _ = partitions(r)
    obj = name_in(r, mine)
    old = time.time() - 100
    df = put(node, mine, obj, ts=old)
    # an obsolete .data beside the newer one: never offered
    open(os.path.join(df.hash_dir, Timestamp(old - 1).internal + '.data'),
         'wb').close()
    df.write_meta(Timestamp(old + 1), {'X-Object-Meta-A': 'b'})
    gone = put(node, mine, name_in(r, mine, 1000), ts=old)
    gone.write_tombstone(Timestamp(old + 2))
    listing = rep.list_objects(df.partition_dir)
    assert listing == {
        df.hash: [Timestamp(old).internal + '.data',
                  Timestamp(old + 1).internal + '.meta'],
        gone.hash: [Timestamp(old + 2).internal + '.ts']}
    # past the reclaim age the tombstone is not offered at all
    assert gone.hash not in rep.list_objects(df.partition_dir,
                                             reclaim_age=10)
    assert rep.list_objects(df.partition_dir, suffixes=[df.suffix]) == {
        df.hash: listing[df.hash]}
    files = rep.local_files(df.partition_dir, {df.hash: list(reversed(
        listing[df.hash]))})
    assert [f.name[-5:] for f in files] == ['.data', '.meta']
    assert all(os.path.exists(f.path) for f in files)


# -- handoff deletion -----------------------------------------------------

def test_delete_confirmed_removes_whole_objects_only(node):
    r = make_replicator(node)
    _, other = partitions(r)
    a = put(node, other, name_in(r, other))
    b = put(node, other, name_in(r, other, 1000))
    b.write_meta(Timestamp.now(), {'X-Object-Meta-A': 'b'})
    part_dir = a.partition_dir
    listing = rep.list_objects(part_dir)
    a_name = listing[a.hash][0]
    b_data, b_meta = listing[b.hash]
    # a PUT racing in after the listing: not offered, so never removed
    late = Timestamp(time.time() + 5).internal + '.data'
    confirmed = {(a.hash, a_name), (b.hash, b_data)}   # b's .meta is not
    open(os.path.join(a.hash_dir, late), 'wb').close()
    removed = rep.delete_confirmed(part_dir, listing, confirmed)
    assert removed == 1
    assert os.listdir(a.hash_dir) == [late]
    assert sorted(os.listdir(b.hash_dir)) == sorted([b_data, b_meta])
    os.unlink(os.path.join(a.hash_dir, late))
    removed = rep.delete_confirmed(part_dir, rep.list_objects(part_dir),
                                   confirmed | {(b.hash, b_meta)})
    assert removed == 2
    assert not os.path.exists(b.hash_dir)
    hashes.get_hashes(part_dir)     # the rehash drops a's empty dir
    assert [n for n in os.listdir(part_dir) if hashes.is_suffix(n)] == []
    assert rep.remove_partition_if_empty(part_dir)
    assert not os.path.exists(part_dir)


def test_empty_partition_goes_with_an_old_lock_file(tmp_path):
    # partitions made before the lock moved onto the dir hold a .lock
    part_dir = str(tmp_path / 'objects' / '9')
    os.makedirs(part_dir)
    open(os.path.join(part_dir, hashes.LEGACY_LOCK_FILE), 'wb').close()
    open(os.path.join(part_dir, hashes.HASHES_FILE), 'wb').close()
    assert rep.remove_partition_if_empty(part_dir)
    assert not os.path.exists(part_dir)


def test_partition_with_objects_is_not_removed(node):
    r = make_replicator(node)
    _, other = partitions(r)
    df = put(node, other, name_in(r, other))
    hashes.get_hashes(df.partition_dir)
    assert not rep.remove_partition_if_empty(df.partition_dir)
    assert os.path.exists(df.hash_dir)
    assert not rep.remove_partition_if_empty(df.partition_dir + 'nope')


def test_a_writer_waiting_on_a_removed_partition_starts_over(tmp_path):
    part_dir = str(tmp_path / 'objects' / '7')
    hashes.get_hashes(part_dir)
    os.makedirs(part_dir)
    done = threading.Event()

    def writer():
        hashes.invalidate(part_dir, 'abc')   # waits for our lock
        done.set()

    with hashes.partition_lock(part_dir):
        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.2)
        assert not done.is_set()
        for name in os.listdir(part_dir):
            os.unlink(os.path.join(part_dir, name))
        os.rmdir(part_dir)
    thread.join(5)
    assert done.is_set()
    # the writer made the partition again; it has no cache, so nothing
    # needed marking: its next get_hashes rescans every suffix
    assert os.path.isdir(part_dir)
    assert not os.path.exists(os.path.join(part_dir, hashes.INVALID_FILE))


def test_quarantine_moves_only_the_bad_file(node):
    r = make_replicator(node)
    mine, _ = partitions(r)
    df = put(node, mine, name_in(r, mine), ts=time.time() - 10)
    hashes.get_hashes(df.partition_dir)     # a cache, to be invalidated
    bad = os.path.join(df.hash_dir, os.listdir(df.hash_dir)[0])
    assert rep.quarantine_file(df.device_path, bad, df.hash)
    qdir = os.path.join(df.device_path, 'quarantined', 'objects', df.hash)
    assert os.listdir(qdir) == [os.path.basename(bad)]
    assert not os.path.exists(bad)
    assert not rep.quarantine_file(df.device_path, bad, df.hash)
    with open(os.path.join(df.partition_dir, hashes.INVALID_FILE)) as f:
        assert df.suffix in f.read().split()


# -- reclaim and rehash ---------------------------------------------------

def test_tombstone_reclaimed_past_reclaim_age(node):
    r = make_replicator(node, reclaim_age='5')
    mine, _ = partitions(r)
    df = put(node, mine, name_in(r, mine), ts=time.time() - 60)
    df.write_tombstone(Timestamp(time.time() - 30))
    fresh = put(node, mine, name_in(r, mine, 1000))
    fresh.write_tombstone(Timestamp.now())
    # the server's cache knows the suffixes (with its week-long age)
    before = hashes.get_hashes(df.partition_dir)
    assert df.suffix in before
    r.local_hashes(job_for(r, mine))
    assert not os.path.exists(df.hash_dir)
    assert [n[-3:] for n in os.listdir(fresh.hash_dir)] == ['.ts']


def test_full_rehash_only_every_rehash_interval(node):
    r = make_replicator(node, rehash_interval='3600')
    mine, _ = partitions(r)
    df = put(node, mine, name_in(r, mine))
    job = job_for(r, mine)
    first = r.local_hashes(job)
    # a change nobody announced (no invalidate) ...
    open(os.path.join(df.hash_dir, Timestamp(time.time() + 1).internal +
                      '.ts'), 'wb').close()
    assert r.local_hashes(job) == first            # ... waits for a rehash
    r.rehash_interval = 0
    assert r.local_hashes(job)[df.suffix] != first[df.suffix]


# -- peers that cannot be reached -----------------------------------------

def test_handoff_kept_while_a_primary_is_unreachable(node):
    r = make_replicator(node)
    _, other = partitions(r)
    df = put(node, other, name_in(r, other))
    stats = r.replicate(job_for(r, other))
    assert stats['handoff_partitions'] == 1
    assert stats['nodes_unavailable'] == 3     # tried every primary
    assert stats['handoff_files_removed'] == 0
    assert len(os.listdir(df.hash_dir)) == 1


def test_unreachable_primaries_are_replaced_by_handoffs(node):
    r = make_replicator(node)
    mine, _ = partitions(r)
    put(node, mine, name_in(r, mine))
    counts = r.run_once()
    # 2 other primaries down, the one handoff (4 devices) too
    assert counts['partitions'] == 1
    assert counts['nodes_unavailable'] == 3
    assert counts['handoff_substitutes'] == 1
    assert counts['files_pushed'] == 0 and counts['failures'] == 0


def test_partition_outside_the_ring_is_a_failure_not_a_crash(node):
    r = make_replicator(node)
    os.makedirs(os.path.join(node['devices'], 'sd1', 'objects', '999'))
    counts = r.run_once()
    assert counts['partitions'] == 1 and counts['failures'] == 1
