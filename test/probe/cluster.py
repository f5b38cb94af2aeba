"""A real multi-node objstore cluster for probe tests.

Each node has its own processes (object, container and account server),
its own device directory ``srv/nodeN/dN`` and, where the machine allows,
its own IP in a network namespace (topology.py); the proxy runs in the
root namespace on 127.0.0.1. Rings are built with the project's own
RingBuilder (one zone per node, three replicas) and written to the
cluster's etc dir, which the cluster config names as ring_dir, so servers
and daemons pick up a rebalance the way production does: a new ring file.

The harness gives tests the levers an operator has (stop, start, kill a
server; cut a node off and reconnect it; fill a device; add a node and
rebalance; run a daemon pass on a node) and the eyes of a repairman:
signed backend requests straight to one node's device, and a look at
which devices hold files for a partition.
"""
import concurrent.futures
import configparser
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote

from objstore.cli import aio
from objstore.common import backend, config
from rings.builder import RingBuilder
from rings.ring import Ring

import topology
from proxyclient import SwiftClient

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
KINDS = aio.KINDS
SERVER_MODULE = aio.SERVER_MODULE
DATADIR = {'object': 'objects', 'container': 'containers',
           'account': 'accounts'}
# With a namespace per node every node can use the same, usual ports.
NETNS_PORTS = {'object': 6200, 'container': 6201, 'account': 6202}
PART_POWER = 8
REPLICAS = 3
MIN_PART_HOURS = 1
START_TIMEOUT = 60.0
DAEMON_TIMEOUT = 300.0
USERS = (('test', 'tester', 'testing', '.admin'),
         ('admin', 'admin', 'admin', '.admin .reseller_admin'))


def missing(*modules):
    """The daemon modules not written yet (a scenario skips on them)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def daemon_kind(module):
    """Which server's config a daemon module reads: obj -> object ..."""
    part = module.split('.')[1]
    return {'obj': 'object', 'container': 'container',
            'account': 'account'}[part]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def answers(ip, port, timeout=0.5):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


class DaemonFailed(AssertionError):
    """A daemon pass exited badly or printed no counts."""


class Unsupported(Exception):
    """The machine cannot do what the scenario needs (pytest skips)."""


class Server:
    """One server process (with its workers, in its own process group)."""

    def __init__(self, name, argv, env, log_path, ip, port):
        self.name, self.argv, self.env = name, argv, env
        self.log_path, self.ip, self.port = log_path, ip, port
        self.proc = None

    def start(self):
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=REPO, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not answers(self.ip, self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('%s did not start:\n%s'
                                   % (self.name, self.log_tail()))
            time.sleep(0.05)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig):
        if self.running:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.send(signal.SIGCONT)   # a stopped process cannot exit
            self.send(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.send(signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log_tail(self, size=4000):
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(max(0, os.path.getsize(self.log_path) - size))
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''


class Node:
    """A storage node: one device, three servers, one address."""

    def __init__(self, number, ip, ports, var):
        self.number, self.ip, self.ports = number, ip, ports
        self.device = 'd%d' % number
        self.devices = os.path.join(var, 'srv', 'node%d' % number)
        self.device_path = os.path.join(self.devices, self.device)
        self.conf_dir = os.path.join(var, 'etc', 'node%d' % number)
        self.servers = {}
        self.cut_off = False

    def conf(self, kind):
        return os.path.join(self.conf_dir, '%s-server.conf' % kind)

    def pgids(self):
        return [s.proc.pid for s in self.servers.values() if s.running]


class Cluster:
    """Build with Cluster(root), then start(); close() undoes everything.

    ``small_devices`` {node number: bytes} puts that node's device on a
    filesystem of its own that small (loop-mounted ext4, else tmpfs).
    ``daemon_conf`` {section: {key: value}} goes into every node's server
    configs (e.g. {'object-auditor': {'bytes_per_second': '0'}}).
    """

    def __init__(self, root, nodes=4, small_devices=None, daemon_conf=None,
                 network=None, registry=None):
        self.var = os.path.abspath(root)
        self.etc = os.path.join(self.var, 'etc')
        self.log_dir = os.path.join(self.var, 'log')
        self.initial_nodes = nodes
        self.small_devices = dict(small_devices or {})
        self.small_device_kind = None
        self.daemon_conf = {k: dict(v) for k, v in (daemon_conf or
                                                    {}).items()}
        self.registry = registry or topology.Registry()
        self.network = network or topology.make_network(self.registry)
        self.nodes = {}
        self.builders = {}
        self.proxy = None
        self.proxy_url = None
        self.mounts = []
        self.prefix = self.suffix = self.secret = None   # set by start()
        self.conf_path = os.path.join(self.etc, 'objstore.conf')
        self.env = dict(os.environ, OBJSTORE_CONF=self.conf_path)
        self._ports = set()

    # -- building and starting -----------------------------------------
    def start(self):
        for sub in (self.etc, self.log_dir):
            os.makedirs(sub, exist_ok=True)
        self.registry.add('vars', self.var)
        # fresh secrets, rings in etc/: the cluster config objstore-aio
        # writes
        aio.write_conf(self.etc)
        self.prefix, self.suffix = config.hash_secret(self.conf_path)
        self.secret = config.backend_secret(self.conf_path)
        self.network.setup()
        for number in range(1, self.initial_nodes + 1):
            self._make_node(number)
        for kind in KINDS:
            builder = RingBuilder(PART_POWER, REPLICAS, MIN_PART_HOURS)
            for node in self.nodes.values():
                builder.add_dev(self._dev(node, kind))
            builder.rebalance(seed=1)
            self.builders[kind] = builder
            self._write_ring(kind)
        self._start_proxy_and_nodes(self.nodes.values())
        return self

    def _port(self, kind):
        if not self.network.per_node_ports:
            return NETNS_PORTS[kind]
        while True:
            port = free_port()
            if port not in self._ports:
                self._ports.add(port)
                return port

    def _make_node(self, number):
        ip = self.network.add_node(number)
        node = Node(number, ip, {k: self._port(k) for k in KINDS}, self.var)
        os.makedirs(node.device_path, exist_ok=True)
        if number in self.small_devices:
            self._mount_small(node.device_path, self.small_devices[number])
        os.makedirs(node.conf_dir, exist_ok=True)
        self.nodes[number] = node
        self.write_node_confs(node)
        return node

    def write_node_confs(self, node):
        for kind in KINDS:
            parser = configparser.ConfigParser(interpolation=None)
            parser['DEFAULT'] = {'bind_ip': node.ip,
                                 'bind_port': str(node.ports[kind]),
                                 'workers': '1'}
            parser['%s-server' % kind] = {'devices': node.devices,
                                          'mount_check': 'false'}
            for section, settings in self.daemon_conf.items():
                if section.startswith(kind + '-'):
                    parser[section] = settings
            with open(node.conf(kind), 'w') as f:
                parser.write(f)

    def configure(self, section, **settings):
        """Set daemon settings on every node (read at the next pass)."""
        self.daemon_conf.setdefault(section, {}).update(
            {k: str(v) for k, v in settings.items()})
        for node in self.nodes.values():
            self.write_node_confs(node)

    @staticmethod
    def _dev(node, kind):
        return {'region': 1, 'zone': node.number, 'ip': node.ip,
                'port': node.ports[kind], 'device': node.device,
                'weight': 100.0}

    def _write_ring(self, kind):
        builder = self.builders[kind]
        builder.save(os.path.join(self.etc, kind + '.builder'))
        builder.get_ring().save(os.path.join(self.etc, kind + '.ring.gz'))

    def _server(self, node, kind):
        argv = self.network.wrap(node.number, [
            sys.executable, '-m', SERVER_MODULE[kind], node.conf(kind)])
        log = os.path.join(self.log_dir, '%s-node%d.log'
                           % (kind, node.number))
        return Server('%s server of node %d' % (kind, node.number), argv,
                      self.env, log, node.ip, node.ports[kind])

    def _start_proxy_and_nodes(self, nodes):
        started = []
        if self.proxy is None:
            port = free_port()
            conf = os.path.join(self.etc, 'proxy-server.conf')
            with open(conf, 'w') as f:
                f.write(aio.proxy_conf_text(
                    port, users=USERS, account_autocreate='true',
                    allow_account_management='true', conn_timeout='0.5',
                    node_timeout='5'))
            self.proxy = Server(
                'proxy', [sys.executable, '-m', SERVER_MODULE['proxy'],
                          conf], self.env,
                os.path.join(self.log_dir, 'proxy.log'), '127.0.0.1', port)
            self.proxy_url = 'http://127.0.0.1:%d' % port
            started.append(self.proxy)
        for node in nodes:
            for kind in KINDS:
                node.servers[kind] = self._server(node, kind)
                started.append(node.servers[kind])
        for server in started:
            server.start()
        for server in started:
            server.wait_ready()

    # -- small devices -----------------------------------------------------
    def _mount_small(self, path, size):
        image = os.path.join(self.var, 'images',
                             os.path.basename(path) + '.img')
        os.makedirs(os.path.dirname(image), exist_ok=True)
        with open(image, 'wb') as f:
            f.truncate(size)
        self.registry.add('mounts', path)
        tries = [
            ('ext4 on a loop device',
             [['mkfs.ext4', '-q', '-F', '-m', '0', image],
              ['mount', '-o', 'loop', image, path]]),
            ('size-limited tmpfs',
             [['mount', '-t', 'tmpfs', '-o', 'size=%d' % size, 'tmpfs',
               path]]),
        ]
        errors = []
        for kind, commands in tries:
            for argv in commands:
                proc = subprocess.run(argv, capture_output=True, text=True)
                if proc.returncode:
                    errors.append('%s: %s' % (' '.join(argv),
                                              proc.stderr.strip()))
                    break
            else:
                self.small_device_kind = kind
                self.mounts.append(path)
                return
        self.registry.remove('mounts', path)
        raise Unsupported('cannot make a small filesystem: %s'
                          % '; '.join(errors))

    def fill_device(self, number):
        """Fill node ``number``'s device to the last byte (a filler file).

        Returns the bytes written. ENOSPC ends it: the device is full.
        """
        path = os.path.join(self.nodes[number].device_path, 'filler')
        written = 0
        chunk = b'\0' * (1 << 20)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                try:
                    written += os.write(fd, chunk)
                except OSError:
                    if len(chunk) == 1:
                        break
                    chunk = chunk[:len(chunk) // 2]
            os.fsync(fd)
        finally:
            os.close(fd)
        return written

    def free_device(self, number):
        os.unlink(os.path.join(self.nodes[number].device_path, 'filler'))

    # -- operator levers ---------------------------------------------------
    def stop_server(self, number, kind='object'):
        self.nodes[number].servers[kind].stop()

    def kill_server(self, number, kind='object'):
        self.nodes[number].servers[kind].kill()

    def start_server(self, number, kind='object'):
        server = self._server(self.nodes[number], kind)
        self.nodes[number].servers[kind] = server
        server.start()
        server.wait_ready()

    def stop_node(self, number, sig=signal.SIGTERM):
        """Stop every server of node ``number`` (SIGKILL: a crash)."""
        for server in self.nodes[number].servers.values():
            server.stop(sig)

    def start_node(self, number):
        node = self.nodes[number]
        for kind in KINDS:
            node.servers[kind] = self._server(node, kind)
            node.servers[kind].start()
        for server in node.servers.values():
            server.wait_ready()

    def cut(self, number):
        """Take node ``number`` off the network."""
        node = self.nodes[number]
        self.network.cut(number, node.pgids())
        node.cut_off = True

    def reconnect(self, number):
        node = self.nodes[number]
        self.network.reconnect(number, node.pgids())
        node.cut_off = False
        for kind in KINDS:
            topology.wait_until(
                lambda: answers(node.ip, node.ports[kind]), 30,
                what='node %d answering again' % number)

    def add_node(self, kinds=KINDS):
        """A new node with its servers running, then a rebalance of the
        ``kinds`` rings that gives it a share of the partitions. Returns
        {kind: partitions that moved}."""
        number = max(self.nodes) + 1
        node = self._make_node(number)
        self._start_proxy_and_nodes([node])
        moved = {}
        for kind in kinds:
            builder = self.builders[kind]
            builder.add_dev(self._dev(node, kind))
            builder.pretend_min_part_hours_passed()
            moved[kind] = builder.rebalance(seed=number)[0]
            self._write_ring(kind)
        return number, moved

    # -- daemons -----------------------------------------------------------
    def run_daemon(self, module, nodes=None, timeout=DAEMON_TIMEOUT,
                   args=()):
        """One ``--once`` pass of ``module`` on each node (all connected
        nodes by default), concurrently; {node number: counts dict}."""
        if nodes is None:
            nodes = [n for n, node in self.nodes.items() if not node.cut_off]
        elif isinstance(nodes, int):
            nodes = [nodes]
        with concurrent.futures.ThreadPoolExecutor(len(nodes)) as pool:
            futures = {n: pool.submit(self._daemon_pass, module, n, timeout,
                                      args) for n in nodes}
            return {n: f.result() for n, f in futures.items()}

    def _daemon_pass(self, module, number, timeout, args):
        node = self.nodes[number]
        kind = daemon_kind(module)
        argv = self.network.wrap(number, [
            sys.executable, '-m', module, node.conf(kind), '--once'] +
            list(args))
        try:
            proc = subprocess.run(argv, env=self.env, cwd=REPO,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise DaemonFailed('%s on node %d did not finish in %.0fs:\n%s'
                               % (module, number, timeout,
                                  (e.stderr or b'')[-3000:].decode(
                                      'utf-8', 'replace')))
        stdout = proc.stdout.decode('utf-8', 'replace')
        stderr = proc.stderr.decode('utf-8', 'replace')
        with open(os.path.join(self.log_dir, '%s-node%d.log'
                               % (module.rsplit('.', 1)[-1], number)),
                  'a') as f:
            f.write(stderr)
        lines = stdout.strip().splitlines()
        try:
            counts = json.loads(lines[-1])
        except (IndexError, ValueError):
            counts = None
        if proc.returncode != 0 or not isinstance(counts, dict):
            raise DaemonFailed(
                '%s\nexited %s\nstdout: %s\nstderr (tail):\n%s'
                % (' '.join(argv), proc.returncode, stdout[-2000:],
                   stderr[-4000:]))
        return counts

    # -- looking at the cluster -------------------------------------------
    def client(self, user='test:tester', key='testing', timeout=30.0):
        """An authenticated client; a request slower than ``timeout``
        seconds counts as failed (status 0)."""
        return SwiftClient(self.proxy_url, user, key,
                           timeout=timeout).authenticate()

    def ring(self, kind='object'):
        """The ring as the file says right now (a fresh reader)."""
        return Ring(os.path.join(self.etc, kind + '.ring.gz'),
                    self.prefix, self.suffix, reload_interval=0)

    def node_of(self, dev):
        return self.nodes[int(dev['device'][1:])]

    def direct(self, dev, method, path, headers=None, query='',
               timeout=10.0):
        """A signed backend request to ``dev``'s server; path without the
        device (``/<part>/<account>/...``). (status, headers, body), or
        status 0 when the node cannot be reached."""
        try:
            return backend.request(self.secret, dev['ip'], dev['port'],
                                   method, '/%s%s' % (dev['device'], path),
                                   headers=headers, query=query,
                                   timeout=timeout)
        except backend.BackendError as e:
            return 0, {}, str(e).encode()

    def object_nodes(self, account, container, obj):
        return self.ring('object').get_nodes(account, container, obj)

    def direct_object(self, dev, part, account, container, obj,
                      method='GET'):
        return self.direct(dev, method, '/%d/%s/%s/%s'
                           % (part, account, container, obj))

    def direct_listing(self, dev, part, account, container):
        """{name: etag} as the container replica on ``dev`` lists it;
        None when it has no such container (or cannot be reached)."""
        names = {}
        marker = ''
        while True:
            query = 'format=json' + ('&marker=' + quote(marker, safe='')
                                     if marker else '')
            status, _, body = self.direct(dev, 'GET', '/%d/%s/%s' % (
                part, account, container), query=query)
            if status == 204:
                return names
            if status != 200:
                return None
            rows = json.loads(body)
            if not rows:
                return names
            for row in rows:
                names[row['name']] = row['hash']
            marker = rows[-1]['name']

    def hash_dirs(self, part, kind='object'):
        """{device name: [hash dirs holding files]} for a partition, over
        every device of every node: who really holds data for it."""
        out = {}
        for node in self.nodes.values():
            part_dir = os.path.join(node.device_path, DATADIR[kind],
                                    str(part))
            found = []
            for suffix in _listdir(part_dir):
                suffix_dir = os.path.join(part_dir, suffix)
                if len(suffix) != 3 or not os.path.isdir(suffix_dir):
                    continue
                for hsh in _listdir(suffix_dir):
                    hash_dir = os.path.join(suffix_dir, hsh)
                    if os.path.isdir(hash_dir) and _listdir(hash_dir):
                        found.append(hash_dir)
            if found:
                out[node.device] = found
        return out

    def object_dirs(self, account, container, obj):
        """{device name: hash dir} of every device holding files of one
        object, primaries or not."""
        part, _ = self.object_nodes(account, container, obj)
        from objstore.common.ondisk import name_hash
        hsh = name_hash(self.prefix, self.suffix, account, container, obj)
        out = {}
        for device, dirs in self.hash_dirs(part).items():
            for hash_dir in dirs:
                if os.path.basename(hash_dir) == hsh:
                    out[device] = hash_dir
        return out

    def quarantined(self, number, kind='object'):
        """Names in node ``number``'s quarantine dir for ``kind``."""
        return _listdir(os.path.join(self.nodes[number].device_path,
                                     'quarantined', DATADIR[kind]))

    def async_pendings(self, number):
        root = os.path.join(self.nodes[number].device_path, 'async_pending')
        return [os.path.join(root, s, n) for s in _listdir(root)
                for n in _listdir(os.path.join(root, s))]

    # -- the end -----------------------------------------------------------
    def close(self):
        servers = [s for node in self.nodes.values()
                   for s in node.servers.values()]
        if self.proxy is not None:
            servers.append(self.proxy)
        for server in servers:
            server.send(signal.SIGCONT)
            server.send(signal.SIGTERM)
        for server in servers:
            server.stop()
        self.network.teardown()
        for path in reversed(self.mounts):
            topology.unmount(path)
            self.registry.remove('mounts', path)
        self.mounts = []
        self.registry.remove('vars', self.var)


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def totals(per_node):
    """Sum the numeric counts of a run_daemon() result over the nodes."""
    out = {}
    for counts in per_node.values():
        for key, value in counts.items():
            if isinstance(value, (int, float)) and key != 'elapsed':
                out[key] = out.get(key, 0) + value
    return out
