"""The proxy with a storage node down: writes and reads still succeed.

Node 2's account, container and object servers are killed (SIGKILL)
before the proxy starts. Every PUT, GET and listing goes through the
proxy as usual; the replicas that belong on node 2 land on handoffs
(checked on the handoff node itself). Then one object server is frozen
(SIGSTOP): it accepts connections but never answers, and node_timeout
moves every request on to another node.

The cluster is conftest's aio_cluster (one per module); the proxy and
client harness is test_proxy.py's, loaded by path (test modules are not
importable by name under --import-mode=importlib).
"""
import os
import signal
import time

import pytest

from objstore.cli import aio
from objstore.common import backend
from objstore.common.config import backend_secret, hash_secret
from rings.ring import Ring
from test.conftest import load_test_module

harness = load_test_module('test_proxy')

DEAD_NODE = 2
FROZEN_NODE = 3


def pid_of(var, kind, node):
    with open(os.path.join(var, 'run', '%s-%d.pid' % (kind, node))) as f:
        return int(f.read())


@pytest.fixture(scope='module')
def crippled(aio_cluster):
    """(var, proxy) of a cluster whose node 2 is dead."""
    var = aio_cluster['var']
    for kind in aio.KINDS:
        pid = pid_of(var, kind, DEAD_NODE)
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    # short timeouts, so a frozen node costs little; not so short that an
    # fsync stall of a loaded CI machine (0.8 s seen) fails a live node
    proxy = harness.Proxy(var, node_timeout='2', conn_timeout='0.5')
    try:
        yield var, proxy
    finally:
        proxy.stop()


def rings(var):
    prefix, suffix = hash_secret()
    return {kind: Ring(os.path.join(var, 'etc', kind + '.ring.gz'), prefix,
                       suffix) for kind in aio.KINDS}


def stored_on(node, part, path):
    """The status of a signed GET/HEAD of ``path`` on ``node`` itself."""
    method = 'GET' if path.count('/') >= 3 else 'HEAD'
    status, _, _ = backend.request(
        backend_secret(), node['ip'], node['port'], method,
        '/%s/%d%s' % (node['device'], part, path))
    return status


def test_writes_and_reads_go_on_with_a_dead_node(crippled):
    var, proxy = crippled
    client = harness.Client(proxy)
    assert client('PUT', '/survivor').status_code == 201
    bodies = {'obj-%02d' % i: os.urandom(1000 * (i + 1)) for i in range(20)}
    for name, body in bodies.items():
        resp = client('PUT', '/survivor/' + name, data=body)
        assert resp.status_code == 201, resp.text
    for name, body in bodies.items():
        resp = client('GET', '/survivor/' + name)
        assert (resp.status_code, resp.content) == (200, body)
    listing = client('GET', '/survivor', params={'format': 'json'}).json()
    assert [o['name'] for o in listing] == sorted(bodies)
    assert [o['bytes'] for o in listing] == \
        [len(bodies[n]) for n in sorted(bodies)]
    containers = client('GET', '', params={'format': 'json'}).json()
    assert 'survivor' in [c['name'] for c in containers]

    # replicas meant for node 2 are on the first handoff instead
    ring = rings(var)['object']
    moved = 0
    for name in bodies:
        part, primaries = ring.get_nodes(client.url.rsplit('/', 1)[1],
                                         'survivor', name)
        if DEAD_NODE not in [n['zone'] for n in primaries]:
            continue
        handoff = next(ring.get_more_nodes(part))
        path = '/%s/survivor/%s' % (client.url.rsplit('/', 1)[1], name)
        assert stored_on(handoff, part, path) == 200
        moved += 1
    assert moved >= 5   # 3 of 4 nodes hold each partition

    for name in bodies:
        assert client('DELETE', '/survivor/' + name).status_code == 204
    assert client('GET', '/survivor').text == ''
    assert client('DELETE', '/survivor').status_code == 204


def test_a_frozen_node_times_out_and_requests_move_on(crippled):
    var, proxy = crippled
    client = harness.Client(proxy)
    client('PUT', '/frozen')
    pid = pid_of(var, 'object', FROZEN_NODE)
    os.killpg(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        for i in range(4):
            body = b'%d' % i * 1000
            assert client('PUT', '/frozen/o%d' % i, data=body)\
                .status_code == 201
            resp = client('GET', '/frozen/o%d' % i)
            assert (resp.status_code, resp.content) == (200, body)
        # each request waits node_timeout (2 s) at most per frozen node
        assert time.monotonic() - start < 20
    finally:
        os.killpg(pid, signal.SIGCONT)
