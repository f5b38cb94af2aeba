"""Ring lookups: which devices hold an account, container or object.

Every server keeps one Ring per ring file and asks it for the partition of
a path, the primary devices of a partition, and handoff devices to use when
a primary is down. The ring notices when its file is replaced (a new ring
rolled out by the operator) and reloads it, so no server needs a restart.
"""
import hashlib
import math
import random
import os
import struct
import time

from rings.ringdata import RingData, RingFileError


# How many weighted handoff orders a ring keeps (see Ring._handoff_order).
HANDOFF_ORDERS = 256


class RingError(Exception):
    """The ring cannot be used (bad file, bad arguments, no secret)."""


def hash_path(prefix, suffix, account, container=None, obj=None):
    """md5 digest of prefix + '/account[/container[/object]]' + suffix.

    The secret prefix/suffix stop clients from predicting partitions.
    """
    if obj is not None and container is None:
        raise RingError('an object needs a container')
    parts = [account] if container is None else (
        [account, container] if obj is None else [account, container, obj])
    path = b''.join(b'/' + (p if isinstance(p, bytes) else p.encode('utf-8'))
                    for p in parts)
    return hashlib.md5(prefix + path + suffix, usedforsecurity=False).digest()


class Ring:
    """Read-only view of a ring file.

    ``hash_prefix``/``hash_suffix`` are the cluster secret (bytes); when
    neither is given they are read from the cluster config
    (objstore.common.config.hash_secret). ``reload_interval`` is how often,
    in seconds, the file's identity is checked for a change.
    """

    def __init__(self, path, hash_prefix=None, hash_suffix=None,
                 reload_interval=15.0):
        if hash_prefix is None and hash_suffix is None:
            from objstore.common.config import ConfigError, hash_secret
            try:
                hash_prefix, hash_suffix = hash_secret()
            except ConfigError as e:
                raise RingError(str(e))
        self.path = path
        self.hash_prefix = _to_bytes(hash_prefix or b'')
        self.hash_suffix = _to_bytes(hash_suffix or b'')
        self.reload_interval = reload_interval
        self._next_check = 0.0
        self._identity = None
        self._load()

    # -- loading -------------------------------------------------------
    def _file_identity(self):
        st = os.stat(self.path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self):
        try:
            identity = self._file_identity()
            data = RingData.load(self.path)
        except FileNotFoundError:
            raise RingError('%s: no such ring file' % self.path)
        except (OSError, RingFileError) as e:
            raise RingError(str(e))
        self._identity = identity
        self._data = data
        self._rows = data.replica2part2dev
        self._part_shift = 32 - data.part_power
        self._devs = data.devs
        self._replicas = data.replicas
        self._prepare_handoffs()
        self._next_check = time.monotonic() + self.reload_interval

    def _prepare_handoffs(self):
        """Per-ring facts that make handoff lookups cheap."""
        devs = self._devs
        # tier keys per device id: (region, (r, zone), (r, z, ip)), or
        # None for a device that is never a handoff (gone or zero weight)
        self._tiers = [None if d is None else
                       (d['region'], (d['region'], d['zone']),
                        (d['region'], d['zone'], d['ip'])) for d in devs]
        self._handoff_ids = [d['id'] for d in devs
                             if d is not None and d['weight'] > 0]
        live = self._handoff_ids
        self._live_tiers = [{self._tiers[i][lvl] for i in live}
                            for lvl in range(3)]
        self._orders = {}

    def _handoff_order(self, part):
        """A weighted random permutation of the handoff-able device ids.

        One of HANDOFF_ORDERS fixed permutations, picked by the partition:
        every process computes the same ones (seeded), each is built once
        and cached. Efraimidis-Spirakis keys u ** (1 / weight) make a
        device's chance of coming early follow its weight.
        """
        which = (part * 2654435761 >> 8) % HANDOFF_ORDERS
        order = self._orders.get(which)
        if order is None:
            rng = random.Random(which)
            devs = self._devs
            keys = {i: math.log(rng.random() or 1e-300) / devs[i]['weight']
                    for i in self._handoff_ids}
            order = sorted(self._handoff_ids, key=keys.__getitem__,
                           reverse=True)
            self._orders[which] = order
        return order

    def _maybe_reload(self):
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.reload_interval
        try:
            identity = self._file_identity()
        except OSError:
            return  # file briefly missing while being replaced: keep ours
        if identity != self._identity:
            try:
                self._load()
            except RingError:
                # a broken new file must not take a running server down
                self._next_check = now + self.reload_interval

    def has_changed(self):
        """True when the file on disk is not the one loaded."""
        try:
            return self._file_identity() != self._identity
        except OSError:
            return True

    # -- facts ----------------------------------------------------------
    @property
    def devs(self):
        self._maybe_reload()
        return self._devs

    @property
    def replica_count(self):
        self._maybe_reload()
        return self._replicas

    @property
    def partition_count(self):
        self._maybe_reload()
        return len(self._rows[0]) if self._rows else 0

    @property
    def part_power(self):
        return self._data.part_power

    @property
    def version(self):
        self._maybe_reload()
        return self._data.version

    # -- lookups --------------------------------------------------------
    def get_part(self, account, container=None, obj=None):
        """Partition of a path: top part_power bits of its salted md5."""
        self._maybe_reload()
        digest = hash_path(self.hash_prefix, self.hash_suffix,
                           account, container, obj)
        return struct.unpack_from('>I', digest)[0] >> self._part_shift

    def get_part_nodes(self, part):
        """Primary devices of a partition, each with its replica 'index'."""
        self._maybe_reload()
        if not 0 <= part < len(self._rows[0]):
            raise RingError('partition %r out of range' % (part,))
        devs = self._devs
        return [dict(devs[row[part]], index=i)
                for i, row in enumerate(self._rows)]

    def get_nodes(self, account, container=None, obj=None):
        """(partition, primary devices) for a path."""
        part = self.get_part(account, container, obj)
        return part, self.get_part_nodes(part)

    def get_more_nodes(self, part):
        """Yield handoff devices for a partition, best first.

        First devices in regions the primaries do not use, then new zones,
        then new hosts, then any other device. Within each pass devices
        come in a weighted pseudo-random order fixed for the partition, so
        every proxy agrees on the handoffs and a device's share of handoff
        traffic follows its weight. Zero-weight (draining) devices are
        never handoffs. A pass ends as soon as its tier level is used up.
        """
        self._maybe_reload()
        rows = self._rows
        if not 0 <= part < len(rows[0]):
            raise RingError('partition %r out of range' % (part,))
        tiers = self._tiers
        seen = {row[part] for row in rows}
        # tiers already holding a replica, counting only tiers that hold
        # some handoff-able device (a pass ends when all of those are used)
        live_tiers = self._live_tiers
        used = [set(), set(), set()]
        for d in seen:
            for level in range(3):
                if tiers[d][level] in live_tiers[level]:
                    used[level].add(tiers[d][level])
        order = self._handoff_order(part)
        counts = [len(t) for t in live_tiers]
        handoff_index = 0
        for level in range(4):
            if level < 3 and len(used[level]) >= counts[level]:
                continue
            for d in order:
                if d in seen:
                    continue
                t = tiers[d]
                if level < 3 and t[level] in used[level]:
                    continue
                seen.add(d)
                for lvl in range(3):
                    used[lvl].add(t[lvl])
                yield dict(self._devs[d], handoff_index=handoff_index)
                handoff_index += 1
                if level < 3 and len(used[level]) >= counts[level]:
                    break


def _to_bytes(value):
    return value if isinstance(value, bytes) else value.encode('utf-8')
