"""Two agents (two "hosts" on this machine) of different sizes, one API.

Both agents run libvirt's test driver (real libvirt, no hypervisor) and
report capacities set in their configs. Servers go where the weighers
say (spread: the host with the most free RAM), claims add up on the
host list, a flavor that fits nowhere ends in ERROR with the reason, and
a host whose agent stops heartbeating is no longer chosen.
"""
import io

import pytest

from test.conftest import free_port, load_test_module

pytest.importorskip('libvirt')

HEARTBEAT_TIMEOUT = 3


system = load_test_module('compute_system')


@pytest.fixture(scope='module')
def hosts(aio_cluster):
    """compute-api with agents 'big' (4 vCPU, 8 GB) and 'small' (2 vCPU,
    4 GB); yields (var, CLI environment)."""
    from compute import aio as compute_aio
    var = aio_cluster['var']
    api_port = free_port()
    compute_aio.setup(var, out=io.StringIO(), api_port=api_port,
                      agent_port=free_port())
    path = compute_aio.conf_path(var)
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text.replace('heartbeat_timeout = 30', 'heartbeat_timeout '
                             '= %d' % HEARTBEAT_TIMEOUT))
    # the API alone: this test's agents come from configs of their own
    sizes = {'big': (1, dict(vcpus=4, ram_mb=8192, disk_gb=100)),
             'small': (2, dict(vcpus=2, ram_mb=4096, disk_gb=100))}
    env = system.cli_env(aio_cluster, api_port)
    try:
        system.start_api(var, path, api_port)
        for name, (node, size) in sizes.items():
            port = free_port()
            conf = system.add_agent_conf(
                var, name, port, libvirt_uri='test:///default',
                heartbeat_interval=0.5, **size)
            system.start_agent(var, conf, node, port)
        system.wait_for('both hosts up', lambda: sorted(
            h['name'] for h in system.compute(env, 'host-list')[1]
            if h['state'] == 'up') == ['big', 'small'], timeout=30)
        yield var, env
    finally:
        for node in (1, 2):
            system.stop_agent(var, node)
        compute_aio.stop(var, out=io.StringIO())


def _free_ram(env):
    return {h['name']: h['ram_mb'] - h['ram_mb_used']
            for h in system.compute(env, 'host-list')[1]}


def test_spread_follows_free_ram_and_claims_add_up(hosts, tmp_path):
    var, env = hosts
    disk = tmp_path / 'disk.raw'
    disk.write_bytes(b'\0' * (1 << 20))
    _, image, _ = system.compute(env, 'image-upload', str(disk), '--name',
                                 'blank', '--disk-format', 'raw',
                                 '--container-format', 'bare')
    placed = []
    for i in range(5):
        before = _free_ram(env)
        _, server, _ = system.compute(env, 'boot', 'vm%d' % i, '--image',
                                      image['id'], '--flavor', 'm1.small',
                                      '--wait')
        assert server['status'] == 'ACTIVE'
        most_free = max(before.values())
        assert before[server['host']] == most_free, (before, server['host'])
        placed.append(server['host'])
    # 8 GB and 4 GB hosts, 2 GB flavors: the first two go to big, then
    # spread alternates; 2 GB stay free on one of them
    assert placed[:2] == ['big', 'big'] and 'small' in placed
    free = _free_ram(env)
    assert sorted(free.values()) == [0, 2048], free

    # fits nowhere: 4 GB wanted, 2 GB free at most
    code, server, err = system.compute(env, 'boot', 'too-big', '--image',
                                       image['id'], '--flavor', 'm1.medium',
                                       '--wait', check=False)
    assert code == 1
    assert 'No valid host was found' in err and 'RamFilter' in err, err
    _, shown, _ = system.compute(env, 'show', 'too-big')
    assert shown['status'] == 'ERROR' and shown['host'] is None
    assert _free_ram(env) == free

    # deleting frees the claims
    for i in range(5):
        system.compute(env, 'delete', 'vm%d' % i, '--wait')
    system.compute(env, 'delete', 'too-big', '--wait')
    assert _free_ram(env) == {'big': 8192, 'small': 4096}


def test_a_silent_host_is_not_chosen(hosts, tmp_path):
    var, env = hosts
    system.stop_agent(var, 1)        # 'big', the one spread would pick
    system.wait_for('big reported down', lambda: {
        h['name']: h['state'] for h in system.compute(env, 'host-list')[1]
    }['big'] == 'down', timeout=HEARTBEAT_TIMEOUT + 10)
    _, image, _ = system.compute(env, 'image-show', 'blank')
    _, server, _ = system.compute(env, 'boot', 'after', '--image',
                                  image['id'], '--flavor', 'm1.tiny',
                                  '--wait')
    assert server['host'] == 'small'
    system.compute(env, 'delete', 'after', '--wait')


def test_the_hint_make_run_prints_works_as_given(hosts):
    """`make run` ends with a compute command to try: with no ST_*
    variables set, it must list flavors, not stop at a usage error."""
    from compute import aio as compute_aio
    var, env = hosts
    out = io.StringIO()
    compute_aio.describe(var, out=out)
    line, = [text for text in out.getvalue().splitlines()
             if text.startswith('Compute API:')]
    command = line.split('try: ', 1)[1].split()
    assert command[0] == '.venv/bin/compute'
    bare = {k: v for k, v in env.items() if not k.startswith('ST_')}
    code, flavors, err = system.compute(bare, *command[1:])
    assert code == 0, err
    assert flavors and all('name' in f for f in flavors)
