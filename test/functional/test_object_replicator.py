"""The object replicator against real object servers on loopback.

Each node is a real object server process with its own devices dir; a
small ring (part power 4) built with RingBuilder names them. Objects are
written straight to chosen nodes with signed backend requests (the way a
proxy would, or would fail to while a node is down), then
``python -m objstore.obj.replicator CONF --once`` runs on the nodes and
every replica is checked by ETag.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from objstore.common import backend
from objstore.common.timestamp import Timestamp
from rings.builder import RingBuilder
from rings.ring import Ring

MODULE = 'objstore.obj.server'
SECTION = 'object-server'
PART_POWER = 4


class Node:
    def __init__(self, index, server, devices):
        self.index = index
        self.server = server
        self.devices = devices
        self.device = 'sd%d' % index
        self.port = server.port

    def object_files(self):
        root = os.path.join(self.devices, self.device, 'objects')
        found = []
        for path, _, names in os.walk(root):
            found += [os.path.join(path, n) for n in names
                      if n.endswith(('.data', '.ts', '.meta'))]
        return found


class Cluster:
    """Object servers, the ring over them, and helpers to poke at them."""

    def __init__(self, tmp_path, start_server, cluster_conf, count):
        self.tmp_path = tmp_path
        self.start_server = start_server
        self.conf = cluster_conf
        self.secret = cluster_conf['secret']
        self.ring_dir = str(tmp_path / 'rings')
        os.makedirs(self.ring_dir)
        with open(cluster_conf['path'], 'a') as f:
            f.write('ring_dir = %s\n' % self.ring_dir)   # under [cluster]
        self.nodes = [self.start(i) for i in range(1, count + 1)]
        self.builder = None

    def start(self, index, port=None):
        devices = str(self.tmp_path / ('node%d' % index))
        os.makedirs(os.path.join(devices, 'sd%d' % index), exist_ok=True)
        settings = dict(devices=devices, mount_check='false', workers=1)
        if port:
            settings['bind_port'] = port
        server = self.start_server(MODULE, SECTION, **settings)
        return Node(index, server, devices)

    def restart(self, node):
        node.server = self.start(node.index, node.port).server

    def build_ring(self, nodes):
        self.builder = RingBuilder(PART_POWER, 3, 0)
        for node in nodes:
            self.add_to_ring(node)
        self.write_ring()

    def add_to_ring(self, node):
        self.builder.add_dev({'region': 1, 'zone': node.index,
                              'ip': '127.0.0.1', 'port': node.port,
                              'device': node.device, 'weight': 1})

    def write_ring(self):
        self.builder.rebalance(seed=7)
        self.builder.get_ring().save(os.path.join(self.ring_dir,
                                                  'object.ring.gz'))
        self.ring = Ring(os.path.join(self.ring_dir, 'object.ring.gz'),
                         self.conf['prefix'], self.conf['suffix'])

    def node_of(self, dev):
        return next(n for n in self.nodes if n.device == dev['device'])

    def primaries(self, obj):
        part, devs = self.ring.get_nodes('a', 'c', obj)
        return part, [self.node_of(d) for d in devs]

    def handoffs(self, obj):
        part = self.ring.get_part('a', 'c', obj)
        return [self.node_of(d) for d in self.ring.get_more_nodes(part)]

    # -- signed requests straight to one node --------------------------------
    def request(self, node, method, obj, headers=None, body=b''):
        part = self.ring.get_part('a', 'c', obj)
        return backend.request(self.secret, '127.0.0.1', node.port, method,
                               '/%s/%d/a/c/%s' % (node.device, part, obj),
                               headers=headers, body=body)

    def put(self, nodes, obj, body, ts):
        for node in nodes:
            status, _, _ = self.request(node, 'PUT', obj, {
                'X-Timestamp': ts, 'Content-Type': 'text/plain'}, body)
            assert status == 201

    def delete(self, nodes, obj, ts):
        for node in nodes:
            status, _, _ = self.request(node, 'DELETE', obj,
                                        {'X-Timestamp': ts})
            assert status in (204, 404)

    def post(self, nodes, obj, ts, **meta):
        for node in nodes:
            headers = {'X-Timestamp': ts}
            headers.update(meta)
            status, _, _ = self.request(node, 'POST', obj, headers)
            assert status == 202

    def head(self, node, obj):
        status, headers, _ = self.request(node, 'HEAD', obj)
        return status, headers

    def get(self, node, obj):
        status, headers, body = self.request(node, 'GET', obj)
        return status, headers, body

    # -- the daemon ---------------------------------------------------------
    def replicate(self, node, **settings):
        """One ``--once`` pass on ``node``; returns its counts."""
        conf = node.server.conf_path
        if settings:
            conf = str(self.tmp_path / ('replicator-%d.conf' % node.index))
            with open(node.server.conf_path) as src, open(conf, 'w') as f:
                f.write(src.read() + '\n[object-replicator]\n')
                for key, value in settings.items():
                    f.write('%s = %s\n' % (key, value))
        env = dict(os.environ, OBJSTORE_CONF=self.conf['path'])
        proc = subprocess.run(
            [sys.executable, '-m', 'objstore.obj.replicator', conf,
             '--once'], env=env, capture_output=True, timeout=120)
        err = proc.stderr.decode('utf-8', 'replace')
        assert proc.returncode == 0, err
        assert 'Traceback' not in err, err
        return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def ts(offset=0.0):
    return Timestamp(time.time() + offset).internal


def etag(body):
    return hashlib.md5(body).hexdigest()


def objects_in_distinct_partitions(cluster, count, prefix):
    """Names of ``count`` objects, no two in one partition."""
    names, parts = [], set()
    for i in range(10000):
        name = '%s%d' % (prefix, i)
        part = cluster.ring.get_part('a', 'c', name)
        if part not in parts:
            parts.add(part)
            names.append(name)
            if len(names) == count:
                return names
    raise AssertionError('not enough partitions')


@pytest.fixture
def cluster4(tmp_path, start_server, cluster_conf):
    cluster = Cluster(tmp_path, start_server, cluster_conf, 4)
    cluster.build_ring(cluster.nodes)
    yield cluster
    for node in cluster.nodes:
        if node.server.proc.poll() is None:
            assert 'Traceback' not in node.server.read_log()


def test_primaries_converge(cluster4):
    c = cluster4
    missing, newer, deleted, posted, flipped, reclaimed = \
        objects_in_distinct_partitions(c, 6, 'obj')
    _, (a, b, d) = c.primaries(missing)
    c.put([a], missing, b'only on one primary', ts())

    _, prim = c.primaries(newer)
    c.put(prim, newer, b'version 1', ts(-20))
    c.put(prim[1:2], newer, b'version 2', ts())

    _, prim = c.primaries(deleted)
    c.put(prim, deleted, b'soon gone', ts(-20))
    c.delete(prim[2:], deleted, ts())

    _, prim = c.primaries(posted)
    c.put(prim, posted, b'posted', ts(-20))
    c.post(prim[:1], posted, ts(), **{'X-Object-Meta-Colour': 'green'})

    # a replica whose newest version rots on disk: never spread
    _, prim = c.primaries(flipped)
    c.put(prim, flipped, b'good old bytes', ts(-20))
    c.put(prim[:1], flipped, b'new bytes, soon bad', ts())
    bad = [f for f in prim[0].object_files() if f.endswith('.data') and
           c.ring.get_part('a', 'c', flipped) ==
           int(f.split(os.sep)[-4])]
    assert len(bad) == 1
    with open(bad[0], 'r+b') as f:
        f.write(b'N')
    first = prim[0]

    # an old deletion, past the reclaim age of this test's replicator
    _, prim = c.primaries(reclaimed)
    c.put(prim, reclaimed, b'long gone', ts(-3000))
    c.delete(prim, reclaimed, ts(-2000))

    # the node holding the bad copy goes first, so it is quarantined and
    # restored from the others within this round
    totals = {}
    for node in [first] + [n for n in c.nodes if n is not first]:
        counts = c.replicate(node, reclaim_age=1000)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
    assert totals['files_quarantined'] == 1
    assert totals['files_refused'] == 1
    assert totals['files_pushed'] >= 7
    assert totals['failures'] == 0

    for obj, body in ((missing, b'only on one primary'),
                      (newer, b'version 2'), (posted, b'posted'),
                      (flipped, b'good old bytes')):
        _, prim = c.primaries(obj)
        for node in prim:
            status, headers, got = c.get(node, obj)
            assert status == 200, (obj, node.device)
            assert got == body and headers['etag'] == etag(body)
            if obj == posted:
                assert headers['x-object-meta-colour'] == 'green'
    _, prim = c.primaries(deleted)
    for node in prim:
        status, headers = c.head(node, deleted)
        assert status == 404 and 'x-backend-timestamp' in headers
    # the old tombstone is reclaimed everywhere, not resurrected
    part, prim = c.primaries(reclaimed)
    for node in c.nodes:
        assert not [f for f in node.object_files()
                    if int(f.split(os.sep)[-4]) == part]
    for node in prim:
        status, headers = c.head(node, reclaimed)
        assert status == 404 and 'x-backend-timestamp' not in headers
    # nothing lands on a handoff while every primary is up
    for obj in (missing, newer, deleted, posted, flipped):
        part = c.ring.get_part('a', 'c', obj)
        for node in c.handoffs(obj):
            assert not [f for f in node.object_files()
                        if int(f.split(os.sep)[-4]) == part]
    # a second round finds nothing to do
    again = [c.replicate(node, reclaim_age=1000) for node in c.nodes]
    assert sum(x['files_pushed'] for x in again) == 0
    assert sum(x['suffixes_out_of_sync'] for x in again) == 0


def test_handoff_goes_home_once_the_primary_is_back(cluster4):
    c = cluster4
    obj = 'handed-off'
    part, (a, b, d) = c.primaries(obj)
    handoff = c.handoffs(obj)[0]
    body = b'written while b was down'
    b.server.stop()
    # the proxy's write: two primaries and the first handoff
    c.put([a, d, handoff], obj, body, ts())

    # while b is down the handoff keeps its copy
    counts = c.replicate(handoff)
    assert counts['handoff_partitions'] == 1
    assert counts['nodes_unavailable'] == 1
    assert counts['handoff_files_removed'] == 0
    assert len(handoff.object_files()) == 1
    # a primary keeps three copies while b is down: b's share goes to
    # the first handoff (which has it already)
    counts = c.replicate(a)
    assert counts['nodes_unavailable'] == 1
    assert counts['handoff_substitutes'] == 1

    c.restart(b)
    counts = c.replicate(handoff)
    assert counts['files_pushed'] == 1
    assert counts['handoff_files_removed'] == 1
    assert counts['handoff_partitions_removed'] == 1
    for node in (a, b, d):
        status, headers, got = c.get(node, obj)
        assert status == 200 and got == body
        assert headers['etag'] == etag(body)
    # the handoff partition is gone, not just emptied
    assert handoff.object_files() == []
    assert not os.path.exists(os.path.join(
        handoff.devices, handoff.device, 'objects', str(part)))


def test_ring_change_moves_data_to_new_primaries(tmp_path, start_server,
                                                 cluster_conf):
    c = Cluster(tmp_path, start_server, cluster_conf, 4)
    c.build_ring(c.nodes[:3])
    bodies = {}
    for i, obj in enumerate(objects_in_distinct_partitions(c, 16, 'r')):
        bodies[obj] = ('body of %s' % obj).encode() * (i + 1)
        c.put(c.primaries(obj)[1], obj, bodies[obj], ts())
    old = {obj: c.primaries(obj)[1] for obj in bodies}

    c.add_to_ring(c.nodes[3])
    c.write_ring()
    moved = [obj for obj in bodies if c.primaries(obj)[1] != old[obj]]
    assert moved

    def good_copies(obj):
        return sum(1 for node in c.primaries(obj)[1]
                   if c.get(node, obj)[2] == bodies[obj])

    # reads keep working: after every node's pass each object still has at
    # least the two copies the new ring kept in place
    for node in c.nodes:
        c.replicate(node)
        for obj in bodies:
            assert good_copies(obj) >= 2, obj
    for obj in bodies:
        part, prim = c.primaries(obj)
        for node in prim:
            status, headers, got = c.get(node, obj)
            assert status == 200 and headers['etag'] == etag(bodies[obj])
        for node in c.nodes:
            if node not in prim:
                assert not [f for f in node.object_files()
                            if int(f.split(os.sep)[-4]) == part], \
                    (obj, node.device)


def test_push_is_cut_into_bounded_requests(tmp_path, start_server,
                                           cluster_conf, monkeypatch):
    from objstore.obj import diskfile, hashes, sync_protocol
    from objstore.obj.replicator import list_objects, local_files
    from objstore.obj.sync_sender import SyncClient
    peer = Cluster(tmp_path, start_server, cluster_conf, 1).nodes[0]
    mgr = diskfile.DiskFileManager(str(tmp_path / 'local'),
                                   mount_check=False,
                                   hash_prefix=cluster_conf['prefix'],
                                   hash_suffix=cluster_conf['suffix'])
    os.makedirs(str(tmp_path / 'local' / 'sdl'))
    part = 5
    bodies = {}
    for i in range(100000):
        df = mgr.get_diskfile('sdl', part, 'a', 'c', 'b%d' % i)
        if sync_protocol.partition_of(df.hash, PART_POWER) != part:
            continue
        # one object of many 64 KiB chunks, the others small
        body = os.urandom(1024 * 1024 if not bodies else 100 + i)
        writer = df.writer(len(body))
        writer.write(body)
        stamp = Timestamp.now()
        writer.commit(stamp, {'name': df.name, 'X-Timestamp': stamp.internal,
                              'Content-Length': len(body),
                              'ETag': writer.etag,
                              'Content-Type': 'text/plain'})
        writer.close()
        bodies[df.name] = body
        if len(bodies) == 5:
            break
    part_dir = df.partition_dir
    monkeypatch.setattr(sync_protocol, 'MAX_PUSH_FILES', 2)
    client = SyncClient(cluster_conf['secret'], {
        'ip': '127.0.0.1', 'port': peer.port, 'device': peer.device},
        part, PART_POWER)
    offers = list_objects(part_dir)
    wanted = client.check(offers)
    assert wanted == offers
    requests = []
    send_batch = client._push_batch
    monkeypatch.setattr(client, '_push_batch', lambda batch, outcome: (
        requests.append(len(batch)), send_batch(batch, outcome)))
    outcome = client.push(local_files(part_dir, wanted))
    assert requests == [2, 2, 1]
    assert [r[2] for r in outcome.results] == ['ok'] * 5
    assert outcome.bytes == sum(len(b) for b in bodies.values())
    assert client.check(offers) == {}
    assert client.get_hashes() == hashes.get_hashes(part_dir)
    for name, body in bodies.items():
        status, headers, got = backend.request(
            cluster_conf['secret'], '127.0.0.1', peer.port, 'GET',
            '/%s/%d%s' % (peer.device, part, name))
        assert status == 200 and got == body


def test_killed_at_any_moment_then_run_again_converges(cluster4):
    """SIGKILL the replicator mid-pass, several times, at different
    moments: nothing it half did may lose or damage a replica, and the
    next full pass finishes the job."""
    import signal
    c = cluster4
    names = ['kill%d' % i for i in range(40)]
    bodies = {}
    source = None
    for i, name in enumerate(names):
        _, prim = c.primaries(name)
        source = source or prim[0]
        if source not in prim:
            continue
        bodies[name] = os.urandom(200000 + i)
        # only on the node whose replicator we kill
        c.put([source], name, bodies[name], ts())
    assert len(bodies) >= 6
    env = dict(os.environ, OBJSTORE_CONF=c.conf['path'])
    for delay in (0.3, 0.6, 0.9):
        proc = subprocess.Popen(
            [sys.executable, '-m', 'objstore.obj.replicator',
             source.server.conf_path], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    c.replicate(source)
    for name, body in bodies.items():
        _, prim = c.primaries(name)
        for node in prim:
            status, headers, got = c.get(node, name)
            assert (status, got) == (200, body), (name, node.index)
            assert headers['etag'] == etag(body)
    # a second full pass finds nothing left to push
    assert c.replicate(source)['files_pushed'] == 0
