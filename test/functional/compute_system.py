"""Helpers for tests of the whole compute system (not a test file).

A compute API and agents as real processes over an aio_cluster, started
the way compute-aio starts them, and the `compute` command line run as a
user runs it (a subprocess, credentials in the environment).
"""
import json
import os
import subprocess
import sys
import time

from compute import aio as compute_aio
from objstore.cli import aio

START_TIMEOUT = 30.0


def cli_env(cluster, api_port):
    return dict(os.environ, ST_AUTH=cluster['auth_url'], ST_USER='test:tester',
                ST_KEY='testing',
                COMPUTE_URL='http://127.0.0.1:%d' % api_port)


def compute(env, *args, check=True, timeout=300):
    """Run `compute --json ARGS`; return (exit code, decoded JSON or the
    raw output, stderr)."""
    proc = subprocess.run([sys.executable, '-m', 'compute.cli.main',
                           '--json'] + list(args), env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError('compute %s failed (%d): %s'
                             % (' '.join(args), proc.returncode,
                                proc.stderr.strip()))
    try:
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        out = proc.stdout
    return proc.returncode, out, proc.stderr


def add_agent_conf(var, name, port, **agent):
    """A second config file naming another agent (another "host") with
    the same secret and API; ``agent`` sets more [agent] options."""
    from compute.common import config
    conf = config.load(compute_aio.conf_path(var))
    lines = ['[DEFAULT]', 'agent_secret = %s'
             % conf['DEFAULT']['agent_secret'], '', '[agent]']
    values = dict(conf['agent'], name=name, bind_port=str(port),
                  state_dir=os.path.join(compute_aio.compute_dir(var),
                                         'agent-' + name))
    values.update({k: str(v) for k, v in agent.items()})
    lines += ['%s = %s' % kv for kv in values.items()]
    path = os.path.join(compute_aio.compute_dir(var), 'agent-%s.conf' % name)
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def _start(var, name, node, module, args, port):
    env = dict(os.environ, OBJSTORE_CONF=os.path.join(var, 'etc',
                                                      'objstore.conf'))
    proc = aio.spawn_process(var, name, node, module, args, env)
    deadline = time.monotonic() + START_TIMEOUT
    while not aio.port_answers(port):
        assert proc.poll() is None, '%s %d exited' % (name, node)
        assert time.monotonic() < deadline, '%s %d did not start' % (
            name, node)
        time.sleep(0.05)
    return proc


def start_api(var, conf, port):
    """compute-api alone (compute_aio.stop stops it)."""
    return _start(var, 'compute-api', 0, compute_aio.API_MODULE,
                  ['--conf', conf], port)


def start_agent(var, conf, node, port):
    """One more compute-agent process, stopped by stop_agent()."""
    return _start(var, 'compute-agent', node, compute_aio.AGENT_MODULE,
                  ['--conf', conf], port)


def stop_agent(var, node):
    aio.stop_processes(var, [('compute-agent', node)])


def wait_for(what, predicate, timeout=120.0, poll=0.5):
    """predicate()'s first true value within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for %s' % what)
        time.sleep(poll)
