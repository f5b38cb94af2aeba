"""The contract between a compute agent and a hypervisor driver.

The agent decides *what* should run on its host (which instance, from which
files, with which flavor); a driver only knows *how* to make one hypervisor
do it. Keeping the contract here, free of any libvirt import, lets the agent
and its tests depend on the interface while the libvirt driver (or a Xen,
LXC or fake one) plugs in behind it.

Ownership of files: the agent prepares every file a guest uses (the root
disk overlay, the kernel and ramdisk from the image cache, the config drive,
the console log's directory) and removes them after `destroy`. A driver
reads and references those files but never deletes them, so one module owns
each file's life and nothing is removed twice or left behind.
"""
import abc
import dataclasses
import enum
from typing import Optional

# The keys of the dict that host_capacity() returns; the scheduler's filters
# read exactly these.
HOST_CAPACITY_KEYS = ('vcpus', 'ram_mb', 'disk_gb', 'hypervisor_type',
                      'architecture')


class PowerState(str, enum.Enum):
    """What the hypervisor says a guest is doing right now.

    A str enum so the value can go into JSON (agent -> API reports) as is.
    """
    RUNNING = 'running'
    SHUTOFF = 'shutoff'
    PAUSED = 'paused'
    CRASHED = 'crashed'
    # The hypervisor knows the guest but reports no state (for example while
    # it is being created or torn down).
    NOSTATE = 'nostate'


class DriverError(Exception):
    """A hypervisor operation failed; the message says why, for a fault."""


class InstanceNotFound(DriverError):
    """No guest of that name exists on this host."""


class InstanceExists(DriverError):
    """spawn() was asked for a name that this host already runs or defines."""


@dataclasses.dataclass(frozen=True)
class Instance:
    """The identity of a guest: what a driver names the domain after.

    `name` is the hypervisor-level name (a safe token, unique on the host);
    `uuid` is the instance's id in the API, kept so a domain can be matched
    to its instance even if names were ever reused.
    """
    name: str
    uuid: str


@dataclasses.dataclass(frozen=True)
class ImagePaths:
    """Local files a guest boots from, all prepared by the agent.

    `disk` is the instance's own root disk (a copy-on-write overlay over the
    cached image, never the cached image itself, so guests cannot change a
    shared base). `kernel` and `ramdisk` are set for direct kernel boot; they
    are read-only files from the image cache. `cmdline` is the kernel command
    line and only makes sense with a kernel.
    """
    disk: str
    disk_format: str = 'qcow2'
    kernel: Optional[str] = None
    ramdisk: Optional[str] = None
    cmdline: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Flavor:
    """The size of a guest, as the scheduler placed it."""
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int


class ComputeDriver(abc.ABC):
    """What the agent may ask of a hypervisor, and what each call guarantees.

    Every method is synchronous and returns only once the hypervisor has
    done (or refused) the work. Errors are raised as DriverError (or one of
    its subclasses) carrying a message fit for an instance's fault; a driver
    never lets a library-specific exception escape, so the agent needs no
    knowledge of the hypervisor library.
    """

    @abc.abstractmethod
    def spawn(self, instance: Instance, image_paths: ImagePaths,
              flavor: Flavor, config_drive_path: Optional[str],
              console_log_path: str) -> None:
        """Define and start a guest; return once the hypervisor runs it.

        Must guarantee:
        - the guest gets exactly flavor.vcpus and flavor.ram_mb, its root
          disk from image_paths.disk, the config drive (when given) as a
          read-only CD-ROM, and its first serial port written to
          console_log_path;
        - InstanceExists if a guest of that name is already defined, and
          the existing guest is left untouched;
        - all or nothing: if starting fails, the definition is removed
          again, so a failed spawn leaves no domain behind (the agent then
          removes its files and marks the instance ERROR).
        """

    @abc.abstractmethod
    def destroy(self, instance_name: str) -> None:
        """Stop the guest at once (no graceful shutdown) and forget it.

        Idempotent: destroying a guest that is stopped, half-defined or
        unknown succeeds, so the agent can retry a delete after any crash.
        It removes the hypervisor's definition only; the agent deletes the
        files afterwards (see the module docstring).
        """

    @abc.abstractmethod
    def power_on(self, instance_name: str) -> None:
        """Start a defined, stopped guest.

        A guest that already runs is left alone (no error), so a retried
        start is harmless. InstanceNotFound for an unknown name.
        """

    @abc.abstractmethod
    def power_off(self, instance_name: str, graceful: bool = True,
                  timeout: float = 60) -> None:
        """Stop a guest, keeping its definition so power_on can restart it.

        With graceful=True the guest is asked to shut down (ACPI power
        button) and given `timeout` seconds; if it is still running then, it
        is stopped hard, so the call always ends with the guest SHUTOFF.
        graceful=False stops it hard at once. A guest already stopped is
        left alone (no error). InstanceNotFound for an unknown name.
        """

    @abc.abstractmethod
    def reboot(self, instance_name: str, hard: bool = False,
               timeout: float = 60) -> None:
        """Restart a guest.

        Soft asks the guest OS to shut down and starts it again, falling
        back to a hard reboot if it is still running after `timeout`
        seconds; hard resets it (or stops and starts it) without asking.
        Ends with the guest RUNNING, also when it was stopped before.
        InstanceNotFound for an unknown name.
        """

    @abc.abstractmethod
    def get_power_state(self, instance_name: str) -> PowerState:
        """Return the guest's power state as the hypervisor sees it now.

        A guest shut down from inside shows as SHUTOFF, which is how the
        agent notices and reports it. InstanceNotFound for an unknown name.
        """

    @abc.abstractmethod
    def list_instances(self) -> list:
        """Return the names of all guests this driver manages on the host.

        Includes stopped ones. The agent compares this with its database to
        find stray or vanished guests.
        """

    @abc.abstractmethod
    def host_capacity(self) -> dict:
        """Return what this host offers, for the scheduler.

        A dict with exactly the keys in HOST_CAPACITY_KEYS: vcpus (int),
        ram_mb (int), disk_gb (int) as totals of the host (the scheduler
        subtracts what its instances use), hypervisor_type (for example
        'qemu', 'kvm' or 'test') and architecture (for example 'x86_64').
        """
