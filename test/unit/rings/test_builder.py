"""Tests for the ring builder (rings/builder.py): validation, device
changes, persistence, min_part_hours and the reports.

Times passed as ``now`` are realistic unix times (T0 below):
pretend_min_part_hours_passed() makes partitions look last moved at the
epoch, so "now" must be more than min_part_hours after it.
"""
import collections
import gzip
import math
import os

import pytest

from rings.builder import (DuplicateDeviceError, RingBuilder,
                           RingBuilderError)
from rings.ring import Ring
from rings.ringdata import RingData

T0 = 1_700_000_000.0
HOUR = 3600.0


def dev(zone=1, host=1, name='sda', weight=100.0, region=1, **extra):
    d = {'region': region, 'zone': zone,
         'ip': '10.%s.%s.%s' % (region, zone, host), 'port': 6200,
         'device': name, 'weight': weight}
    d.update(extra)
    return d


def builder(part_power=8, replicas=3, min_part_hours=1, zones=4, hosts=2,
            per_host=2, weight=100.0):
    b = RingBuilder(part_power, replicas, min_part_hours)
    for z in range(1, zones + 1):
        for h in range(1, hosts + 1):
            for n in range(per_host):
                b.add_dev(dev(z, h, 'sd%c' % (97 + n), weight))
    return b


def cells(b):
    """{(replica, part): dev id}."""
    return {(r, p): d for r, row in enumerate(b._rows)
            for p, d in enumerate(row)}


def moved_cells(before, after):
    return {k for k in before if before[k] != after[k]}


def part_sets(b):
    return [frozenset(row[p] for row in b._rows) for p in range(b.parts)]


# -- construction and validation ---------------------------------------------

class TestConstruction:
    @pytest.mark.parametrize('pp', [0, -1, 25, 33, 'x', None])
    def test_bad_part_power(self, pp):
        with pytest.raises(RingBuilderError):
            RingBuilder(pp, 3, 1)

    @pytest.mark.parametrize('replicas', [0, 17, 2.5, -1, 'three', None])
    def test_bad_replicas(self, replicas):
        with pytest.raises(RingBuilderError):
            RingBuilder(8, replicas, 1)

    @pytest.mark.parametrize('mph', [-1, 8785, 'soon', None])
    def test_bad_min_part_hours(self, mph):
        with pytest.raises(RingBuilderError):
            RingBuilder(8, 3, mph)

    @pytest.mark.parametrize('pp,replicas,mph', [
        (1, 1, 0), (24, 16, 8784), (10, 3.0, 24), ('8', '2', '1')])
    def test_good_values(self, pp, replicas, mph):
        b = RingBuilder(pp, replicas, mph)
        assert b.part_power == int(pp)
        assert b.parts == 2 ** int(pp)
        assert b.replicas == int(float(replicas))
        assert isinstance(b.replicas, int)
        assert b.min_part_hours == int(mph)
        assert b.overload == 0.0
        assert not b.ever_rebalanced
        assert b.devs == []

    def test_set_min_part_hours(self):
        b = RingBuilder(8, 3, 1)
        b.set_min_part_hours(24)
        assert b.min_part_hours == 24
        with pytest.raises(RingBuilderError):
            b.set_min_part_hours(-1)
        with pytest.raises(RingBuilderError):
            b.set_min_part_hours(9000)


class TestAddDev:
    def test_ids_assigned_from_zero(self):
        b = RingBuilder(8, 3, 1)
        assert [b.add_dev(dev(1, h)) for h in range(3)] == [0, 1, 2]
        assert [d['id'] for d in b.devs] == [0, 1, 2]

    def test_explicit_id_leaves_holes_filled_later(self):
        b = RingBuilder(8, 3, 1)
        assert b.add_dev(dev(1, 1, id=3)) == 3
        assert b.devs[:3] == [None, None, None]
        assert b.add_dev(dev(1, 2)) == 0
        assert b.add_dev(dev(1, 3)) == 1
        assert [d['id'] for d in b.iter_devs()] == [0, 1, 3]

    def test_defaults_and_normalisation(self):
        b = RingBuilder(8, 3, 1)
        i = b.add_dev({'zone': 2, 'ip': '10.0.0.1', 'port': '6200',
                       'device': 'sdb', 'weight': '50'})
        d = b.devs[i]
        assert d['region'] == 1
        assert d['port'] == 6200
        assert d['replication_ip'] == '10.0.0.1'
        assert d['replication_port'] == 6200
        assert d['weight'] == 50.0
        assert d['meta'] == ''

    def test_ipv6_normalised(self):
        b = RingBuilder(8, 3, 1)
        i = b.add_dev(dev(ip='[FE80:0000::0001]'))
        assert b.devs[i]['ip'] == 'fe80::1'
        with pytest.raises(DuplicateDeviceError):
            b.add_dev(dev(ip='fe80::1'))

    def test_hostname_allowed(self):
        b = RingBuilder(8, 3, 1)
        i = b.add_dev(dev(ip='storage-01.example.com'))
        assert b.devs[i]['ip'] == 'storage-01.example.com'

    def test_duplicate_by_ip_port_device(self):
        b = RingBuilder(8, 3, 1)
        b.add_dev(dev(1, 1, 'sda'))
        with pytest.raises(DuplicateDeviceError):
            b.add_dev(dev(1, 1, 'sda', weight=5))
        # same device name on another port or host is fine
        b.add_dev(dev(1, 1, 'sda', port=6201))
        b.add_dev(dev(1, 2, 'sda'))
        assert len(list(b.iter_devs())) == 3

    def test_duplicate_id(self):
        b = RingBuilder(8, 3, 1)
        b.add_dev(dev(1, 1, id=5))
        with pytest.raises(DuplicateDeviceError):
            b.add_dev(dev(1, 2, id=5))
        assert issubclass(DuplicateDeviceError, RingBuilderError)

    @pytest.mark.parametrize('changes', [
        {'weight': -1}, {'weight': 'heavy'}, {'weight': None},
        {'weight': float('nan')}, {'weight': float('inf')},
        {'port': 0}, {'port': 65536}, {'port': 'http'}, {'port': None},
        {'replication_port': 70000},
        {'ip': ''}, {'ip': None}, {'ip': '10.0.0.1/24'}, {'ip': 'a b'},
        {'device': ''}, {'device': None}, {'device': 'sd/a'},
        {'zone': None}, {'zone': 'z1'}, {'zone': -1}, {'region': -2},
        {'region': 'east'}, {'id': -1}, {'id': 'x'},
    ])
    def test_invalid_fields(self, changes):
        b = RingBuilder(8, 3, 1)
        with pytest.raises(RingBuilderError):
            b.add_dev(dev(**changes))
        assert b.devs == [] and b.version == 0

    @pytest.mark.parametrize('missing', ['zone', 'ip', 'port', 'device',
                                         'weight'])
    def test_missing_fields(self, missing):
        d = dev()
        del d[missing]
        b = RingBuilder(8, 3, 1)
        with pytest.raises(RingBuilderError):
            b.add_dev(d)

    def test_zero_weight_allowed(self):
        b = RingBuilder(8, 3, 1)
        i = b.add_dev(dev(weight=0))
        assert b.devs[i]['weight'] == 0.0

    def test_version_bumps(self):
        b = RingBuilder(8, 3, 1)
        v = b.version
        b.add_dev(dev())
        assert b.version > v


class TestDeviceChanges:
    def test_set_weight(self):
        b = builder()
        b.set_dev_weight(3, 250)
        assert b.devs[3]['weight'] == 250.0
        for bad in (-1, 'x', float('nan')):
            with pytest.raises(RingBuilderError):
                b.set_dev_weight(3, bad)
        assert b.devs[3]['weight'] == 250.0
        with pytest.raises(RingBuilderError):
            b.set_dev_weight(99, 1)

    def test_set_dev_info(self):
        b = builder()
        b.set_dev_info(2, ip='192.168.1.9', port=7000,
                       replication_ip='172.16.0.9', replication_port=7001,
                       device='sdz', meta='moved racks')
        d = b.devs[2]
        assert (d['ip'], d['port'], d['replication_ip'],
                d['replication_port'], d['device'], d['meta']) == \
            ('192.168.1.9', 7000, '172.16.0.9', 7001, 'sdz', 'moved racks')
        assert d['zone'] == 1 and d['weight'] == 100

    def test_set_dev_info_refusals(self):
        b = builder()
        other = b.devs[1]
        with pytest.raises(DuplicateDeviceError):
            b.set_dev_info(0, ip=other['ip'], port=other['port'],
                           device=other['device'])
        with pytest.raises(RingBuilderError):
            b.set_dev_info(0, weight=5)       # weight has its own call
        with pytest.raises(RingBuilderError):
            b.set_dev_info(0, zone=3)         # moving zones is not an edit
        with pytest.raises(RingBuilderError):
            b.set_dev_info(0, port=0)
        with pytest.raises(RingBuilderError):
            b.set_dev_info(42, meta='x')
        assert b.devs[0]['ip'] == '10.1.1.1' and b.devs[0]['port'] == 6200

    def test_set_dev_info_keeps_assignment(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        before = cells(b)
        b.set_dev_info(0, ip='10.9.9.9')
        b.pretend_min_part_hours_passed()
        moved, _, _ = b.rebalance(seed=1, now=T0 + 10 * HOUR)
        assert moved == 0 and cells(b) == before
        assert b.get_ring().devs[0]['ip'] == '10.9.9.9'

    def test_set_overload(self):
        b = builder()
        b.set_overload(0.25)
        assert b.overload == 0.25
        for bad in (-0.1, 'lots', float('inf')):
            with pytest.raises(RingBuilderError):
                b.set_overload(bad)
        assert b.overload == 0.25

    def test_remove_unknown(self):
        b = builder()
        with pytest.raises(RingBuilderError):
            b.remove_dev(100)

    def test_search_devs(self):
        b = builder()
        found = b.search_devs(zone=2, device='sda')
        assert sorted(d['id'] for d in found) == [4, 6]
        assert [d['id'] for d in b.search_devs(ip='10.1.3.2')] == [10, 11]
        assert b.search_devs(weight=100) == list(b.iter_devs())
        assert b.search_devs(zone=99) == []


# -- rebalance basics -----------------------------------------------------------

class TestRebalance:
    def test_first_rebalance_assigns_everything(self):
        b = builder(part_power=8)
        moved, balance, removed = b.rebalance(seed=1, now=T0)
        assert moved == 256
        assert removed == 0
        assert b.ever_rebalanced
        b.validate()
        assert sum(b.dev_parts()) == 256 * 3
        # 16 equal devices, 768 replicas: 48 each, exactly
        assert b.dev_parts() == [48] * 16
        assert balance == 0.0 == b.get_balance()
        assert all(len(s) == 3 for s in part_sets(b))

    def test_too_few_devices(self):
        b = RingBuilder(8, 3, 1)
        b.add_dev(dev(1, 1))
        b.add_dev(dev(2, 1))
        with pytest.raises(RingBuilderError):
            b.rebalance(now=T0)
        b.add_dev(dev(3, 1, weight=0))
        with pytest.raises(RingBuilderError):
            b.rebalance(now=T0)
        assert not b.ever_rebalanced
        b.set_dev_weight(2, 1)
        b.rebalance(now=T0)
        b.validate()

    def test_too_few_after_removal(self):
        b = builder(zones=3, hosts=1, per_host=1)
        b.rebalance(now=T0)
        b.remove_dev(0)
        with pytest.raises(RingBuilderError):
            b.rebalance(now=T0 + 1)

    def test_never_rebalanced(self):
        b = builder()
        with pytest.raises(RingBuilderError):
            b.validate()
        with pytest.raises(RingBuilderError):
            b.get_ring()
        assert b.dispersion_report()['max_dispersion'] == 0.0
        assert b.dev_parts() == [0] * 16

    def test_one_replica_per_zone_when_zones_equal(self):
        b = builder(zones=3, replicas=3)
        b.rebalance(seed=3, now=T0)
        for p in range(b.parts):
            zones = sorted(b.devs[row[p]]['zone'] for row in b._rows)
            assert zones == [1, 2, 3]

    def test_validate_catches_broken_rows(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        assert b.validate()
        b._rows[1][5] = b._rows[0][5]
        with pytest.raises(RingBuilderError):
            b.validate()
        b._rows[1][5] = -1
        with pytest.raises(RingBuilderError):
            b.validate()
        b._rows[1][5] = 999
        with pytest.raises(RingBuilderError):
            b.validate()

    def test_rebalance_repairs_duplicate(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        b._rows[1][5] = b._rows[0][5]
        b.rebalance(seed=1, now=T0 + 1)
        b.validate()

    def test_weight_change_moves_toward_new_share(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        b.set_dev_weight(0, 200)
        b.pretend_min_part_hours_passed()
        moved, _, _ = b.rebalance(seed=1, now=T0 + HOUR)
        assert moved > 0
        wanted = b.parts_wanted()
        parts = b.dev_parts()
        # 17 weight units, 768 replicas: dev 0 wants 90.35
        assert wanted[0] == pytest.approx(768 * 200 / 1700)
        assert abs(parts[0] - wanted[0]) <= 1

    def test_get_part_devices_and_parts_on(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        for p in (0, 17, 255):
            assert [d['id'] for d in b.get_part_devices(p)] == \
                [row[p] for row in b._rows]
        on = b.parts_on([0, 1])
        expect = collections.Counter(
            p for row in b._rows for p, d in enumerate(row) if d in (0, 1))
        assert on == dict(expect)
        # devices 0 and 1 share a host: at most one replica per part there
        assert set(on.values()) == {1}


# -- min_part_hours ---------------------------------------------------------

class TestMinPartHours:
    def test_first_rebalance_locks_every_part(self):
        b = builder(min_part_hours=1)
        b.rebalance(seed=1, now=T0)
        b.add_dev(dev(5, 1))
        moved, _, _ = b.rebalance(seed=1, now=T0 + 60)
        assert moved == 0
        assert b.dev_parts()[16] == 0
        b.pretend_min_part_hours_passed()
        moved, _, _ = b.rebalance(seed=1, now=T0 + 120)
        assert moved > 0
        assert b.dev_parts()[16] > 0

    def test_moved_parts_stay_put(self):
        b = builder(min_part_hours=2)
        b.rebalance(seed=1, now=T0)
        b.add_dev(dev(5, 1, 'sda'))
        t1 = T0 + 3 * HOUR
        before = cells(b)
        moved, _, _ = b.rebalance(seed=2, now=t1)
        first = {p for _, p in moved_cells(before, cells(b))}
        assert moved == len(first) > 0
        assert all(b._moved_at[p] == t1 for p in first)
        # another change less than 2 hours later
        b.add_dev(dev(5, 2, 'sda'))
        b.set_dev_weight(0, 50)
        before = cells(b)
        b.rebalance(seed=3, now=t1 + 1.5 * HOUR)
        second = {p for _, p in moved_cells(before, cells(b))}
        assert second, 'the unlocked partitions should move'
        assert not first & second
        b.validate()

    def test_min_part_hours_zero_moves_immediately(self):
        b = builder(min_part_hours=0)
        b.rebalance(seed=1, now=T0)
        b.add_dev(dev(5, 1))
        moved, _, _ = b.rebalance(seed=1, now=T0)
        assert moved > 0

    def test_one_replica_per_part_per_rebalance(self):
        b = builder(min_part_hours=1)
        b.rebalance(seed=1, now=T0)
        for zone in (5, 6):
            for h in (1, 2):
                b.add_dev(dev(zone, h, weight=300))
        before = cells(b)
        b.rebalance(seed=1, now=T0 + 2 * HOUR)
        per_part = collections.Counter(
            p for _, p in moved_cells(before, cells(b)))
        assert per_part and max(per_part.values()) == 1

    def test_remove_dev_within_min_part_hours(self):
        b = builder(min_part_hours=24)
        b.rebalance(seed=1, now=T0)
        held = b.parts_on([5])
        assert len(held) == 48
        b.remove_dev(5)
        before = cells(b)
        moved, _, removed = b.rebalance(seed=1, now=T0 + 60)
        assert removed == 1
        assert b.devs[5] is None
        assert b.parts_on([5]) == {}
        changed = moved_cells(before, cells(b))
        # exactly the removed device's replicas moved, nothing else could
        assert changed == {k for k, d in before.items() if d == 5}
        assert moved == len(held)
        b.validate()

    def test_removed_id_reused(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        b.remove_dev(3)
        # until the rebalance, the id is still taken
        assert b.add_dev(dev(9, 1)) == 16
        b.rebalance(seed=1, now=T0 + 1)
        assert b.add_dev(dev(9, 2)) == 3
        assert b.devs[3]['zone'] == 9

    def test_remove_last_dev_trims_list(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        b.remove_dev(15)
        b.rebalance(seed=1, now=T0 + 1)
        assert len(b.devs) == 15

    def test_remove_pending_cannot_be_reweighted(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        b.remove_dev(2)
        with pytest.raises(RingBuilderError):
            b.set_dev_weight(2, 10)

    def test_ring_written_with_removal_pending_is_usable(self, tmp_path):
        # remove_dev, then get_ring before rebalancing: either refused, or
        # a ring whose every row entry names a device servers can reach
        b = builder()
        b.rebalance(seed=1, now=T0)
        b.remove_dev(2)
        try:
            data = b.get_ring()
        except RingBuilderError:
            return
        for row in data.replica2part2dev:
            for d in set(row):
                assert data.devs[d] is not None, \
                    'ring rows name device %d, which the ring leaves out' % d
        path = str(tmp_path / 'r.ring.gz')
        data.save(path)
        ring = Ring(path, hash_prefix=b'p', hash_suffix=b's')
        for p in range(ring.partition_count):
            ring.get_part_nodes(p)

    def test_zero_weight_drains(self):
        b = builder(min_part_hours=0)
        b.rebalance(seed=1, now=T0)
        b.set_dev_weight(4, 0)
        b.rebalance(seed=1, now=T0 + 1)
        assert b.dev_parts()[4] == 0
        assert b.devs[4] is not None


# -- persistence ---------------------------------------------------------------

def state(b):
    return (b.part_power, b.replicas, b.min_part_hours, b.overload,
            b.version, b.devs, b._remove_pending,
            None if b._rows is None else [list(r) for r in b._rows],
            None if b._moved_at is None else list(b._moved_at))


class TestPersistence:
    def test_round_trip_fresh(self, tmp_path):
        b = builder()
        b.set_overload(0.1)
        path = str(tmp_path / 'object.builder')
        b.save(path)
        back = RingBuilder.load(path)
        assert state(back) == state(b)
        assert not back.ever_rebalanced

    def test_round_trip_rebalanced_with_pending_removal(self, tmp_path):
        b = builder()
        b.rebalance(seed=1, now=T0)
        b.remove_dev(7)
        b.add_dev(dev(8, 1, id=20))
        path = str(tmp_path / 'object.builder')
        b.save(path)
        back = RingBuilder.load(path)
        assert state(back) == state(b)
        assert back.devs[17] is None
        r1 = b.rebalance(seed=5, now=T0 + 1)
        r2 = back.rebalance(seed=5, now=T0 + 1)
        assert r1 == r2
        assert state(back) == state(b)
        assert back.devs[7] is None

    def test_save_atomic_no_temp_left(self, tmp_path):
        b = builder()
        b.rebalance(seed=1, now=T0)
        path = str(tmp_path / 'object.builder')
        b.save(path)
        b.save(path)
        assert os.listdir(tmp_path) == ['object.builder']

    def test_same_builder_same_bytes(self, tmp_path):
        a, c = str(tmp_path / 'a'), str(tmp_path / 'c')
        b = builder()
        b.rebalance(seed=1, now=T0)
        b.save(a)
        b.save(c)
        with open(a, 'rb') as fa, open(c, 'rb') as fc:
            assert fa.read() == fc.read()

    def test_load_missing(self, tmp_path):
        with pytest.raises(RingBuilderError):
            RingBuilder.load(str(tmp_path / 'nope'))

    @pytest.mark.parametrize('content', [
        b'', b'garbage', gzip.compress(b'OBJRING1xxxx'),
        gzip.compress(b'OBJBLDR1' + b'\xc1\xc1'),
        gzip.compress(b'OBJBLDR1' + b'\x80'),      # msgpack {} : no keys
        gzip.compress(b'OBJBLDR1'),
    ])
    def test_load_corrupt(self, tmp_path, content):
        path = tmp_path / 'b'
        path.write_bytes(content)
        with pytest.raises(RingBuilderError):
            RingBuilder.load(str(path))

    def test_load_truncated(self, tmp_path):
        b = builder(part_power=10)
        b.rebalance(seed=1, now=T0)
        good = str(tmp_path / 'good')
        b.save(good)
        with gzip.open(good, 'rb') as f:
            body = f.read()
        path = tmp_path / 'b'
        for keep in (8, 20, len(body) // 2, len(body) - 1):
            path.write_bytes(gzip.compress(body[:keep]))
            with pytest.raises(RingBuilderError):
                RingBuilder.load(str(path))
        with open(good, 'rb') as f:
            raw = f.read()
        path.write_bytes(raw[:len(raw) // 2])
        with pytest.raises(RingBuilderError):
            RingBuilder.load(str(path))

    def test_load_corrupt_gzip_stream(self, tmp_path):
        # valid gzip header, damaged deflate data (a bad disk or copy)
        b = builder(part_power=10)
        b.rebalance(seed=1, now=T0)
        good = str(tmp_path / 'good')
        b.save(good)
        with open(good, 'rb') as f:
            data = bytearray(f.read())
        for i in range(20, len(data) - 8):
            data[i] ^= 0x5A
        path = tmp_path / 'b'
        path.write_bytes(bytes(data))
        with pytest.raises(RingBuilderError):
            RingBuilder.load(str(path))


# -- the ring file ---------------------------------------------------------------

class TestGetRing:
    def test_ring_lookups_match_builder_rows(self, tmp_path):
        b = builder(part_power=9)
        b.add_dev(dev(4, 3, 'sdq', weight=0))
        b.rebalance(seed=7, now=T0)
        data = b.get_ring()
        assert data.part_power == 9 and data.replicas == 3
        assert data.version == b.version
        path = str(tmp_path / 'object.ring.gz')
        data.save(path)
        ring = Ring(path, hash_prefix=b'p', hash_suffix=b's')
        assert ring.partition_count == 512
        for p in range(512):
            assert [d['id'] for d in ring.get_part_nodes(p)] == \
                [row[p] for row in b._rows]
        for name in ('a', 'b', 'c'):
            part, nodes = ring.get_nodes('acct', 'cont', name)
            for node in nodes:
                bdev = b.devs[node['id']]
                assert (node['ip'], node['port'], node['device']) == \
                    (bdev['ip'], bdev['port'], bdev['device'])
            # handoffs never include the zero-weight device 16
            assert 16 not in {h['id'] for h in ring.get_more_nodes(part)}

    def test_ring_round_trips_through_file(self, tmp_path):
        b = builder()
        b.rebalance(seed=1, now=T0)
        path = str(tmp_path / 'r.ring.gz')
        b.get_ring().save(path)
        back = RingData.load(path)
        assert [list(r) for r in back.replica2part2dev] == \
            [list(r) for r in b._rows]
        assert [d['id'] for d in back.devs] == list(range(16))

    def test_ring_after_removal_has_hole(self, tmp_path):
        b = builder()
        b.rebalance(seed=1, now=T0)
        b.remove_dev(2)
        b.rebalance(seed=1, now=T0 + 1)
        data = b.get_ring()
        assert data.devs[2] is None
        assert all(2 not in row for row in data.replica2part2dev)
        path = str(tmp_path / 'r.ring.gz')
        data.save(path)
        ring = Ring(path, hash_prefix=b'p', hash_suffix=b's')
        assert all(2 not in [d['id'] for d in ring.get_part_nodes(p)]
                   for p in range(ring.partition_count))

    def test_ring_has_server_fields_only(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        assert set(b.get_ring().devs[0]) == {
            'id', 'region', 'zone', 'ip', 'port', 'replication_ip',
            'replication_port', 'device', 'weight', 'meta'}


# -- reports ---------------------------------------------------------------

class TestReports:
    def test_dispersion_report_symmetric(self):
        b = builder(zones=3, replicas=3)
        b.rebalance(seed=1, now=T0)
        rep = b.dispersion_report()
        assert rep['max_dispersion'] == 0.0
        tiers = rep['tiers']
        assert tiers[(1,)]['level'] == 'region'
        assert tiers[(1,)]['counts'] == [0, 0, 0, 256]
        assert tiers[(1,)]['max_replicas'] == 3
        for z in (1, 2, 3):
            t = tiers[(1, z)]
            assert t['level'] == 'zone'
            assert t['max_replicas'] == 1
            assert t['counts'] == [0, 256, 0, 0]
        for key, t in tiers.items():
            assert len(t['counts']) == 4
            assert sum(t['counts']) == 256
            assert t['level'] == ('region', 'zone', 'host', 'device')[
                len(key) - 1]
        host = tiers[(1, 1, '10.1.1.1')]
        dev0 = tiers[(1, 1, '10.1.1.1', 0)]
        assert dev0['level'] == 'device' and dev0['max_replicas'] == 1
        # 12 equal devices: one holds 768 / 12 = 64 parts; its host two
        # devices' worth, never 2 replicas of a part
        assert dev0['counts'] == [256 - 64, 64, 0, 0]
        assert host['counts'] == [256 - 128, 128, 0, 0]

    def test_dispersion_report_lopsided(self):
        # zone 1 has 4x zone 2 and 3's weight: 3 replicas with overload 0
        # put two replicas of every part in zone 1
        b = RingBuilder(8, 3, 1)
        for h in (1, 2):
            for n in 'ab':
                b.add_dev(dev(1, h, 'sd' + n))
        b.add_dev(dev(2, 1))
        b.add_dev(dev(3, 1))
        assert b.get_required_overload() == pytest.approx(1.0)
        b.rebalance(seed=1, now=T0)
        rep = b.dispersion_report()
        assert rep['max_dispersion'] == pytest.approx(100.0)
        assert rep['tiers'][(1, 1)]['counts'] == [0, 0, 256, 0]
        assert rep['tiers'][(1, 1)]['max_replicas'] == 1
        # each device gets exactly its weight share: 768 / 6 = 128
        assert b.dev_parts() == [128] * 6
        # with the required overload, full dispersion at some imbalance
        b.set_overload(1.0)
        b.pretend_min_part_hours_passed()
        b.rebalance(seed=1, now=T0 + HOUR)
        rep = b.dispersion_report()
        assert rep['max_dispersion'] == 0.0
        assert rep['tiers'][(1, 1)]['counts'] == [0, 256, 0, 0]
        assert b.dev_parts()[4:] == [256, 256]
        assert b.get_balance() == pytest.approx(100.0)

    def test_required_overload(self):
        assert builder().get_required_overload() == pytest.approx(0.0)
        assert builder(zones=3, replicas=3).get_required_overload() == \
            pytest.approx(0.0)
        b = builder(zones=3, replicas=3)
        b.set_dev_weight(0, 400)
        b.set_dev_weight(1, 400)
        req = b.get_required_overload()
        assert req > 0
        # it is a fraction: with it, the light zones reach one replica
        b.set_overload(req)
        b.rebalance(seed=2, now=T0)
        assert b.dispersion_report()['max_dispersion'] == 0.0
        # and does not change the overload set
        assert b.overload == req

    def test_required_overload_hand_computed(self):
        # 2 zones, 2 replicas, weights 300 vs 100: zone 2 holds 0.5 by
        # weight and needs 1 for dispersion -> overload 1.0
        b = RingBuilder(6, 2, 1)
        for n in 'abc':
            b.add_dev(dev(1, 1, 'sd' + n))
        b.add_dev(dev(2, 1))
        assert b.get_required_overload() == pytest.approx(1.0)

    def test_balance_reports(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        assert b.parts_wanted() == [pytest.approx(48)] * 16
        assert b.dev_balances() == [pytest.approx(0)] * 16
        b.set_dev_weight(0, 0)
        # dev 0 holds 48 parts it no longer wants
        assert b.dev_balances()[0] == 999.99
        assert b.get_balance() == 999.99
        b.set_dev_weight(0, 50)
        wanted = 768 * 50 / 1550
        assert b.dev_balances()[0] == pytest.approx(100 * 48 / wanted - 100)

    def test_weight_of_one_part(self):
        b = builder()
        assert b.weight_of_one_part() == pytest.approx(256 * 3 / 1600)
        assert RingBuilder(8, 3, 1).weight_of_one_part() == 0

    def test_balance_holes_and_removed(self):
        b = builder()
        b.rebalance(seed=1, now=T0)
        b.remove_dev(1)
        assert b.parts_wanted()[1] == 0.0
        b.rebalance(seed=1, now=T0 + 1)
        assert b.parts_wanted()[1] is None
        assert b.dev_balances()[1] is None
        assert math.isclose(sum(w for w in b.parts_wanted() if w), 768)
