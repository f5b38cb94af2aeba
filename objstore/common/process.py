"""Telling a forked child from its parent without a system call.

Connection pools, SQLite connection pools and the thread pool belong to
one process: a child made by fork must not use its parent's. Asking
os.getpid() on every use cost a system call each time (a dozen per
proxied PUT). Instead a counter goes up in a child as it is forked
(os.register_at_fork), and a pool notes the value it was made under.
"""
import os

_forks = 0


def _forked():
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


def generation():
    """A number that changes in a forked child (and only there)."""
    return _forks
