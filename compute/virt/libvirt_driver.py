"""ComputeDriver on libvirt: one connection URI, any libvirt hypervisor.

The URI picks the hypervisor: qemu:///system (QEMU through the daemon),
qemu:///embed?root=DIR (QEMU without a daemon; the caller must register
and run a libvirt event loop first), test:///default or
test:///ABS/PATH/node.xml (libvirt's in-process test driver: real API
calls, no guest ever runs). Xen or LXC would plug in the same way.

Which domains are ours: every domain this driver defines carries an
<objstore:instance> element in its <metadata> (written with the definition
itself, so no domain of ours ever exists without it). list_instances()
shows only those, and no method but spawn's name check touches a domain
without the mark: on qemu:///system other people's guests may share the
host, and test:///default starts with a domain called "test".

All libvirt errors leave as DriverError subclasses (see driver.py); bad
arguments to spawn are ValueError from domain_xml, raised before libvirt is
asked anything.
"""
import os
import time
import xml.etree.ElementTree as ET

import libvirt

from compute.virt import domain_xml as domxml
from compute.virt.driver import (ComputeDriver, DriverError,
                                 InstanceExists, InstanceNotFound,
                                 PowerState)

METADATA_NS = 'urn:objstore:compute:instance:1'
METADATA_PREFIX = 'objstore'
DEFAULT_INSTANCES_PATH = '/var/lib/objstore/compute/instances'
# How often power_off polls a guest it asked to shut down.
SHUTDOWN_POLL_INTERVAL = 0.2

_STATE_MAP = {
    libvirt.VIR_DOMAIN_NOSTATE: PowerState.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: PowerState.RUNNING,
    # Blocked means idle, waiting on I/O: the guest is up.
    libvirt.VIR_DOMAIN_BLOCKED: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: PowerState.PAUSED,
    # Being shut down: still running until it reaches SHUTOFF.
    libvirt.VIR_DOMAIN_SHUTDOWN: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_SHUTOFF: PowerState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: PowerState.CRASHED,
    # Suspended to RAM by the guest: not running, state kept.
    libvirt.VIR_DOMAIN_PMSUSPENDED: PowerState.PAUSED,
}

# Undefining also drops a managed save image and snapshot metadata, which
# would otherwise make undefine fail on a guest someone saved by hand.
_UNDEFINE_FLAGS = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                   libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def _ignore_libvirt_error(_ctx, _err):
    """libvirt prints every error to stderr by default; we raise them as
    exceptions with the same text, so printing them too is only noise."""


def _code(err):
    return err.get_error_code()


def _describe(action, name, err):
    return '%s of %s failed: %s' % (action, name, err.get_error_message()
                                    or err)


def default_domain_type(uri):
    """'test' for libvirt's test driver, else 'qemu' (TCG).

    Never 'kvm' by guessing: a /dev/kvm that exists may still be unable to
    run a guest (see shared/notes/compute-host.md), so KVM must be asked for
    explicitly by whoever proved it works.
    """
    return 'test' if uri.split(':', 1)[0] == 'test' else 'qemu'


def _with_metadata(xml):
    """Add our ownership mark to a domain XML document."""
    root = ET.fromstring(xml)
    metadata = ET.SubElement(root, 'metadata')
    mark = ET.SubElement(metadata, '%s:instance' % METADATA_PREFIX)
    mark.set('xmlns:%s' % METADATA_PREFIX, METADATA_NS)
    mark.set('uuid', root.findtext('uuid'))
    return ET.tostring(root, encoding='unicode')


def _nearest_existing_dir(path):
    """The instances directory may not exist yet; its filesystem does."""
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        path = os.path.dirname(path)
    return path


class LibvirtDriver(ComputeDriver):
    """A ComputeDriver for one libvirt connection."""

    def __init__(self, uri, domain_type=None,
                 instances_path=DEFAULT_INSTANCES_PATH):
        """Open the connection now so a wrong URI fails at agent start.

        domain_type is the <domain type> of every guest ('qemu', 'kvm',
        'test'); None picks default_domain_type(uri). instances_path is the
        directory holding instance disks; host_capacity reports the size of
        its filesystem.
        """
        if domain_type is None:
            domain_type = default_domain_type(uri)
        if domain_type not in domxml.DOMAIN_TYPES:
            raise ValueError('domain_type must be one of %s'
                             % ', '.join(domxml.DOMAIN_TYPES))
        self.uri = uri
        self.domain_type = domain_type
        self.instances_path = instances_path
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        self._conn = self._open()
        self._arch = None

    # -- connection and lookup -------------------------------------------

    def _open(self):
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as err:
            raise DriverError('cannot connect to libvirt at %s: %s'
                              % (self.uri, err)) from None
        if conn is None:  # very old bindings returned None
            raise DriverError('cannot connect to libvirt at %s' % self.uri)
        return conn

    def _connection(self):
        """The open connection, reopened if the daemon went away.

        libvirtd may be restarted under a running agent; a dead connection
        would otherwise fail every later call.
        """
        try:
            alive = self._conn.isAlive()
        except libvirt.libvirtError:
            alive = False
        if not alive:
            self._conn = self._open()
        return self._conn

    def close(self):
        """Close the connection (the driver is unusable afterwards)."""
        try:
            self._conn.close()
        except libvirt.libvirtError:
            pass

    def _find(self, name):
        """The domain called `name`, ours or not, or None."""
        try:
            return self._connection().lookupByName(name)
        except libvirt.libvirtError as err:
            if _code(err) == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise DriverError(_describe('lookup', name, err)) from None

    @staticmethod
    def _is_ours(dom):
        try:
            dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
        except libvirt.libvirtError as err:
            if _code(err) in (libvirt.VIR_ERR_NO_DOMAIN_METADATA,
                              libvirt.VIR_ERR_NO_DOMAIN):
                return False
            raise DriverError(_describe('reading metadata', dom.name(),
                                        err)) from None
        return True

    def _lookup(self, name):
        """Our domain called `name`; InstanceNotFound if there is none."""
        dom = self._find(name)
        if dom is None:
            raise InstanceNotFound('no instance %s on this host' % name)
        if not self._is_ours(dom):
            raise InstanceNotFound('domain %s exists but is not managed by '
                                   'this driver' % name)
        return dom

    @staticmethod
    def _is_active(dom):
        try:
            return bool(dom.isActive())
        except libvirt.libvirtError as err:
            raise DriverError(_describe('state query', dom.name(), err)) \
                from None

    # -- ComputeDriver -----------------------------------------------------

    def spawn(self, instance, image_paths, flavor, config_drive_path,
              console_log_path):
        """Define, then start; undefine again if starting fails."""
        xml = domxml.domain_xml(
            name=instance.name, uuid=instance.uuid, vcpus=flavor.vcpus,
            ram_mb=flavor.ram_mb, disk_path=image_paths.disk,
            disk_format=image_paths.disk_format, kernel=image_paths.kernel,
            ramdisk=image_paths.ramdisk, cmdline=image_paths.cmdline,
            config_drive=config_drive_path, console_log=console_log_path,
            domain_type=self.domain_type, arch=self._architecture())
        # defineXML would silently *replace* an existing definition of the
        # same name and uuid, so the name is checked first; the agent runs
        # one operation per instance at a time, which closes the gap.
        if self._find(instance.name) is not None:
            raise InstanceExists('a domain named %s already exists'
                                 % instance.name)
        dom = self._define(instance.name, _with_metadata(xml))
        try:
            dom.create()
        except libvirt.libvirtError as err:
            self._undefine_after_failed_start(dom)
            raise DriverError(_describe('start', instance.name, err)) \
                from None

    def _define(self, name, xml):
        try:
            return self._connection().defineXML(xml)
        except libvirt.libvirtError as err:
            if _code(err) in (libvirt.VIR_ERR_OPERATION_FAILED,
                              libvirt.VIR_ERR_DOM_EXIST) and \
                    'already' in str(err):
                raise InstanceExists(_describe('define', name, err)) \
                    from None
            raise DriverError(_describe('define', name, err)) from None

    @staticmethod
    def _undefine_after_failed_start(dom):
        """Best effort: the start error is the one worth reporting."""
        try:
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(_UNDEFINE_FLAGS)
        except libvirt.libvirtError:
            pass

    def destroy(self, instance_name):
        """Hard stop, then undefine; an unknown name is already done."""
        dom = self._find(instance_name)
        if dom is None:
            return
        if not self._is_ours(dom):
            raise DriverError('domain %s is not managed by this driver; not '
                              'destroying it' % instance_name)
        self._hard_stop(dom, instance_name)
        try:
            dom.undefineFlags(_UNDEFINE_FLAGS)
        except libvirt.libvirtError as err:
            if _code(err) == libvirt.VIR_ERR_NO_DOMAIN:
                return
            raise DriverError(_describe('undefine', instance_name, err)) \
                from None

    @staticmethod
    def _hard_stop(dom, name):
        """virDomainDestroy, tolerating a guest that stopped meanwhile."""
        try:
            dom.destroy()
        except libvirt.libvirtError as err:
            if _code(err) in (libvirt.VIR_ERR_OPERATION_INVALID,
                              libvirt.VIR_ERR_NO_DOMAIN):
                return  # not running (any more), or already gone
            raise DriverError(_describe('hard stop', name, err)) from None

    def power_on(self, instance_name):
        dom = self._lookup(instance_name)
        if self._is_active(dom):
            return
        self._start(dom, instance_name)

    @staticmethod
    def _start(dom, name):
        try:
            dom.create()
        except libvirt.libvirtError as err:
            raise DriverError(_describe('start', name, err)) from None

    def power_off(self, instance_name, graceful=True, timeout=60):
        """ACPI shutdown and wait up to `timeout` s, then hard stop."""
        dom = self._lookup(instance_name)
        if not self._is_active(dom):
            return
        if graceful and self._ask_shutdown(dom, instance_name):
            if self._wait_until_stopped(dom, timeout):
                return
        self._hard_stop(dom, instance_name)

    @staticmethod
    def _ask_shutdown(dom, name):
        """Press the power button; False if the guest is already down."""
        try:
            dom.shutdown()
        except libvirt.libvirtError as err:
            if _code(err) == libvirt.VIR_ERR_OPERATION_INVALID:
                return False
            raise DriverError(_describe('shutdown', name, err)) from None
        return True

    def _wait_until_stopped(self, dom, timeout):
        """Poll until the guest is off or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._is_active(dom):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(SHUTDOWN_POLL_INTERVAL, remaining))

    def reboot(self, instance_name, hard=False, timeout=60):
        """Soft: a clean shutdown (ACPI) and a fresh start, as Nova does;
        a guest still running after `timeout` s (it ignores the button,
        or is still booting) is reset instead, so the call always ends
        with the guest RUNNING. A stopped guest is simply started."""
        dom = self._lookup(instance_name)
        if not self._is_active(dom):
            self._start(dom, instance_name)
        elif hard:
            self._reset(dom, instance_name)
        elif not self._ask_shutdown(dom, instance_name) or \
                self._wait_until_stopped(dom, timeout):
            self._start(dom, instance_name)
        else:
            self._reset(dom, instance_name)

    def _reset(self, dom, name):
        """Reset like the reset button; drivers without it: stop + start."""
        try:
            dom.reset(0)
            return
        except libvirt.libvirtError as err:
            if _code(err) != libvirt.VIR_ERR_NO_SUPPORT:
                raise DriverError(_describe('reset', name, err)) from None
        self._hard_stop(dom, name)
        self._start(dom, name)

    def get_power_state(self, instance_name):
        dom = self._lookup(instance_name)
        try:
            state = dom.state(0)[0]
        except libvirt.libvirtError as err:
            raise DriverError(_describe('state query', instance_name, err)) \
                from None
        return _STATE_MAP.get(state, PowerState.NOSTATE)

    def list_instances(self):
        """Names of our domains, running or not, sorted."""
        try:
            domains = self._connection().listAllDomains(0)
        except libvirt.libvirtError as err:
            raise DriverError('listing domains failed: %s' % err) from None
        return sorted(dom.name() for dom in domains if self._is_ours(dom))

    def host_capacity(self):
        try:
            info = self._connection().getInfo()
        except libvirt.libvirtError as err:
            raise DriverError('reading host info failed: %s' % err) \
                from None
        return {
            'vcpus': int(info[2]),
            'ram_mb': int(info[1]),
            'disk_gb': self._disk_gb(),
            'hypervisor_type': self.domain_type,
            'architecture': self._architecture(),
        }

    def _disk_gb(self):
        """Total size (GiB, rounded down) of the instances filesystem."""
        st = os.statvfs(_nearest_existing_dir(self.instances_path))
        return st.f_blocks * st.f_frsize // (1024 ** 3)

    def _architecture(self):
        """The host's architecture from libvirt's capabilities (cached:
        it cannot change under a running connection)."""
        if self._arch is None:
            try:
                caps = self._connection().getCapabilities()
            except libvirt.libvirtError as err:
                raise DriverError('reading host capabilities failed: %s'
                                  % err) from None
            arch = ET.fromstring(caps).findtext('host/cpu/arch')
            if not arch:
                arch = self._connection().getInfo()[0]
            self._arch = arch.strip()
        return self._arch
