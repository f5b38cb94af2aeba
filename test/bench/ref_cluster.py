"""The reference cluster: OpenStack Swift laid out like our all-in-one.

compare.py measures objstore next to Swift on the same machine; this
module builds, starts and stops the Swift side. It never imports swift:
every Swift program runs from its own venv (test/bench/.ref-venv), as a
subprocess, exactly as an operator would run it.

Topology (the same as ``objstore-aio``): four nodes on 127.0.0.1, each
with its own object, container and account server and its own device
directory ``srv/nodeN/dN``; rings of part power 10, 3 replicas,
min_part_hours 1, one zone per node, built with Swift's own
``swift-ring-builder``; one proxy with tempauth (test:tester/testing and
the other well-known users). No replicators, auditors, updaters or
expirer run, as on our side in the comparison.

Configuration: the "SAIO - Swift All In One" development guide's files
(doc/saio/swift/*.conf), with Swift's defaults for everything they do not
name. Each setting that differs from Swift's default, and why:

* ``mount_check = false`` (storage servers): the devices are directories,
  not mounted disks (as in the SAIO).
* ``workers`` (every server): the counts our cluster runs with, read from
  our generated configs (1 per storage server; the proxy as ours), so both
  sides get the same processes. With workers >= 1 Swift, like us, forks
  that many workers under a parent.
* ``user``: the user running the comparison (Swift drops privileges to
  this user; its default "swift" does not exist here). SAIO does the same.
* ``swift_dir``, ``devices``, ``recon_cache_path``, ports: paths and free
  loopback ports of this run instead of /etc/swift, /srv, /var/cache/swift.
* ``log_level = INFO`` is Swift's default and our servers' level; every
  request is logged on both sides. Swift logs through syslog; as this
  machine has no /dev/log, ``log_udp_host``/``log_udp_port`` send it to a
  UDP receiver in the comparison process that appends to
  ``log/swift.log`` (a syslog daemon's job in the SAIO). The receiver's
  CPU is not counted on either side.
* Proxy pipeline ``catch_errors gatekeeper healthcheck proxy-logging cache
  listing_formats tempauth copy dlo versioned_writes proxy-logging
  proxy-server``: the SAIO pipeline without the middlewares whose features
  our proxy does not offer yet (bulk, tempurl, ratelimit, crossdomain,
  container_sync, staticweb, quotas, slo, symlink, etag-quoter), so
  neither side pays for features the other lacks. What is left is what
  Swift itself inserts when missing (catch_errors, gatekeeper,
  listing_formats, copy, dlo, versioned_writes), the request log
  (proxy-logging, twice as the guide recommends) and ``cache``.
* ``cache`` (memcache middleware) with one ``memcached`` on a free port,
  started here with memcached's default settings: the guide runs
  memcached, tempauth keeps its tokens there and the proxy caches account
  and container info in it; without it every object request would cost
  extra HEADs. Its CPU counts as the reference cluster's.
* ``account_autocreate = true`` and ``allow_account_management = true``
  (proxy): as in the SAIO; tempauth accounts are created on first use,
  as on our side.
* Storage servers run the SAIO's ``healthcheck recon <server>`` pipeline.
* Left out of the SAIO on purpose: ``eventlet_debug = true`` (a debugging
  aid that slows every server; production default false) and
  ``disable_fallocate = true`` (the SAIO needs it for its small loopback
  filesystem; production default is to fallocate).
* fsync: Swift's defaults, i.e. every object is fsync'd (and fdatasync'd
  every 512 MB while it streams) before the server answers 201; container
  and account databases are SQLite with Swift's default settings.
"""
import configparser
import getpass
import http.client
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time

import ring_bench
# SWIFT_VERSION and ReferenceUnavailable are used by compare.py too
from ring_bench import REF_VENV, SWIFT_VERSION, ReferenceUnavailable  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
# What Swift's servers import when run with the configs below, found by
# starting them in an empty venv: eventlet (+ greenlet, dnspython), paste
# for the pipelines, xattr (diskfile metadata), pyeclib (storage_policy
# imports it even for replication policies) and cryptography (tempauth).
# Swift's other requirements (lxml, requests) are only for s3api and
# s3token, which this cluster does not load. Pinned to what was tested.
REF_REQUIREMENTS = ['eventlet==0.41.3', 'PasteDeploy==3.1.0',
                    'xattr==1.3.0', 'pyeclib==1.8.0',
                    'cryptography==50.0.2']
REF_CHECK = ('import swift.proxy.server, swift.obj.server, '
             'swift.container.server, swift.account.server, '
             'swift.common.middleware.tempauth, '
             'swift.common.middleware.memcache, swift.common.storage_policy')

NODES = 4
PART_POWER = 10
REPLICAS = 3
MIN_PART_HOURS = 1
KINDS = ('account', 'container', 'object')
PORT_OFFSET = {'object': 10, 'container': 11, 'account': 12}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
USERS = (('test', 'tester', 'testing', '.admin'),
         ('test2', 'tester2', 'testing2', '.admin'),
         ('test', 'tester3', 'testing3', ''),
         ('admin', 'admin', 'admin', '.admin .reseller_admin'))

SWIFT_CONF = """\
[swift-hash]
swift_hash_path_prefix = {prefix}
swift_hash_path_suffix = {suffix}

[storage-policy:0]
name = gold
policy_type = replication
default = yes
"""
COMMON_DEFAULT = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = {workers}
user = {user}
swift_dir = {etc}
log_name = {log_name}
log_level = INFO
log_udp_host = 127.0.0.1
log_udp_port = {log_port}
"""
STORAGE_CONF = COMMON_DEFAULT + """\
devices = {devices}
mount_check = false
recon_cache_path = {cache}

[pipeline:main]
pipeline = healthcheck recon {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}

[filter:recon]
use = egg:swift#recon

[filter:healthcheck]
use = egg:swift#healthcheck
"""
PROXY_CONF = COMMON_DEFAULT + """\

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache \
listing_formats tempauth copy dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
{users}

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcache_port}

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
"""


# --------------------------------------------------------------------------
# the venv (built by ring_bench.py's code, with what the servers need)
# --------------------------------------------------------------------------
def ref_bin(name):
    return os.path.join(REF_VENV, 'bin', name)


def ensure_ref_venv(log):
    """Make .ref-venv able to run Swift's servers, or raise.

    Shared with ring_bench.py (which needs only the ring): an existing
    venv is kept and only completed.
    """
    ring_bench.ensure_ref_venv(log, REF_REQUIREMENTS, REF_CHECK)


def ensure_memcached(log):
    """Path of memcached; installs Debian's package when root, or raises."""
    path = shutil.which('memcached')
    if path:
        return path
    if os.geteuid() == 0 and shutil.which('apt-get'):
        log('memcached is missing: apt-get install memcached')
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        for cmd in (['apt-get', 'update', '-qq'],
                    ['apt-get', 'install', '-y', '-qq', 'memcached']):
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env=env, timeout=900)
            if proc.returncode != 0:
                raise ReferenceUnavailable('%s failed:\n%s' % (
                    ' '.join(cmd), proc.stderr.strip()[-1000:]))
        path = shutil.which('memcached')
    if not path:
        raise ReferenceUnavailable(
            'memcached is not installed (the reference proxy needs it); '
            'install it, e.g. apt-get install memcached')
    return path


# --------------------------------------------------------------------------
# ports and health
# --------------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _healthy(port):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=2)
    try:
        conn.request('GET', '/healthcheck')
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _answers(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.5):
            return True
    except OSError:
        return False


class _LogSink(threading.Thread):
    """Swift's syslog lines over UDP, appended to a file (see module doc)."""

    def __init__(self, path):
        super().__init__(daemon=True, name='swift-log-sink')
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.path = path
        self.stopping = False

    def run(self):
        with open(self.path, 'ab') as f:
            while not self.stopping:
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    f.flush()
                    continue
                except OSError:
                    break
                f.write(data.rstrip(b'\0\n') + b'\n')

    def stop(self):
        self.stopping = True
        self.join(2)
        self.sock.close()


# --------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------
class RefCluster:
    """Swift's four-node cluster under ``var``: setup(), start(), stop().

    ``workers`` maps 'account'/'container'/'object'/'proxy' to worker
    counts. ``base_port``: storage ports are base + 100 * node + 10
    (object) / 11 (container) / 12 (account), as in the SAIO and our aio.
    """

    def __init__(self, var, workers, base_port, proxy_port=None,
                 log=lambda msg: None):
        self.var = os.path.abspath(var)
        self.etc = os.path.join(self.var, 'etc')
        self.workers = dict(workers)
        self.base_port = base_port
        self.proxy_port = proxy_port or free_port()
        self.memcache_port = None
        self.log = log
        self.procs = []          # (name, Popen)
        self.sink = None

    @property
    def auth_url(self):
        return 'http://127.0.0.1:%d/auth/v1.0' % self.proxy_port

    def port_for(self, kind, node):
        return self.base_port + 100 * node + PORT_OFFSET[kind]

    def conf_path(self, kind, node):
        if kind == 'proxy':
            return os.path.join(self.etc, 'proxy-server.conf')
        return os.path.join(self.etc, 'node%d' % node,
                            '%s-server.conf' % kind)

    # -- setup -------------------------------------------------------------
    def setup(self):
        for sub in ('etc', 'log', 'cache'):
            os.makedirs(os.path.join(self.var, sub), exist_ok=True)
        for node in range(1, NODES + 1):
            os.makedirs(os.path.join(self.var, 'srv', 'node%d' % node,
                                     'd%d' % node), exist_ok=True)
        with open(os.path.join(self.etc, 'swift.conf'), 'w') as f:
            f.write(SWIFT_CONF.format(prefix=secrets.token_hex(16),
                                      suffix=secrets.token_hex(16)))
        for kind in KINDS:
            self._build_ring(kind)

    def _ring_builder(self, *args):
        cmd = [ref_bin('swift-ring-builder')] + list(args)
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=300)
        # exit 1 is a warning (e.g. "balance could be better"), 2 an error
        if proc.returncode not in (0, 1):
            raise ReferenceUnavailable('%s failed:\n%s' % (
                ' '.join(cmd), (proc.stdout + proc.stderr)[-2000:]))
        return proc.stdout

    def _build_ring(self, kind):
        builder = os.path.join(self.etc, '%s.builder' % kind)
        self._ring_builder(builder, 'create', str(PART_POWER),
                           str(REPLICAS), str(MIN_PART_HOURS))
        for node in range(1, NODES + 1):
            self._ring_builder(builder, 'add', 'r1z%d-127.0.0.1:%d/d%d'
                               % (node, self.port_for(kind, node), node),
                               '100')
        self._ring_builder(builder, 'rebalance')
        if not os.path.exists(os.path.join(self.etc, '%s.ring.gz' % kind)):
            raise ReferenceUnavailable('swift-ring-builder wrote no %s ring'
                                       % kind)

    def _write_confs(self, log_port):
        user = getpass.getuser()
        for kind in KINDS:
            for node in range(1, NODES + 1):
                path = self.conf_path(kind, node)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, 'w') as f:
                    f.write(STORAGE_CONF.format(
                        port=self.port_for(kind, node),
                        workers=self.workers[kind], user=user,
                        etc=self.etc, log_name='%s-%d' % (kind, node),
                        log_port=log_port, kind=kind,
                        devices=os.path.join(self.var, 'srv',
                                             'node%d' % node),
                        cache=os.path.join(self.var, 'cache')))
        users = '\n'.join('user_%s_%s = %s %s' % u for u in USERS)
        with open(self.conf_path('proxy', 0), 'w') as f:
            f.write(PROXY_CONF.format(
                port=self.proxy_port, workers=self.workers['proxy'],
                user=user, etc=self.etc, log_name='proxy',
                log_port=log_port, users=users,
                memcache_port=self.memcache_port))

    # -- start / stop ------------------------------------------------------
    def _spawn(self, name, cmd):
        out = open(os.path.join(self.var, 'log', '%s.out' % name), 'ab')
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        finally:
            out.close()
        self.procs.append((name, proc))
        return proc

    def start(self, memcached):
        """Start memcached, every storage server and the proxy; wait until
        each answers its health check. On failure the caller still calls
        stop()."""
        self.sink = _LogSink(os.path.join(self.var, 'log', 'swift.log'))
        self.sink.start()
        self.memcache_port = free_port()
        self._write_confs(self.sink.port)
        cmd = [memcached, '-l', '127.0.0.1', '-p', str(self.memcache_port),
               '-U', '0']
        if os.geteuid() == 0:
            cmd += ['-u', getpass.getuser()]
        waiting = [('memcached', self._spawn('memcached', cmd),
                    self.memcache_port, _answers)]
        for kind in KINDS:
            for node in range(1, NODES + 1):
                name = '%s-%d' % (kind, node)
                proc = self._spawn(name, [ref_bin('swift-%s-server' % kind),
                                          self.conf_path(kind, node)])
                waiting.append((name, proc, self.port_for(kind, node),
                                _healthy))
        proxy = self._spawn('proxy', [ref_bin('swift-proxy-server'),
                                      self.conf_path('proxy', 0)])
        waiting.append(('proxy', proxy, self.proxy_port, _healthy))
        deadline = time.monotonic() + START_TIMEOUT
        for name, proc, port, ready in waiting:
            while not ready(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ReferenceUnavailable(
                        'reference %s did not start; see %s and %s' % (
                            name, os.path.join(self.var, 'log',
                                               name + '.out'),
                            os.path.join(self.var, 'log', 'swift.log')))
                time.sleep(0.1)
        self.log('reference cluster up: proxy on 127.0.0.1:%d, %d servers'
                 ' + memcached' % (self.proxy_port, len(self.procs) - 1))

    def pids(self):
        """Root pids of every process of the cluster (incl. memcached);
        their workers are found from /proc by proc_cpu."""
        return [proc.pid for _, proc in self.procs if proc.poll() is None]

    def stop(self):
        """SIGTERM every process group we started, SIGKILL stragglers."""
        for _, proc in self.procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for _, proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, proc in self.procs:
            # workers share the parent's session: kill what is left of it
            _signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []
        if self.sink:
            self.sink.stop()
            self.sink = None


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def read_workers(aio_var):
    """Worker counts of our all-in-one cluster, from its configs."""
    parser = configparser.ConfigParser(interpolation=None)
    out = {}
    for kind in KINDS:
        parser.read(os.path.join(aio_var, 'etc', 'node1',
                                 '%s-server.conf' % kind))
        out[kind] = parser.getint('DEFAULT', 'workers', fallback=1)
        for section in parser.sections():
            if parser.has_option(section, 'workers'):
                out[kind] = parser.getint(section, 'workers')
        parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(aio_var, 'etc', 'proxy-server.conf'))
    out['proxy'] = parser.getint('DEFAULT', 'workers', fallback=1)
    return out
