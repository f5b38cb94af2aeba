"""Reference side of ring_bench.py: OpenStack Swift's ring, in its own venv.

Run by ring_bench.py as ``test/bench/.ref-venv/bin/python ref_ring_driver.py
SPEC.json``; prints one JSON line of metrics on stdout. It uses swift's
builder and Ring classes (plus the builder's replica table, which swift
keeps in ``_replica2part2dev``) and the shared measuring code of
ring_bench.py, which imports none of objstore's modules in this process.
The venv has no objstore installed, so an accidental import fails loudly.
"""
import os
import sys

from swift.common import utils as swift_utils
from swift.common.ring import Ring, RingBuilder

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ring_bench  # noqa: E402  (shared scenario and metrics, no objstore)


class SwiftSide:
    name = 'swift'

    def __init__(self):
        # swift's Ring reads the cluster hash secret from swift.conf unless
        # these module globals are already set; set them to the same secret
        # objstore's Ring gets, so both hash paths identically.
        swift_utils.HASH_PATH_PREFIX = ring_bench.HASH_PREFIX
        swift_utils.HASH_PATH_SUFFIX = ring_bench.HASH_SUFFIX

    def version(self):
        try:
            from importlib.metadata import version
            return version('swift')
        except Exception:
            import swift
            return getattr(swift, '__version__', 'unknown')

    def new_builder(self, part_power, replicas, min_part_hours):
        return RingBuilder(part_power, replicas, min_part_hours)

    def add_dev(self, b, dev):
        b.add_dev(dict(dev))

    def rebalance(self, b, seed):
        return b.rebalance(seed=seed)[0]

    def pretend_min_part_hours(self, b):
        b.pretend_min_part_hours_passed()

    def rows(self, b):
        return b._replica2part2dev

    def own_balance(self, b):
        return b.get_balance()

    def own_dispersion(self, b):
        return b.dispersion

    def write_ring(self, b, path):
        b.get_ring().save(path)

    def load_ring(self, path):
        return Ring(path, reload_time=15)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: ref_ring_driver.py SPEC.json')
    sys.exit(ring_bench.worker_main(SwiftSide(), sys.argv[1]))
