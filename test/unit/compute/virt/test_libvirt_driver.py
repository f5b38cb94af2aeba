"""Tests for compute.virt.libvirt_driver on libvirt's test driver.

Each test gets its own connection to test:///TMP/node.xml: the test driver
keeps one state per such URI and connection, so tests cannot see each
other's domains, and no daemon or hypervisor is involved. A few tests use
test:///default on purpose, for its foreign domain called "test".
"""
import os
import uuid
import xml.etree.ElementTree as ET

import pytest

libvirt = pytest.importorskip('libvirt')

from compute.virt import libvirt_driver  # noqa: E402
from compute.virt.driver import (HOST_CAPACITY_KEYS, ComputeDriver,  # noqa
                                 DriverError, Flavor, ImagePaths, Instance,
                                 InstanceExists, InstanceNotFound,
                                 PowerState)
from compute.virt.libvirt_driver import LibvirtDriver  # noqa: E402

NODE_XML = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>3</cores>
       <threads>1</threads><mhz>1000</mhz><model>x86_64</model></cpu>
  <memory>%d</memory>
</node>
""" % (6 * 1024 * 1024)  # KiB

TINY = Flavor(name='m1.tiny', vcpus=1, ram_mb=128, disk_gb=1)
SMALL = Flavor(name='m1.small', vcpus=2, ram_mb=256, disk_gb=2)


class FakeLibvirtError(libvirt.libvirtError):
    """A libvirtError with a chosen code, for the few failures the test
    driver cannot produce by itself."""

    def __init__(self, msg, code):
        super().__init__(msg)
        self._fake_code = code

    def get_error_code(self):
        return self._fake_code

    def get_error_message(self):
        return str(self)


@pytest.fixture
def driver(tmp_path):
    node = tmp_path / 'node.xml'
    node.write_text(NODE_XML)
    drv = LibvirtDriver('test://' + str(node),
                        instances_path=str(tmp_path / 'instances'))
    yield drv
    drv.close()


def _instance(name='inst-1'):
    return Instance(name=name, uuid=str(uuid.uuid4()))


def _spawn(drv, tmp_path, instance=None, flavor=TINY, config_drive=True):
    instance = instance or _instance()
    paths = ImagePaths(disk=str(tmp_path / instance.name / 'disk'),
                       kernel=str(tmp_path / 'cache' / 'kernel'),
                       ramdisk=str(tmp_path / 'cache' / 'ramdisk'),
                       cmdline='console=ttyS0')
    drive = str(tmp_path / instance.name / 'disk.config') \
        if config_drive else None
    drv.spawn(instance, paths, flavor, drive,
              str(tmp_path / instance.name / 'console.log'))
    return instance


def _domain_names(drv):
    """Every domain on the connection, ours or not."""
    return sorted(d.name() for d in drv._conn.listAllDomains(0))


def _xml(drv, name):
    return ET.fromstring(drv._conn.lookupByName(name).XMLDesc(0))


def test_is_a_compute_driver(driver):
    assert isinstance(driver, ComputeDriver)
    assert driver.domain_type == 'test'
    assert driver.list_instances() == []


def test_spawn_defines_and_starts_the_guest(driver, tmp_path):
    inst = _spawn(driver, tmp_path, flavor=SMALL)
    assert driver.list_instances() == ['inst-1']
    assert driver.get_power_state('inst-1') is PowerState.RUNNING
    root = _xml(driver, 'inst-1')
    assert root.get('type') == 'test'
    assert root.findtext('uuid') == inst.uuid
    assert root.findtext('vcpu') == '2'
    assert root.find('memory').text == str(256 * 1024)
    assert root.find('os/kernel').text == str(tmp_path / 'cache' / 'kernel')
    disks = {d.get('device'): d for d in root.findall('devices/disk')}
    assert disks['disk'].find('source').get('file') == \
        str(tmp_path / 'inst-1' / 'disk')
    assert disks['cdrom'].find('readonly') is not None
    serial = root.find('devices/serial/source')
    assert serial.get('path') == str(tmp_path / 'inst-1' / 'console.log')
    mark = root.find('metadata/{%s}instance' % libvirt_driver.METADATA_NS)
    assert mark is not None and mark.get('uuid') == inst.uuid


def test_spawn_without_config_drive(driver, tmp_path):
    _spawn(driver, tmp_path, config_drive=False)
    root = _xml(driver, 'inst-1')
    assert [d.get('device') for d in root.findall('devices/disk')] == \
        ['disk']


def test_spawn_same_name_raises_and_keeps_existing(driver, tmp_path):
    first = _spawn(driver, tmp_path, flavor=TINY)
    again = Instance(name='inst-1', uuid=first.uuid)
    with pytest.raises(InstanceExists):
        _spawn(driver, tmp_path, instance=again, flavor=SMALL)
    assert driver.get_power_state('inst-1') is PowerState.RUNNING
    assert _xml(driver, 'inst-1').findtext('vcpu') == '1'


def test_spawn_same_uuid_other_name_is_refused(driver, tmp_path):
    first = _spawn(driver, tmp_path)
    clash = Instance(name='inst-2', uuid=first.uuid)
    with pytest.raises(InstanceExists, match='already'):
        _spawn(driver, tmp_path, instance=clash)
    assert _domain_names(driver) == ['inst-1']
    assert driver.get_power_state('inst-1') is PowerState.RUNNING


@pytest.mark.parametrize('bad_name', ['', 'bad name', '../etc', '-x',
                                      'a' * 65, 'x\ny'])
def test_spawn_bad_name_is_value_error_and_leaves_nothing(driver, tmp_path,
                                                           bad_name):
    with pytest.raises(ValueError, match='name'):
        _spawn(driver, tmp_path, instance=_instance(bad_name))
    assert _domain_names(driver) == []


def test_spawn_start_failure_leaves_no_domain(driver, tmp_path,
                                              monkeypatch):
    def failing_create(self, flags=0):
        raise FakeLibvirtError('no room for this guest',
                               libvirt.VIR_ERR_OPERATION_FAILED)
    monkeypatch.setattr(libvirt.virDomain, 'create', failing_create)
    with pytest.raises(DriverError, match='no room for this guest'):
        _spawn(driver, tmp_path)
    assert _domain_names(driver) == []
    assert driver.list_instances() == []


def test_power_off_graceful_then_power_on(driver, tmp_path):
    _spawn(driver, tmp_path)
    driver.power_off('inst-1')
    assert driver.get_power_state('inst-1') is PowerState.SHUTOFF
    assert driver.list_instances() == ['inst-1']  # still defined
    driver.power_off('inst-1')  # already off: no error
    assert driver.get_power_state('inst-1') is PowerState.SHUTOFF
    driver.power_on('inst-1')
    assert driver.get_power_state('inst-1') is PowerState.RUNNING
    driver.power_on('inst-1')  # already on: no error
    assert driver.get_power_state('inst-1') is PowerState.RUNNING


def test_power_off_hard(driver, tmp_path):
    _spawn(driver, tmp_path)
    driver.power_off('inst-1', graceful=False)
    assert driver.get_power_state('inst-1') is PowerState.SHUTOFF


def test_power_off_stops_hard_when_guest_ignores_shutdown(driver, tmp_path,
                                                          monkeypatch):
    _spawn(driver, tmp_path)
    asked = []
    monkeypatch.setattr(libvirt.virDomain, 'shutdown',
                        lambda self: asked.append(self.name()) or 0)
    driver.power_off('inst-1', graceful=True, timeout=0.05)
    assert asked == ['inst-1']
    assert driver.get_power_state('inst-1') is PowerState.SHUTOFF


def test_reboot_soft_and_hard_keep_running(driver, tmp_path):
    _spawn(driver, tmp_path)
    driver.reboot('inst-1')
    assert driver.get_power_state('inst-1') is PowerState.RUNNING
    driver.reboot('inst-1', hard=True)
    assert driver.get_power_state('inst-1') is PowerState.RUNNING


@pytest.mark.parametrize('hard', [False, True])
def test_reboot_of_stopped_guest_starts_it(driver, tmp_path, hard):
    _spawn(driver, tmp_path)
    driver.power_off('inst-1', graceful=False)
    driver.reboot('inst-1', hard=hard)
    assert driver.get_power_state('inst-1') is PowerState.RUNNING


def test_hard_reboot_without_reset_support_stops_and_starts(
        driver, tmp_path, monkeypatch):
    _spawn(driver, tmp_path)
    dom = driver._conn.lookupByName('inst-1')
    dom_id = dom.ID()

    def no_reset(self, flags=0):
        raise FakeLibvirtError('reset not supported',
                               libvirt.VIR_ERR_NO_SUPPORT)
    monkeypatch.setattr(libvirt.virDomain, 'reset', no_reset)
    driver.reboot('inst-1', hard=True)
    assert driver.get_power_state('inst-1') is PowerState.RUNNING
    # A new run of the guest gets a new domain id.
    assert driver._conn.lookupByName('inst-1').ID() != dom_id


def test_paused_guest_reports_paused(driver, tmp_path):
    _spawn(driver, tmp_path)
    driver._conn.lookupByName('inst-1').suspend()
    assert driver.get_power_state('inst-1') is PowerState.PAUSED


def test_destroy_running_guest_twice(driver, tmp_path):
    _spawn(driver, tmp_path)
    _spawn(driver, tmp_path, instance=_instance('inst-2'))
    driver.destroy('inst-1')
    assert driver.list_instances() == ['inst-2']
    assert _domain_names(driver) == ['inst-2']
    driver.destroy('inst-1')  # idempotent
    assert driver.list_instances() == ['inst-2']
    with pytest.raises(InstanceNotFound):
        driver.get_power_state('inst-1')


def test_destroy_stopped_guest(driver, tmp_path):
    _spawn(driver, tmp_path)
    driver.power_off('inst-1', graceful=False)
    driver.destroy('inst-1')
    assert _domain_names(driver) == []


def test_destroy_unknown_name_succeeds(driver):
    driver.destroy('never-existed')
    assert driver.list_instances() == []


def test_destroy_does_not_leave_files_removed(driver, tmp_path):
    """The agent owns the files: destroy must not delete them."""
    inst = _instance()
    (tmp_path / inst.name).mkdir()
    disk = tmp_path / inst.name / 'disk'
    disk.write_bytes(b'overlay')
    _spawn(driver, tmp_path, instance=inst)
    driver.destroy(inst.name)
    assert disk.read_bytes() == b'overlay'


@pytest.mark.parametrize('call', [
    lambda d: d.get_power_state('nope'),
    lambda d: d.power_on('nope'),
    lambda d: d.power_off('nope'),
    lambda d: d.power_off('nope', graceful=False),
    lambda d: d.reboot('nope'),
    lambda d: d.reboot('nope', hard=True),
])
def test_unknown_instance_raises_not_found(driver, call):
    with pytest.raises(InstanceNotFound, match='nope'):
        call(driver)


def test_host_capacity(driver, tmp_path):
    cap = driver.host_capacity()
    assert tuple(sorted(cap)) == tuple(sorted(HOST_CAPACITY_KEYS))
    assert cap['vcpus'] == 3
    assert cap['ram_mb'] == 6 * 1024
    assert cap['hypervisor_type'] == 'test'
    caps = ET.fromstring(driver._conn.getCapabilities())
    assert cap['architecture'] == caps.findtext('host/cpu/arch')
    # instances_path does not exist yet: its filesystem is measured.
    st = os.statvfs(tmp_path)
    assert cap['disk_gb'] == st.f_blocks * st.f_frsize // 1024 ** 3
    assert all(isinstance(cap[k], int)
               for k in ('vcpus', 'ram_mb', 'disk_gb'))


def test_reconnects_when_connection_is_closed(driver):
    driver._conn.close()
    assert driver.host_capacity()['vcpus'] == 3
    assert driver._conn.isAlive()


def test_foreign_domain_is_neither_listed_nor_touched(tmp_path):
    """test:///default's own domain "test" is not ours."""
    drv = LibvirtDriver('test:///default', instances_path=str(tmp_path))
    try:
        assert 'test' in _domain_names(drv)
        assert 'test' not in drv.list_instances()
        with pytest.raises(InstanceNotFound, match='not managed'):
            drv.get_power_state('test')
        with pytest.raises(InstanceNotFound):
            drv.power_off('test')
        with pytest.raises(DriverError, match='not managed'):
            drv.destroy('test')
        with pytest.raises(InstanceExists):
            _spawn(drv, tmp_path, instance=_instance('test'))
        assert drv._conn.lookupByName('test').isActive()
        inst = _spawn(drv, tmp_path, instance=_instance('objstore-t1'))
        assert 'objstore-t1' in drv.list_instances()
    finally:
        drv.destroy('objstore-t1')
        drv.close()
    fresh = LibvirtDriver('test:///default')
    assert inst.name not in _domain_names(fresh)
    assert 'test' in _domain_names(fresh)
    fresh.close()


def test_default_domain_type_follows_uri():
    assert libvirt_driver.default_domain_type('test:///default') == 'test'
    assert libvirt_driver.default_domain_type('qemu:///system') == 'qemu'
    assert libvirt_driver.default_domain_type(
        'qemu+ssh://host/system') == 'qemu'


def test_explicit_domain_type_and_bad_one(tmp_path):
    node = tmp_path / 'node.xml'
    node.write_text(NODE_XML)
    drv = LibvirtDriver('test://' + str(node), domain_type='kvm')
    assert drv.host_capacity()['hypervisor_type'] == 'kvm'
    drv.close()
    with pytest.raises(ValueError, match='domain_type'):
        LibvirtDriver('test://' + str(node), domain_type='xen-pv')


def test_bad_uri_is_driver_error(tmp_path):
    with pytest.raises(DriverError, match='cannot connect'):
        LibvirtDriver('test://' + str(tmp_path / 'missing.xml'))
