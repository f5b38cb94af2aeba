"""Tests for the ring reader (rings/ring.py).

Rings here are written by hand with RingData, so the expected partitions,
primaries and handoffs follow from the layout, not from running the code.
"""
import array
import collections
import hashlib
import os

import pytest

from rings import ring as ring_module
from rings.ring import Ring, RingError, hash_path
from rings.ringdata import RingData

PREFIX = b'pre'
SUFFIX = b'suf'


def expected_part(path, part_power, prefix=PREFIX, suffix=SUFFIX):
    """Top part_power bits of md5(prefix + path + suffix), done by hand."""
    if isinstance(path, str):
        path = path.encode('utf-8')
    digest = hashlib.md5(prefix + path + suffix).digest()
    top32 = (digest[0] << 24) | (digest[1] << 16) | (digest[2] << 8) | \
        digest[3]
    return top32 >> (32 - part_power)


def dev(dev_id, region=1, zone=1, ip=None, weight=100.0, port=6200,
        device=None):
    return {'id': dev_id, 'region': region, 'zone': zone,
            'ip': ip or '10.%d.%d.%d' % (region, zone, dev_id),
            'port': port, 'replication_ip': ip or '10.0.0.%d' % dev_id,
            'replication_port': port, 'device': device or 'sd%d' % dev_id,
            'weight': weight, 'meta': ''}


def rows_for(parts, assignment):
    """replicas rows from a function part -> list of device ids."""
    per_part = [assignment(p) for p in range(parts)]
    replicas = len(per_part[0])
    return [array.array('I', [per_part[p][r] for p in range(parts)])
            for r in range(replicas)]


def write_ring(path, devs, part_power, assignment, version=1):
    data = RingData(rows_for(1 << part_power, assignment), devs, part_power,
                    version)
    data.save(str(path))
    return data


def open_ring(path, **kw):
    kw.setdefault('hash_prefix', PREFIX)
    kw.setdefault('hash_suffix', SUFFIX)
    return Ring(str(path), **kw)


@pytest.fixture
def simple_ring(tmp_path):
    """8 devices, 3 replicas, part p on devices p%8, (p+1)%8, (p+2)%8."""
    devs = [dev(i, zone=i % 4) for i in range(8)]
    path = tmp_path / 'object.ring.gz'
    write_ring(path, devs, 8, lambda p: [p % 8, (p + 1) % 8, (p + 2) % 8])
    return open_ring(path)


# -- hashing --------------------------------------------------------------

class TestGetPart:
    @pytest.mark.parametrize('args,path', [
        (('AUTH_test',), '/AUTH_test'),
        (('AUTH_test', 'cont'), '/AUTH_test/cont'),
        (('AUTH_test', 'cont', 'obj'), '/AUTH_test/cont/obj'),
        (('a', 'c', 'deep/nested/object name'), '/a/c/deep/nested/object name'),
    ])
    def test_part_is_top_bits_of_salted_md5(self, simple_ring, args, path):
        assert simple_ring.get_part(*args) == expected_part(path, 8)

    def test_many_names_spread_and_match(self, simple_ring):
        seen = set()
        for i in range(2000):
            name = 'o%d' % i
            part = simple_ring.get_part('a', 'c', name)
            assert part == expected_part('/a/c/' + name, 8)
            assert 0 <= part < 256
            seen.add(part)
        # 2000 names over 256 partitions: almost every partition is hit
        assert len(seen) > 240

    def test_bytes_and_str_agree(self, simple_ring):
        assert simple_ring.get_part(b'a', b'c', b'o') == \
            simple_ring.get_part('a', 'c', 'o') == expected_part('/a/c/o', 8)

    def test_unicode_names_hash_as_utf8(self, simple_ring):
        acct, cont, obj = 'AUTH_\u00e9t\u00e9', 'c\u2603', '\U0001f600/\u00fc'
        path = '/%s/%s/%s' % (acct, cont, obj)
        assert simple_ring.get_part(acct, cont, obj) == expected_part(path, 8)
        assert simple_ring.get_part(acct.encode('utf-8'), cont,
                                    obj.encode('utf-8')) == \
            expected_part(path, 8)

    def test_secret_changes_partition_mapping(self, tmp_path):
        devs = [dev(i) for i in range(3)]
        path = tmp_path / 'r.ring.gz'
        write_ring(path, devs, 10, lambda p: [0, 1, 2])
        r1 = open_ring(path, hash_prefix=b'one', hash_suffix=b'')
        r2 = open_ring(path, hash_prefix=b'two', hash_suffix=b'')
        names = ['o%d' % i for i in range(50)]
        parts1 = [r1.get_part('a', 'c', n) for n in names]
        parts2 = [r2.get_part('a', 'c', n) for n in names]
        assert parts1 == [expected_part('/a/c/' + n, 10, b'one', b'')
                          for n in names]
        assert parts2 == [expected_part('/a/c/' + n, 10, b'two', b'')
                          for n in names]
        assert parts1 != parts2

    def test_str_secret_accepted(self, tmp_path):
        path = tmp_path / 'r.ring.gz'
        write_ring(path, [dev(0)], 4, lambda p: [0])
        ring = Ring(str(path), hash_prefix='pre', hash_suffix='suf')
        assert ring.get_part('a') == expected_part('/a', 4)

    def test_part_power_one_and_high(self, tmp_path):
        for pp in (1, 16):
            path = tmp_path / ('r%d.ring.gz' % pp)
            write_ring(path, [dev(0)], pp, lambda p: [0])
            ring = open_ring(path)
            for name in ('x', 'y', 'z', 'w'):
                assert ring.get_part('a', 'c', name) == \
                    expected_part('/a/c/' + name, pp)

    def test_object_without_container_raises(self, simple_ring):
        with pytest.raises(RingError):
            simple_ring.get_part('a', None, 'o')
        with pytest.raises(RingError):
            simple_ring.get_nodes('a', obj='o')

    def test_hash_path_function(self):
        assert hash_path(b'p', b's', 'a', 'c', 'o') == \
            hashlib.md5(b'p/a/c/os').digest()
        assert hash_path(b'', b'', 'a') == hashlib.md5(b'/a').digest()
        with pytest.raises(RingError):
            hash_path(b'', b'', 'a', None, 'o')


# -- primaries ------------------------------------------------------------

class TestPrimaries:
    def test_get_nodes_returns_row_devices_with_index(self, simple_ring):
        for name in ('a', 'b', 'c', 'd', 'e'):
            part, nodes = simple_ring.get_nodes('acct', 'cont', name)
            assert part == expected_part('/acct/cont/' + name, 8)
            assert [n['id'] for n in nodes] == \
                [part % 8, (part + 1) % 8, (part + 2) % 8]
            assert [n['index'] for n in nodes] == [0, 1, 2]
            assert len({n['id'] for n in nodes}) == 3
            for n in nodes:
                base = simple_ring.devs[n['id']]
                for key in ('ip', 'port', 'device', 'zone', 'region',
                            'replication_ip', 'replication_port', 'weight'):
                    assert n[key] == base[key]

    def test_get_nodes_does_not_alias_ring_devs(self, simple_ring):
        _, nodes = simple_ring.get_nodes('a', 'c', 'o')
        nodes[0]['ip'] = 'mangled'
        _, again = simple_ring.get_nodes('a', 'c', 'o')
        assert again[0]['ip'] != 'mangled'
        assert 'index' not in simple_ring.devs[again[0]['id']]

    def test_get_part_nodes_every_partition(self, simple_ring):
        assert simple_ring.partition_count == 256
        assert simple_ring.replica_count == 3
        for part in range(256):
            ids = [n['id'] for n in simple_ring.get_part_nodes(part)]
            assert ids == [part % 8, (part + 1) % 8, (part + 2) % 8]

    def test_part_out_of_range(self, simple_ring):
        with pytest.raises(RingError):
            simple_ring.get_part_nodes(256)
        with pytest.raises(RingError):
            simple_ring.get_part_nodes(-1)

    def test_account_and_container_paths(self, simple_ring):
        part, nodes = simple_ring.get_nodes('acct')
        assert part == expected_part('/acct', 8)
        assert [n['id'] for n in nodes][0] == part % 8
        part, nodes = simple_ring.get_nodes('acct', 'cont')
        assert part == expected_part('/acct/cont', 8)


# -- handoffs -------------------------------------------------------------

def newness(dev, used):
    """0 new region, 1 new zone, 2 new host, 3 nothing new (vs used devs)."""
    if all(d['region'] != dev['region'] for d in used):
        return 0
    if all((d['region'], d['zone']) != (dev['region'], dev['zone'])
           for d in used):
        return 1
    if all((d['region'], d['zone'], d['ip']) !=
           (dev['region'], dev['zone'], dev['ip']) for d in used):
        return 2
    return 3


def check_handoffs(ring, part):
    """Assert every handoff invariant for one partition; return handoffs."""
    primaries = ring.get_part_nodes(part)
    handoffs = list(ring.get_more_nodes(part))
    primary_ids = {d['id'] for d in primaries}
    ids = [d['id'] for d in handoffs]
    assert len(ids) == len(set(ids)), 'duplicate handoff'
    assert not primary_ids & set(ids), 'primary yielded as handoff'
    weighted = {d['id'] for d in ring.devs
                if d is not None and d['weight'] > 0}
    assert set(ids) == weighted - primary_ids, \
        'handoffs must be every weighted non-primary device exactly once'
    # best first: each handoff is as "new" (region > zone > host) as the
    # best device still available at that point
    used = list(primaries)
    left = [ring.devs[i] for i in sorted(weighted - primary_ids)]
    for h in handoffs:
        best = min(newness(d, used) for d in left)
        assert newness(h, used) == best, (part, h['id'], best)
        used.append(h)
        left = [d for d in left if d['id'] != h['id']]
    assert [h['handoff_index'] for h in handoffs] == list(range(len(ids)))
    return handoffs


def multi_region_devs():
    """3 regions; region 1: zones 1-2, 2 hosts each, 2 devices per host;
    regions 2 and 3: one zone, 2 hosts of 1 device; dev 12 (region 2,
    zone 7) has weight 0."""
    devs = []
    i = 0
    for zone in (1, 2):
        for host in (1, 2):
            for _ in range(2):
                devs.append(dev(i, region=1, zone=zone,
                                ip='10.1.%d.%d' % (zone, host)))
                i += 1
    for region in (2, 3):
        for host in (1, 2):
            devs.append(dev(i, region=region, zone=1,
                            ip='10.%d.1.%d' % (region, host)))
            i += 1
    devs.append(dev(i, region=2, zone=7, ip='10.2.7.1', weight=0))
    return devs


class TestHandoffs:
    @pytest.fixture
    def ring(self, tmp_path):
        devs = multi_region_devs()
        # ids 0-7 region 1 (0,1: z1 host1; 2,3: z1 host2; 4,5: z2 host1;
        # 6,7: z2 host2), 8,9 region 2, 10,11 region 3, 12 weight 0
        path = tmp_path / 'r.ring.gz'
        write_ring(path, devs, 6, lambda p: [0, 4])
        return open_ring(path)

    def test_regions_then_zones_then_hosts(self, ring):
        for part in range(ring.partition_count):
            hand = check_handoffs(ring, part)
            # primaries 0 (r1 z1 h1) and 4 (r1 z2 h1): first two handoffs
            # are one device in region 2 and one in region 3
            assert {h['region'] for h in hand[:2]} == {2, 3}
            # no new zones remain after that (region 1 has only z1, z2;
            # regions 2/3 have one weighted zone each); next come the unused
            # hosts: r1 z1 host2, r1 z2 host2, the other host in r2 and r3
            assert {(h['region'], h['zone'], h['ip']) for h in hand[2:6]} \
                == {(1, 1, '10.1.1.2'), (1, 2, '10.1.2.2'),
                    (2, 1, '10.2.1.1'), (2, 1, '10.2.1.2'),
                    (3, 1, '10.3.1.1'), (3, 1, '10.3.1.2')} - \
                {(h['region'], h['zone'], h['ip']) for h in hand[:2]}
            # then the rest: devices sharing a host with something used
            assert {h['id'] for h in hand[6:]} == \
                {1, 5} | ({2, 3} - {hand[i]['id'] for i in range(2, 6)}) | \
                ({6, 7} - {hand[i]['id'] for i in range(2, 6)})
            assert 12 not in {h['id'] for h in hand}

    def test_new_zone_before_new_host(self, tmp_path):
        # one region, zones 1-3; primaries in zone 1 only
        devs = [dev(0, zone=1, ip='h1'), dev(1, zone=1, ip='h2'),
                dev(2, zone=2, ip='h3'), dev(3, zone=2, ip='h3'),
                dev(4, zone=3, ip='h4'), dev(5, zone=1, ip='h1')]
        path = tmp_path / 'r.ring.gz'
        write_ring(path, devs, 5, lambda p: [0])
        ring = open_ring(path)
        for part in range(ring.partition_count):
            hand = check_handoffs(ring, part)
            assert {h['zone'] for h in hand[:2]} == {2, 3}
            assert hand[2]['id'] == 1  # the only new host left
            assert {h['id'] for h in hand[3:]} == {5, 2, 3} - \
                {hand[0]['id'], hand[1]['id']}

    def test_invariants_on_unstructured_layout(self, tmp_path):
        # weights, holes and uneven tiers; rows vary per partition
        devs = []
        for i in range(20):
            devs.append(dev(i, region=1 + i % 2, zone=i % 3,
                            ip='10.0.%d.%d' % (i % 3, i % 5),
                            weight=[0, 50, 100, 250][i % 4]))
        devs[7] = None
        path = tmp_path / 'r.ring.gz'
        live = [i for i, d in enumerate(devs) if d is not None]
        write_ring(path, devs, 7,
                   lambda p: [live[p % len(live)],
                              live[(p + 3) % len(live)],
                              live[(p + 11) % len(live)]])
        ring = open_ring(path)
        for part in range(ring.partition_count):
            hand = check_handoffs(ring, part)
            assert all(h['weight'] > 0 for h in hand)

    def test_zero_weight_primary_not_a_handoff_either(self, tmp_path):
        devs = [dev(0, weight=0), dev(1), dev(2), dev(3, weight=0)]
        path = tmp_path / 'r.ring.gz'
        write_ring(path, devs, 3, lambda p: [0, 1])
        ring = open_ring(path)
        for part in range(8):
            assert [h['id'] for h in ring.get_more_nodes(part)] == [2]

    def test_deterministic_across_instances(self, tmp_path):
        devs = multi_region_devs()
        path = tmp_path / 'r.ring.gz'
        write_ring(path, devs, 6, lambda p: [p % 12, (p + 5) % 12])
        r1, r2 = open_ring(path), open_ring(path)
        orders = []
        for part in range(64):
            a = [h['id'] for h in r1.get_more_nodes(part)]
            b = [h['id'] for h in r2.get_more_nodes(part)]
            assert a == b
            orders.append(tuple(a))
        # and not the same order for every partition
        assert len(set(orders)) > 10

    def test_first_handoff_weight_proportional(self, tmp_path):
        # primary dev 0; devs 1-4 each on their own host of one zone, so
        # all are equally "new" and the first handoff is a weighted choice
        weights = {1: 100.0, 2: 200.0, 3: 300.0, 4: 400.0}
        devs = [dev(0, ip='h0')] + [dev(i, ip='h%d' % i, weight=w)
                                    for i, w in weights.items()]
        pp = 12
        path = tmp_path / 'r.ring.gz'
        write_ring(path, devs, pp, lambda p: [0])
        ring = open_ring(path)
        n = 1 << pp
        first = collections.Counter(next(ring.get_more_nodes(p))['id']
                                    for p in range(n))
        # the ring may share a fixed set of permutations between partitions
        # (HANDOFF_ORDERS); count only that many independent samples
        n_eff = min(n, getattr(ring_module, 'HANDOFF_ORDERS', n))
        total = sum(weights.values())
        for i, w in weights.items():
            share = w / total
            sigma = (share * (1 - share) / n_eff) ** 0.5
            # 5 sigma: generous, yet a uniform choice puts device 1 at 0.25
            # instead of 0.1, 8 sigma away even with 256 samples
            assert abs(first[i] / n - share) < 5 * sigma, (i, first)
        # and heavier devices come first more often
        assert first[1] < first[2] < first[3] < first[4]

    def test_unweighted_choice_would_be_caught(self, tmp_path):
        # 1:9 weights: the light device is the first handoff ~10% of the
        # time, never near the 50% an unweighted order gives
        devs = [dev(0, ip='h0'), dev(1, ip='h1', weight=10.0),
                dev(2, ip='h2', weight=90.0)]
        path = tmp_path / 'r.ring.gz'
        write_ring(path, devs, 12, lambda p: [0])
        ring = open_ring(path)
        light = sum(next(ring.get_more_nodes(p))['id'] == 1
                    for p in range(4096))
        assert 0.02 < light / 4096 < 0.2

    def test_generator_is_lazy_and_prefix_stable(self, ring):
        gen = ring.get_more_nodes(3)
        head = [next(gen)['id'] for _ in range(3)]
        assert head == [h['id'] for h in ring.get_more_nodes(3)][:3]


# -- loading and reloading --------------------------------------------------

class TestReload:
    def test_missing_file(self, tmp_path):
        with pytest.raises(RingError):
            open_ring(tmp_path / 'nope.ring.gz')

    def test_corrupt_file_at_construction(self, tmp_path):
        path = tmp_path / 'bad.ring.gz'
        path.write_bytes(b'not a ring at all')
        with pytest.raises(RingError):
            open_ring(path)

    def test_reload_after_replacement(self, tmp_path):
        path = tmp_path / 'r.ring.gz'
        write_ring(path, [dev(i) for i in range(3)], 4, lambda p: [0, 1],
                   version=1)
        ring = open_ring(path, reload_interval=0)
        assert ring.replica_count == 2
        assert not ring.has_changed()
        assert [d['id'] for d in ring.get_part_nodes(5)] == [0, 1]
        new_devs = [dev(i, ip='192.168.0.%d' % i) for i in range(5)]
        write_ring(path, new_devs, 5, lambda p: [4, 3, 2], version=2)
        assert ring.has_changed()
        part, nodes = ring.get_nodes('a', 'c', 'o')
        assert part == expected_part('/a/c/o', 5)
        assert [d['id'] for d in nodes] == [4, 3, 2]
        assert nodes[0]['ip'] == '192.168.0.4'
        assert ring.replica_count == 3
        assert ring.partition_count == 32
        assert ring.version == 2
        assert len(ring.devs) == 5
        assert not ring.has_changed()

    def test_no_reload_before_interval(self, tmp_path):
        path = tmp_path / 'r.ring.gz'
        write_ring(path, [dev(i) for i in range(3)], 4, lambda p: [0])
        ring = open_ring(path, reload_interval=3600)
        write_ring(path, [dev(i) for i in range(3)], 4, lambda p: [2])
        assert ring.has_changed()
        assert ring.get_part_nodes(0)[0]['id'] == 0

    def test_corrupt_replacement_keeps_loaded_ring(self, tmp_path):
        path = tmp_path / 'r.ring.gz'
        write_ring(path, [dev(i) for i in range(3)], 4, lambda p: [1, 2])
        ring = open_ring(path, reload_interval=0)
        tmp = tmp_path / 'garbage'
        tmp.write_bytes(b'\x1f\x8b garbage that is not gzip')
        os.replace(tmp, path)
        assert ring.has_changed()
        for _ in range(3):
            part, nodes = ring.get_nodes('a', 'c', 'o')
            assert part == expected_part('/a/c/o', 4)
            assert [d['id'] for d in nodes] == [1, 2]
            assert list(ring.get_more_nodes(part))[0]['id'] == 0
        # a good file after the bad one is picked up
        write_ring(path, [dev(i) for i in range(3)], 4, lambda p: [0, 2])
        assert [d['id'] for d in ring.get_part_nodes(0)] == [0, 2]

    def test_corrupt_gzip_stream_replacement_keeps_loaded_ring(
            self, tmp_path):
        # a file with a valid gzip header but a damaged deflate stream (a
        # bad copy, a disk error) must be as harmless as plain garbage
        path = tmp_path / 'r.ring.gz'
        write_ring(path, [dev(i) for i in range(3)], 4, lambda p: [1, 2])
        ring = open_ring(path, reload_interval=0)
        other = tmp_path / 'other.ring.gz'
        write_ring(other, [dev(i) for i in range(40)], 10,
                   lambda p: [p % 40, (p + 1) % 40])
        data = bytearray(other.read_bytes())
        for i in range(20, len(data) - 8):
            data[i] ^= 0x5A
        tmp = tmp_path / 'damaged'
        tmp.write_bytes(bytes(data))
        os.replace(tmp, path)
        assert [d['id'] for d in ring.get_part_nodes(0)] == [1, 2]
        assert ring.partition_count == 16

    def test_corrupt_gzip_stream_at_construction(self, tmp_path):
        other = tmp_path / 'other.ring.gz'
        write_ring(other, [dev(i) for i in range(40)], 10,
                   lambda p: [p % 40, (p + 1) % 40])
        data = bytearray(other.read_bytes())
        for i in range(20, len(data) - 8):
            data[i] ^= 0x5A
        path = tmp_path / 'r.ring.gz'
        path.write_bytes(bytes(data))
        with pytest.raises(RingError):
            open_ring(path)

    def test_file_briefly_missing_keeps_loaded_ring(self, tmp_path):
        path = tmp_path / 'r.ring.gz'
        write_ring(path, [dev(i) for i in range(3)], 4, lambda p: [1])
        ring = open_ring(path, reload_interval=0)
        os.unlink(path)
        assert ring.has_changed()
        assert ring.get_part_nodes(3)[0]['id'] == 1


class TestSecretFromConfig:
    def _ring_file(self, tmp_path):
        path = tmp_path / 'r.ring.gz'
        write_ring(path, [dev(0), dev(1)], 6, lambda p: [0, 1])
        return str(path)

    def test_empty_hash_section_refused(self, tmp_path, monkeypatch):
        conf = tmp_path / 'objstore.conf'
        conf.write_text('[hash]\npath_prefix =\npath_suffix =\n')
        monkeypatch.setenv('OBJSTORE_CONF', str(conf))
        with pytest.raises(RingError):
            Ring(self._ring_file(tmp_path))

    def test_missing_config_refused(self, tmp_path, monkeypatch):
        monkeypatch.setenv('OBJSTORE_CONF', str(tmp_path / 'absent.conf'))
        with pytest.raises(RingError):
            Ring(self._ring_file(tmp_path))

    def test_secret_from_config_is_used(self, tmp_path, monkeypatch):
        conf = tmp_path / 'objstore.conf'
        conf.write_text('[hash]\npath_prefix = sekrit\n'
                        'path_suffix = s\u00fcffix\n', encoding='utf-8')
        monkeypatch.setenv('OBJSTORE_CONF', str(conf))
        ring = Ring(self._ring_file(tmp_path))
        for name in ('x', 'y', 'z'):
            assert ring.get_part('a', 'c', name) == expected_part(
                '/a/c/' + name, 6, b'sekrit', 's\u00fcffix'.encode('utf-8'))

    def test_suffix_only_is_enough(self, tmp_path, monkeypatch):
        conf = tmp_path / 'objstore.conf'
        conf.write_text('[hash]\npath_suffix = onlysuffix\n')
        monkeypatch.setenv('OBJSTORE_CONF', str(conf))
        ring = Ring(self._ring_file(tmp_path))
        assert ring.get_part('a') == expected_part('/a', 6, b'',
                                                   b'onlysuffix')


def test_zero_weight_primary_does_not_hide_a_new_region(tmp_path):
    # primaries: dev 0 (region 1, weight 0) and dev 1 (region 2); the only
    # other regions' devices are 2 (region 2) and 3 (region 3): region 3 is
    # new and must come first, although regions "used" number two already
    devs = [dev(0, region=1, ip='h0', weight=0), dev(1, region=2, ip='h1'),
            dev(2, region=2, ip='h2'), dev(3, region=3, ip='h3')]
    path = tmp_path / 'r.ring.gz'
    write_ring(path, devs, 4, lambda p: [0, 1])
    ring = open_ring(path)
    for part in range(16):
        assert [h['id'] for h in ring.get_more_nodes(part)] == [3, 2]
