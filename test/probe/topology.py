"""Where the probe cluster's nodes live on the network, and how to cut one off.

A node must be something the test can take off the network and put
back, the way a failed switch port or a pulled cable does it. As root we
give every node its own network namespace: a veth pair per node, the
root-side ends enslaved to one bridge (10.251.X.1/24) and the node at
10.251.X.(10+N). Taking the root-side veth down cuts the node off from
the proxy *and* from every other node, with no packet answered: peers see
connect timeouts, not refusals, exactly as with a dead link.

Without namespaces (not root, or ``ip netns add`` refused) every node
listens on 127.0.0.1 on ports of its own, like objstore-aio, and cutting
a node off means SIGSTOP to its processes (SIGCONT reconnects): peers then
connect but get no answer, the closest loopback gets to a dead link.

Everything we create is named ``osp<pid>...`` (pid of the pytest process)
and recorded in a registry file, so a later session can clean up after a
crashed one (namespaces, links, mounts, processes) without touching a
session that still runs.
"""
import json
import os
import re
import signal
import subprocess
import time

REGISTRY_DIR = '/tmp/objstore-probe-runs-%d' % os.getuid()
PREFIX = 'osp'
NAME_RE = re.compile(r'^%s(\d+)' % PREFIX)
SUBNET_BASE = '10.251'


def _ip(*args, check=True):
    """Run ``ip ARGS``; raise RuntimeError with its stderr on failure."""
    proc = subprocess.run(['ip'] + list(args), capture_output=True,
                          text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError('ip %s: %s' % (' '.join(args),
                                          proc.stderr.strip()))
    return proc


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Registry:
    """A JSON file naming what a session created, for crash cleanup."""

    def __init__(self, owner=None):
        self.owner = owner or os.getpid()
        os.makedirs(REGISTRY_DIR, exist_ok=True)
        self.path = os.path.join(REGISTRY_DIR, '%d.json' % self.owner)
        self.data = {'owner': self.owner, 'namespaces': [], 'links': [],
                     'mounts': [], 'vars': []}
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.data.update(json.load(f))

    def add(self, what, value):
        if value not in self.data[what]:
            self.data[what].append(value)
            self._save()

    def remove(self, what, value):
        if value in self.data[what]:
            self.data[what].remove(value)
            self._save()

    def _save(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)

    def discard(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def processes_using(path):
    """Pids whose command line names ``path`` (a session's var dir)."""
    found = []
    needle = path.encode()
    for name in os.listdir('/proc'):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                if needle in f.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def namespace_pids(ns):
    proc = _ip('netns', 'pids', ns, check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def unmount(path):
    """Unmount ``path`` (lazily if busy); loop devices detach with it."""
    if os.path.ismount(path):
        if subprocess.run(['umount', path], capture_output=True).returncode:
            subprocess.run(['umount', '-l', path], capture_output=True)


def release(data):
    """Free everything a registry lists: processes, mounts, network."""
    for var in data.get('vars', []):
        _kill_pids(processes_using(var))
    for ns in data.get('namespaces', []):
        _kill_pids(namespace_pids(ns))
    for mount in reversed(data.get('mounts', [])):
        unmount(mount)
    for link in data.get('links', []):
        _ip('link', 'del', link, check=False)
    for ns in data.get('namespaces', []):
        _ip('netns', 'del', ns, check=False)


def sweep_leftovers():
    """Clean up after probe sessions that died without cleaning up.

    Only sessions whose pytest process is gone are touched.
    """
    swept = 0
    if os.path.isdir(REGISTRY_DIR):
        for name in os.listdir(REGISTRY_DIR):
            if not name.endswith('.json') or not name[:-5].isdigit():
                continue
            if _alive(int(name[:-5])):
                continue
            path = os.path.join(REGISTRY_DIR, name)
            try:
                with open(path) as f:
                    release(json.load(f))
            except (OSError, ValueError):
                pass
            os.unlink(path)
            swept += 1
    if os.geteuid() != 0:
        return swept
    # names created before a crash could record them
    for ns in _ip('netns', 'list', check=False).stdout.split('\n'):
        ns = ns.split(' ')[0]
        m = NAME_RE.match(ns)
        if m and not _alive(int(m.group(1))):
            _kill_pids(namespace_pids(ns))
            _ip('netns', 'del', ns, check=False)
            swept += 1
    for line in _ip('-o', 'link', 'show', check=False).stdout.split('\n'):
        parts = line.split(': ')
        if len(parts) < 2:
            continue
        link = parts[1].split('@')[0]
        m = NAME_RE.match(link)
        if m and not _alive(int(m.group(1))):
            _ip('link', 'del', link, check=False)
            swept += 1
    return swept


def namespaces_work():
    """(True, '') when we may create network namespaces, else (False, why)."""
    if os.geteuid() != 0:
        return False, 'not root'
    name = '%s%dprobe' % (PREFIX, os.getpid())
    proc = _ip('netns', 'add', name, check=False)
    if proc.returncode != 0:
        return False, 'ip netns add failed: %s' % proc.stderr.strip()
    _ip('netns', 'del', name, check=False)
    return True, ''


class LoopbackNetwork:
    """Every node on 127.0.0.1; a cut node is a SIGSTOPped node."""

    kind = 'loopback'
    per_node_ports = True

    def __init__(self, registry):
        self.registry = registry

    def setup(self):
        pass

    def add_node(self, number):
        return '127.0.0.1'

    def wrap(self, number, argv):
        return list(argv)

    def cut(self, number, pgids):
        for pgid in pgids:
            os.killpg(pgid, signal.SIGSTOP)

    def reconnect(self, number, pgids):
        for pgid in pgids:
            os.killpg(pgid, signal.SIGCONT)

    def teardown(self):
        pass


class NamespaceNetwork:
    """One network namespace per node, bridged in the root namespace."""

    kind = 'netns'
    per_node_ports = False

    def __init__(self, registry):
        self.registry = registry
        self.tag = '%s%d' % (PREFIX, registry.owner)
        self.bridge = self.tag + 'br'
        self.subnet = None
        self.nodes = []

    def ns(self, number):
        return '%sn%d' % (self.tag, number)

    def veth(self, number):
        return '%sv%d' % (self.tag, number)

    def _free_subnet(self):
        used = _ip('-4', '-o', 'addr', 'show').stdout + \
            _ip('-4', 'route', 'show').stdout
        for third in range(0, 256):
            prefix = '%s.%d.' % (SUBNET_BASE, third)
            if prefix not in used:
                return prefix
        raise RuntimeError('no free %s.X.0/24 subnet' % SUBNET_BASE)

    def setup(self):
        self.subnet = self._free_subnet()
        self.registry.add('links', self.bridge)
        _ip('link', 'add', self.bridge, 'type', 'bridge')
        _ip('addr', 'add', self.subnet + '1/24', 'dev', self.bridge)
        _ip('link', 'set', self.bridge, 'up')

    def add_node(self, number):
        """Create node ``number``'s namespace and link; return its IP."""
        ns, veth, peer = self.ns(number), self.veth(number), \
            '%sp%d' % (self.tag, number)
        ip = '%s%d' % (self.subnet, 10 + number)
        self.registry.add('namespaces', ns)
        self.registry.add('links', veth)
        _ip('netns', 'add', ns)
        _ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', peer)
        _ip('link', 'set', peer, 'netns', ns)
        _ip('link', 'set', veth, 'master', self.bridge, 'up')
        _ip('-n', ns, 'addr', 'add', ip + '/24', 'dev', peer)
        _ip('-n', ns, 'link', 'set', peer, 'up')
        _ip('-n', ns, 'link', 'set', 'lo', 'up')
        self.nodes.append(number)
        return ip

    def wrap(self, number, argv):
        """The command line that runs ``argv`` inside node ``number``."""
        return ['ip', 'netns', 'exec', self.ns(number)] + list(argv)

    def cut(self, number, pgids=()):
        _ip('link', 'set', self.veth(number), 'down')

    def reconnect(self, number, pgids=()):
        _ip('link', 'set', self.veth(number), 'up')

    def teardown(self):
        for number in self.nodes:
            _kill_pids(namespace_pids(self.ns(number)))
        for number in self.nodes:
            _ip('link', 'del', self.veth(number), check=False)
            self.registry.remove('links', self.veth(number))
            _ip('netns', 'del', self.ns(number), check=False)
            self.registry.remove('namespaces', self.ns(number))
        _ip('link', 'del', self.bridge, check=False)
        self.registry.remove('links', self.bridge)
        self.nodes = []


def make_network(registry, prefer='auto'):
    """NamespaceNetwork when it works (or ``prefer`` says so), else
    LoopbackNetwork. ``prefer``: 'auto', 'netns' or 'loopback' (the
    OBJSTORE_PROBE_NETWORK environment variable sets it for a run)."""
    prefer = os.environ.get('OBJSTORE_PROBE_NETWORK', prefer)
    if prefer == 'loopback':
        return LoopbackNetwork(registry)
    works, why = namespaces_work()
    if works:
        return NamespaceNetwork(registry)
    if prefer == 'netns':
        raise RuntimeError('network namespaces unavailable: %s' % why)
    return LoopbackNetwork(registry)


def wait_until(predicate, timeout, interval=0.05, what='condition'):
    """Poll ``predicate`` until true; raise TimeoutError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError('%s not met within %.0fs' % (what, timeout))
        time.sleep(interval)
