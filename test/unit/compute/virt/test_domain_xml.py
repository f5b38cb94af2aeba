"""domain_xml(): every element parsed back, and bad input refused."""
import uuid
import xml.etree.ElementTree as ET

import pytest

from compute.virt.domain_xml import NAME_MAX, domain_xml

UUID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'


def build(**overrides):
    """domain_xml() with valid defaults, parsed back into an Element."""
    kwargs = dict(name='inst-1', uuid=UUID, vcpus=2, ram_mb=256,
                  disk_path='/var/lib/compute/inst-1/disk')
    kwargs.update(overrides)
    return ET.fromstring(domain_xml(**kwargs))


def children(element):
    return [child.tag for child in element]


def test_kernel_boot_guest_with_every_device():
    root = build(kernel='/cache/k', ramdisk='/cache/r',
                 cmdline='console=ttyS0 root=/dev/vda',
                 config_drive='/var/lib/compute/inst-1/config.iso',
                 console_log='/var/lib/compute/inst-1/console.log',
                 nic='user')
    assert root.tag == 'domain' and root.get('type') == 'qemu'
    assert root.findtext('name') == 'inst-1'
    assert root.findtext('uuid') == UUID
    assert root.find('memory').attrib == {'unit': 'KiB'}
    assert root.findtext('memory') == str(256 * 1024)
    assert root.findtext('currentMemory') == str(256 * 1024)
    assert root.find('currentMemory').get('unit') == 'KiB'
    assert root.findtext('vcpu') == '2'
    os_el = root.find('os')
    assert children(os_el) == ['type', 'kernel', 'initrd', 'cmdline']
    assert os_el.find('type').attrib == {'arch': 'x86_64'}
    assert os_el.findtext('type') == 'hvm'
    assert os_el.findtext('kernel') == '/cache/k'
    assert os_el.findtext('initrd') == '/cache/r'
    assert os_el.findtext('cmdline') == 'console=ttyS0 root=/dev/vda'
    assert children(root.find('features')) == ['acpi', 'apic']
    assert root.find('clock').get('offset') == 'utc'
    assert root.findtext('on_poweroff') == 'destroy'
    assert root.findtext('on_reboot') == 'restart'
    assert root.findtext('on_crash') == 'destroy'
    devices = root.find('devices')
    assert children(devices) == ['disk', 'disk', 'interface', 'serial']


def test_root_disk_is_virtio_vda():
    disk = build(disk_format='raw').find('devices/disk[@device="disk"]')
    assert disk.get('type') == 'file'
    assert disk.find('driver').attrib == {'name': 'qemu', 'type': 'raw'}
    assert disk.find('source').attrib == {
        'file': '/var/lib/compute/inst-1/disk'}
    assert disk.find('target').attrib == {'dev': 'vda', 'bus': 'virtio'}
    assert disk.find('readonly') is None


def test_default_disk_format_is_qcow2():
    disk = build().find('devices/disk[@device="disk"]')
    assert disk.find('driver').get('type') == 'qcow2'


def test_config_drive_is_readonly_sata_cdrom():
    cdrom = build(config_drive='/d/config.iso').find(
        'devices/disk[@device="cdrom"]')
    assert cdrom.get('type') == 'file'
    assert cdrom.find('driver').attrib == {'name': 'qemu', 'type': 'raw'}
    assert cdrom.find('source').get('file') == '/d/config.iso'
    assert cdrom.find('target').attrib == {'dev': 'sda', 'bus': 'sata'}
    assert cdrom.find('readonly') is not None


def test_serial_console_goes_to_file():
    serial = build(console_log='/d/console.log').find('devices/serial')
    assert serial.get('type') == 'file'
    assert serial.find('source').attrib == {'path': '/d/console.log',
                                            'append': 'on'}
    assert serial.find('target').attrib == {'port': '0'}


def test_user_nic_is_virtio():
    interface = build(nic='user').find('devices/interface')
    assert interface.get('type') == 'user'
    assert interface.find('model').get('type') == 'virtio'


def test_minimal_guest_boots_from_disk_with_no_extras():
    root = build()
    os_el = root.find('os')
    assert children(os_el) == ['type', 'boot']
    assert os_el.find('boot').attrib == {'dev': 'hd'}
    devices = root.find('devices')
    assert children(devices) == ['disk']
    assert root.find('devices/disk').get('device') == 'disk'


def test_no_graphics_video_or_console_element():
    root = build(console_log='/d/c.log', config_drive='/d/c.iso', nic='user')
    for tag in ('graphics', 'video', 'console', 'sound'):
        assert root.find('devices/' + tag) is None, tag


def test_kernel_without_ramdisk_or_cmdline():
    os_el = build(kernel='/cache/k').find('os')
    assert children(os_el) == ['type', 'kernel']


def test_machine_and_domain_type():
    root = build(machine='pc-q35-7.2', domain_type='test')
    assert root.get('type') == 'test'
    assert root.find('os/type').attrib == {'arch': 'x86_64',
                                           'machine': 'pc-q35-7.2'}


def test_non_x86_guest_gets_scsi_cdrom_and_no_acpi():
    root = build(arch='aarch64', config_drive='/d/c.iso')
    assert root.find('os/type').get('arch') == 'aarch64'
    assert root.find('features') is None
    cdrom = root.find('devices/disk[@device="cdrom"]')
    assert cdrom.find('target').attrib == {'dev': 'sda', 'bus': 'scsi'}


def test_uuid_is_canonicalised():
    assert build(uuid=UUID.upper()).findtext('uuid') == UUID
    assert build(uuid=uuid.UUID(UUID)).findtext('uuid') == UUID
    assert build(uuid=UUID.replace('-', '')).findtext('uuid') == UUID


def test_markup_in_cmdline_round_trips_as_text():
    cmdline = 'console=ttyS0 x="a b" y=\'c\' <z>&amp; </cmdline><evil/>'
    root = build(kernel='/k', cmdline=cmdline)
    assert root.findtext('os/cmdline') == cmdline
    assert root.find('os/cmdline').findall('*') == []
    assert root.find('evil') is None and root.find('os/evil') is None


def test_markup_in_paths_round_trips_as_attribute():
    path = '/d/a"b\'c<d>&e.iso'
    root = build(disk_path=path, config_drive=path, console_log=path)
    assert root.find('devices/disk/source').get('file') == path
    cdrom = root.find('devices/disk[@device="cdrom"]')
    assert cdrom.find('source').get('file') == path
    assert root.find('devices/serial/source').get('path') == path


@pytest.mark.parametrize('name', [
    '', 'a<b', 'a"b', "a'b", 'a b', 'a/b', '../x', '-x', '.x', 'a\nb',
    'x' * (NAME_MAX + 1), 'caf\u00e9', 7, None])
def test_bad_name_is_refused(name):
    with pytest.raises(ValueError, match='name'):
        build(name=name)


def test_longest_allowed_name_and_all_token_characters():
    name = 'A-b_c.9' + 'x' * (NAME_MAX - 7)
    assert build(name=name).findtext('name') == name


@pytest.mark.parametrize('field,value', [
    ('uuid', 'not-a-uuid'), ('uuid', ''), ('uuid', 12),
    ('vcpus', 0), ('vcpus', -1), ('vcpus', True), ('vcpus', 1.5),
    ('vcpus', '2'), ('vcpus', None),
    ('ram_mb', 0), ('ram_mb', -64), ('ram_mb', 64.0), ('ram_mb', False),
    ('disk_path', 'relative/disk'), ('disk_path', ''), ('disk_path', None),
    ('disk_path', '/d/\x00disk'), ('disk_format', 'vmdk'),
    ('kernel', 'vmlinuz'), ('ramdisk', 'initrd'),
    ('config_drive', 'config.iso'), ('console_log', 'console.log'),
    ('console_log', '/d/con\nsole.log'),
    ('domain_type', 'xen'), ('domain_type', 'qemu"'),
    ('arch', 'x86 64'), ('arch', ''), ('arch', '<x>'),
    ('machine', 'pc q35'), ('machine', ''),
    ('nic', 'bridge'), ('nic', None)])
def test_bad_argument_is_refused_naming_the_field(field, value):
    overrides = {field: value}
    if field in ('ramdisk', 'cmdline'):
        overrides['kernel'] = '/k'
    with pytest.raises(ValueError, match=field):
        build(**overrides)


@pytest.mark.parametrize('cmdline', ['a\nb', 'a\rb', 'a\tb', 'a\x00b',
                                     'a\x1bb', 'a\x7fb', 'a\ud800b'])
def test_control_characters_in_cmdline_are_refused(cmdline):
    with pytest.raises(ValueError, match='cmdline'):
        build(kernel='/k', cmdline=cmdline)


@pytest.mark.parametrize('field', ['ramdisk', 'cmdline'])
def test_ramdisk_or_cmdline_without_kernel_is_refused(field):
    value = '/r' if field == 'ramdisk' else 'console=ttyS0'
    with pytest.raises(ValueError, match='kernel'):
        build(**{field: value})


def test_output_is_a_string_libvirt_can_take():
    xml = domain_xml('inst-1', UUID, 1, 64, '/d/disk')
    assert isinstance(xml, str)
    assert xml.startswith('<domain ')
    assert ET.fromstring(xml).tag == 'domain'
