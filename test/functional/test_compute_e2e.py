"""End to end: a user uploads a tiny Debian guest and boots it for real.

The whole system as `make run` brings it up (compute.aio over an
all-in-one cluster: compute-api and one compute-agent on the system
libvirtd, QEMU/TCG), driven only through the `compute` command line:
upload kernel, ramdisk and machine image; boot with user-data and see
the guest's marker and the user-data in the console log; stop, start,
soft and hard reboot; a guest that powers itself off shows as SHUTOFF;
a second boot reuses the cached image; deletes leave no domain, overlay,
config drive or instance directory. Boot times are printed (-s).

Root only: it installs QEMU and starts libvirtd (compute.virt.host_setup).
"""
import glob
import io
import os
import time

import pytest

from test.conftest import free_port, load_test_module

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason='needs root to run libvirtd and QEMU')

BOOT_TIMEOUT = 180.0
MARKER = 'TINY-GUEST-BOOTED'
# printed once the guest's init watches the power button: act after it
READY = 'USER-DATA:'


tiny_guest = load_test_module('tiny_guest')
system = load_test_module('compute_system')


@pytest.fixture(scope='module')
def running(aio_cluster):
    """compute-api + one agent on the system libvirtd; yields (var, CLI
    environment, the agent's state directory)."""
    from compute import aio as compute_aio
    from compute.virt import host_setup
    uri, _domain_type, warning = host_setup.choose_hypervisor()
    if warning:
        pytest.fail('no hypervisor on this root machine:\n%s' % warning)
    var = aio_cluster['var']
    api_port = free_port()
    compute_aio.setup(var, out=io.StringIO(), api_port=api_port,
                      agent_port=free_port())
    try:
        compute_aio.start(var, out=io.StringIO(), libvirt_uri=uri)
        agent_dir = glob.glob(os.path.join(compute_aio.compute_dir(var),
                                           'agent-*'))[0]
        yield var, system.cli_env(aio_cluster, api_port), agent_dir
    finally:
        compute_aio.stop(var, out=io.StringIO())


@pytest.fixture(scope='module')
def images(running):
    """Kernel, ramdisk and machine image uploaded with image-upload."""
    _var, env, _agent_dir = running
    files = tiny_guest.build_tiny_guest()
    _, kernel, _ = system.compute(env, 'image-upload', files['kernel'],
                                  '--name', 'tiny-kernel',
                                  '--disk-format', 'aki',
                                  '--container-format', 'aki')
    _, ramdisk, _ = system.compute(env, 'image-upload', files['initramfs'],
                                   '--name', 'tiny-ramdisk',
                                   '--disk-format', 'ari',
                                   '--container-format', 'ari')
    _, machine, _ = system.compute(env, 'image-upload', files['disk'],
                                   '--name', 'tiny', '--disk-format', 'ami',
                                   '--container-format', 'ami',
                                   '--kernel-id', kernel['id'],
                                   '--ramdisk-id', ramdisk['id'])
    assert machine['kernel_id'] == kernel['id']
    assert machine['status'] == 'active'
    return {'kernel': kernel, 'ramdisk': ramdisk, 'machine': machine}


def console(env, server):
    return system.compute(env, 'console-log', server)[1]['output']


def wait_status(env, server, status, timeout=BOOT_TIMEOUT):
    def reached():
        shown = system.compute(env, 'show', server)[1]
        assert shown['status'] != 'ERROR', shown.get('fault')
        return shown if shown['status'] == status and \
            not shown.get('task_state') else None
    return system.wait_for('%s to be %s' % (server, status), reached,
                           timeout)


def wait_console(env, server, text, count=1):
    """Seconds until ``text`` is in the console log ``count`` times."""
    start = time.monotonic()
    system.wait_for('%r x%d in the console of %s' % (text, count, server),
                    lambda: console(env, server).count(text) >= count,
                    BOOT_TIMEOUT)
    return time.monotonic() - start


def _cache_files(agent_dir):
    """{image id: (inode, mtime)} of the agent's cached images."""
    out = {}
    for path in glob.glob(os.path.join(agent_dir, 'image-cache', '*-*')):
        if not path.endswith(('.json', '.lock')) and \
                not os.path.basename(path).startswith('.'):
            st = os.stat(path)
            out[os.path.basename(path)] = (st.st_ino, st.st_mtime_ns)
    return out


def _domains():
    import libvirt
    conn = libvirt.open('qemu:///system')
    try:
        return {d.name() for d in conn.listAllDomains()}
    finally:
        conn.close()


def test_boot_console_power_cycle_and_delete(running, images):
    _var, env, agent_dir = running
    user_data = os.path.join(agent_dir, '..', 'user-data.txt')
    with open(user_data, 'w') as f:
        f.write('hello from the e2e test\n')
    started = time.monotonic()
    _, server, _ = system.compute(env, 'boot', 'e2e-vm', '--image', 'tiny',
                                  '--flavor', 'm1.nano', '--user-data',
                                  user_data, '--wait')
    assert server['status'] == 'ACTIVE' and server['power_state'] == \
        'running'
    uuid = server['id']
    wait_console(env, uuid, '%s %s' % (MARKER, uuid))
    print('\ncold boot: ACTIVE + marker in %.1f s'
          % (time.monotonic() - started))
    wait_console(env, uuid, READY)
    assert 'USER-DATA: hello from the e2e test' in console(env, uuid)
    assert 'instance-%s' % uuid in _domains()

    system.compute(env, 'stop', uuid)
    wait_status(env, uuid, 'SHUTOFF')
    assert 'TINY-GUEST-STOPPING' in console(env, uuid), \
        'the guest was not asked to shut down (ACPI)'

    system.compute(env, 'start', uuid)
    wait_status(env, uuid, 'ACTIVE')
    print('start: marker again in %.1f s' % wait_console(env, uuid, MARKER,
                                                         2))
    wait_console(env, uuid, READY, 2)

    # soft: the guest is asked to shut down (it says so), then started
    system.compute(env, 'reboot', uuid)
    wait_status(env, uuid, 'ACTIVE')
    wait_console(env, uuid, READY, 3)
    assert console(env, uuid).count('TINY-GUEST-STOPPING') == 2

    system.compute(env, 'reboot', '--hard', uuid)
    wait_status(env, uuid, 'ACTIVE')
    wait_console(env, uuid, READY, 4)
    assert console(env, uuid).count(MARKER) == 4
    assert console(env, uuid).count('TINY-GUEST-STOPPING') == 2

    # a second server from the same image: the cache is not fetched again
    cached = _cache_files(agent_dir)
    assert images['machine']['id'] in cached
    poweroff = os.path.join(agent_dir, '..', 'user-data-poweroff.txt')
    with open(poweroff, 'w') as f:
        f.write('poweroff\n')
    started = time.monotonic()
    _, second, _ = system.compute(env, 'boot', 'e2e-vm2', '--image', 'tiny',
                                  '--flavor', 'm1.nano', '--user-data',
                                  poweroff, '--wait')
    wait_console(env, second['id'], MARKER)
    print('warm boot (cached image): ACTIVE + marker in %.1f s'
          % (time.monotonic() - started))
    assert _cache_files(agent_dir) == cached
    # it powers itself off: the agent notices and reports it
    wait_status(env, second['id'], 'SHUTOFF', timeout=60)

    for server_id in (uuid, second['id']):
        system.compute(env, 'delete', server_id, '--wait')
    code, _, err = system.compute(env, 'show', uuid, check=False)
    assert code == 1 and 'no server' in err.lower(), err
    assert not {'instance-%s' % s for s in (uuid, second['id'])} & \
        _domains()
    assert os.listdir(os.path.join(agent_dir, 'instances')) == []
    _, hosts, _ = system.compute(env, 'host-list')
    assert [(h['vcpus_used'], h['ram_mb_used']) for h in hosts] == [(0, 0)]


def test_bad_requests_leave_nothing(running, images):
    _var, env, agent_dir = running
    cases = [
        (('boot', 'x', '--image', 'no-such-image', '--flavor', 'm1.nano'),
         'no image'),
        (('boot', 'x', '--image', 'tiny', '--flavor', 'm9.huge'),
         'flavor'),
        (('boot', 'x\ny', '--image', 'tiny', '--flavor', 'm1.nano'),
         'name'),
        (('boot', 'x', '--image', images['kernel']['id'], '--flavor',
          'm1.nano', '--wait'), 'aki'),
    ]
    for args, words in cases:
        code, _, err = system.compute(env, *args, check=False)
        assert code != 0 and words in err.lower(), (args, err)
    _, servers, _ = system.compute(env, 'list')
    assert all(s['status'] in ('ERROR', 'DELETED') for s in servers)
    for s in servers:
        system.compute(env, 'delete', s['id'], '--wait')
    assert os.listdir(os.path.join(agent_dir, 'instances')) == []
