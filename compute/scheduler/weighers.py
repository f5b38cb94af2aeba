"""Host weighers: among the hosts that can run a request, which is best.

Each weigher gives every candidate host a raw number (free RAM in MB, free
vCPUs, ...). Raw numbers of different weighers are not comparable, so each
weigher's numbers are first rescaled across the candidates to 0..1 (the
emptiest host 1, the fullest 0; all 0 when the hosts are equal), then
multiplied by that weigher's multiplier, and the products are summed. A
positive multiplier spreads guests onto the emptiest hosts, a negative one
packs them onto the fullest, 0 turns the weigher off; the size of the
multiplier says how much it counts against the others.
"""
import math


class Weigher:
    """Base class: subclasses set name, option, default and `raw`."""

    name = 'Weigher'
    # The config key and `multipliers` key for this weigher's multiplier.
    option = ''
    default_multiplier = 0.0

    def raw(self, host, request):
        """This host's unscaled weight for the request (bigger = emptier)."""
        raise NotImplementedError

    def __repr__(self):
        return '<%s>' % self.name


class RamWeigher(Weigher):
    """Free RAM left after placing the flavor; spreads by default.

    Spreading is the default because RAM is what runs out first and a
    spread cloud leaves room for a large flavor on every host.
    """

    name = 'RamWeigher'
    option = 'ram_weight_multiplier'
    default_multiplier = 1.0

    def raw(self, host, request):
        return host.free_ram_mb - request.flavor.ram_mb


class CpuWeigher(Weigher):
    """Free vCPUs left after placing the flavor; off unless configured."""

    name = 'CpuWeigher'
    option = 'cpu_weight_multiplier'
    default_multiplier = 0.0

    def raw(self, host, request):
        return host.free_vcpus - request.flavor.vcpus


class DiskWeigher(Weigher):
    """Free disk left after placing the root disk; off unless configured."""

    name = 'DiskWeigher'
    option = 'disk_weight_multiplier'
    default_multiplier = 0.0

    def raw(self, host, request):
        return host.free_disk_gb - request.disk_gb


ALL_WEIGHERS = (RamWeigher, CpuWeigher, DiskWeigher)

DEFAULT_WEIGHERS = tuple(cls() for cls in ALL_WEIGHERS)

MULTIPLIER_OPTIONS = {cls.option: cls for cls in ALL_WEIGHERS}


def normalize(values):
    """Rescale numbers to 0..1: the smallest 0, the largest 1.

    When all are equal (or there is one host) every value is 0: the weigher
    has no opinion, so it must not add a constant that would outweigh
    nothing but still look like a preference.
    """
    values = list(values)
    if not values:
        return []
    low, high = min(values), max(values)
    if high == low:
        return [0.0] * len(values)
    span = float(high - low)
    return [(v - low) / span for v in values]


def resolve_multipliers(weighers, multipliers=None):
    """{weigher option: multiplier} for `weighers`, defaults filled in.

    A key that names no known weigher option is a typo and raises
    ValueError; a known option whose weigher is not in use is ignored, so
    one options dict can serve different weigher lists.
    """
    multipliers = dict(multipliers or {})
    known = set(MULTIPLIER_OPTIONS) | {w.option for w in weighers}
    unknown = sorted(k for k in multipliers if k not in known)
    if unknown:
        raise ValueError('unknown weight multiplier %s; known: %s'
                         % (', '.join(unknown), ', '.join(sorted(known))))
    return {w.option: _factor(w.option,
                              multipliers.get(w.option, w.default_multiplier))
            for w in weighers}


def _factor(option, value):
    """A multiplier as a finite float; NaN or infinity would rank nothing."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError('%s must be a number, got %r' % (option, value))
    if isinstance(value, bool) or not math.isfinite(number):
        raise ValueError('%s must be a finite number, got %r'
                         % (option, value))
    return number


def weigh(hosts, request, weighers=DEFAULT_WEIGHERS, multipliers=None):
    """The summed, scaled weight of each host, in the order given."""
    hosts = list(hosts)
    factors = resolve_multipliers(weighers, multipliers)
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        factor = factors[weigher.option]
        if not factor:
            continue
        scaled = normalize(weigher.raw(h, request) for h in hosts)
        totals = [t + factor * s for t, s in zip(totals, scaled)]
    # Rounding makes hosts that differ only by float noise tie, so the tie
    # break by name, not the order of additions, decides between them.
    return [round(t, 9) for t in totals]
