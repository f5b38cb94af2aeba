"""Choosing a host: filter, weigh, pick; and the scheduler's configuration.

`select_host` is a pure function of its inputs: the same hosts, request
and options always give the same answer (ties go to the host whose name
sorts first), so a placement can be explained after the fact and tested
without a cloud. The caller (the API server) reads the hosts, calls it,
records the claim with `claim`, and turns `NoValidHost` into the server's
ERROR state with the exception's text as the fault message.
"""
import dataclasses

from compute.scheduler.filters import DEFAULT_FILTERS, filters_from_names
from compute.scheduler.hosts import Request, finite_float
from compute.scheduler.weighers import (
    DEFAULT_WEIGHERS, MULTIPLIER_OPTIONS, resolve_multipliers, weigh)

NO_VALID_HOST = 'No valid host was found.'


class NoValidHost(Exception):
    """No host passed the filters; `reason` says which filter removed what.

    `removed` is a tuple of (filter name, ((host, reason), ...)) for the
    filters that removed any host, in the order they ran: the per-host
    detail for logs, while `reason` (also str(self)) is safe to show users.
    """

    def __init__(self, reason, removed=()):
        super().__init__(reason)
        self.reason = reason
        self.removed = tuple(removed)


def filter_hosts(hosts, request, filters=DEFAULT_FILTERS):
    """Run `filters` in order; return (passing hosts, removals).

    A host is removed by the first filter it fails and not shown to later
    ones, so each removal is counted once, against the filter that decided.
    Removals are (filter, [(host, reason), ...]) for filters that removed
    at least one host.
    """
    remaining = list(hosts)
    removed = []
    for host_filter in filters:
        kept, failed = [], []
        for host in remaining:
            ok, reason = host_filter.passes(host, request)
            if ok:
                kept.append(host)
            else:
                failed.append((host, reason))
        if failed:
            removed.append((host_filter, failed))
        remaining = kept
    return remaining, removed


def explain(host_count, removed, request):
    """The user-facing 'No valid host was found. ...' sentence."""
    if not host_count:
        return '%s There are not enough hosts available: no compute hosts ' \
               'are registered' % NO_VALID_HOST
    parts = ['%s removed %d (%s)' % (f.name, len(failed),
                                     f.summarize(failed, request))
             for f, failed in removed]
    return '%s There are not enough hosts available: %d host%s; %s' % (
        NO_VALID_HOST, host_count, '' if host_count == 1 else 's',
        ', '.join(parts))


def _check_names(hosts):
    """Refuse duplicate host names: the tie break by name needs them unique."""
    seen = set()
    for host in hosts:
        if host.name in seen:
            raise ValueError('host %s is listed twice' % host.name)
        seen.add(host.name)


def rank_hosts(hosts, request, filters=DEFAULT_FILTERS,
               weighers=DEFAULT_WEIGHERS, multipliers=None):
    """Every host that can take `request`, best first.

    The API server can try the next host when the first one's agent fails
    to spawn. Raises ValueError for a request no host could satisfy (see
    Request.check) and NoValidHost when the filters leave nothing.
    """
    hosts = list(hosts)
    _check_names(hosts)
    request.check()
    # Bad multipliers fail every call, not only those that reach weighing.
    resolve_multipliers(weighers, multipliers)
    candidates, removed = filter_hosts(hosts, request, filters)
    if not candidates:
        raise NoValidHost(explain(len(hosts), removed, request),
                          [(f.name, tuple(failed)) for f, failed in removed])
    weights = weigh(candidates, request, weighers, multipliers)
    order = sorted(zip(weights, candidates),
                   key=lambda pair: (-pair[0], pair[1].name))
    return [host for _, host in order]


def select_host(hosts, request, filters=DEFAULT_FILTERS,
                weighers=DEFAULT_WEIGHERS, multipliers=None):
    """The best host for `request`, or NoValidHost saying why there is none.

    `multipliers` maps weigher options ('ram_weight_multiplier', ...) to
    numbers and overrides the weighers' defaults; see weighers.py.
    """
    return rank_hosts(hosts, request, filters, weighers, multipliers)[0]


def claim(host, flavor, disk_gb=None):
    """A copy of `host` with the flavor's usage added (pure; no checks).

    Pass `disk_gb=request.disk_gb` to reserve the disk the DiskFilter
    checked when the image's min_disk is larger than the flavor's disk.
    Claiming onto a host that is already full is allowed: the API server
    records what it placed, and filters will keep further guests away.
    """
    disk = flavor.disk_gb if disk_gb is None else disk_gb
    return dataclasses.replace(
        host,
        vcpus_used=host.vcpus_used + flavor.vcpus,
        ram_mb_used=host.ram_mb_used + flavor.ram_mb,
        disk_gb_used=host.disk_gb_used + disk)


@dataclasses.dataclass(frozen=True)
class SchedulerOptions:
    """Parsed scheduler configuration, ready to pass to select_host."""

    filters: tuple = DEFAULT_FILTERS
    weighers: tuple = DEFAULT_WEIGHERS
    multipliers: dict = dataclasses.field(default_factory=dict)
    heartbeat_timeout: float = 60.0

    def request(self, flavor, now, image_properties=None):
        """A Request using this configuration's heartbeat timeout."""
        return Request(flavor=flavor, now=now,
                       image_properties=image_properties or {},
                       heartbeat_timeout=self.heartbeat_timeout)

    def select(self, hosts, request):
        """select_host with this configuration's filters and weighers."""
        return select_host(hosts, request, self.filters, self.weighers,
                           self.multipliers)


def _number(conf, key, default):
    """conf[key] as a finite float, or `default` when absent or blank."""
    value = conf.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return finite_float(value, key, 'a number', 'a finite number')


def _filter_names(value):
    """Names from 'A, B,C' or a list; blanks dropped, repeats dropped."""
    if isinstance(value, str):
        value = value.split(',')
    names = [str(n).strip() for n in value]
    return list(dict.fromkeys(n for n in names if n))


def scheduler_options(conf):
    """Parse a [scheduler] config section (values as strings or numbers).

    Keys: ram_weight_multiplier, cpu_weight_multiplier,
    disk_weight_multiplier (numbers, any sign), heartbeat_timeout (seconds,
    above 0) and enabled_filters (comma list of filter names, in the order
    to run them). Absent keys keep the defaults; other keys are ignored so
    the section may hold settings for other parts. A bad value raises
    ValueError naming the key, so the service refuses to start rather than
    schedule with a setting nobody meant.
    """
    conf = dict(conf or {})
    multipliers = {option: _number(conf, option, cls.default_multiplier)
                   for option, cls in MULTIPLIER_OPTIONS.items()}
    timeout = _number(conf, 'heartbeat_timeout', 60.0)
    if timeout <= 0:
        raise ValueError('heartbeat_timeout must be above 0 seconds, got %r'
                         % (conf.get('heartbeat_timeout'),))
    filters = DEFAULT_FILTERS
    if conf.get('enabled_filters') is not None:
        names = _filter_names(conf['enabled_filters'])
        if not names:
            raise ValueError('enabled_filters names no filter; leave it out '
                             'to use the defaults')
        filters = filters_from_names(names)
    return SchedulerOptions(filters=filters, weighers=DEFAULT_WEIGHERS,
                            multipliers=multipliers,
                            heartbeat_timeout=timeout)

