"""In-process object servers for the proxy's I/O modules.

Four real ObjectServer apps (real diskfiles in temp dirs, real signing)
serve on green sockets in the test process, each behind a switch a test
flips to make its node misbehave: answer 507, hang, die in the middle of
a request body or of an answer body. An object ring of part power 4 and
three replicas spreads partitions over the four. No subprocess: the
proxy's green clients and the servers share one eventlet hub.
"""
import os
import socket

import pytest

from objstore.common import concurrency, http_server
from objstore.obj import server as object_server
from objstore.proxy.errorlimit import ErrorLimiter
from objstore.proxy.nodeclient import NodeClient
from objstore.proxy.pool import ConnectionPool
from rings.builder import RingBuilder
from rings.ring import Ring

CUT_AFTER = 100000   # bytes a 'cut-*' node handles before it dies


class Switch:
    """A real object server app that misbehaves on demand.

    ``fault``: None, '507', 'hang', 'cut-put' (read CUT_AFTER bytes of a
    PUT body, then drop the connection) or 'cut-get' (send CUT_AFTER
    bytes of a GET body, then drop it). ``seen`` logs (method, Range).
    """

    def __init__(self, app):
        self.app = app
        self.fault = None
        self.seen = []

    def _drop(self, environ):
        environ['wsgi.input'].get_socket().shutdown(socket.SHUT_RDWR)
        raise ConnectionAbortedError('switched off mid-request')

    def __call__(self, environ, start_response):
        method = environ['REQUEST_METHOD']
        self.seen.append((method, environ.get('HTTP_RANGE')))
        if self.fault == '507':
            start_response('507 Insufficient Storage',
                           [('Content-Length', '0')])
            return [b'']
        if self.fault == 'hang':
            concurrency.sleep(3)
        if self.fault == 'cut-put' and method == 'PUT':
            environ['wsgi.input'].read(CUT_AFTER)
            self._drop(environ)
        if self.fault == 'cut-get' and method == 'GET':
            return self._cut(environ, self.app(environ, start_response))
        return self.app(environ, start_response)

    def _cut(self, environ, chunks):
        sent = 0
        for chunk in chunks:
            if sent + len(chunk) > CUT_AFTER:
                yield chunk[:CUT_AFTER - sent]
                self._drop(environ)
            sent += len(chunk)
            yield chunk


class Node:
    def __init__(self, root, index):
        self.device = 'd%d' % index
        os.makedirs(os.path.join(root, self.device))
        self.switch = Switch(object_server.app_factory(
            {'devices': root, 'mount_check': 'false'}))
        self.sock = concurrency.listen(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.thread = concurrency.spawn(
            http_server.serve, self.sock, self.switch, keepalive_timeout=1.0)

    @property
    def fault(self):
        return self.switch.fault

    @fault.setter
    def fault(self, value):
        self.switch.fault = value

    def stop(self):
        """Down: nothing listens on the port any more."""
        if self.thread is not None:
            concurrency.kill(self.thread)
            self.sock.close()
            self.thread = None


class Backends:
    """Four object servers, their ring, a pooled client to them."""

    def __init__(self, tmp_path, prefix, suffix, secret, node_timeout=2.0):
        self.nodes = [Node(str(tmp_path / ('node%d' % i)), i)
                      for i in range(4)]
        builder = RingBuilder(4, 3, 1)
        for i, node in enumerate(self.nodes):
            builder.add_dev({'region': 1, 'zone': i + 1, 'ip': '127.0.0.1',
                             'port': node.port, 'device': node.device,
                             'weight': 100})
        builder.rebalance(seed=1)
        self.ring_path = str(tmp_path / 'object.ring.gz')
        builder.get_ring().save(self.ring_path)
        self.ring = Ring(self.ring_path, prefix, suffix)
        self.limiter = ErrorLimiter(limit=10, interval=60)
        self.pool = ConnectionPool(0.5, node_timeout)
        self.client = NodeClient(secret, self.pool, self.limiter)
        self.secret = secret

    def node(self, dev):
        """The Node serving ring device ``dev``."""
        return next(n for n in self.nodes if n.device == dev['device'])

    def close(self):
        self.pool.close_all()
        for node in self.nodes:
            node.stop()


@pytest.fixture
def backends(tmp_path, cluster_conf):
    bk = Backends(tmp_path, cluster_conf['prefix'], cluster_conf['suffix'],
                  cluster_conf['secret'])
    yield bk
    bk.close()
