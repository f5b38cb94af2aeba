"""Build the libvirt domain XML for one guest, as a pure function.

No libvirt import: the output is a string, so it can be checked by parsing
it back in unit tests, and the same builder serves every libvirt URI
(qemu:///system, qemu:///embed, test:///default).

Every value a user could influence goes into the document through
xml.etree.ElementTree, which escapes it; on top of that each input is
validated first, because escaping cannot help with a name that libvirt or
the shell tools around it would misread, and ElementTree happily writes
control characters that make the XML ill-formed.
"""
import os
import re
import uuid as uuidlib
import xml.etree.ElementTree as ET

NAME_MAX = 64
_NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*\Z')
_TOKEN_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*\Z')

DISK_FORMATS = ('qcow2', 'raw')
# 'test' is libvirt's own test driver (test:///default), used by API tests.
DOMAIN_TYPES = ('qemu', 'kvm', 'test')
NIC_MODES = ('none', 'user')
X86_ARCHES = ('x86_64', 'i686')

# The first characters XML 1.0 allows are TAB, LF and CR; we refuse those
# too (and DEL), since no path, name or kernel command line needs them.
_BAD_CHARS_RE = re.compile('[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]')


def _check_text(field, value):
    """Refuse a non-string or a string with characters XML cannot carry."""
    if not isinstance(value, str):
        raise ValueError('%s must be a string' % field)
    if _BAD_CHARS_RE.search(value):
        raise ValueError('%s must not contain control characters' % field)
    return value


def _check_name(name):
    """Domain names become file names and CLI arguments: keep them plain."""
    _check_text('name', name)
    if not name or len(name) > NAME_MAX or not _NAME_RE.match(name):
        raise ValueError(
            'name must be 1-%d characters of letters, digits, "-", "_" and '
            '".", starting with a letter or digit' % NAME_MAX)
    return name


def _check_uuid(value):
    """Return the canonical lower-case form libvirt itself prints."""
    if isinstance(value, uuidlib.UUID):
        return str(value)
    _check_text('uuid', value)
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise ValueError('uuid is not a valid UUID: %r' % value) from None


def _check_positive_int(field, value):
    # bool is an int subclass; True vCPUs is a bug, not a request for one.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError('%s must be a positive integer' % field)
    return value


def _check_path(field, value):
    """Paths must be absolute: libvirt resolves relative ones against its
    own working directory, not ours."""
    _check_text(field, value)
    if not os.path.isabs(value):
        raise ValueError('%s must be an absolute path' % field)
    return value


def _check_choice(field, value, choices):
    if value not in choices:
        raise ValueError('%s must be one of %s' % (field, ', '.join(choices)))
    return value


def _check_token(field, value):
    _check_text(field, value)
    if not _TOKEN_RE.match(value):
        raise ValueError('%s must be letters, digits, "-", "_" and "."'
                         % field)
    return value


def _validate(name, uuid, vcpus, ram_mb, disk_path, disk_format, kernel,
              ramdisk, cmdline, config_drive, console_log, domain_type, arch,
              machine, nic):
    """Check every argument; return the canonical uuid string."""
    _check_name(name)
    canonical_uuid = _check_uuid(uuid)
    _check_positive_int('vcpus', vcpus)
    _check_positive_int('ram_mb', ram_mb)
    _check_path('disk_path', disk_path)
    _check_choice('disk_format', disk_format, DISK_FORMATS)
    for field, value in (('kernel', kernel), ('ramdisk', ramdisk),
                         ('config_drive', config_drive),
                         ('console_log', console_log)):
        if value is not None:
            _check_path(field, value)
    if cmdline is not None:
        _check_text('cmdline', cmdline)
    if kernel is None and (ramdisk is not None or cmdline is not None):
        raise ValueError('ramdisk and cmdline need a kernel (direct kernel '
                         'boot)')
    _check_choice('domain_type', domain_type, DOMAIN_TYPES)
    _check_token('arch', arch)
    if machine is not None:
        _check_token('machine', machine)
    _check_choice('nic', nic, NIC_MODES)
    return canonical_uuid


def _sub(parent, tag, text=None, **attrs):
    """SubElement with optional text, for a flat, readable builder."""
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _add_os(root, arch, machine, kernel, ramdisk, cmdline):
    """Direct kernel boot when a kernel is given, else boot the root disk."""
    os_el = _sub(root, 'os')
    type_attrs = {'arch': arch}
    if machine is not None:
        type_attrs['machine'] = machine
    _sub(os_el, 'type', 'hvm', **type_attrs)
    if kernel is None:
        _sub(os_el, 'boot', dev='hd')
        return
    _sub(os_el, 'kernel', kernel)
    if ramdisk is not None:
        _sub(os_el, 'initrd', ramdisk)
    if cmdline is not None:
        _sub(os_el, 'cmdline', cmdline)


def _add_features(root, arch):
    """ACPI lets power_off(graceful=True) press the guest's power button.

    Only on x86: on other architectures libvirt ties ACPI to UEFI firmware,
    which direct kernel boot does not use.
    """
    if arch not in X86_ARCHES:
        return
    features = _sub(root, 'features')
    _sub(features, 'acpi')
    _sub(features, 'apic')


def _add_root_disk(devices, disk_path, disk_format):
    disk = _sub(devices, 'disk', type='file', device='disk')
    _sub(disk, 'driver', name='qemu', type=disk_format)
    _sub(disk, 'source', file=disk_path)
    _sub(disk, 'target', dev='vda', bus='virtio')


def _cdrom_bus(arch):
    """SATA works on both x86 machine types (IDE is missing on q35); other
    architectures get SCSI, for which libvirt adds a virtio-scsi controller.
    """
    return 'sata' if arch in X86_ARCHES else 'scsi'


def _add_config_drive(devices, config_drive, arch):
    cdrom = _sub(devices, 'disk', type='file', device='cdrom')
    _sub(cdrom, 'driver', name='qemu', type='raw')
    _sub(cdrom, 'source', file=config_drive)
    _sub(cdrom, 'target', dev='sda', bus=_cdrom_bus(arch))
    _sub(cdrom, 'readonly')


def _add_nic(devices, nic):
    """'user' is QEMU's own NAT (no bridge, no dnsmasq on our hosts)."""
    if nic == 'user':
        interface = _sub(devices, 'interface', type='user')
        _sub(interface, 'model', type='virtio')


def _add_serial(devices, console_log):
    """First serial port (the guest's ttyS0) appended to a file.

    append='on' keeps the output of earlier boots across stop/start, which
    is what a user reading the console log after a failed restart needs.
    libvirt adds the matching <console> alias of serial port 0 by itself.
    """
    serial = _sub(devices, 'serial', type='file')
    _sub(serial, 'source', path=console_log, append='on')
    _sub(serial, 'target', port='0')


def domain_xml(name, uuid, vcpus, ram_mb, disk_path, disk_format='qcow2',
               kernel=None, ramdisk=None, cmdline=None, config_drive=None,
               console_log=None, domain_type='qemu', arch='x86_64',
               machine=None, nic='none'):
    """Return the libvirt domain XML for one guest as a string.

    No graphics and no video device: guests are reached through the serial
    console log (and the network, with nic='user'). A poweroff or crash
    inside the guest ends the QEMU process (SHUTOFF), a reboot restarts it.
    Raises ValueError with a message naming the bad argument.
    """
    canonical_uuid = _validate(name, uuid, vcpus, ram_mb, disk_path,
                               disk_format, kernel, ramdisk, cmdline,
                               config_drive, console_log, domain_type, arch,
                               machine, nic)
    root = ET.Element('domain', type=domain_type)
    _sub(root, 'name', name)
    _sub(root, 'uuid', canonical_uuid)
    _sub(root, 'memory', str(ram_mb * 1024), unit='KiB')
    _sub(root, 'currentMemory', str(ram_mb * 1024), unit='KiB')
    _sub(root, 'vcpu', str(vcpus), placement='static')
    _add_os(root, arch, machine, kernel, ramdisk, cmdline)
    _add_features(root, arch)
    _sub(root, 'clock', offset='utc')
    _sub(root, 'on_poweroff', 'destroy')
    _sub(root, 'on_reboot', 'restart')
    _sub(root, 'on_crash', 'destroy')
    devices = _sub(root, 'devices')
    _add_root_disk(devices, disk_path, disk_format)
    if config_drive is not None:
        _add_config_drive(devices, config_drive, arch)
    _add_nic(devices, nic)
    if console_log is not None:
        _add_serial(devices, console_log)
    ET.indent(root)
    return ET.tostring(root, encoding='unicode')
