"""objstore-aio: an all-in-one cluster on this machine, for trying objstore.

``objstore-aio setup --var DIR`` lays out a four-node cluster under DIR:

* ``DIR/etc/objstore.conf``: the cluster config with fresh random secrets
  (written once: changing the hash secret later would orphan every object);
* ``DIR/etc/{account,container,object}.builder`` and ``.ring.gz``: rings of
  four nodes on 127.0.0.1, one zone and one device each, three replicas;
* ``DIR/srv/nodeN/dN``: the device directories the storage servers use;
* ``DIR/etc/nodeN/{account,container,object}-server.conf``: one config per
  server of each node, ports as the rings name them.

It is idempotent: running it again keeps the secrets, builders and rings
that are there and only fills in what is missing.

``objstore-aio start --var DIR`` starts every server of every node and the
proxy in the background (logs in ``DIR/log/``, pid files in ``DIR/run/``)
and waits until each one answers, then each node's background daemons
(replicators, auditor, updaters, expirer, reaper: what makes the cluster
converge and heal; ``--no-daemons`` leaves them out); ``stop`` stops them
(SIGTERM: requests in flight finish); ``status`` says which run.
``objstore-aio run`` does setup and start, prints how to reach the
cluster, and stays in the foreground until Ctrl-C or SIGTERM, then stops
everything.
"""
import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

from rings.builder import RingBuilder, RingBuilderError
from rings.ringdata import RingData, RingFileError

NODES = 4
PART_POWER = 10
REPLICAS = 3
MIN_PART_HOURS = 1
# Per node n (1-based): object <base>+100n+10, container +11, account +12
# (6110, 6111, 6112 for node 1 with the default base 6000).
DEFAULT_BASE_PORT = 6000
PORT_OFFSET = {'object': 10, 'container': 11, 'account': 12}
KINDS = ('account', 'container', 'object')
SERVER_MODULE = {'object': 'objstore.obj.server',
                 'container': 'objstore.container.server',
                 'account': 'objstore.account.server',
                 'proxy': 'objstore.proxy.server'}
# The background daemons of each node: (server kind whose config they
# read, config section, module).
DAEMONS = (
    ('object', 'object-replicator', 'objstore.obj.replicator'),
    ('object', 'object-auditor', 'objstore.obj.auditor'),
    ('object', 'object-updater', 'objstore.obj.updater'),
    ('object', 'object-expirer', 'objstore.obj.expirer'),
    ('container', 'container-replicator', 'objstore.container.replicator'),
    ('container', 'container-updater', 'objstore.container.updater'),
    ('account', 'account-replicator', 'objstore.account.replicator'),
    ('account', 'account-reaper', 'objstore.account.reaper'),
)
# Daemon settings for a small cluster on one machine: short intervals so a
# user sees replication, expiry and reaping within a minute; a gentle
# auditor. Production values are in etc/*-server.conf.
DAEMON_CONF = {
    'object': """
[object-replicator]
interval = 30

[object-auditor]
interval = 300
bytes_per_second = 10485760

[object-updater]
interval = 30

[object-expirer]
interval = 30
""",
    'container': """
[container-replicator]
interval = 30

[container-updater]
interval = 30
""",
    'account': """
[account-replicator]
interval = 30

[account-reaper]
interval = 60
""",
}
DEFAULT_PROXY_PORT = 8080
DEFAULT_WORKERS = 1
# The default users common clients and test suites expect.
USERS = (('test', 'tester', 'testing', '.admin'),
         ('test2', 'tester2', 'testing2', '.admin'),
         ('test', 'tester3', 'testing3', ''),
         ('admin', 'admin', 'admin', '.admin .reseller_admin'))
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
SERVER_CONF_TEMPLATE = """\
# {kind} server of all-in-one node {node}, written by objstore-aio; see
# etc/{kind}-server.conf in the source tree for every setting.
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}

[{kind}-server]
devices = {devices}
mount_check = false
workers = {workers}
"""
PROXY_CONF_TEMPLATE = """\
# Proxy of the all-in-one cluster, written by objstore-aio; see
# etc/proxy-server.conf in the source tree for every setting.
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = {workers}

[pipeline:main]
pipeline = gatekeeper healthcheck bulk tempurl s3api tempauth copy slo dlo \
    versioned_writes symlink proxy-server

[filter:gatekeeper]
use = objstore.middleware.gatekeeper

[filter:healthcheck]
use = objstore.middleware.healthcheck

[filter:bulk]
use = objstore.middleware.bulk

[filter:copy]
use = objstore.middleware.copy

[filter:slo]
use = objstore.middleware.slo

[filter:dlo]
use = objstore.middleware.dlo

[filter:versioned_writes]
use = objstore.middleware.versioned_writes

[filter:symlink]
use = objstore.middleware.symlink

[filter:tempurl]
use = objstore.middleware.tempurl

[filter:s3api]
use = objstore.middleware.s3api.middleware
storage_domain = localhost

[filter:tempauth]
use = objstore.middleware.tempauth
{users}

[app:proxy-server]
use = objstore.proxy.server
"""
CONF_TEMPLATE = """\
# All-in-one cluster config written by objstore-aio; see etc/objstore.conf
# in the source tree for what every setting means.
[hash]
path_prefix = {prefix}
path_suffix = {suffix}

[cluster]
backend_secret = {backend}
ring_dir = {ring_dir}
"""


def port_for(kind, node, base=DEFAULT_BASE_PORT):
    """Port of a server kind on all-in-one node ``node`` (1-based)."""
    return base + 100 * node + PORT_OFFSET[kind]


def free_base_port(nodes=NODES, candidates=range(20000, 40000, 700)):
    """A storage port base whose ports are all free right now, or None.

    Binds with SO_REUSEADDR, as the servers do, so ports that only
    linger in TIME_WAIT after earlier connections count as free.
    """
    for base in candidates:
        socks = []
        try:
            for kind in KINDS:
                for node in range(1, nodes + 1):
                    s = socket.socket()
                    socks.append(s)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(('127.0.0.1', port_for(kind, node, base)))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    return None


def write_conf(etc):
    path = os.path.join(etc, 'objstore.conf')
    if os.path.exists(path):
        return path, False
    text = CONF_TEMPLATE.format(prefix=secrets.token_hex(16),
                                suffix=secrets.token_hex(16),
                                backend=secrets.token_hex(32), ring_dir=etc)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path, True


def build_ring(etc, kind, base_port=DEFAULT_BASE_PORT, nodes=NODES,
               replicas=REPLICAS):
    """Create, rebalance and write one ring unless it already exists."""
    builder_path = os.path.join(etc, kind + '.builder')
    ring_path = os.path.join(etc, kind + '.ring.gz')
    if os.path.exists(builder_path):
        builder = RingBuilder.load(builder_path)
    else:
        builder = RingBuilder(PART_POWER, replicas, MIN_PART_HOURS)
        for node in range(1, nodes + 1):
            builder.add_dev({'region': 1, 'zone': node, 'ip': '127.0.0.1',
                             'port': port_for(kind, node, base_port),
                             'device': 'd%d' % node, 'weight': 100.0})
        builder.rebalance(seed=1)
        builder.save(builder_path)
    if not os.path.exists(ring_path):
        builder.get_ring().save(ring_path)
    return builder, ring_path


def proxy_conf_path(var):
    return os.path.join(var, 'etc', 'proxy-server.conf')


def proxy_port(var):
    """The proxy's port, as its config says."""
    import configparser
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(proxy_conf_path(var))
    return parser.getint('DEFAULT', 'bind_port')


def servers(var):
    """(kind, node, port, conf path) for every server, from the rings;
    the proxy last (node 0)."""
    etc = os.path.join(var, 'etc')
    out = []
    for kind in KINDS:
        ring = RingData.load(os.path.join(etc, kind + '.ring.gz'))
        for dev in ring.devs:
            if dev is None:
                continue
            node = dev['zone']
            out.append((kind, node, dev['port'], os.path.join(
                etc, 'node%d' % node, '%s-server.conf' % kind)))
    if os.path.exists(proxy_conf_path(var)):
        out.append(('proxy', 0, proxy_port(var), proxy_conf_path(var)))
    return out


def daemons(var):
    """(section, node, module, conf path) of every node's daemons."""
    out = []
    for kind, node, _port, conf in servers(var):
        for daemon_kind, section, module in DAEMONS:
            if daemon_kind == kind:
                out.append((section, node, module, conf))
    return out


def proxy_conf_text(port, workers=1, users=USERS, **settings):
    """The all-in-one proxy's config: tempauth with ``users``
    [(account, user, key, groups)], ``settings`` under [app:proxy-server].
    Tests that need a proxy of their own over a cluster start from it."""
    text = PROXY_CONF_TEMPLATE.format(
        port=port, workers=max(1, workers),
        users='\n'.join('user_%s_%s = %s %s' % (a, u, key, groups)
                        for a, u, key, groups in users).rstrip())
    return text + ''.join('%s = %s\n' % kv for kv in settings.items())


def write_server_confs(var, workers=DEFAULT_WORKERS,
                       port=DEFAULT_PROXY_PORT):
    for kind, node, port_, conf in servers(var):
        if os.path.exists(conf):
            continue
        os.makedirs(os.path.dirname(conf), exist_ok=True)
        with open(conf, 'w', encoding='utf-8') as f:
            f.write(SERVER_CONF_TEMPLATE.format(
                kind=kind, node=node, port=port_, workers=workers,
                devices=os.path.join(var, 'srv', 'node%d' % node)))
            f.write(DAEMON_CONF[kind])
    if not os.path.exists(proxy_conf_path(var)):
        with open(proxy_conf_path(var), 'w', encoding='utf-8') as f:
            f.write(proxy_conf_text(port, workers, account_autocreate='true'))


def setup(var, out=sys.stdout, base_port=DEFAULT_BASE_PORT, nodes=NODES,
          replicas=REPLICAS, workers=DEFAULT_WORKERS,
          port=DEFAULT_PROXY_PORT):
    """Lay out the cluster; keep whatever is already there."""
    if not replicas <= nodes:
        raise RuntimeError('need at least as many nodes as replicas')
    var = os.path.abspath(var)
    etc = os.path.join(var, 'etc')
    os.makedirs(etc, exist_ok=True)
    for node in range(1, nodes + 1):
        os.makedirs(os.path.join(var, 'srv', 'node%d' % node, 'd%d' % node),
                    exist_ok=True)
    conf, created = write_conf(etc)
    out.write('%s cluster config %s\n'
              % ('wrote' if created else 'kept', conf))
    for kind in KINDS:
        builder, ring_path = build_ring(etc, kind, base_port, nodes,
                                        replicas)
        out.write('%-9s ring %s: %d partitions x %d replicas on %d devices, '
                  'balance %.2f%%\n' % (kind, ring_path, builder.parts,
                                         builder.replicas,
                                         len(list(builder.iter_devs())),
                                         builder.get_balance()))
    write_server_confs(var, workers, port)
    out.write('\nInspect a ring:  .venv/bin/objstore-ring-builder %s\n'
              % os.path.join(etc, 'object.builder'))
    out.write('Use this config: export OBJSTORE_CONF=%s\n' % conf)
    return 0


def describe(var, out=sys.stdout):
    """How to talk to the cluster: auth URL and the default users."""
    url = 'http://127.0.0.1:%d/auth/v1.0' % proxy_port(var)
    out.write('\nAuth URL: %s\n' % url)
    out.write('Users (account:user / key): %s\n' % ', '.join(
        '%s:%s / %s%s' % (a, u, k, ' (%s)' % g.strip() if g else '')
        for a, u, k, g in USERS))
    out.write('Try: swift -A %s -U test:tester -K testing stat\n' % url)


def _pid_path(var, kind, node):
    return os.path.join(var, 'run', '%s-%d.pid' % (kind, node))


def running_pid(var, kind, node):
    """The pid of a live server started by us, else None."""
    try:
        with open(_pid_path(var, kind, node)) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def port_answers(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.5):
            return True
    except OSError:
        return False


def spawn_process(var, name, node, module, args, env):
    """Start ``python -m module *args`` in its own session, logging to
    ``var/log/<name>-<node>.log``; record its pid for stop and status."""
    log = open(_log_path(var, name, node), 'ab')
    proc = subprocess.Popen(
        [sys.executable, '-m', module] + list(args), env=env,
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    log.close()
    with open(_pid_path(var, name, node), 'w') as f:
        f.write('%d\n' % proc.pid)
    return proc


def start(var, out=sys.stdout, with_daemons=True):
    """Start every server not already running; wait until each answers.

    Then (``with_daemons``) start each node's background daemons.
    """
    var = os.path.abspath(var)
    for sub in ('log', 'run'):
        os.makedirs(os.path.join(var, sub), exist_ok=True)
    env = dict(os.environ, OBJSTORE_CONF=os.path.join(var, 'etc',
                                                      'objstore.conf'))
    started = []
    for kind, node, port, conf in servers(var):
        if running_pid(var, kind, node):
            out.write('%s already runs on port %d\n'
                      % (_name(kind, node), port))
            continue
        if port_answers(port):
            raise RuntimeError('port %d (%s) is taken by another program'
                               % (port, _name(kind, node)))
        proc = spawn_process(var, kind, node, SERVER_MODULE[kind], [conf],
                             env)
        started.append((kind, node, port, proc))
    deadline = time.monotonic() + START_TIMEOUT
    for kind, node, port, proc in started:
        while not port_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('%s did not start; see %s' % (
                    _name(kind, node), _log_path(var, kind, node)))
            time.sleep(0.05)
        out.write('started %s on 127.0.0.1:%d\n'
                  % (_name(kind, node), port))
    if with_daemons:
        start_daemons(var, env, out)
    return 0


def start_daemons(var, env, out):
    """Start the daemons not already running; fail if one exits at once."""
    started = []
    for section, node, module, conf in daemons(var):
        if running_pid(var, section, node):
            continue
        started.append((section, node,
                        spawn_process(var, section, node, module, [conf],
                                      env)))
    # a daemon that cannot start (bad config, missing ring) exits within
    # its first second; one still running then is working
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and \
            all(proc.poll() is None for _, _, proc in started):
        time.sleep(0.05)
    for section, node, proc in started:
        if proc.poll() is not None:
            raise RuntimeError('%s did not start; see %s' % (
                _name(section, node), _log_path(var, section, node)))
    if started:
        out.write('started %d daemons (%s) on each node\n' % (
            len(DAEMONS), ', '.join(section for _, section, _ in DAEMONS)))


def _log_path(var, name, node):
    return os.path.join(var, 'log', '%s-%d.log' % (name, node))


def _name(kind, node):
    if kind == 'proxy':
        return 'proxy'
    if kind in KINDS:
        return '%s server of node %d' % (kind, node)
    return '%s of node %d' % (kind, node)


def run_until_signal(start, stop, out=sys.stdout, running=None):
    """start(), then wait for Ctrl-C or SIGTERM, then stop() (also when
    start fails half way: whatever did start is stopped).

    The servers are this process's children, so it reaps them as they
    end: a stop from elsewhere (``make stop``, ``*-aio stop``) then sees
    them gone at once instead of waiting out its timeout on zombies. When
    ``running()`` says nothing we started is left, the wait ends too:
    there is nothing more to keep running."""
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        start()
        out.write('Running; Ctrl-C stops every server.\n')
        out.flush()
        while not stopping:
            time.sleep(0.2)
            # only a child that ended can have left nothing running
            if reap_children() and running is not None and not running():
                out.write('\nevery server has stopped (stopped from '
                          'elsewhere?)\n')
                break
    finally:
        out.write('\nstopping...\n')
        stop()
    return 0


def reap_children():
    """Collect the exit status of every child that has ended; how many
    there were."""
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:       # no children at all
            return reaped
        if not pid:
            return reaped
        reaped += 1


def server_procs(var):
    """[(kind, node)] of every server of the cluster under ``var``."""
    return [(kind, node) for kind, node, _, _ in servers(var)]


def any_running(var, procs):
    """Whether any of [(name, node)] has a live process started by us."""
    return any(running_pid(var, name, node) for name, node in procs)


def run(var, out=sys.stdout, with_daemons=True, **settings):
    """setup + start, then wait for Ctrl-C or SIGTERM and stop all."""
    setup(var, out=out, **settings)

    def start_all():
        start(var, out=out, with_daemons=with_daemons)
        describe(var, out=out)

    def running():
        return any_running(var, server_procs(var))
    return run_until_signal(start_all, lambda: stop(var, out=out), out,
                            running)


def stop(var, out=sys.stdout):
    """SIGTERM every daemon and server we started; wait for them to end.

    Daemons go first, so none is left talking to stopped servers.
    """
    var = os.path.abspath(var)
    stopped = stop_processes(var, [(section, node)
                              for section, node, _, _ in daemons(var)])
    if stopped:
        out.write('stopped %d daemons\n' % len(stopped))
    for name, node in stop_processes(var, server_procs(var)):
        out.write('stopped %s\n' % _name(name, node))
    return 0


def stop_processes(var, procs):
    """SIGTERM the running ones of [(name, node)]; return those stopped."""
    waiting = []
    for name, node in procs:
        pid = running_pid(var, name, node)
        if pid:
            os.kill(pid, signal.SIGTERM)
            waiting.append((name, node, pid))
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, node, pid in waiting:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    for name, node in procs:
        try:
            os.unlink(_pid_path(var, name, node))
        except FileNotFoundError:
            pass
    return [(name, node) for name, node, _ in waiting]


def _alive(pid):
    """Whether pid still runs. One that has exited but is not yet reaped
    by its parent (a zombie: the servers of a foreground ``run`` when
    stopped from another shell) counts as ended."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _zombie(pid)


def _zombie(pid):
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            # the state follows the command name, which may hold ')'
            return f.read().rsplit(b')', 1)[1].split()[0] == b'Z'
    except (OSError, IndexError):
        return False


def status(var, out=sys.stdout):
    """One line per server and started daemon; exit 0 only when all run.

    Daemons never started (``--no-daemons``) are not listed.
    """
    var = os.path.abspath(var)
    down = 0
    for kind, node, port, conf in servers(var):
        up = running_pid(var, kind, node) and port_answers(port)
        down += not up
        out.write('%-20s %-7s 127.0.0.1:%d  %s\n'
                  % (kind, 'node %d' % node if node else '', port,
                     'running' if up else 'stopped'))
    for section, node, module, conf in daemons(var):
        if not os.path.exists(_pid_path(var, section, node)):
            continue
        up = running_pid(var, section, node)
        down += not up
        out.write('%-20s %-7s %-15s  %s\n'
                  % (section, 'node %d' % node, '',
                     'running' if up else 'stopped'))
    return 0 if not down else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog='objstore-aio',
                                     description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    for name, helptext in (
            ('run', 'set up, start, and stop everything on Ctrl-C'),
            ('setup', 'lay out config, rings and devices'),
            ('start', 'start every server in the background'),
            ('stop', 'stop the servers'),
            ('status', 'say which servers run')):
        p = sub.add_parser(name, help=helptext)
        p.add_argument('--var', default='var/aio',
                       help='data directory of the cluster (default: '
                            'var/aio); re-running keeps its data')
        if name in ('start', 'run'):
            p.add_argument('--no-daemons', action='store_true',
                           help='start only the servers, not the '
                                'replicators, auditor, updaters, expirer '
                                'and reaper')
        if name in ('setup', 'run'):
            p.add_argument('--nodes', type=int, default=NODES,
                           help='storage nodes (default %d)' % NODES)
            p.add_argument('--replicas', type=int, default=REPLICAS,
                           help='replicas (default %d)' % REPLICAS)
            p.add_argument('--workers', type=int, default=DEFAULT_WORKERS,
                           help='worker processes per server (default %d)'
                           % DEFAULT_WORKERS)
            p.add_argument('--port', type=int, default=DEFAULT_PROXY_PORT,
                           help='proxy port (default %d)'
                           % DEFAULT_PROXY_PORT)
            p.add_argument('--base-port', type=int,
                           default=DEFAULT_BASE_PORT,
                           help='storage ports are base + 100 * node + '
                                '10/11/12 (default %d)' % DEFAULT_BASE_PORT)
    args = parser.parse_args(argv)
    try:
        if args.cmd in ('setup', 'run'):
            if not 1 <= args.nodes <= 50 or not 1 <= args.replicas <= 16:
                raise RuntimeError('--nodes must be 1-50, --replicas 1-16')
            if not 1024 <= args.base_port <= 65000 - 100 * args.nodes:
                raise RuntimeError('--base-port out of range')
            if not 1024 <= args.port <= 65535:
                raise RuntimeError('--port out of range')
            settings = dict(base_port=args.base_port, nodes=args.nodes,
                            replicas=args.replicas, workers=args.workers,
                            port=args.port)
            if args.cmd == 'setup':
                return setup(args.var, **settings)
            return run(args.var, with_daemons=not args.no_daemons,
                       **settings)
        if not os.path.exists(os.path.join(args.var, 'etc',
                                           'object.ring.gz')):
            raise RuntimeError('%s has no cluster: run objstore-aio setup '
                               'first' % args.var)
        if args.cmd == 'start':
            return start(args.var, with_daemons=not args.no_daemons)
        return {'stop': stop, 'status': status}[args.cmd](args.var)
    except (OSError, RingBuilderError, RingFileError, RuntimeError) as e:
        sys.stderr.write('objstore-aio: %s\n' % e)
        return 2


if __name__ == '__main__':
    sys.exit(main())
