"""Fixtures shared by every test: cluster config and real server processes.

Servers run as real processes on free loopback ports, with their own temp
config and device directories, and are stopped when the test ends.
"""
import importlib.util
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time

import pytest


def load_test_module(name, directory='functional'):
    """A helper module kept beside the tests (test/<directory>/<name>.py),
    loaded by path: pytest runs with --import-mode=importlib and test/ is
    not a package (the name would clash with the standard library's)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        directory, name + '.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_port(port, proc=None, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError('server exited with %s' % proc.returncode)
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('nothing listens on port %d' % port)


@pytest.fixture
def cluster_conf(tmp_path, monkeypatch):
    """A cluster config with fresh secrets, named by $OBJSTORE_CONF.

    Returns {'path', 'prefix', 'suffix', 'secret'} (bytes for the last 3).
    """
    prefix, suffix = secrets.token_hex(8), secrets.token_hex(8)
    secret = secrets.token_hex(16)
    path = tmp_path / 'objstore.conf'
    path.write_text('[hash]\npath_prefix = %s\npath_suffix = %s\n\n'
                    '[cluster]\nbackend_secret = %s\n'
                    % (prefix, suffix, secret))
    monkeypatch.setenv('OBJSTORE_CONF', str(path))
    return {'path': str(path), 'prefix': prefix.encode(),
            'suffix': suffix.encode(), 'secret': secret.encode()}


class ServerProcess:
    """A server started as `python -m MODULE CONF`, stopped by stop()."""

    def __init__(self, module, conf_path, port, env):
        self.module, self.conf_path, self.port = module, conf_path, port
        self.log_path = conf_path + '.log'
        self.log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', module, conf_path], env=env,
            stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            wait_for_port(port, self.proc)
        except RuntimeError:
            self.stop()
            raise RuntimeError('%s did not start:\n%s'
                               % (module, self.read_log()))

    def read_log(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stop the server (and its workers); return its exit code."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill(self):
        """SIGKILL the whole process group: a crash, not a shutdown."""
        return self.stop(signal.SIGKILL)


@pytest.fixture
def start_server(tmp_path, cluster_conf):
    """start_server(module, section, **settings) -> ServerProcess.

    Writes a config with [DEFAULT] bind_ip/bind_port and the given
    settings under [section], starts `python -m module conf`, waits for
    the port. Every server is stopped when the test ends.
    """
    started = []

    def start(module, section, **settings):
        port = settings.pop('bind_port', None) or free_port()
        conf = tmp_path / ('%s-%d.conf' % (section, port))
        lines = ['[DEFAULT]', 'bind_ip = 127.0.0.1', 'bind_port = %d' % port]
        lines.append('[%s]' % section)
        lines += ['%s = %s' % (k, v) for k, v in settings.items()]
        conf.write_text('\n'.join(lines) + '\n')
        env = dict(os.environ, OBJSTORE_CONF=cluster_conf['path'])
        server = ServerProcess(module, str(conf), port, env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def free_aio_base(nodes):
    """A storage port base whose aio ports are all free right now, tried
    in random order so that test sessions running side by side do not
    all pick the first free range at once."""
    from objstore.cli import aio
    candidates = list(range(20000, 40000, 700))
    random.shuffle(candidates)
    base = aio.free_base_port(nodes, candidates)
    if base is None:
        pytest.skip('no free port range for an all-in-one cluster')
    return base


@pytest.fixture(scope='module')
def aio_cluster(tmp_path_factory):
    """A running all-in-one cluster (4 nodes + proxy) for a test module.

    Yields {'var', 'url' (proxy base URL), 'auth_url', 'conf'}; every
    process is stopped when the module's tests are done.
    """
    import io
    from objstore.cli import aio
    var = str(tmp_path_factory.mktemp('aio') / 'var')
    aio.setup(var, out=io.StringIO(), base_port=free_aio_base(aio.NODES),
              port=free_port())
    conf = os.path.join(var, 'etc', 'objstore.conf')
    saved = os.environ.get('OBJSTORE_CONF')
    os.environ['OBJSTORE_CONF'] = conf
    try:
        # the daemons are left out: tests that need one run it --once
        aio.start(var, out=io.StringIO(), with_daemons=False)
        url = 'http://127.0.0.1:%d' % aio.proxy_port(var)
        yield {'var': var, 'url': url, 'auth_url': url + '/auth/v1.0',
               'conf': conf}
    finally:
        aio.stop(var, out=io.StringIO())
        if saved is None:
            os.environ.pop('OBJSTORE_CONF', None)
        else:
            os.environ['OBJSTORE_CONF'] = saved


@pytest.fixture
def free_aio_ports():
    """(storage base port, proxy port) that are free right now."""
    from objstore.cli import aio
    return free_aio_base(aio.NODES), free_port()
