"""Flavors: the sizes a server can be booted with (pure: no I/O).

The defaults are the ones Nova users know (m1.tiny ... m1.xlarge) plus
m1.nano, small enough for the throw-away guests tests boot. An operator
adds or replaces flavors in a config section, one option per flavor:

    [flavors]
    m1.nano = 1,128,1
    c1.big = 16,65536,200

A flavor's id is its name. Nova numbers its defaults, but a number given
by position would change meaning when the config is edited; the name is
stable, and `compute boot --flavor m1.tiny` reads better than `--flavor 1`.
Note that INI parsers fold option names to lower case.
"""
import dataclasses
import re

_NAME = re.compile(r'[A-Za-z0-9._-]{1,255}\Z')
# Upper bounds only catch typos (an extra zero or two); they are far above
# any host this project will see.
_LIMITS = {'vcpus': (1, 1024), 'ram': (1, 64 * 1024 * 1024),
           'disk': (0, 1024 * 1024)}


def valid_name(name):
    """Whether `name` is usable as a flavor name (letters, digits, . - _)."""
    return isinstance(name, str) and bool(_NAME.match(name))


def _count(value, field, name):
    """`value` as an int within the field's limits, else ValueError."""
    low, high = _LIMITS[field]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError('flavor %s: %s must be a whole number, got %r'
                         % (name, field, value))
    if not low <= value <= high:
        raise ValueError('flavor %s: %s must be between %d and %d, got %d'
                         % (name, field, low, high, value))
    return value


@dataclasses.dataclass(frozen=True)
class Flavor:
    """One flavor: vCPUs, RAM in MB and root disk in GB (0: image size)."""

    name: str
    vcpus: int
    ram: int
    disk: int

    def __post_init__(self):
        """Refuse a bad name or size when the flavor is made, not at boot."""
        if not valid_name(self.name):
            raise ValueError('bad flavor name %r: use letters, digits, '
                             '".", "-" and "_"' % (self.name,))
        for field in ('vcpus', 'ram', 'disk'):
            _count(getattr(self, field), field, self.name)

    @property
    def id(self):
        """The flavor's stable id: its name (see the module docstring)."""
        return self.name

    def to_dict(self):
        """The flavor as the API shows it."""
        return {'id': self.id, 'name': self.name, 'vcpus': self.vcpus,
                'ram': self.ram, 'disk': self.disk}


DEFAULT_FLAVORS = (
    Flavor('m1.nano', 1, 128, 1),
    Flavor('m1.tiny', 1, 512, 1),
    Flavor('m1.small', 1, 2048, 20),
    Flavor('m1.medium', 2, 4096, 40),
    Flavor('m1.large', 4, 8192, 80),
    Flavor('m1.xlarge', 8, 16384, 160),
)


def parse_flavor(name, value):
    """A Flavor from one config option `name = vcpus,ram_mb,disk_gb`.

    Errors name the option, so an operator finds the bad line at once.
    """
    parts = [p.strip() for p in str(value).split(',')]
    digits = all(p.isascii() and p.isdigit() for p in parts)
    if len(parts) != 3 or not digits:
        raise ValueError('flavor option %r: expected "vcpus,ram_mb,disk_gb"'
                         ' as three whole numbers, got %r' % (name, value))
    try:
        return Flavor(name, *(int(p) for p in parts))
    except ValueError as e:
        raise ValueError('flavor option %r: %s' % (name, e)) from None


class Flavors:
    """The flavors on offer, looked up by id or name, listed by size."""

    def __init__(self, flavors=DEFAULT_FLAVORS):
        self._by_name = {}
        for flavor in flavors:
            self._by_name[flavor.name] = flavor

    @classmethod
    def from_config(cls, section=None, base=DEFAULT_FLAVORS):
        """`base` with every option of `section` (a mapping) added/replaced.

        `section` is a {name: "vcpus,ram_mb,disk_gb"} mapping, such as one
        section of objstore.common.config.read_conf's result; None or an
        empty section gives the defaults.
        """
        flavors = {f.name: f for f in base}
        for name, value in (section or {}).items():
            flavors[name] = parse_flavor(name, value)
        return cls(flavors.values())

    def get(self, flavor_id):
        """The flavor with this id (= name), or None."""
        return self._by_name.get(flavor_id)

    def list(self):
        """All flavors, smallest first (RAM, then vCPUs, disk and name)."""
        return sorted(self._by_name.values(),
                      key=lambda f: (f.ram, f.vcpus, f.disk, f.name))

    def __len__(self):
        return len(self._by_name)

    def __contains__(self, flavor_id):
        return flavor_id in self._by_name
