"""Freeze a cluster that is not being measured, so the one that is has
the machine to itself.

The comparison keeps both clusters up for the whole run (their data and
connections carry over between rounds) and measures them in turn. An idle
cluster is not free, though: each of the reference's server parents polls
waitpid every 10 ms (eventlet's green wait), 13 processes here, about 1,300
wake-ups and 6% of the machine per second, and on these 2 vCPUs that took
15-20% off the other cluster's small PUT and DELETE rates (measured A/B with
the reference idle and with it stopped). The issue's own reference figures
were measured on an idle machine, so each side is measured with the other
stopped: SIGSTOP to every process of the idle cluster (its servers, their
workers and, for the reference, memcached), SIGCONT once the round is over.
A stopped process keeps its sockets and state; the kernel queues what
arrives for it. Nothing is charged for the pause: a stopped process uses no
CPU, and the CPU figures are read for the measured cluster only.
"""
import contextlib
import os
import signal

import proc_cpu


def _signal_all(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:      # exited meanwhile: nothing to do
            pass


def stop(roots):
    """SIGSTOP ``roots`` and all their descendants; the pids stopped."""
    pids = sorted(proc_cpu.tree(roots))
    _signal_all(pids, signal.SIGSTOP)
    return pids


def cont(pids):
    """SIGCONT ``pids`` (what stop() returned)."""
    _signal_all(pids, signal.SIGCONT)


@contextlib.contextmanager
def paused(roots):
    """Keep the process trees of ``roots`` stopped inside the block; they
    are continued however it ends (an error, Ctrl-C), before anything
    after it can try to stop them with SIGTERM, which a stopped process
    would only act on once continued."""
    pids = stop(roots)
    try:
        yield pids
    finally:
        cont(pids)
