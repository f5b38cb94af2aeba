"""CPU seconds spent by a set of server processes and all their workers.

The comparison charges each cluster with the CPU of every one of its
server processes: the parents named by pid and every descendant (the
forked workers), found afresh from /proc at each reading, so a worker
that a server re-forks mid-run is counted too. Each process contributes
utime + stime + cutime + cstime from /proc/<pid>/stat: the c-fields hold
the time of children it has already reaped, so a worker that exits
between two readings moves its seconds into its parent's figure instead
of losing them. Readings are in clock ticks (10 ms on most kernels);
differences over a benchmark phase of many operations are what count.
"""
import os

TICK = os.sysconf('SC_CLK_TCK')


def _stat(pid):
    """(ppid, cpu ticks incl. reaped children) of pid, or None if gone."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            data = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split
    # after its closing parenthesis; fields then start at "state" (3)
    fields = data.rsplit(b')', 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return int(fields[1]), utime + stime + cutime + cstime


def _all_stats():
    out = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                out[int(entry)] = st
    return out


def tree(roots, stats=None):
    """The pids of ``roots`` and of all their live descendants."""
    stats = _all_stats() if stats is None else stats
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo = set(), [r for r in roots if r in stats]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return seen


def cpu_seconds(roots):
    """Total CPU seconds of ``roots`` and their descendants, now."""
    stats = _all_stats()
    return sum(stats[pid][1] for pid in tree(roots, stats)) / TICK


def count(roots):
    """How many processes the trees of ``roots`` hold (parents + workers)."""
    return len(tree(roots))
