"""RingBuilder: assigns every replica of every partition to a device.

The builder keeps devices, the current assignment and when each partition
last moved, in a builder file (gzip'd msgpack, never pickle). ``rebalance``
changes the assignment as little as it can so that

* no partition has two replicas on one device;
* every tier holds floor(target) to ceil(target) replicas of each
  partition (see targets.py: as dispersed as the tree and the overload
  allow);
* every device holds its quota of partition-replicas (weight share, bent
  by overload only where dispersion needs it);
* a partition that moved less than ``min_part_hours`` ago does not move,
  and at most one replica of a partition moves in one rebalance (unless
  min_part_hours is 0), except replicas on removed devices, which must go
  somewhere.

The ring file a server reads is written from it with ``get_ring``.
"""
import array
import gzip
import ipaddress
import itertools
import math
import random
import sys
import time
import zlib

import msgpack

from rings import targets as tg
from rings.atomic import write_atomically
from rings.ringdata import DEV_FIELDS, MAX_PART_POWER, RingData

NONE = -1
MOVED = 1 << 31     # _Rebalance.placed: the part moved a replica
JITTER = 4.0        # most parts of room a tie-breaking jitter adds
FORMAT_VERSION = 1
MAX_BALANCE = 999.99


class RingBuilderError(Exception):
    """An operation on the builder was refused; the message says why."""


class DuplicateDeviceError(RingBuilderError):
    pass


def _hours_to_seconds(hours):
    return int(hours) * 3600


def validate_dev(dev):
    """Check and normalise a device dict; raise RingBuilderError."""
    out = {}
    for key in ('region', 'zone'):
        try:
            out[key] = int(dev.get(key, 1 if key == 'region' else None))
        except (TypeError, ValueError):
            raise RingBuilderError('%s must be an integer, got %r'
                                   % (key, dev.get(key)))
        if out[key] < 0:
            raise RingBuilderError('%s must be >= 0' % key)
    ip = dev.get('ip')
    if not ip or not isinstance(ip, str) or any(c in ip for c in ' /'):
        raise RingBuilderError('device needs an IP address or host name, '
                               'got %r' % (ip,))
    out['ip'] = _normalise_ip(ip)
    for key in ('port', 'replication_port'):
        value = dev.get(key)
        if value is None and key == 'replication_port':
            value = out['port']
        try:
            out[key] = int(value)
        except (TypeError, ValueError):
            raise RingBuilderError('%s must be an integer, got %r'
                                   % (key, value))
        if not 0 < out[key] < 65536:
            raise RingBuilderError('%s %d out of range 1-65535'
                                   % (key, out[key]))
    rip = dev.get('replication_ip') or out['ip']
    out['replication_ip'] = _normalise_ip(rip)
    name = dev.get('device')
    if not name or not isinstance(name, str) or '/' in name:
        raise RingBuilderError('device needs a name without "/", got %r'
                               % (name,))
    out['device'] = name
    try:
        out['weight'] = float(dev.get('weight'))
    except (TypeError, ValueError):
        raise RingBuilderError('weight must be a number, got %r'
                               % (dev.get('weight'),))
    if not math.isfinite(out['weight']) or out['weight'] < 0:
        raise RingBuilderError('weight must be a number >= 0')
    out['meta'] = str(dev.get('meta') or '')
    if dev.get('id') is not None:
        try:
            out['id'] = int(dev['id'])
        except (TypeError, ValueError):
            raise RingBuilderError('id must be an integer')
        if out['id'] < 0:
            raise RingBuilderError('id must be >= 0')
    return out


def _normalise_ip(value):
    try:
        return str(ipaddress.ip_address(value.strip('[]')))
    except ValueError:
        return value  # a host name


class RingBuilder:
    """Builds rings. See the module docstring for the invariants."""

    def __init__(self, part_power, replicas, min_part_hours):
        try:
            part_power = int(part_power)
            min_part_hours = int(min_part_hours)
            replicas_f = float(replicas)
        except (TypeError, ValueError):
            raise RingBuilderError('part_power, replicas and min_part_hours '
                                   'must be numbers')
        if not 1 <= part_power <= MAX_PART_POWER:
            raise RingBuilderError('part_power must be 1-%d, got %d'
                                   % (MAX_PART_POWER, part_power))
        if part_power > 24:
            # 2**24 parts x replicas in memory is the practical limit here
            raise RingBuilderError('part_power above 24 needs more memory '
                                   'than a builder should use')
        if replicas_f != int(replicas_f) or not 1 <= replicas_f <= 16:
            raise RingBuilderError('replicas must be a whole number 1-16, '
                                   'got %s' % replicas)
        if not 0 <= min_part_hours <= 24 * 366:
            raise RingBuilderError('min_part_hours must be 0-8784')
        self.part_power = part_power
        self.replicas = int(replicas_f)
        self.min_part_hours = min_part_hours
        self.overload = 0.0
        self.version = 0
        self.devs = []              # index = id; None where no device
        self._remove_pending = set()
        self._rows = None           # replicas x array('i') of device ids
        self._moved_at = None       # array('d'): when each part last moved

    # -- properties -----------------------------------------------------
    @property
    def parts(self):
        return 1 << self.part_power

    def iter_devs(self):
        return (d for d in self.devs if d is not None)

    @property
    def ever_rebalanced(self):
        return self._rows is not None

    # -- device changes -----------------------------------------------------
    def add_dev(self, dev):
        """Add a device; returns its id. The ring changes at rebalance."""
        dev = validate_dev(dev)
        for other in self.iter_devs():
            if (other['ip'], other['port'], other['device']) == \
                    (dev['ip'], dev['port'], dev['device']):
                raise DuplicateDeviceError(
                    'device %s:%d/%s already exists as id %d'
                    % (dev['ip'], dev['port'], dev['device'], other['id']))
        if 'id' not in dev:
            dev['id'] = next((i for i, d in enumerate(self.devs)
                              if d is None), len(self.devs))
        elif dev['id'] < len(self.devs) and self.devs[dev['id']] is not None:
            raise DuplicateDeviceError('device id %d already in use'
                                       % dev['id'])
        if dev['id'] >= 0xFFFFFFFF:
            raise RingBuilderError('device id too large')
        while len(self.devs) <= dev['id']:
            self.devs.append(None)
        self.devs[dev['id']] = dev
        self.version += 1
        return dev['id']

    def _dev(self, dev_id):
        if not 0 <= dev_id < len(self.devs) or self.devs[dev_id] is None:
            raise RingBuilderError('no device with id %r' % (dev_id,))
        return self.devs[dev_id]

    def set_dev_weight(self, dev_id, weight):
        dev = self._dev(dev_id)
        if dev_id in self._remove_pending:
            raise RingBuilderError('device %d is being removed' % dev_id)
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise RingBuilderError('weight must be a number')
        if not math.isfinite(weight) or weight < 0:
            raise RingBuilderError('weight must be a number >= 0')
        dev['weight'] = weight
        self.version += 1

    def set_dev_info(self, dev_id, **fields):
        """Change ip/port/replication ip+port/device/meta of a device."""
        dev = self._dev(dev_id)
        allowed = {'ip', 'port', 'replication_ip', 'replication_port',
                   'device', 'meta'}
        bad = set(fields) - allowed
        if bad:
            raise RingBuilderError('cannot change %s' % ', '.join(sorted(bad)))
        new = validate_dev(dict(dev, **fields))
        for other in self.iter_devs():
            if other is not dev and (other['ip'], other['port'],
                                     other['device']) == \
                    (new['ip'], new['port'], new['device']):
                raise DuplicateDeviceError('device %s:%d/%s already exists'
                                           % (new['ip'], new['port'],
                                              new['device']))
        dev.update({k: new[k] for k in allowed})
        self.version += 1

    def remove_dev(self, dev_id):
        """Mark a device for removal: its partitions move at rebalance."""
        dev = self._dev(dev_id)
        dev['weight'] = 0.0
        self._remove_pending.add(dev_id)
        self.version += 1

    def set_overload(self, overload):
        """Overload as a fraction (0.1 = a device may take 10% extra)."""
        try:
            overload = float(overload)
        except (TypeError, ValueError):
            raise RingBuilderError('overload must be a number')
        if not math.isfinite(overload) or overload < 0:
            raise RingBuilderError('overload must be >= 0')
        self.overload = overload
        self.version += 1

    def set_min_part_hours(self, hours):
        hours = int(hours)
        if not 0 <= hours <= 24 * 366:
            raise RingBuilderError('min_part_hours must be 0-8784')
        self.min_part_hours = hours
        self.version += 1

    def pretend_min_part_hours_passed(self):
        """Let every partition move at the next rebalance."""
        if self._moved_at is not None:
            self._moved_at = array.array('d', bytes(8 * self.parts))

    @property
    def removal_pending(self):
        """Ids of devices that leave the builder at the next rebalance."""
        return frozenset(self._remove_pending)

    def seconds_until_all_may_move(self, now=None):
        """How long until min_part_hours lets every partition move again."""
        if self._moved_at is None or not self.min_part_hours:
            return 0
        now = time.time() if now is None else now
        latest = max(self._moved_at) if len(self._moved_at) else 0.0
        return max(0, int(latest + _hours_to_seconds(self.min_part_hours)
                          - now))

    def search_devs(self, **criteria):
        """Devices whose fields equal every given criterion."""
        out = []
        for dev in self.iter_devs():
            if all(_field_matches(dev, k, v) for k, v in criteria.items()):
                out.append(dev)
        return out

    # -- targets ------------------------------------------------------------
    def _active_devs(self):
        return [d for d in self.iter_devs()
                if d['id'] not in self._remove_pending]

    def _tree(self):
        devs = self._active_devs()
        nodes, dev_node = tg.build_tree(devs)
        tg.compute_targets(nodes, self.replicas, self.overload)
        return nodes, dev_node

    def weight_of_one_part(self):
        total = sum(d['weight'] for d in self._active_devs())
        return self.parts * self.replicas / total if total else 0.0

    # -- rebalance --------------------------------------------------------
    def rebalance(self, seed=None, now=None):
        """Reassign partitions. Returns (parts_moved, balance, removed).

        ``parts_moved`` counts partitions with at least one replica on a
        new device; ``removed`` the devices taken out of the builder.
        """
        active = [d for d in self._active_devs() if d['weight'] > 0]
        if len(active) < self.replicas:
            raise RingBuilderError(
                'need at least %d devices with weight > 0 for %d replicas, '
                'have %d' % (self.replicas, self.replicas, len(active)))
        now = time.time() if now is None else now
        rng = random.Random(seed)
        plan = _Rebalance(self, now, rng)
        moved_parts = plan.run()
        removed = 0
        for dev_id in sorted(self._remove_pending):
            self.devs[dev_id] = None
            removed += 1
        while self.devs and self.devs[-1] is None:
            self.devs.pop()
        self._remove_pending.clear()
        if moved_parts or removed:
            self.version += 1
        return moved_parts, self.get_balance(), removed

    # -- reports --------------------------------------------------------
    def dev_parts(self):
        """Partition-replicas assigned to each device id."""
        counts = [0] * len(self.devs)
        if self._rows is not None:
            for row in self._rows:
                for d in row:
                    if d >= 0:
                        counts[d] += 1
        return counts

    def parts_wanted(self):
        """Per device id, the partition-replicas its weight alone asks for."""
        one = self.weight_of_one_part()
        return [None if d is None else
                (0.0 if d['id'] in self._remove_pending else d['weight'] * one)
                for d in self.devs]

    def dev_balances(self, counts=None):
        """Per device id: 100 * (parts / wanted - 1); None for holes."""
        counts = self.dev_parts() if counts is None else counts
        wanted = self.parts_wanted()
        out = []
        for dev, have, want in zip(self.devs, counts, wanted):
            if dev is None:
                out.append(None)
            elif not want:
                out.append(MAX_BALANCE if have else 0.0)
            else:
                out.append(100.0 * have / want - 100.0)
        return out

    def get_balance(self):
        """Largest |balance| of any device, in percent of its wanted parts."""
        vals = [abs(b) for b in self.dev_balances() if b is not None]
        return min(MAX_BALANCE, max(vals)) if vals else 0.0

    def get_required_overload(self):
        """Overload needed to make the ring fully dispersed (a fraction)."""
        saved = self.overload
        try:
            self.overload = 1e9
            nodes, _ = self._tree()
        finally:
            self.overload = saved
        worst = 0.0
        for node in nodes:
            if node.level == 3 and node.weighted > 0:
                worst = max(worst, node.target / node.weighted - 1.0)
        return worst

    def dispersion_report(self):
        """How dispersed the ring is.

        Returns {'max_dispersion': percent of partitions with more replicas
        in some tier than full dispersion allows, 'tiers': {tier key:
        {'max_replicas': n, 'counts': [parts with 0, 1, 2.. replicas]}}}.
        """
        if self._rows is None:
            return {'max_dispersion': 0.0, 'tiers': {}}
        nodes, dev_node = self._tree()
        tiers = {}
        for node in nodes[1:]:
            tiers[node.key] = {'max_replicas': node.max_replicas,
                               'counts': [0] * (self.replicas + 1),
                               'level': tg.LEVELS[node.level]}
        chains = {}
        for dev in self.iter_devs():
            chains[dev['id']] = [tg.tier_key(dev, lvl) for lvl in range(4)]
        bad_parts = 0
        rows = self._rows
        for part in range(self.parts):
            seen = {}
            for row in rows:
                d = row[part]
                if d >= 0 and d in chains:
                    for key in chains[d]:
                        seen[key] = seen.get(key, 0) + 1
            over = False
            for key, n in seen.items():
                tier = tiers.get(key)
                if tier is None:
                    continue
                tier['counts'][n] += 1
                if n > tier['max_replicas']:
                    over = True
            bad_parts += over
        for tier in tiers.values():
            tier['counts'][0] = self.parts - sum(tier['counts'][1:])
        return {'max_dispersion': 100.0 * bad_parts / self.parts,
                'tiers': tiers}

    def get_part_devices(self, part):
        if self._rows is None:
            return []
        return [self.devs[row[part]] for row in self._rows
                if row[part] >= 0]

    def parts_on(self, dev_ids):
        """Partitions with a replica on any of ``dev_ids``, with how many."""
        dev_ids = set(dev_ids)
        counts = {}
        if self._rows is None:
            return counts
        for row in self._rows:
            for part, d in enumerate(row):
                if d in dev_ids:
                    counts[part] = counts.get(part, 0) + 1
        return counts

    def validate(self):
        """Raise RingBuilderError if the assignment breaks an invariant."""
        if self._rows is None:
            raise RingBuilderError('the ring has never been rebalanced')
        if len(self._rows) != self.replicas:
            raise RingBuilderError('%d replica rows for %d replicas'
                                   % (len(self._rows), self.replicas))
        for r, row in enumerate(self._rows):
            if len(row) != self.parts:
                raise RingBuilderError('replica %d has %d parts, want %d'
                                       % (r, len(row), self.parts))
        known = {d['id'] for d in self.iter_devs()}
        for row in self._rows:
            stray = set(row) - known
            if stray:
                d = min(stray)
                what = 'an unassigned replica' if d < 0 else \
                    'a replica on unknown device %d' % d
                raise RingBuilderError('partition %d has %s'
                                       % (row.index(d), what))
        replicas = self.replicas
        if replicas > 1:
            for part, devs in enumerate(zip(*self._rows)):
                if len(set(devs)) != replicas:
                    d = next(d for d in devs if devs.count(d) > 1)
                    raise RingBuilderError('partition %d has two replicas '
                                           'on device %d' % (part, d))
        return True

    # -- persistence ------------------------------------------------------
    def get_ring(self):
        """RingData for servers: devices and the replica rows."""
        if self._rows is None:
            raise RingBuilderError('the ring has never been rebalanced')
        self.validate()
        # A device pending removal still holds its replicas until the next
        # rebalance, so it stays in the ring (weight 0: never a handoff).
        devs = [None if d is None else {k: d[k] for k in DEV_FIELDS}
                for d in self.devs]
        rows = [array.array('I', row) for row in self._rows]
        return RingData(rows, devs, self.part_power, self.version)

    def to_dict(self):
        def raw(arr):
            out = array.array(arr.typecode, arr)
            if sys.byteorder != 'little':
                out.byteswap()
            return out.tobytes()
        return {
            'format': FORMAT_VERSION, 'part_power': self.part_power,
            'replicas': self.replicas, 'min_part_hours': self.min_part_hours,
            'overload': self.overload, 'version': self.version,
            'devs': self.devs, 'remove_pending': sorted(self._remove_pending),
            'rows': None if self._rows is None else
            [raw(r) for r in self._rows],
            'moved_at': None if self._moved_at is None else
            raw(self._moved_at),
        }

    @classmethod
    def from_dict(cls, data):
        def arr(code, blob):
            out = array.array(code)
            out.frombytes(blob)
            if sys.byteorder != 'little':
                out.byteswap()
            return out
        if data.get('format') != FORMAT_VERSION:
            raise RingBuilderError('unsupported builder format %r'
                                   % data.get('format'))
        b = cls(data['part_power'], data['replicas'], data['min_part_hours'])
        b.overload = float(data['overload'])
        b.version = int(data['version'])
        b.devs = list(data['devs'])
        b._remove_pending = set(data.get('remove_pending') or ())
        if data.get('rows') is not None:
            b._rows = [arr('i', r) for r in data['rows']]
            b._moved_at = arr('d', data['moved_at'])
            if any(len(r) != b.parts for r in b._rows) or \
                    len(b._moved_at) != b.parts:
                raise RingBuilderError('builder rows do not match part_power')
        return b

    def save(self, path):
        """Write the builder file atomically (temp file, fsync, rename)."""
        blob = msgpack.packb(self.to_dict(), use_bin_type=True)

        def write(raw):
            with gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as gz:
                gz.write(b'OBJBLDR1')
                gz.write(blob)
        write_atomically(path, write)

    @classmethod
    def load(cls, path):
        try:
            with gzip.open(path, 'rb') as gz:
                if gz.read(8) != b'OBJBLDR1':
                    raise RingBuilderError('%s is not a builder file' % path)
                data = msgpack.unpackb(gz.read(), raw=False,
                                       strict_map_key=False)
        except FileNotFoundError:
            raise RingBuilderError('%s: no such builder file' % path)
        except (OSError, EOFError, ValueError, zlib.error,
                msgpack.UnpackException) as e:
            raise RingBuilderError('%s: unreadable builder file (%s)'
                                   % (path, e))
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError) as e:
            raise RingBuilderError('%s: bad builder file (%s)' % (path, e))


def _field_matches(dev, key, value):
    if key in ('ip', 'replication_ip'):
        return dev[key] == _normalise_ip(str(value))
    if key == 'weight':
        return float(dev[key]) == float(value)
    return dev.get(key) == value


class _Rebalance:
    """One rebalance: gather replicas that must move, place them, balance.

    Works on node indexes of the tier tree: ``chain[d]`` is the list of
    tree nodes (region, zone, host, device) of device ``d``.
    """

    def __init__(self, builder, now, rng):
        self.b = builder
        self.now = now
        self.rng = rng
        self.jitter = [rng.random() * JITTER for _ in range(0x400)]
        self.parts = builder.parts
        self.nodes, dev_node = builder._tree()
        n = len(self.nodes)
        self.hi = [node.hi for node in self.nodes]
        self.lo = [int(math.floor(node.target + tg.EPS))
                   for node in self.nodes]
        self.children = [[c.index for c in node.children]
                         for node in self.nodes]
        # per node, the children every part must have replicas in
        self.floored = [[c for c in kids if self.lo[c]]
                        for kids in self.children]
        self.assigned = [0] * n
        # ancestors[i]: node i's ancestors below the root, region first
        self.ancestors = [[] for _ in range(n)]
        for node in self.nodes[1:]:
            parent = node.parent
            self.ancestors[node.index] = (
                [] if parent.level < 0 else
                self.ancestors[parent.index] + [parent.index])
        self.chain = {}
        self.dev_at = {}
        for dev_id, node in dev_node.items():
            path = []
            while node.level >= 0:
                path.append(node.index)
                node = node.parent
            self.chain[dev_id] = path[::-1]
            self.dev_at[path[0]] = dev_id
        # Per part: bit r set when replica r was placed in this rebalance
        # (it may be placed again); bit 31 when the part moved a replica
        # (its other replicas stay). changed: parts with a replica moved.
        self.placed = array.array('I', bytes(4 * self.parts))

    # - helpers -
    def movable(self, part, slot):
        """May replica ``slot`` of ``part`` move now?

        A replica placed in this rebalance may be placed again; otherwise a
        part moves at most one replica per rebalance, and none while it
        moved less than min_part_hours ago. With min_part_hours 0 there is
        no such limit.
        """
        flags = self.placed[part]
        if flags and self.b.min_part_hours:
            return bool(flags & (1 << slot))
        return (self.now - self.moved_at[part] >=
                _hours_to_seconds(self.b.min_part_hours))

    def counts_for(self, part, skip_slot=None):
        """{node: replicas of part below it}, leaving out one slot."""
        cnt = {}
        for r, row in enumerate(self.rows):
            if r == skip_slot:
                continue
            d = row[part]
            if d >= 0:
                for node in self.chain[d]:
                    cnt[node] = cnt.get(node, 0) + 1
        return cnt

    def place_into(self, part, slot, dev_id):
        old = self.rows[slot][part]
        if old == dev_id:
            return
        if old >= 0:
            for node in self.chain.get(old, ()):
                self.assigned[node] -= 1
        self.rows[slot][part] = dev_id
        for node in self.chain[dev_id]:
            self.assigned[node] += 1
        self.placed[part] |= MOVED | (1 << slot)
        self.moved_at[part] = self.now

    def choose(self, cnt, need_room, start=0, salt=0):
        """Best device for one more replica of a part; None if none fits.

        ``cnt`` maps tree nodes to the part's replicas below them. Prefers
        tiers the part has fewer replicas in than its lower bound
        (floor(target)), then tiers with room left in their quota, then the
        emptiest tier relative to its quota. Never breaks a tier's per-part upper bound. A greedy walk
        down the tree almost always succeeds; a full search runs only when
        it reaches a dead end.

        A non-zero ``salt`` (one random number per part) adds up to JITTER
        parts' worth of room to each tier's score (from a table of random
        offsets that the salt indexes), so near-ties break
        differently for every part: without it a new ring repeats one
        pattern and each device shares partitions with only a few others,
        which makes a failed device's data come back from a few sources.
        """
        children, hi, lo = self.children, self.hi, self.lo
        quota, assigned, inv = self.quota, self.assigned, self.inv_quota
        jitter = self.jitter
        node = start
        kids = children[node]
        while kids:
            best = -1
            best_score = -10.0
            for c in kids:
                k = cnt.get(c, 0)
                if k >= hi[c]:
                    continue
                room = quota[c] - assigned[c]
                if salt:
                    room += jitter[(salt + c * 37) & 0x3FF]
                if room > 0:
                    score = 4.0 + room * inv[c]
                elif need_room:
                    continue
                else:
                    score = max(-1.0, room * inv[c])
                if k < lo[c]:
                    score += 8.0
                if score > best_score:
                    best_score = score
                    best = c
            if best < 0:
                return self._search(cnt, need_room, start)
            node = best
            kids = children[node]
        return self.dev_at[node]

    def _search(self, cnt, need_room, node):
        """Depth-first version of choose() that backtracks at dead ends."""
        kids = self.children[node]
        if not kids:
            return self.dev_at[node]
        ranked = []
        for c in kids:
            k = cnt.get(c, 0)
            if k >= self.hi[c]:
                continue
            room = self.quota[c] - self.assigned[c]
            if need_room and room <= 0:
                continue
            ranked.append((k < self.lo[c], room > 0,
                           room * self.inv_quota[c], c))
        ranked.sort(reverse=True)
        for entry in ranked:
            found = self._search(cnt, need_room, entry[3])
            if found is not None:
                return found
        return None

    # - phases -
    def run(self):
        b = self.b
        parts = self.parts
        if b._rows is None:
            b._rows = [array.array('i', [NONE]) * parts
                       for _ in range(b.replicas)]
            b._moved_at = array.array('d', bytes(8 * parts))
        self.rows = b._rows
        self.moved_at = b._moved_at
        self.gather_removed()
        self.quota = tg.quotas(self.nodes, parts, current=self.assigned)
        self.inv_quota = [1.0 / q if q else 0.0 for q in self.quota]
        self.gather_dispersion()
        self.place_unassigned()
        self.fill_short_tiers()
        self.balance()
        return sum(1 for flags in self.placed if flags)

    def gather_removed(self):
        """Unassign replicas on removed/unknown devices and duplicates."""
        chain = self.chain
        assigned = self.assigned
        unassigned = []
        for r, row in enumerate(self.rows):
            for part, d in enumerate(row):
                if d < 0:
                    unassigned.append((part, r))
                    continue
                path = chain.get(d)
                if path is None:
                    row[part] = NONE
                    unassigned.append((part, r))
                    continue
                for node in path:
                    assigned[node] += 1
        # duplicates (two replicas of a part on one device)
        for part in range(self.parts):
            seen = set()
            for r, row in enumerate(self.rows):
                d = row[part]
                if d < 0:
                    continue
                if d in seen:
                    for node in chain[d]:
                        assigned[node] -= 1
                    row[part] = NONE
                    unassigned.append((part, r))
                seen.add(d)
        self.unassigned = unassigned

    def gather_dispersion(self):
        """Take movable replicas out of tiers over their per-part ceiling.

        A part must hold at most ceil(target) replicas in every tier; the
        replicas taken out are placed with the other unassigned ones.
        """
        hi = self.hi
        for part in range(self.parts):
            for _ in range(len(self.rows)):
                cnt = self.counts_for(part)
                over = {n for n, k in cnt.items() if k > hi[n]}
                if not over or not self.take_out_of(part, over):
                    break

    def fill_short_tiers(self):
        """Move replicas into tiers holding fewer than floor(target).

        Runs once every replica is placed, so a tier is only called short
        when it really is.
        """
        for part in range(self.parts):
            for _ in range(len(self.rows)):
                cnt = self.counts_for(part)
                short = self.short_of(cnt)
                if short is None or not self.move_into(part, short, cnt):
                    break

    def take_out_of(self, part, over):
        """Unassign the part's replica that best relieves tiers ``over``."""
        best = None
        for r, row in enumerate(self.rows):
            d = row[part]
            if d < 0 or not self.movable(part, r):
                continue
            path = self.chain[d]
            gain = sum(1 for n in path if n in over)
            if gain:
                devnode = path[-1]
                key = (gain, self.assigned[devnode] - self.quota[devnode])
                if best is None or key > best[0]:
                    best = (key, r, d)
        if best is None:
            return False
        _, r, d = best
        for node in self.chain[d]:
            self.assigned[node] -= 1
        self.rows[r][part] = NONE
        self.placed[part] |= MOVED
        self.unassigned.append((part, r))
        return True

    def move_into(self, part, short, cnt):
        """Move one of the part's replicas into tier ``short``.

        Takes the replica whose leaving keeps every tier it leaves at or
        above its floor with most to spare, and whose arrival keeps every
        tier it enters within its ceiling.
        """
        hi, lo, rows = self.hi, self.lo, self.rows
        entering = self.ancestors[short] + [short]
        best = None
        for r, row in enumerate(rows):
            d = row[part]
            if d < 0 or not self.movable(part, r):
                continue
            path = self.chain[d]
            if any(cnt.get(n, 0) + 1 > hi[n] for n in entering
                   if n not in path):
                continue
            spare = min((cnt[n] - lo[n] for n in path if n not in entering),
                        default=0)
            if spare < 1:
                continue
            devnode = path[-1]
            key = (spare, self.assigned[devnode] - self.quota[devnode])
            if best is None or key > best[0]:
                best = (key, r, d)
        if best is None:
            return False
        _, r, d = best
        dest = self.choose(self.counts_for(part, skip_slot=r), False,
                           start=short)
        if dest is None:
            return False
        self.place_into(part, r, dest)
        return True

    def short_of(self, cnt):
        """A tier holding fewer replicas of a part than its floor, or None.

        ``cnt`` as from counts_for. Only tiers whose parent holds some of
        the part are looked at (a tier under an empty parent is the
        parent's problem, found above it).
        """
        lo, floored = self.lo, self.floored
        for node in itertools.chain((0,), cnt):  # root is never in cnt
            for c in floored[node]:
                if cnt.get(c, 0) < lo[c]:
                    return c
        return None

    def place_unassigned(self):
        """Place every unassigned replica, a part's replicas together.

        The part's tier counts are computed once and kept up to date as
        its replicas land (this is the whole work of a new ring).
        """
        rows, chain = self.rows, self.chain
        by_part = {}
        for part, slot in self.unassigned:
            by_part.setdefault(part, []).append(slot)
        salts = self.rng.getrandbits
        for part, slots in by_part.items():
            cnt = self.counts_for(part)
            salt = salts(10) | 1024
            for slot in slots:
                dev = self.choose(cnt, False, salt=salt)
                if dev is None:
                    # every tier is at its bound for this part: take any
                    # device not holding it (only if targets were unsound)
                    holding = {row[part] for row in rows}
                    dev = next(d for d in chain if d not in holding)
                self.place_into(part, slot, dev)
                for node in chain[dev]:
                    cnt[node] = cnt.get(node, 0) + 1
        self.unassigned = []

    def balance(self):
        """Bring every tier to its quota, top down.

        At each node, replicas move between child subtrees until every
        child holds its quota; then each child is balanced inside. A child
        over quota gives a replica to one under quota directly when some
        movable part allows it, else along the shortest chain of such moves
        through siblings (each move by a different part), found by a
        breadth-first search over the siblings.
        """
        quota, assigned = self.quota, self.assigned
        self.entries = {d: [] for d in self.chain}
        for r, row in enumerate(self.rows):
            for part, d in enumerate(row):
                if d >= 0:
                    self.entries[d].append((part, r))
        self.devs_below = {}
        for d, path in self.chain.items():
            for node in path:
                self.devs_below.setdefault(node, []).append(d)
        for node in range(len(self.nodes)):
            kids = self.children[node]
            if len(kids) > 1 and any(assigned[c] > quota[c] for c in kids):
                self.balance_children(kids)

    def balance_children(self, kids):
        quota, assigned = self.quota, self.assigned
        while True:
            progress = False
            moves = {}      # (a, b) -> generator of candidate moves
            dead = set()    # (a, b) pairs with no move left this pass
            while True:
                over = [c for c in kids if assigned[c] > quota[c]]
                under = {c for c in kids if assigned[c] < quota[c]}
                if not over or not under:
                    return
                path = self._augmenting_path(over, under, kids, moves, dead)
                if path is None:
                    break
                for part, slot, dev, dest in path:
                    self.place_into(part, slot, dest)
                    self.entries[dest].append((part, slot))
                progress = True
            if not progress:
                return

    def _augmenting_path(self, over, under, kids, moves, dead):
        """Shortest chain of moves from a child over quota to one under."""
        prev = {c: None for c in over}
        queue = list(over)
        for a in queue:  # grows while iterating: breadth-first
            for b in kids:
                if b in prev or (a, b) in dead:
                    continue
                gen = moves.get((a, b))
                if gen is None:
                    gen = moves[(a, b)] = self._candidate_moves(a, b)
                move = next(gen, None)
                if move is None:
                    dead.add((a, b))
                    continue
                prev[b] = (a, move)
                if b in under:
                    path = []
                    while prev[b] is not None:
                        a, move = prev[b]
                        path.append(move)
                        b = a
                    parts = [m[0] for m in path]
                    if len(set(parts)) != len(parts):
                        return path[:1]  # two hops want one part: take one
                    return path
                queue.append(b)
        return None

    def _candidate_moves(self, a, b):
        """Yield movable replicas below ``a`` that may go below ``b``.

        Each as (part, slot, source device, destination device), checked
        against the current state when yielded. Every move takes from the
        device below ``a`` that is then most over its quota, so balancing
        one level never unbalances the level below it.
        """
        quota, assigned, rows, chain = (self.quota, self.assigned,
                                        self.rows, self.chain)
        hi_b, lo = self.hi[b], self.lo
        cursors = {d: iter(list(self.entries[d])) for d in self.devs_below[a]}
        while cursors:
            d = max(cursors, key=lambda d: (assigned[chain[d][-1]] -
                                            quota[chain[d][-1]]) /
                    max(1, quota[chain[d][-1]]))
            path = chain[d]
            # tiers the replica leaves: none may drop below its lower bound
            leaving = path[path.index(a):]
            for part, slot in cursors[d]:
                if rows[slot][part] != d or not self.movable(part, slot):
                    continue
                cnt = self.counts_for(part, skip_slot=slot)
                if cnt.get(b, 0) >= hi_b:
                    continue
                if any(cnt.get(n, 0) < lo[n] for n in leaving):
                    continue
                for n in path:
                    assigned[n] -= 1
                dest = self.choose(cnt, False, start=b)
                for n in path:
                    assigned[n] += 1
                if dest is not None:
                    yield part, slot, d, dest
                    break
            else:
                del cursors[d]
