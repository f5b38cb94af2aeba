"""The account and container replicators against real servers.

Each test starts real container (or account) server processes, one
device each, on free loopback ports, writes a small ring of them with
RingBuilder into the ring_dir the cluster config names, puts databases
and rows straight onto chosen nodes with signed backend requests, and
runs ``python -m objstore.<kind>.replicator CONF --once`` as an operator
would; the JSON counts it prints and what every server answers afterwards
show what moved.
"""
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import msgpack
import pytest

from objstore.account.broker import AccountBroker
from objstore.common import backend, ondisk, signing
from objstore.common.timestamp import Timestamp
from rings.builder import RingBuilder
from rings.ring import Ring

_clock = [time.time()]


def ts(offset=0.0):
    """Increasing timestamps; ``offset`` seconds from now for old ones."""
    if offset:
        return Timestamp(time.time() + offset).internal
    _clock[0] = max(_clock[0] + 0.01, time.time())
    return Timestamp(_clock[0]).internal


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Node:
    """One storage server process with one device, and how to talk to it."""

    def __init__(self, kind, server, devices, device, secret):
        self.kind, self.server = kind, server
        self.devices, self.device = devices, device
        self.port, self.secret = server.port, secret

    def request(self, method, path, headers=None, body=b'', query=''):
        return backend.request(self.secret, '127.0.0.1', self.port, method,
                               path, headers=headers, body=body, query=query)

    def db_file(self, part, hsh):
        return os.path.join(ondisk.storage_dir(
            self.devices, self.device, self.kind + 's', part, hsh),
            hsh + '.db')

    def start_replicator(self, **settings):
        """``python -m objstore.<kind>.replicator CONF --once``, running."""
        conf = self.server.conf_path + '.replicator'
        with open(self.server.conf_path) as f:
            text = f.read()
        text += '\n[%s-replicator]\n' % self.kind + ''.join(
            '%s = %s\n' % kv for kv in settings.items())
        with open(conf, 'w') as f:
            f.write(text)
        return subprocess.Popen(
            [sys.executable, '-m', 'objstore.%s.replicator' % self.kind,
             conf, '--once'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ))

    @staticmethod
    def counts_of(proc):
        """Wait for a replicator started by start_replicator; its counts."""
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert b'Traceback' not in err, err.decode()
        return json.loads(out.decode().strip().splitlines()[-1])

    def replicate(self, **settings):
        """Run this node's replicator once; its counts."""
        return self.counts_of(self.start_replicator(**settings))


class Cluster:
    """``count`` servers of one kind and the ring naming the first ones."""

    def __init__(self, start_server, tmp_path, cluster_conf, kind, count):
        self.kind, self.conf = kind, cluster_conf
        self.ring_dir = tmp_path / 'rings'
        self.ring_dir.mkdir(exist_ok=True)
        with open(cluster_conf['path'], 'a') as f:  # under [cluster]
            f.write('ring_dir = %s\n' % self.ring_dir)
        self.nodes = []
        for i in range(count):
            devices = tmp_path / kind / ('node%d' % i)
            (devices / ('d%d' % i)).mkdir(parents=True)
            server = start_server(
                'objstore.%s.server' % kind, '%s-server' % kind,
                bind_port=free_port(), devices=devices, mount_check='false',
                workers=0)
            self.nodes.append(Node(kind, server, str(devices), 'd%d' % i,
                                   cluster_conf['secret']))
        self.builder = RingBuilder(3, 3, 0)

    def add_to_ring(self, *indexes):
        for i in indexes:
            self.builder.add_dev({
                'id': i, 'region': 1, 'zone': i + 1, 'ip': '127.0.0.1',
                'port': self.nodes[i].port, 'device': self.nodes[i].device,
                'weight': 100})
        self.builder.pretend_min_part_hours_passed()
        self.builder.rebalance(seed=7)
        path = str(self.ring_dir / ('%s.ring.gz' % self.kind))
        self.builder.get_ring().save(path)
        self.ring = Ring(path)

    def where(self, account, container=None):
        """(partition, hash, primary Nodes) of a database."""
        part, devs = self.ring.get_nodes(account, container)
        hsh = ondisk.name_hash(self.conf['prefix'], self.conf['suffix'],
                               account, container)
        by_port = {n.port: n for n in self.nodes}
        return part, hsh, [by_port[d['port']] for d in devs]


@pytest.fixture
def containers(start_server, tmp_path, cluster_conf):
    cluster = Cluster(start_server, tmp_path, cluster_conf, 'container', 3)
    cluster.add_to_ring(0, 1, 2)
    yield cluster
    for node in cluster.nodes:
        assert 'Traceback' not in node.server.read_log()


def put_container(node, part, name, when=None, **headers):
    headers['X-Timestamp'] = when or ts()
    status = node.request('PUT', '/%s/%d/a/%s' % (node.device, part, name),
                          headers)[0]
    assert status in (201, 202)


def put_object(node, part, container, obj, when=None, etag='e'):
    status = node.request(
        'PUT', '/%s/%d/a/%s/%s' % (node.device, part, container, obj), {
            'X-Timestamp': when or ts(), 'X-Size': '3',
            'X-Content-Type': 'text/plain', 'X-Etag': etag})[0]
    assert status == 201


def delete_object(node, part, container, obj, when=None):
    assert node.request('DELETE', '/%s/%d/a/%s/%s' % (
        node.device, part, container, obj),
        {'X-Timestamp': when or ts()})[0] == 204


def listing(node, part, container):
    """{name: etag} of the container on node, None when it 404s."""
    status, _h, body = node.request(
        'GET', '/%s/%d/a/%s' % (node.device, part, container),
        query='format=json')
    if status == 404:
        return None
    assert status in (200, 204), status
    return {o['name']: o['hash'] for o in json.loads(body or b'[]')}


def info(node, part, hsh):
    status, _h, body = node.request('REPLICATE', '/%s/%d/%s'
                                    % (node.device, part, hsh))
    return msgpack.unpackb(body) if status == 200 else status


def test_rows_and_whole_dbs_reach_peers_and_sync_points_stop_resends(
        containers):
    p0, p1, p2 = containers.nodes
    part, hsh, _ = containers.where('a', 'rows')
    when = ts()
    for node in (p0, p1, p2):
        put_container(node, part, 'rows', when)
    put_object(p0, part, 'rows', 'x')
    put_object(p1, part, 'rows', 'y')  # p1 has a row p0 lacks
    wpart, whsh, _ = containers.where('a', 'whole')
    put_container(p0, wpart, 'whole', **{'X-Container-Meta-Color': 'blue'})
    for name in ('o1', 'o2', 'o3'):
        put_object(p0, wpart, 'whole', name)

    counts = p0.replicate()
    assert counts['rows_sent'] == 2  # x to p1 and to p2
    assert counts['whole_dbs_sent'] == 2  # 'whole' to p1 and p2
    assert counts['failures'] == 0 and counts['dbs'] == 2
    assert sorted(listing(p1, part, 'rows')) == ['x', 'y']
    assert sorted(listing(p2, part, 'rows')) == ['x']
    for node in (p1, p2):
        assert sorted(listing(node, wpart, 'whole')) == ['o1', 'o2', 'o3']
        headers = node.request('HEAD', '/%s/%d/a/whole'
                               % (node.device, wpart))[1]
        assert headers['x-container-meta-color'] == 'blue'
    # each copy has an id of its own; the sender's rows are accounted for
    ids = {info(n, wpart, whsh)['id'] for n in (p0, p1, p2)}
    assert len(ids) == 3

    # p1's content still differs from p0's (it has y), but its sync point
    # for p0 covers x: the second pass sends nothing at all
    counts = p0.replicate()
    assert counts['rows_sent'] == counts['whole_dbs_sent'] == 0
    assert counts['in_sync'] == 3  # rows->p2, whole->p1 and ->p2
    assert counts['failures'] == 0

    # p1's pass brings y to p0 and p2 by rows, not whole databases (x
    # goes along: their sync points for p1's own row ids start at -1)
    counts = p1.replicate()
    assert counts['rows_sent'] == 4 and counts['whole_dbs_sent'] == 0
    for node in (p0, p1, p2):
        assert sorted(listing(node, part, 'rows')) == ['x', 'y']


def test_far_behind_peer_gets_the_whole_db_and_keeps_its_newer_rows(
        containers):
    p0, p1, p2 = containers.nodes
    part, hsh, _ = containers.where('a', 'far')
    old = ts()
    put_container(p0, part, 'far', old)
    for i in range(1, 6):
        put_object(p0, part, 'far', 'o%d' % i, etag='p0')
    # p1 knows the container, a newer o2 and an object of its own
    put_container(p1, part, 'far', old)
    put_object(p1, part, 'far', 'o2', etag='newer-on-p1')
    put_object(p1, part, 'far', 'mine', etag='p1')
    put_container(p2, part, 'far', old)
    put_object(p2, part, 'far', 'o1', when=ts(-1000), etag='ancient')
    # per_diff * max_diffs = 2 rows: 5 rows behind is far behind

    counts = p0.replicate(per_diff=1, max_diffs=2)
    assert counts['whole_dbs_sent'] == 2 and counts['rows_sent'] == 0
    assert counts['failures'] == 0
    got = listing(p1, part, 'far')
    assert sorted(got) == ['mine', 'o1', 'o2', 'o3', 'o4', 'o5']
    assert got['o2'] == 'newer-on-p1' and got['mine'] == 'p1'
    assert got['o1'] == 'p0'
    assert listing(p2, part, 'far')['o1'] == 'p0'
    # both peers now hold p0's rows: nothing more is sent
    counts = p0.replicate(per_diff=1, max_diffs=2)
    assert counts['whole_dbs_sent'] == counts['rows_sent'] == 0


def test_deletes_win_everywhere(containers):
    p0, p1, p2 = containers.nodes
    part, _hsh, _ = containers.where('a', 'objs')
    when = ts()
    for node in (p0, p1, p2):
        put_container(node, part, 'objs', when)
    t_put = ts()
    for node in (p0, p2):
        put_object(node, part, 'objs', 'x', when=t_put)
        put_object(node, part, 'objs', 'keep')
    delete_object(p1, part, 'objs', 'x')  # only p1 saw the delete
    # a container deleted on one node only
    cpart, chsh, _ = containers.where('a', 'gone')
    put_when = ts()
    for node in (p0, p1, p2):
        put_container(node, cpart, 'gone', put_when)
    delete_when = ts()
    assert p0.request('DELETE', '/%s/%d/a/gone' % (p0.device, cpart),
                      {'X-Timestamp': delete_when})[0] == 204

    for node in (p0, p1, p2):
        assert node.replicate()['failures'] == 0
    for node in (p0, p1, p2):
        assert sorted(listing(node, part, 'objs')) == ['keep']
        status, headers, _b = node.request(
            'HEAD', '/%s/%d/a/gone' % (node.device, cpart))
        assert status == 404 and headers['x-backend-deleted'] == 'true'
        assert info(node, cpart, chsh)['delete_timestamp'] == delete_when
    # another round changes nothing: the older put does not come back
    for node in (p0, p1, p2):
        assert node.replicate()['rows_sent'] == 0
    assert p2.request('HEAD', '/%s/%d/a/gone' % (p2.device, cpart))[0] == \
        404


def test_old_deleted_dbs_and_tombstones_are_reclaimed_everywhere(
        containers):
    p0, p1, p2 = containers.nodes
    part, hsh, _ = containers.where('a', 'dead')
    for node in (p0, p1, p2):
        put_container(node, part, 'dead', ts(-300))
    # deleted long ago, on p0 only
    assert p0.request('DELETE', '/%s/%d/a/dead' % (p0.device, part),
                      {'X-Timestamp': ts(-200)})[0] == 204
    lpart, lhsh, _ = containers.where('a', 'live')
    put_container(p0, lpart, 'live', ts(-300))
    put_object(p0, lpart, 'live', 'old-tomb', when=ts(-250))
    delete_object(p0, lpart, 'live', 'old-tomb', when=ts(-200))
    delete_object(p0, lpart, 'live', 'new-tomb')
    put_object(p0, lpart, 'live', 'obj')
    # replication as usual first: every replica learns every delete
    for node in (p0, p1, p2):
        counts = node.replicate()
        assert counts['reclaimed_dbs'] == counts['reclaimed_rows'] == 0
    for node in (p1, p2):
        assert node.request('HEAD', '/%s/%d/a/dead'
                            % (node.device, part))[0] == 404

    # then the deletes are older than reclaim_age: every node forgets them
    for node in (p0, p1, p2):
        counts = node.replicate(reclaim_age=100)
        assert counts['reclaimed_dbs'] == 1 and counts['failures'] == 0
        assert counts['reclaimed_rows'] == 1
        assert counts['rows_sent'] == counts['whole_dbs_sent'] == 0
    for node in (p0, p1, p2):
        assert not os.path.exists(node.db_file(part, hsh))
        conn = sqlite3.connect(node.db_file(lpart, lhsh))
        names = sorted(r[0] for r in conn.execute('SELECT name FROM object'))
        conn.close()
        assert names == ['new-tomb', 'obj']


@pytest.fixture
def four_containers(start_server, tmp_path, cluster_conf):
    cluster = Cluster(start_server, tmp_path, cluster_conf, 'container', 4)
    yield cluster
    for node in cluster.nodes:
        if node.server.proc.poll() is None:
            assert 'Traceback' not in node.server.read_log()


def test_handoff_db_moves_to_its_primaries_and_is_removed(four_containers):
    cluster = four_containers
    cluster.add_to_ring(0, 1, 2, 3)
    # a container whose partition the last node is a handoff for
    for n in range(100):
        part, hsh, primaries = cluster.where('a', 'c%d' % n)
        handoffs = [x for x in cluster.nodes if x not in primaries]
        if handoffs:
            name, handoff = 'c%d' % n, handoffs[0]
            break
    put_container(handoff, part, name, **{'X-Container-Meta-A': '1'})
    for obj in ('o1', 'o2'):
        put_object(handoff, part, name, obj)

    # with a primary down the handoff keeps its copy
    down = primaries[0]
    down.server.stop()
    counts = handoff.replicate(node_timeout=2)
    assert counts['failures'] == 1 and counts['handoffs_removed'] == 0
    assert counts['whole_dbs_sent'] == 2
    assert os.path.exists(handoff.db_file(part, hsh))

    # back up: all three primaries hold it, the handoff does not
    down.server = type(down.server)(down.server.module,
                                    down.server.conf_path, down.port,
                                    dict(os.environ))
    try:
        counts = handoff.replicate()
        assert counts['handoffs_removed'] == 1
        assert counts['whole_dbs_sent'] == 1 and counts['failures'] == 0
        assert not os.path.exists(handoff.db_file(part, hsh))
        assert not os.path.exists(os.path.dirname(handoff.db_file(part,
                                                                  hsh)))
        for node in primaries:
            assert sorted(listing(node, part, name)) == ['o1', 'o2']
    finally:
        down.server.stop()


def test_rebalance_moves_dbs_to_their_new_primaries(four_containers):
    cluster = four_containers
    cluster.add_to_ring(0, 1, 2)
    names = ['c%d' % n for n in range(12)]
    for name in names:
        part, _hsh, primaries = cluster.where('a', name)
        for node in primaries:
            put_container(node, part, name)
            put_object(node, part, name, 'obj-' + name)
    cluster.add_to_ring(3)  # a new node, a rebalance, a new ring file
    moved = [name for name in names
             if cluster.nodes[3] in cluster.where('a', name)[2]]
    assert moved, 'the rebalance moved nothing'

    # every old node at once, and the first one twice (safe to run twice)
    procs = [node.start_replicator() for node in cluster.nodes[:3]]
    procs.append(cluster.nodes[0].start_replicator())
    totals = {}
    for proc in procs:
        for key, value in Node.counts_of(proc).items():
            totals[key] = totals.get(key, 0) + value
    assert totals['handoffs_removed'] >= len(moved)
    assert totals['failures'] == 0
    for name in names:
        part, hsh, primaries = cluster.where('a', name)
        for node in cluster.nodes:
            there = os.path.exists(node.db_file(part, hsh))
            assert there == (node in primaries), (name, node.device)
        for node in primaries:
            assert list(listing(node, part, name)) == ['obj-' + name]


def test_syncdb_refuses_bad_bodies_over_http(containers, cluster_conf,
                                             tmp_path):
    p0, p1, _p2 = containers.nodes
    part, hsh, _ = containers.where('a', 'safe')
    put_container(p0, part, 'safe')
    put_object(p0, part, 'safe', 'precious')
    before = info(p0, part, hsh)
    path = '/%s/%d/%s' % (p0.device, part, hsh)
    # real databases that do not belong here
    opart, _ohsh, _ = containers.where('a', 'other')
    put_container(p1, opart, 'other')
    other = p1.db_file(opart, _ohsh)
    conn = sqlite3.connect(other)
    conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    conn.close()
    with open(other, 'rb') as f:
        other_db = f.read()
    wrong_kind = tmp_path / 'acct.db'
    acct = AccountBroker(str(wrong_kind), account='a')
    acct.initialize(ts(), str(tmp_path / 'tmp'))
    wrong_kind_db = wrong_kind.read_bytes()

    for body in (b'no database here' * 100, other_db, wrong_kind_db):
        status, _h, text = p0.request('SYNCDB', path, body=body)
        assert status == 400, text
    status, _h, _t = backend.request(b'not-the-secret', '127.0.0.1',
                                     p0.port, 'SYNCDB', path, body=other_db)
    assert status == 401
    # a body cut short: the sender goes away after 1000 of its bytes
    headers = signing.sign(cluster_conf['secret'], 'SYNCDB', path,
                           {'Content-Length': str(len(other_db))})
    with socket.create_connection(('127.0.0.1', p0.port), timeout=10) as s:
        s.sendall(('SYNCDB %s HTTP/1.1\r\nHost: x\r\n' % path).encode() +
                  ''.join('%s: %s\r\n' % kv for kv in headers.items())
                  .encode() + b'\r\n' + other_db[:1000])
        s.shutdown(socket.SHUT_WR)
        answer = b''
        while True:
            data = s.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b'HTTP/1.1 400'), answer[:200]

    after = info(p0, part, hsh)
    assert after == before
    assert list(listing(p0, part, 'safe')) == ['precious']
    assert os.listdir(os.path.join(p0.devices, p0.device, 'tmp')) == []


@pytest.fixture
def accounts(start_server, tmp_path, cluster_conf):
    cluster = Cluster(start_server, tmp_path, cluster_conf, 'account', 3)
    cluster.add_to_ring(0, 1, 2)
    yield cluster
    for node in cluster.nodes:
        assert 'Traceback' not in node.server.read_log()


def test_account_replicator(accounts):
    p0, p1, p2 = accounts.nodes
    part, hsh, _ = accounts.where('AUTH_t')

    def report(node, name, count):
        assert node.request('PUT', '/%s/%d/AUTH_t/%s' % (
            node.device, part, name), {
                'X-Timestamp': ts(), 'X-Put-Timestamp': ts(),
                'X-Object-Count': str(count), 'X-Bytes-Used': '0'})[0] == 201

    when = ts()
    for node in (p0, p1):
        assert node.request('PUT', '/%s/%d/AUTH_t' % (node.device, part),
                            {'X-Timestamp': when})[0] == 201
    report(p0, 'c1', 1)
    report(p0, 'c2', 2)
    counts = p0.replicate()
    assert counts['rows_sent'] == 2 and counts['whole_dbs_sent'] == 1
    report(p0, 'c3', 3)
    counts = p0.replicate()
    assert counts['rows_sent'] == 2 and counts['whole_dbs_sent'] == 0
    for node in (p0, p1, p2):
        status, headers, body = node.request(
            'GET', '/%s/%d/AUTH_t' % (node.device, part))
        assert body == b'c1\nc2\nc3\n'
        assert headers['x-account-object-count'] == '6'
