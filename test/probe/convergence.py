"""What "converged" means, judged from outside, and how long it took.

A scenario keeps a Ledger of what the cluster *acknowledged* (a 2xx to
the client): objects written with their ETag, objects deleted. The cluster
has converged when every primary of every written object answers a direct
backend GET with exactly those bytes, every primary of a deleted object
answers 404, every container replica lists exactly the live objects, and
(where a scenario asks) no device other than a partition's primaries
still holds files of it. Each check returns a list of problems, readable
in a failure message; an empty list is success.
"""
import concurrent.futures
import time

from proxyclient import etag_of

CHECK_THREADS = 4


class Ledger:
    """Acknowledged writes and deletes of one container."""

    def __init__(self, account, container):
        self.account, self.container = account, container
        self.written = {}       # name -> etag
        self.deleted = set()

    def wrote(self, name, etag):
        self.written[name] = etag
        self.deleted.discard(name)

    def delete(self, name):
        self.written.pop(name, None)
        self.deleted.add(name)

    def __len__(self):
        return len(self.written) + len(self.deleted)

    def names(self):
        return sorted(self.written) + sorted(self.deleted)


def _per_name(func, names):
    with concurrent.futures.ThreadPoolExecutor(CHECK_THREADS) as pool:
        return [p for found in pool.map(func, names) for p in found]


def check_primaries(cluster, ledger):
    """Problems with the copies on the primaries (direct backend GETs)."""
    def check(name):
        part, nodes = cluster.object_nodes(ledger.account, ledger.container,
                                           name)
        expected = ledger.written.get(name)
        problems = []
        for dev in nodes:
            status, headers, body = cluster.direct_object(
                dev, part, ledger.account, ledger.container, name)
            where = '%s on %s (part %d)' % (name, dev['device'], part)
            if expected is None:
                if status != 404:
                    problems.append('deleted %s answers %s' % (where,
                                                               status))
            elif status != 200:
                problems.append('%s answers %s' % (where, status))
            elif headers.get('etag') != expected or \
                    etag_of(body) != expected:
                problems.append('%s has ETag %s / body md5 %s, want %s' % (
                    where, headers.get('etag'), etag_of(body), expected))
        return problems
    return _per_name(check, ledger.names())


def check_proxy(client, ledger):
    """Problems a client sees reading every name through the proxy."""
    def check(name):
        reply = client.get_object(ledger.container, name)
        expected = ledger.written.get(name)
        if expected is None:
            return [] if reply.status == 404 else [
                'deleted %s: proxy GET answers %s' % (name, reply.status)]
        if reply.status != 200 or etag_of(reply.body) != expected:
            return ['%s: proxy GET %r (md5 %s, want %s)' % (
                name, reply, etag_of(reply.body), expected)]
        return []
    return _per_name(check, ledger.names())


def check_listings(cluster, ledger):
    """Problems with what each container replica lists (directly)."""
    part, nodes = cluster.ring('container').get_nodes(ledger.account,
                                                     ledger.container)
    problems = []
    for dev in nodes:
        listed = cluster.direct_listing(dev, part, ledger.account,
                                        ledger.container)
        where = 'container replica on %s' % dev['device']
        if listed is None:
            problems.append('%s cannot list' % where)
            continue
        for name, etag in sorted(ledger.written.items()):
            if name not in listed:
                problems.append('%s does not list %s' % (where, name))
            elif listed[name] != etag:
                problems.append('%s lists %s with %s, want %s'
                                % (where, name, listed[name], etag))
        for name in sorted(ledger.deleted):
            if name in listed:
                problems.append('%s still lists deleted %s' % (where, name))
    return problems


def partitions_of(cluster, ledger):
    ring = cluster.ring('object')
    return sorted({ring.get_part(ledger.account, ledger.container, name)
                   for name in ledger.names()})


def check_handoffs_empty(cluster, partitions):
    """Problems: devices that hold files of a partition but are not among
    its primaries (data left on handoffs)."""
    ring = cluster.ring('object')
    problems = []
    for part in partitions:
        primaries = {d['device'] for d in ring.get_part_nodes(part)}
        for device, dirs in sorted(cluster.hash_dirs(part).items()):
            if device not in primaries:
                problems.append('handoff %s still holds %d objects of part '
                                '%d' % (device, len(dirs), part))
    return problems


class Result:
    """How one convergence went: rounds, seconds, the last problems."""

    def __init__(self):
        self.rounds = 0
        self.seconds = 0.0
        self.problems = []

    def summary(self, limit=15):
        lines = self.problems[:limit]
        if len(self.problems) > limit:
            lines.append('... and %d more' % (len(self.problems) - limit))
        return '\n'.join(lines)


def converge(passes, check, max_rounds=4):
    """Run ``passes()`` (daemon passes) then ``check()`` until the check
    finds nothing or ``max_rounds`` rounds are spent.

    Time counts from the call (the fault is over) to the passing check.
    """
    result = Result()
    started = time.monotonic()
    while result.rounds < max_rounds:
        result.rounds += 1
        passes()
        result.problems = check()
        if not result.problems:
            break
    result.seconds = round(time.monotonic() - started, 2)
    return result
