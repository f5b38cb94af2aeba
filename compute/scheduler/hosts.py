"""The scheduler's inputs: a host's capacity, a flavor, a placement request.

These are plain values. The API server reads host records from its database
and image properties from objstore metadata, builds these objects and hands
them to `select_host`; nothing here does I/O, so placement decisions can be
tested and reasoned about without a cloud.

Values are checked when an object is built, so a bad database row or a bad
image property fails loudly at the boundary instead of as a confusing
arithmetic error deep inside a filter.
"""
import dataclasses
import math

# Spellings of one architecture that images and hosts use interchangeably.
# Comparing canonical names keeps an image tagged 'amd64' bootable on a
# host that reports 'x86_64'.
_ARCH_ALIASES = {
    'amd64': 'x86_64',
    'x86-64': 'x86_64',
    'x64': 'x86_64',
    'arm64': 'aarch64',
    'i386': 'i686',
    'i486': 'i686',
    'i586': 'i686',
    'x86': 'i686',
}


def canonical_arch(value):
    """Lower-case `value` and map known aliases to one spelling; None stays."""
    if value is None:
        return None
    name = str(value).strip().lower()
    return _ARCH_ALIASES.get(name, name) or None


def canonical_hypervisor(value):
    """Lower-case a hypervisor type; an empty value means 'no preference'."""
    if value is None:
        return None
    return str(value).strip().lower() or None


def _whole(value, what, minimum=0):
    """`value` as an int >= minimum, accepting ints and digit strings.

    Image properties arrive as object-metadata strings and host rows as
    SQLite integers, so both spellings are accepted; floats with a fraction,
    booleans and anything else are refused.
    """
    if isinstance(value, bool):
        raise ValueError('%s must be a whole number, got %r' % (what, value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not (text.isdigit() or (text[:1] == '-' and text[1:].isdigit())):
            raise ValueError('%s must be a whole number, got %r'
                             % (what, value))
        value = int(text)
    if not isinstance(value, int):
        raise ValueError('%s must be a whole number, got %r' % (what, value))
    if value < minimum:
        raise ValueError('%s must be at least %d, got %d'
                         % (what, minimum, value))
    return value


def _ratio(value, what):
    """`value` as a finite float > 0 (an allocation ratio of 0 is a typo)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError('%s must be a number, got %r' % (what, value))
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ValueError('%s must be a finite number above 0, got %r'
                         % (what, value))
    return number


def finite_float(value, what, kind='a number', finite_kind=None):
    """`value` as a finite float, else ValueError saying `what` must be
    `kind` (`finite_kind` for a bool, NaN or infinity)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError('%s must be %s, got %r' % (what, kind, value))
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError('%s must be %s, got %r'
                         % (what, finite_kind or kind, value))
    return number


def _timestamp(value, what):
    """`value` as a finite float of epoch seconds (0 means 'never')."""
    return finite_float(value, what, 'epoch seconds')


def _enabled(value):
    """A host's enabled flag from a bool, a SQLite 0/1 or a config word."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ('1', 'true', 'yes', 'on'):
            return True
        if word in ('0', 'false', 'no', 'off'):
            return False
    raise ValueError('enabled must be true or false, got %r' % (value,))


_COUNTS = ('vcpus_total', 'vcpus_used', 'ram_mb_total', 'ram_mb_used',
           'disk_gb_total', 'disk_gb_used', 'reserved_ram_mb')
_RATIOS = ('cpu_allocation_ratio', 'ram_allocation_ratio',
           'disk_allocation_ratio')


@dataclasses.dataclass(frozen=True)
class HostState:
    """What one compute host has and has handed out, as last reported.

    Free capacity is total * allocation ratio - used (and, for RAM, minus
    what the host keeps for itself). Ratios above 1 overcommit: the default
    CPU ratio of 4 lets four vCPUs share one physical core, because guests
    are mostly idle; RAM and disk default to 1 because overcommitting them
    ends in the OOM killer or a full disk. Free values can be negative when
    a host's ratios were lowered below what it already runs.
    """

    name: str
    enabled: bool = True
    last_heartbeat: float = 0.0
    hypervisor_type: str = 'qemu'
    architecture: str = 'x86_64'
    vcpus_total: int = 0
    vcpus_used: int = 0
    ram_mb_total: int = 0
    ram_mb_used: int = 0
    disk_gb_total: int = 0
    disk_gb_used: int = 0
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_ram_mb: int = 0

    def __post_init__(self):
        """Normalise and validate every field (see the module docstring)."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError('a host needs a non-empty name, got %r'
                             % (self.name,))
        fix = self._fix
        fix('enabled', _enabled(self.enabled))
        fix('last_heartbeat', _timestamp(self.last_heartbeat,
                                         'last_heartbeat'))
        fix('hypervisor_type', canonical_hypervisor(self.hypervisor_type)
            or '')
        fix('architecture', canonical_arch(self.architecture) or '')
        for field in _COUNTS:
            fix(field, _whole(getattr(self, field),
                              '%s of host %s' % (field, self.name)))
        for field in _RATIOS:
            fix(field, _ratio(getattr(self, field),
                              '%s of host %s' % (field, self.name)))

    def _fix(self, field, value):
        """Set a field of this frozen instance during construction."""
        object.__setattr__(self, field, value)

    @property
    def free_ram_mb(self):
        """MB a new guest may still get (whole MB, may be negative)."""
        limit = self.ram_mb_total * self.ram_allocation_ratio
        return math.floor(limit - self.reserved_ram_mb - self.ram_mb_used)

    @property
    def free_vcpus(self):
        """vCPUs a new guest may still get (whole vCPUs, may be negative)."""
        limit = self.vcpus_total * self.cpu_allocation_ratio
        return math.floor(limit - self.vcpus_used)

    @property
    def free_disk_gb(self):
        """GB of root disk a new guest may still get (may be negative)."""
        limit = self.disk_gb_total * self.disk_allocation_ratio
        return math.floor(limit - self.disk_gb_used)

    @classmethod
    def from_dict(cls, record):
        """Build from a database row or agent report.

        Keys that are not fields (a row id, the agent's URL) are ignored so
        the API server can pass its rows straight in; 'name' is required.
        """
        if 'name' not in record:
            raise ValueError('a host record needs a name: %r' % (record,))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def to_dict(self):
        """The fields as a plain dict; from_dict(to_dict()) gives it back."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Flavor:
    """The size of a server: what a boot request asks each host for."""

    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int = 0

    def __post_init__(self):
        """Refuse flavors no guest could boot with (0 vCPUs, 0 MB)."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError('a flavor needs a non-empty name, got %r'
                             % (self.name,))
        what = 'flavor %s: %%s' % self.name
        object.__setattr__(self, 'vcpus',
                           _whole(self.vcpus, what % 'vcpus', 1))
        object.__setattr__(self, 'ram_mb',
                           _whole(self.ram_mb, what % 'ram_mb', 1))
        object.__setattr__(self, 'disk_gb',
                           _whole(self.disk_gb, what % 'disk_gb', 0))

    @classmethod
    def from_dict(cls, record):
        """Build from a flavor record; extra keys (id, ...) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def to_dict(self):
        """The fields as a plain dict."""
        return dataclasses.asdict(self)


def _image_size(properties, key, unit):
    """An image's min_ram / min_disk; absent or empty means no minimum."""
    value = properties.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    return _whole(value, 'image property %s (%s)' % (key, unit))


@dataclasses.dataclass(frozen=True)
class Request:
    """One placement: the flavor, the image's properties and the clock.

    `now` is passed in rather than read so that a decision depends only on
    its inputs (and tests need no sleeping). A host whose last heartbeat is
    `heartbeat_timeout` seconds old or older counts as down.

    Image properties are parsed here, once: 'architecture',
    'hypervisor_type', 'min_ram' (MB) and 'min_disk' (GB), as strings (the
    way objstore metadata stores them) or numbers. Other keys are ignored.
    """

    flavor: Flavor
    now: float
    image_properties: dict = dataclasses.field(default_factory=dict)
    heartbeat_timeout: float = 60.0

    def __post_init__(self):
        """Parse the flavor, clock and image properties; ValueError if bad."""
        flavor = self.flavor
        if isinstance(flavor, dict):
            flavor = Flavor.from_dict(flavor)
        if not isinstance(flavor, Flavor):
            raise ValueError('flavor must be a Flavor, got %r' % (flavor,))
        object.__setattr__(self, 'flavor', flavor)
        object.__setattr__(self, 'now', _timestamp(self.now, 'now'))
        timeout = _ratio(self.heartbeat_timeout, 'heartbeat_timeout')
        object.__setattr__(self, 'heartbeat_timeout', timeout)
        props = dict(self.image_properties or {})
        object.__setattr__(self, 'image_properties', props)

        # Derived values, computed once; read them through the properties.
        object.__setattr__(self, '_min_ram', _image_size(props, 'min_ram',
                                                         'MB'))
        object.__setattr__(self, '_min_disk', _image_size(props, 'min_disk',
                                                          'GB'))
        object.__setattr__(self, '_arch',
                           canonical_arch(props.get('architecture')))
        object.__setattr__(self, '_hv', canonical_hypervisor(
            props.get('hypervisor_type')))

    @property
    def min_ram_mb(self):
        """The image's min_ram in MB (0 when it names none)."""
        return self._min_ram

    @property
    def min_disk_gb(self):
        """The image's min_disk in GB (0 when it names none)."""
        return self._min_disk

    @property
    def architecture(self):
        """The canonical architecture the image needs, or None for any."""
        return self._arch

    @property
    def hypervisor_type(self):
        """The lower-case hypervisor type the image needs, or None for any."""
        return self._hv

    @property
    def disk_gb(self):
        """Root disk to reserve: the flavor's, grown to the image's minimum.

        A flavor with a smaller disk than the image needs (often 0, meaning
        'as big as the image') still boots: the overlay grows to min_disk.
        """
        return max(self.flavor.disk_gb, self._min_disk)

    def check(self):
        """Raise ValueError when no host anywhere could satisfy this request.

        The image declares it needs more RAM than the flavor gives: that is
        the user's choice of flavor, not a shortage of hosts, so it is
        reported as a bad request rather than as 'No valid host'.
        """
        if self.flavor.ram_mb < self._min_ram:
            raise ValueError(
                'flavor %s has %d MB of RAM but the image needs at least '
                '%d MB (min_ram); choose a larger flavor'
                % (self.flavor.name, self.flavor.ram_mb, self._min_ram))
