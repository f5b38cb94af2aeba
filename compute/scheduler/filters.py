"""Host filters: which hosts could run a request at all.

A filter answers one yes/no question about one host, with a short reason
when the answer is no. `select_host` runs the enabled filters in order and
keeps, per filter, the hosts it removed; when no host is left, each
filter's `summarize` turns its removals into one phrase of the
"No valid host was found" message a user sees on the failed server. The
phrases say what was needed and what was on offer, but not host names:
the message goes to tenants, who have no business knowing the hosts.
"""
import collections
import math

# Hosts on which an image asking for a hypervisor type can run. KVM is QEMU
# with hardware acceleration: a guest built for plain QEMU (TCG) runs on a
# KVM host too, but one that needs KVM (its speed, or CPU features only
# the host CPU has) cannot fall back to emulation. Other types match only
# themselves.
_HYPERVISOR_HOSTS = {
    'qemu': frozenset({'qemu', 'kvm'}),
    'kvm': frozenset({'kvm'}),
}

# How many distinct reasons one filter lists before saying "and N more".
_MAX_REASONS = 3


def _plural(count, word):
    """'1 host', '2 hosts'."""
    return '%d %s%s' % (count, word, '' if count == 1 else 's')


def _counted(reason, count):
    """A reason, with the number of hosts it applies to when more than one."""
    return reason if count == 1 else '%s (%d hosts)' % (reason, count)


class HostFilter:
    """Base class: subclasses set `name` and implement `passes`."""

    name = 'HostFilter'

    def passes(self, host, request):
        """Return (True, None) or (False, 'short reason for this host')."""
        raise NotImplementedError

    def summarize(self, failures, request):
        """One phrase for every host this filter removed.

        `failures` is a non-empty list of (host, reason). The default lists
        distinct reasons in the order met, each with its host count.
        """
        counts = collections.Counter(reason for _, reason in failures)
        order = list(dict.fromkeys(reason for _, reason in failures))
        parts = [_counted(r, counts[r]) for r in order[:_MAX_REASONS]]
        if len(order) > _MAX_REASONS:
            parts.append('and %d other reasons'
                         % (len(order) - _MAX_REASONS))
        return '; '.join(parts)

    def __repr__(self):
        return '<%s>' % self.name


class ComputeFilter(HostFilter):
    """Only hosts that are enabled and whose agent is alive.

    Alive means a heartbeat strictly newer than now - heartbeat_timeout. A
    heartbeat from the future (a host clock ahead of ours) counts as alive:
    refusing it would take a working host out over clock skew.
    """

    name = 'ComputeFilter'

    def passes(self, host, request):
        if not host.enabled:
            return False, 'disabled'
        if host.last_heartbeat <= 0:
            return False, 'never sent a heartbeat'
        if host.last_heartbeat > request.now - request.heartbeat_timeout:
            return True, None
        return False, 'no heartbeat for %d s' % _age(host, request)

    def summarize(self, failures, request):
        """Count disabled and silent hosts; quote the freshest silence.

        The freshest (smallest) age is the honest bound: every silent host
        has been quiet at least that long.
        """
        disabled = [h for h, r in failures if r == 'disabled']
        never = [h for h, r in failures if r == 'never sent a heartbeat']
        stale = [h for h, r in failures if r.startswith('no heartbeat')]
        parts = []
        if disabled:
            parts.append(_counted('disabled', len(disabled)))
        if stale:
            age = min(_age(h, request) for h in stale)
            if len(stale) == 1:
                parts.append('no heartbeat for %d s' % age)
            else:
                parts.append(_counted('no heartbeat for %d s or more' % age,
                                      len(stale)))
        if never:
            parts.append(_counted('never sent a heartbeat', len(never)))
        return '; '.join(parts)


def _age(host, request):
    """Whole seconds since the host's last heartbeat, rounded up.

    Rounding up keeps the message consistent with the rule: a host 60.2 s
    silent under a 60 s timeout reads '61 s', not '60 s'.
    """
    return math.ceil(request.now - host.last_heartbeat)


class _ResourceFilter(HostFilter):
    """Shared shape of the RAM, vCPU and disk filters.

    Subclasses name the request's need, the host's free amount and the
    words for the unit; the summary quotes the largest free amount among
    removed hosts, so a user sees how far the biggest host falls short.
    """

    unit = ''

    def needed(self, request):
        raise NotImplementedError

    def free(self, host):
        raise NotImplementedError

    def passes(self, host, request):
        need, free = self.needed(request), self.free(host)
        if free >= need:
            return True, None
        return False, 'needs %s, %s free' % (self._amount(need),
                                             self._amount(max(free, 0)))

    def summarize(self, failures, request):
        best = max(max(self.free(h), 0) for h, _ in failures)
        return 'needs %s, at most %s free' % (
            self._amount(self.needed(request)), self._amount(best))

    def _amount(self, value):
        return '%d %s' % (value, self.unit)


class RamFilter(_ResourceFilter):
    """Only hosts with at least the flavor's RAM free (after ratio/reserve)."""

    name = 'RamFilter'
    unit = 'MB'

    def needed(self, request):
        return request.flavor.ram_mb

    def free(self, host):
        return host.free_ram_mb


class CoreFilter(_ResourceFilter):
    """Only hosts with at least the flavor's vCPUs free (after ratio)."""

    name = 'CoreFilter'

    def needed(self, request):
        return request.flavor.vcpus

    def free(self, host):
        return host.free_vcpus

    def _amount(self, value):
        return _plural(value, 'vCPU')


class DiskFilter(_ResourceFilter):
    """Only hosts with room for the root disk: max(flavor, image min_disk)."""

    name = 'DiskFilter'
    unit = 'GB'

    def needed(self, request):
        return request.disk_gb

    def free(self, host):
        return host.free_disk_gb


class ImagePropertiesFilter(HostFilter):
    """Only hosts of the architecture and hypervisor type the image names.

    An image that names neither runs anywhere. Architectures are compared
    in canonical spelling (amd64 = x86_64). Hypervisor types: an image for
    'qemu' runs on 'qemu' and 'kvm' hosts, an image for 'kvm' only on
    'kvm' hosts (see _HYPERVISOR_HOSTS), any other type only on its own.
    """

    name = 'ImagePropertiesFilter'

    def passes(self, host, request):
        arch = request.architecture
        if arch and arch != host.architecture:
            return False, 'image needs architecture %s, host is %s' % (
                arch, host.architecture or 'unknown')
        wanted = request.hypervisor_type
        if wanted and host.hypervisor_type not in _HYPERVISOR_HOSTS.get(
                wanted, frozenset({wanted})):
            return False, 'image needs hypervisor %s, host runs %s' % (
                wanted, host.hypervisor_type or 'unknown')
        return True, None


ALL_FILTERS = (ComputeFilter, ImagePropertiesFilter, RamFilter, CoreFilter,
               DiskFilter)

FILTERS_BY_NAME = {cls.name: cls for cls in ALL_FILTERS}

# Cheapest and most decisive first: a dead host is out whatever its size.
DEFAULT_FILTERS = tuple(cls() for cls in ALL_FILTERS)


def filters_from_names(names):
    """Instances of the named filters, in the given order.

    Unknown names raise ValueError naming them and the known ones, so a
    typo in the config stops the service at start instead of silently
    dropping a check.
    """
    unknown = [n for n in names if n not in FILTERS_BY_NAME]
    if unknown:
        raise ValueError('unknown scheduler filter%s %s; known filters: %s'
                         % ('' if len(unknown) == 1 else 's',
                            ', '.join(unknown),
                            ', '.join(FILTERS_BY_NAME)))
    return tuple(FILTERS_BY_NAME[n]() for n in names)
