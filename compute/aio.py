"""compute-aio: the whole system on this machine, objstore and compute.

``compute-aio run --var DIR`` (what ``make run`` does) brings up the
all-in-one objstore cluster (objstore-aio's, in the same DIR), then the
compute API on 127.0.0.1:8774 and one compute agent for this host, prints
how to reach both, and stays in the foreground until Ctrl-C or SIGTERM,
then stops everything. ``setup``, ``start``, ``stop`` and ``status`` do
one step each, for a system in the background.

Compute's files live in ``DIR/compute``: ``compute.conf`` (written once,
with a fresh agent secret; edit it to change ports or flavors), the API's
SQLite database and the agent's instances and image cache. Logs and pid
files go beside the cluster's, in ``DIR/log`` and ``DIR/run``.

The agent drives QEMU through the system's libvirt daemon. Each start
makes sure one runs (installing Debian's packages when root; see
compute.virt.host_setup) and, when none can be had, falls back to
libvirt's test driver with a loud warning: the API then works, but no
guest really runs.
"""
import argparse
import os
import secrets
import socket
import sys
import time

from compute.common import config
from compute.common.config import ConfigError
from objstore.cli import aio
from rings.atomic import write_atomically
from rings.builder import RingBuilderError
from rings.ringdata import RingFileError

API_PORT = 8774
AGENT_PORT = 8775
START_TIMEOUT = 30.0
# an agent's first heartbeat asks libvirt for the host's capacity, which
# a libvirtd that has just started answers only once it has probed QEMU
REGISTER_TIMEOUT = 90.0
API_MODULE = 'compute.api.server'
AGENT_MODULE = 'compute.agent.server'
# (pid-file name, node) of the processes, in the order they stop
PROCESSES = (('compute-agent', 1), ('compute-api', 0))

CONF_TEMPLATE = """\
# compute of the all-in-one system, written by compute-aio.
[DEFAULT]
# signs every request between the API and its agents
agent_secret = {secret}

[api]
bind_ip = 127.0.0.1
bind_port = {api_port}
state_dir = {compute_dir}/api
objstore_url = http://127.0.0.1:{proxy_port}
proxy_conf = {proxy_conf}
heartbeat_timeout = 30

[scheduler]
# weigher = spread (free RAM first) or pack

[flavors]
# m1.custom = vcpus,ram_mb,disk_gb

[agent]
name = {host}
bind_ip = 127.0.0.1
bind_port = {agent_port}
api_url = http://127.0.0.1:{api_port}
# auto: the system's libvirtd (QEMU) when it can be had, else test:///default
libvirt_uri = auto
state_dir = {compute_dir}/agent-{host}
heartbeat_interval = 5
power_sync_interval = 5
image_cache_max_age = 86400
"""


def compute_dir(var):
    return os.path.join(os.path.abspath(var), 'compute')


def conf_path(var):
    return os.path.join(compute_dir(var), 'compute.conf')


def _host_name():
    """This host's short name, as a safe agent name."""
    name = socket.gethostname().split('.')[0] or 'localhost'
    return ''.join(c if c.isalnum() or c in '-_' else '-' for c in name)


def setup(var, out=sys.stdout, api_port=API_PORT, agent_port=AGENT_PORT):
    """Write compute.conf unless it exists (its secret must not change
    while agents run with it)."""
    path = conf_path(var)
    if os.path.exists(path):
        out.write('kept compute config %s\n' % path)
        return path
    os.makedirs(compute_dir(var), exist_ok=True)
    text = CONF_TEMPLATE.format(
        secret=secrets.token_hex(32), api_port=api_port,
        agent_port=agent_port, compute_dir=compute_dir(var),
        proxy_port=aio.proxy_port(var), proxy_conf=aio.proxy_conf_path(var),
        host=_host_name())
    write_atomically(path, lambda f: f.write(text.encode('utf-8')),
                     mode=0o600)
    out.write('wrote compute config %s\n' % path)
    return path


def _conf_port(var, section, default):
    values = config.section(config.load(conf_path(var)), section)
    return int(config.number(values, 'bind_port', default, int, 1))


def choose_hypervisor(out):
    """(libvirt URI, domain type) for the agent, warning loudly when the
    fallback is the test driver."""
    from compute.virt import host_setup
    uri, domain_type, warning = host_setup.choose_hypervisor()
    if warning:
        out.write(warning.rstrip('\n') + '\n')
    return uri, domain_type


def _wait_answering(var, name, node, port, proc):
    deadline = time.monotonic() + START_TIMEOUT
    while not aio.port_answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError('%s did not start; see %s' % (
                name, os.path.join(var, 'log', '%s-%d.log' % (name, node))))
        time.sleep(0.05)


def _wait_registered(var, since, proc):
    """Until the agent's first heartbeat since ``since`` is in the API's
    database: before it, a boot finds no host ("No valid host"), which
    is not what a started system should answer."""
    from compute.api.db import ComputeDB
    conf = config.load(conf_path(var))
    name = config.section(conf, 'agent').get('name', '').strip() or \
        os.uname().nodename
    state_dir = config.path(config.section(conf, 'api'), 'state_dir',
                            'var/compute/api')
    db = ComputeDB(os.path.join(state_dir, 'compute.db'))
    deadline = time.monotonic() + REGISTER_TIMEOUT
    try:
        while True:
            host = db.get_host(name)
            if host is not None and host['last_heartbeat'] >= since:
                return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    'compute agent %s did not register with the API; see '
                    '%s' % (name, os.path.join(var, 'log',
                                               'compute-agent-1.log')))
            time.sleep(0.1)
    finally:
        db.close()


def start(var, out=sys.stdout, libvirt_uri=None):
    """Start the compute API and the local agent unless they run."""
    var = os.path.abspath(var)
    path = conf_path(var)
    env = dict(os.environ, OBJSTORE_CONF=os.path.join(var, 'etc',
                                                      'objstore.conf'))
    api_port = _conf_port(var, 'api', API_PORT)
    agent_port = _conf_port(var, 'agent', AGENT_PORT)
    if not aio.running_pid(var, 'compute-api', 0):
        if aio.port_answers(api_port):
            raise RuntimeError('port %d (compute API) is taken by another '
                               'program' % api_port)
        proc = aio.spawn_process(var, 'compute-api', 0, API_MODULE,
                                 ['--conf', path], env)
        _wait_answering(var, 'compute-api', 0, api_port, proc)
        out.write('started compute API on 127.0.0.1:%d\n' % api_port)
    if not aio.running_pid(var, 'compute-agent', 1):
        if aio.port_answers(agent_port):
            raise RuntimeError('port %d (compute agent) is taken by '
                               'another program' % agent_port)
        uri, domain_type = (libvirt_uri, None) if libvirt_uri else \
            choose_hypervisor(out)
        args = ['--conf', path, '--libvirt-uri', uri]
        if domain_type:
            args += ['--domain-type', domain_type]
        since = time.time()
        proc = aio.spawn_process(var, 'compute-agent', 1, AGENT_MODULE,
                                 args, env)
        _wait_answering(var, 'compute-agent', 1, agent_port, proc)
        _wait_registered(var, since, proc)
        out.write('started compute agent on 127.0.0.1:%d (libvirt %s)\n'
                  % (agent_port, uri))
    return 0


def stop(var, out=sys.stdout):
    """Stop the agent, then the API."""
    var = os.path.abspath(var)
    for name, node in aio.stop_processes(var, list(PROCESSES)):
        out.write('stopped %s\n' % name)
    return 0


def status(var, out=sys.stdout):
    """The cluster's status plus one line per compute process."""
    code = aio.status(var, out=out)
    for name, node in reversed(PROCESSES):
        up = aio.running_pid(var, name, node)
        code = code or (0 if up else 1)
        out.write('%-20s %-7s %-15s  %s\n' % (name, '', '',
                                               'running' if up
                                               else 'stopped'))
    return code


def describe(var, out=sys.stdout):
    aio.describe(var, out=out)
    out.write('Compute API: http://127.0.0.1:%d (same users and tokens); '
              'try: .venv/bin/compute -A %s -U test:tester -K testing '
              'flavor-list\n'
              % (_conf_port(var, 'api', API_PORT),
                 'http://127.0.0.1:%d/auth/v1.0' % aio.proxy_port(var)))


def run(var, out=sys.stdout, libvirt_uri=None, **settings):
    """Everything up, in the foreground, until Ctrl-C or SIGTERM."""
    aio.setup(var, out=out, **settings)
    setup(var, out=out)

    def start_all():
        aio.start(var, out=out)
        start(var, out=out, libvirt_uri=libvirt_uri)
        describe(var, out=out)

    def stop_all():
        stop(var, out=out)
        aio.stop(var, out=out)

    def running():
        return aio.any_running(var, list(PROCESSES) + aio.server_procs(var))
    return aio.run_until_signal(start_all, stop_all, out, running)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='compute-aio',
        description='The all-in-one system: objstore cluster + compute.')
    sub = parser.add_subparsers(dest='cmd', required=True)
    for name in ('setup', 'start', 'stop', 'status', 'run'):
        p = sub.add_parser(name)
        p.add_argument('--var', default='var/aio',
                       help='state directory (default var/aio)')
        if name in ('start', 'run'):
            p.add_argument('--libvirt-uri',
                           help='skip the hypervisor probe and use this '
                                'libvirt URI (e.g. test:///default)')
    args = parser.parse_args(argv)
    try:
        if args.cmd == 'run':
            return run(args.var, libvirt_uri=args.libvirt_uri)
        if args.cmd == 'setup':
            aio.setup(args.var)
            setup(args.var)
            return 0
        if not os.path.exists(conf_path(args.var)):
            raise RuntimeError('%s has no compute config: run compute-aio '
                               'setup first' % args.var)
        if args.cmd == 'start':
            aio.start(args.var)
            return start(args.var, libvirt_uri=args.libvirt_uri)
        if args.cmd == 'stop':
            stop(args.var)
            return aio.stop(args.var)
        return status(args.var)
    except (OSError, RuntimeError, ConfigError, RingBuilderError,
            RingFileError) as exc:
        sys.stderr.write('compute-aio: %s\n' % exc)
        return 2


if __name__ == '__main__':
    sys.exit(main())
