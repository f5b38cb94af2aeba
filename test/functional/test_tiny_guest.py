"""Boot the tiny guest for real through LibvirtDriver on qemu:///system.

Root only (it installs packages and starts libvirtd). Checks what the
agent relies on: the guest's serial output reaches the console log file,
the config drive's user data reaches the guest, a graceful power_off ends
in SHUTOFF, a guest powering itself off ends in SHUTOFF, and destroy
leaves nothing behind. Boot times to the marker are printed (run with -s
to see them).
"""
import os
import shutil
import tempfile
import time
import uuid

import pytest

from test.conftest import load_test_module



tiny_guest = load_test_module('tiny_guest')

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason='needs root to run libvirtd/QEMU')

BOOT_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
POLL = 0.1


@pytest.fixture(scope='module')
def guest_files():
    return tiny_guest.build_tiny_guest()


@pytest.fixture(scope='module')
def driver():
    from compute.virt import host_setup
    from compute.virt.libvirt_driver import LibvirtDriver
    reason = host_setup.ensure_packages()
    if reason:
        pytest.fail('packages: %s' % reason)
    host_setup.ensure_libvirtd()
    drv = LibvirtDriver('qemu:///system', domain_type='qemu',
                        instances_path=tempfile.gettempdir())
    yield drv
    drv.close()


LIBVIRT_QEMU_LOGS = '/var/log/libvirt/qemu'


@pytest.fixture
def workdir():
    """The instance's files; also drops libvirt's own per-domain QEMU log,
    which libvirt keeps after undefine."""
    path = tempfile.mkdtemp(prefix='tiny-guest-test-')
    before = set(_listdir(LIBVIRT_QEMU_LOGS))
    yield path
    shutil.rmtree(path, ignore_errors=True)
    for name in set(_listdir(LIBVIRT_QEMU_LOGS)) - before:
        if name.startswith('instance-'):
            os.unlink(os.path.join(LIBVIRT_QEMU_LOGS, name))


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _read(path):
    try:
        with open(path, errors='replace') as handle:
            return handle.read()
    except FileNotFoundError:
        return ''


def wait_for_text(path, text, timeout, start=0):
    """Seconds until `text` shows in file `path` after offset `start`."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if text in _read(path)[start:]:
            return time.monotonic() - began
        time.sleep(POLL)
    raise AssertionError('%r not in %s after %g s; console:\n%s'
                         % (text, path, timeout, _read(path)[-3000:]))


def wait_for_state(drv, name, state, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if drv.get_power_state(name) == state:
            return
        time.sleep(POLL)
    assert drv.get_power_state(name) == state


def spawn(drv, files, workdir, user_data):
    """Overlay + config drive + spawn, like the agent does."""
    from compute.virt.config_drive import build_config_drive
    from compute.virt.driver import Flavor, ImagePaths, Instance
    from compute.virt.overlay import create_overlay
    inst_uuid = str(uuid.uuid4())
    inst = Instance(name='instance-%s' % inst_uuid, uuid=inst_uuid)
    disk = os.path.join(workdir, 'disk.qcow2')
    create_overlay(files['disk'], disk, 'raw')
    iso = os.path.join(workdir, 'config.iso')
    build_config_drive(iso, {'uuid': inst_uuid, 'name': 'tiny'},
                       user_data=user_data)
    console = os.path.join(workdir, 'console.log')
    paths = ImagePaths(disk=disk, kernel=files['kernel'],
                       ramdisk=files['initramfs'], cmdline=files['cmdline'])
    started = time.monotonic()
    drv.spawn(inst, paths, Flavor('m1.tiny', 1, 256, 1), iso, console)
    return inst, console, started


def test_boot_user_data_graceful_stop_and_destroy(driver, guest_files,
                                                  workdir):
    from compute.virt.driver import PowerState
    inst, console, started = spawn(driver, guest_files, workdir,
                                   b'hello from the config drive\nmore\n')
    try:
        boot_s = wait_for_text(console, tiny_guest.MARKER, BOOT_TIMEOUT)
        print('\nboot to marker: %.1f s (spawn took %.1f s)'
              % (boot_s, time.monotonic() - started - boot_s))
        assert '%s %s' % (tiny_guest.MARKER, inst.uuid) in _read(console)
        user_data_s = wait_for_text(console, tiny_guest.USER_DATA_PREFIX +
                                    'hello from the config drive', 30)
        print('user data seen %.1f s after the marker' % user_data_s)
        assert driver.get_power_state(inst.name) == PowerState.RUNNING
        began = time.monotonic()
        driver.power_off(inst.name, graceful=True, timeout=STOP_TIMEOUT)
        assert tiny_guest.STOPPING in _read(console), \
            'power_off fell back to a hard stop: the guest ignored ACPI'
        print('graceful stop: %.1f s' % (time.monotonic() - began))
        assert driver.get_power_state(inst.name) == PowerState.SHUTOFF
        # warm: the same domain again (page cache and QEMU are warm)
        offset = len(_read(console))
        began = time.monotonic()
        driver.power_on(inst.name)
        warm_s = wait_for_text(console, tiny_guest.MARKER, BOOT_TIMEOUT,
                               start=offset)
        print('warm boot to marker: %.1f s' % warm_s)
        assert offset > 0  # append='on': the first boot's output is kept
    finally:
        driver.destroy(inst.name)
    assert inst.name not in driver.list_instances()


def test_guest_powering_itself_off_is_shutoff(driver, guest_files,
                                              workdir):
    from compute.virt.driver import PowerState
    inst, console, _started = spawn(driver, guest_files, workdir,
                                    b'#!/bin/sh\npoweroff\n')
    try:
        wait_for_text(console, tiny_guest.STOPPING, BOOT_TIMEOUT)
        wait_for_state(driver, inst.name, PowerState.SHUTOFF, STOP_TIMEOUT)
        assert 'USER-DATA: #!/bin/sh' in _read(console)
    finally:
        driver.destroy(inst.name)
    assert inst.name not in driver.list_instances()
    # the base disk stayed untouched under the overlay
    assert os.path.getsize(guest_files['disk']) == \
        tiny_guest.DISK_MB * 1024 * 1024


def test_second_build_is_cached(guest_files, monkeypatch):
    def no_rebuild(*_args):
        raise AssertionError('the cached guest was built again')
    monkeypatch.setattr(tiny_guest, '_build_entry', no_rebuild)
    again = tiny_guest.build_tiny_guest()
    assert again == guest_files
    cache = os.path.dirname(again['kernel'])
    assert not [f for f in os.listdir(os.path.dirname(cache))
                if f.startswith('.build-')]
    for key in ('kernel', 'initramfs', 'disk'):
        assert os.path.getsize(again[key]) > 0


def test_proof_boot_sees_the_marker(guest_files):
    """host_setup.kvm_proof_boot's marker watching, run under TCG since
    KVM may not work here; a marker the guest never prints is False."""
    from compute.virt import host_setup
    args = (guest_files['kernel'], guest_files['initramfs'])
    assert host_setup.kvm_proof_boot(*args, marker=tiny_guest.MARKER,
                                     timeout=BOOT_TIMEOUT,
                                     cmdline=guest_files['cmdline'],
                                     accel='tcg')
    assert not host_setup.kvm_proof_boot(*args, marker='NEVER-PRINTED',
                                         timeout=3,
                                         cmdline=guest_files['cmdline'],
                                         accel='tcg')
