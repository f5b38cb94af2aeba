"""Ring lookups: which devices hold an account, container or object.

Every server keeps one Ring per ring file and asks it for the partition of
a path, the primary devices of a partition, and handoff devices to use when
a primary is down. The ring notices when its file is replaced (a new ring
rolled out by the operator) and reloads it, so no server needs a restart.
"""
import hashlib
import math
import os
import random
import struct
import time

from rings.ringdata import RingData, RingFileError


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
        live = [d for d in data.devs if d is not None and d['weight'] > 0]
        self._handoff_devs = sorted(live, key=lambda d: d['id'])
        self._handoff_exp = [1.0 / d['weight'] for d in self._handoff_devs]
        self._next_check = time.monotonic() + self.reload_interval

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
        then new hosts, then any other device. Within each pass devices come
        in a pseudo-random order that is fixed for the partition (so every
        proxy agrees on the handoffs) and weighted, so a device's share of
        handoff traffic follows its weight. Zero-weight (draining) devices
        are never handoffs.
        """
        self._maybe_reload()
        primaries = self.get_part_nodes(part)
        seen = {d['id'] for d in primaries}
        regions = {d['region'] for d in primaries}
        zones = {(d['region'], d['zone']) for d in primaries}
        hosts = {(d['region'], d['zone'], d['ip']) for d in primaries}
        order = self._handoff_order(part)

        def tier_keys(dev):
            return (dev['region'], (dev['region'], dev['zone']),
                    (dev['region'], dev['zone'], dev['ip']))

        for level in range(4):
            for dev in order:
                if dev['id'] in seen:
                    continue
                region, zone, host = tier_keys(dev)
                if ((level == 0 and region in regions) or
                        (level == 1 and zone in zones) or
                        (level == 2 and host in hosts)):
                    continue
                seen.add(dev['id'])
                regions.add(region)
                zones.add(zone)
                hosts.add(host)
                yield dict(dev, handoff_index=len(seen) - len(primaries) - 1)

    def _handoff_order(self, part):
        # Weighted random permutation (Efraimidis-Spirakis keys u**(1/w)),
        # seeded by the partition so it is the same in every process.
        rng = random.Random(part)
        keys = [math.log(rng.random() or 1e-300) * e
                for e in self._handoff_exp]
        ranked = sorted(range(len(keys)), key=keys.__getitem__, reverse=True)
        return [self._handoff_devs[i] for i in ranked]


def _to_bytes(value):
    return value if isinstance(value, bytes) else value.encode('utf-8')
