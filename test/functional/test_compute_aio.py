"""compute-aio start: when it returns, the system can take a boot.

The agent runs libvirt's test driver (real libvirt, no hypervisor).
"""
import io

import pytest

from test.conftest import free_port, load_test_module

pytest.importorskip('libvirt')

system = load_test_module('compute_system')


@pytest.fixture
def compute_var(aio_cluster):
    from compute import aio as compute_aio
    var = aio_cluster['var']
    api_port = free_port()
    compute_aio.setup(var, out=io.StringIO(), api_port=api_port,
                      agent_port=free_port())
    try:
        yield var, system.cli_env(aio_cluster, api_port)
    finally:
        compute_aio.stop(var, out=io.StringIO())


def _set_agent_option(var, key, value):
    from compute import aio as compute_aio
    path = compute_aio.conf_path(var)
    with open(path) as f:
        lines = f.read().splitlines()
    section = None
    for i, line in enumerate(lines):
        if line.startswith('['):
            section = line
        elif section == '[agent]' and line.startswith(key + ' ='):
            lines[i] = '%s = %s' % (key, value)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def test_start_returns_once_the_agent_has_registered(compute_var,
                                                    monkeypatch):
    """A boot right after `start` (or `make run`) used to find no host
    when the agent's first heartbeat was slow: libvirtd, just started,
    probes QEMU before it answers."""
    from compute import aio as compute_aio
    var, env = compute_var
    # the agent cannot reach the API: start says so, naming its log,
    # instead of returning a system that answers "No valid host"
    _set_agent_option(var, 'api_url', 'http://127.0.0.1:%d' % free_port())
    monkeypatch.setattr(compute_aio, 'REGISTER_TIMEOUT', 3.0)
    with pytest.raises(RuntimeError, match='did not register.*'
                                           'compute-agent-1.log'):
        compute_aio.start(var, out=io.StringIO(),
                          libvirt_uri='test:///default')
    compute_aio.stop(var, out=io.StringIO())
    # and with the right API: registered, up, as soon as start returns
    _set_agent_option(var, 'api_url', 'http://127.0.0.1:%d'
                      % compute_aio._conf_port(var, 'api', 0))
    compute_aio.start(var, out=io.StringIO(), libvirt_uri='test:///default')
    hosts = system.compute(env, 'host-list')[1]
    assert [h['state'] for h in hosts] == ['up']
