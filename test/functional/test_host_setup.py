"""host_setup for real: install the packages, start virtlogd and libvirtd
without systemd, open qemu:///system. Root only."""
import os

import pytest

from compute.virt import host_setup

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason='needs root: installs Debian packages and starts libvirtd')


@pytest.fixture(scope='module')
def ready():
    reason = host_setup.ensure_packages()
    assert reason is None, reason
    return host_setup.ensure_libvirtd()


def test_packages_installed(ready):
    assert host_setup.missing_packages() == []
    assert host_setup.missing_packages(host_setup.FORBIDDEN_PACKAGES) == \
        list(host_setup.FORBIDDEN_PACKAGES)


def test_daemons_run_and_qemu_system_answers(ready):
    import libvirt
    for name, pid_file in host_setup.DAEMONS:
        assert host_setup.daemon_running(name, pid_file), name
    conn = libvirt.open('qemu:///system')
    try:
        caps = conn.getCapabilities()
        assert "<domain type='qemu'" in caps
    finally:
        conn.close()
    with open(host_setup.QEMU_CONF) as handle:
        lines = handle.read().splitlines()
    assert 'user = "root"' in lines and 'group = "root"' in lines


def test_second_call_starts_nothing(ready):
    notes = host_setup.ensure_libvirtd()
    assert not [n for n in notes if n.startswith('started')]


def test_choose_hypervisor_picks_system_qemu(ready):
    uri, domain_type, warning = host_setup.choose_hypervisor()
    assert warning is None
    assert uri == 'qemu:///system'
    expected, _why = host_setup.probe_kvm()
    assert domain_type == expected
