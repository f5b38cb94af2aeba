"""Tests for the target arithmetic (rings/targets.py).

Expected numbers are worked out by hand in the comments from the module's
definitions: weighted share (capped by device count), max_replicas (even
spread over siblings) and target (weighted share, bent toward dispersion
by at most ``overload`` times a tier's weighted share).
"""
import math
import random

import pytest

from rings import targets as tg


def approx(x):
    return pytest.approx(x, abs=1e-9)


# -- waterfill ----------------------------------------------------------------

class TestWaterfill:
    def test_proportional_when_no_cap_binds(self):
        assert tg.waterfill(6.0, [1, 2, 3], [10, 10, 10]) == \
            [approx(1), approx(2), approx(3)]

    def test_equal_weights(self):
        assert tg.waterfill(3.0, [5, 5, 5, 5], [1, 1, 1, 1]) == \
            [approx(0.75)] * 4

    def test_cap_pins_and_rest_redistributed(self):
        # 3 split 10:1:1 would give the first 2.5 > cap 1; it is pinned at
        # 1 and the other 2 split 1:1
        assert tg.waterfill(3.0, [10, 1, 1], [1, 5, 5]) == \
            [approx(1), approx(1), approx(1)]

    def test_cascading_caps(self):
        # first pass: 10 * [8, 4, 2, 1]/15 = 5.33, 2.67, 1.33, 0.67 -> the
        # first is pinned at 2; 8 left over [4, 2, 1]: 4.57 (> cap 3, pinned)
        # 2.29, 1.14 -> 5 left over [2, 1]: 3.33 (> cap 3 -> pinned), 1.67
        # -> 2 left for the last: 2
        shares = tg.waterfill(10.0, [8, 4, 2, 1], [2, 3, 3, 10])
        assert shares == [approx(2), approx(3), approx(3), approx(2)]

    def test_zero_weight_and_zero_cap_get_nothing(self):
        shares = tg.waterfill(2.0, [0, 1, 1, 5], [4, 4, 4, 0])
        assert shares == [approx(0), approx(1), approx(1), approx(0)]

    def test_total_beyond_caps_fills_caps(self):
        assert tg.waterfill(10.0, [1, 1], [2, 3]) == [approx(2), approx(3)]

    def test_nothing_to_split(self):
        assert tg.waterfill(0.0, [1, 2], [3, 3]) == [0.0, 0.0]
        assert tg.waterfill(5.0, [], []) == []

    def test_random_invariants(self):
        rng = random.Random(42)
        for _ in range(500):
            n = rng.randint(1, 8)
            weights = [rng.choice([0, 0.5, 1, 3, 100]) for _ in range(n)]
            caps = [rng.choice([0, 1, 2, 3]) for _ in range(n)]
            total = rng.uniform(0, 10)
            shares = tg.waterfill(total, weights, caps)
            usable = [i for i in range(n) if weights[i] > 0 and caps[i] > 0]
            assert all(s <= c + 1e-9 for s, c in zip(shares, caps))
            assert all(shares[i] == 0 for i in range(n) if i not in usable)
            assert math.isclose(sum(shares),
                                min(total, sum(caps[i] for i in usable)),
                                abs_tol=1e-7)
            # shares below their cap are proportional to weight
            free = [i for i in usable if shares[i] < caps[i] - 1e-7]
            for i in free:
                for j in free:
                    assert math.isclose(shares[i] * weights[j],
                                        shares[j] * weights[i],
                                        rel_tol=1e-6, abs_tol=1e-9)
                # a share pinned at its cap got less per unit of weight
                # than the free ones (it was pinned because its
                # proportional share would have passed the cap)
                for j in usable:
                    if j not in free:
                        assert shares[j] / weights[j] <= \
                            shares[i] / weights[i] + 1e-7


# -- the tree ------------------------------------------------------------------

def dev(dev_id, region, zone, ip, weight):
    return {'id': dev_id, 'region': region, 'zone': zone, 'ip': ip,
            'weight': weight}


def layout(spec):
    """spec: {(region, zone): {ip: [weights]}} -> list of device dicts."""
    devs = []
    for (region, zone), hosts in sorted(spec.items()):
        for ip, weights in sorted(hosts.items()):
            for w in weights:
                devs.append(dev(len(devs), region, zone, ip, w))
    return devs


def tree(devs, replicas, overload=0.0):
    nodes, dev_node = tg.build_tree(devs)
    tg.compute_targets(nodes, replicas, overload)
    return nodes, dev_node, {n.key: n for n in nodes}


class TestBuildTree:
    def test_structure_weights_and_counts(self):
        devs = layout({(1, 1): {'a': [100, 0], 'b': [50]},
                       (1, 2): {'c': [200]},
                       (2, 1): {'d': [10, 20]}})
        nodes, dev_node = tg.build_tree(devs)
        by_key = {n.key: n for n in nodes}
        root = nodes[0]
        assert root.key == () and root.level == -1
        assert root.weight == 380 and root.ndevs == 5  # the 0 is not counted
        assert by_key[(1,)].weight == 350 and by_key[(1,)].ndevs == 3
        assert by_key[(1, 1)].weight == 150 and by_key[(1, 1)].ndevs == 2
        assert by_key[(1, 1, 'a')].ndevs == 1
        assert by_key[(2, 1, 'd')].weight == 30
        assert [c.key for c in root.children] == [(1,), (2,)]
        assert [c.key for c in by_key[(1,)].children] == [(1, 1), (1, 2)]
        for d in devs:
            node = dev_node[d['id']]
            assert node.level == 3 and node.dev_id == d['id']
            assert node.key == (d['region'], d['zone'], d['ip'], d['id'])
            assert node.parent.key == node.key[:3]
            assert node.parent.parent.parent.parent is root

    def test_breadth_first_with_indexes(self):
        devs = layout({(1, 1): {'a': [1, 1]}, (1, 2): {'b': [1]}})
        nodes, _ = tg.build_tree(devs)
        assert [n.level for n in nodes] == sorted(n.level for n in nodes)
        assert [n.index for n in nodes] == list(range(len(nodes)))
        # 1 root + 1 region + 2 zones + 2 hosts + 3 devices
        assert len(nodes) == 9

    def test_tier_key(self):
        d = dev(7, 2, 3, '10.0.0.1', 1)
        assert [tg.tier_key(d, lvl) for lvl in range(4)] == \
            [(2,), (2, 3), (2, 3, '10.0.0.1'), (2, 3, '10.0.0.1', 7)]


# -- targets -----------------------------------------------------------------

class TestComputeTargets:
    def test_equal_zones_target_is_weight_share(self):
        # 4 zones of one 100-weight device, 3 replicas: 0.75 each
        devs = layout({(1, z): {'h%d' % z: [100]} for z in range(4)})
        nodes, _, by = tree(devs, 3)
        assert nodes[0].target == 3
        assert by[(1,)].target == approx(3)
        for z in range(4):
            zone = by[(1, z)]
            assert zone.weighted == approx(0.75)
            assert zone.target == approx(0.75)
            assert zone.max_replicas == 1
            assert zone.hi == 1

    def test_unequal_weights_no_dispersion_problem(self):
        # 4 zones weighted 1:1:1:2 with 2 replicas: shares .4 .4 .4 .8,
        # all under the even-spread maximum of 1
        devs = layout({(1, 1): {'a': [100]}, (1, 2): {'b': [100]},
                       (1, 3): {'c': [100]}, (1, 4): {'d': [100, 100]}})
        _, _, by = tree(devs, 2)
        assert [by[(1, z)].target for z in (1, 2, 3, 4)] == \
            [approx(.4), approx(.4), approx(.4), approx(.8)]

    def heavy_zone(self):
        # zone 1: 4 devices of 100 on 2 hosts (weight 400), zones 2 and 3:
        # one 100 device each. 3 replicas, weight share 2 : 0.5 : 0.5; full
        # dispersion wants 1 : 1 : 1.
        return layout({(1, 1): {'a': [100, 100], 'b': [100, 100]},
                       (1, 2): {'c': [100]}, (1, 3): {'d': [100]}})

    def test_heavy_zone_overload_zero_keeps_weight_share(self):
        _, dev_node, by = tree(self.heavy_zone(), 3, overload=0.0)
        assert by[(1, 1)].weighted == approx(2)
        assert by[(1, 1)].max_replicas == 1
        assert by[(1, 1)].target == approx(2)     # balance wins
        assert by[(1, 1)].hi == 2
        assert by[(1, 2)].target == approx(0.5)
        assert by[(1, 3)].target == approx(0.5)
        for d in range(4):
            assert dev_node[d].target == approx(0.5)

    def test_heavy_zone_large_overload_gives_dispersion(self):
        _, dev_node, by = tree(self.heavy_zone(), 3, overload=10.0)
        for z in (1, 2, 3):
            assert by[(1, z)].target == approx(1)
            assert by[(1, z)].max_replicas == 1
            assert by[(1, z)].hi == 1
        # zone 1's one replica spread over its hosts and devices by weight
        assert by[(1, 1, 'a')].target == approx(0.5)
        for d in range(4):
            assert dev_node[d].target == approx(0.25)
        assert dev_node[4].target == approx(1)
        assert dev_node[5].target == approx(1)

    def test_heavy_zone_partial_overload(self):
        # overload 0.5: zones 2 and 3 may grow to 0.5 * 1.5 = 0.75, so zone
        # 1 sheds 0.5 and keeps 1.5
        _, _, by = tree(self.heavy_zone(), 3, overload=0.5)
        assert by[(1, 1)].target == approx(1.5)
        assert by[(1, 2)].target == approx(0.75)
        assert by[(1, 3)].target == approx(0.75)
        # required overload for full dispersion here is exactly 1.0:
        # 0.5 * (1 + 1.0) = 1
        _, _, by = tree(self.heavy_zone(), 3, overload=1.0)
        assert by[(1, 2)].target == approx(1)
        _, _, by = tree(self.heavy_zone(), 3, overload=0.99)
        assert by[(1, 2)].target < 1 - 1e-6

    def test_hard_device_cap(self):
        # one host, devices 1000/100/100, 2 replicas: the big device's
        # weight asks for 1.67 replicas but a device holds at most one copy
        devs = layout({(1, 1): {'a': [1000, 100, 100]}})
        for overload in (0.0, 10.0):
            _, dev_node, _ = tree(devs, 2, overload)
            assert dev_node[0].weighted == approx(1)
            assert dev_node[0].target == approx(1)
            assert dev_node[1].target == approx(0.5)
            assert dev_node[2].target == approx(0.5)

    def test_tier_cap_by_device_count(self):
        # zone 1 has one device of weight 900, zone 2 two of 50: 2 replicas
        # -> zone 1 capped at 1, zone 2 takes the other replica
        devs = layout({(1, 1): {'a': [900]}, (1, 2): {'b': [50], 'c': [50]}})
        _, _, by = tree(devs, 2)
        assert by[(1, 1)].target == approx(1)
        assert by[(1, 2)].target == approx(1)

    def test_more_replicas_than_devices(self):
        devs = layout({(1, 1): {'a': [100, 100]}})
        nodes, dev_node, _ = tree(devs, 3)
        assert nodes[0].target == 2
        assert dev_node[0].target == approx(1)

    def test_zero_weight_device_gets_nothing(self):
        devs = layout({(1, 1): {'a': [100, 0]}, (1, 2): {'b': [100]}})
        _, dev_node, _ = tree(devs, 2)
        assert dev_node[1].target == 0
        assert dev_node[1].max_replicas == 0
        assert dev_node[0].target == approx(1)

    def test_regions(self):
        # two regions weighted 3:1, 2 replicas: share 1.5 / 0.5; dispersion
        # wants 1 / 1; overload 1.0 lets region 2 reach 1
        devs = layout({(1, 1): {'a': [100]}, (1, 2): {'b': [100]},
                       (1, 3): {'c': [100]}, (2, 1): {'d': [100]}})
        _, _, by = tree(devs, 2, 0.0)
        assert by[(1,)].target == approx(1.5)
        assert by[(1,)].max_replicas == 1
        _, _, by = tree(devs, 2, 1.0)
        assert by[(1,)].target == approx(1)
        assert by[(2,)].target == approx(1)
        for z in (1, 2, 3):
            assert by[(1, z)].target == approx(1 / 3)

    def test_targets_sum_to_parent(self):
        rng = random.Random(7)
        for _ in range(200):
            spec = {}
            for r in range(1, rng.randint(1, 3) + 1):
                for z in range(1, rng.randint(1, 4) + 1):
                    spec[(r, z)] = {
                        'h%d' % h: [rng.choice([0, 50, 100, 150.5, 200])
                                    for _ in range(rng.randint(1, 3))]
                        for h in range(rng.randint(1, 3))}
            devs = layout(spec)
            replicas = rng.randint(1, 5)
            nodes, _, _ = tree(devs, replicas, rng.choice([0, .1, 1, 10]))
            assert nodes[0].target == min(replicas, nodes[0].ndevs)
            for node in nodes:
                assert 0 <= node.target <= node.ndevs + 1e-9
                assert node.hi <= node.ndevs
                assert node.target <= node.hi + 1e-9
                if node.children:
                    assert math.isclose(sum(c.target for c in node.children),
                                        node.target, abs_tol=1e-7)
                    assert math.isclose(
                        sum(c.weighted for c in node.children),
                        node.weighted, abs_tol=1e-7)


# -- quotas ------------------------------------------------------------------

class TestQuotas:
    def check(self, devs, replicas, overload, parts, current=None):
        nodes, _, _ = tree(devs, replicas, overload)
        if current is None:
            quota = tg.quotas(nodes, parts)
        else:
            quota = tg.quotas(nodes, parts, current=current(nodes))
        assert quota[0] == min(replicas, nodes[0].ndevs) * parts
        for node in nodes:
            q = quota[node.index]
            exact = node.target * parts
            # top-down rounding can give every tier the floor or the ceil
            # of its exact share (an integral share: exactly that)
            assert math.floor(exact + 1e-6) == q or \
                math.ceil(exact - 1e-6) == q, (node.key, exact, q)
            # a tier holds at most hi replicas of each part
            assert q <= node.hi * parts
            if node.children:
                assert sum(quota[c.index] for c in node.children) == q
            if node.target == 0:
                assert q == 0
        return nodes, quota

    def test_exact_sum_simple(self):
        devs = layout({(1, z): {'h': [100]} for z in range(3)})
        nodes, quota = self.check(devs, 2, 0.0, 1024)
        # 2048 over 3 equal zones: 683, 683, 682 in some order
        assert sorted(quota[c.index] for c in nodes[1].children) == \
            [682, 683, 683]

    @pytest.mark.parametrize('parts', [1, 2, 3, 64, 1000, 1024, 65536])
    def test_exact_sum_awkward_weights(self, parts):
        devs = layout({(1, 1): {'a': [33.3, 66.6], 'b': [1]},
                       (1, 2): {'c': [77.7]},
                       (2, 1): {'d': [12.5, 12.5, 0.1]}})
        self.check(devs, 3, 0.0, parts)
        self.check(devs, 3, 0.3, parts)

    def test_current_holder_rounds_up_only_with_a_remainder(self):
        # 2 replicas over hosts weighted 101 / 50 / 51: host a's share is
        # exactly 1.0 (64 of 64 parts, one per part), b 31.68, c 32.32. One
        # of b, c rounds up; a holding 65 now (before a weight change) must
        # not take the extra one: 65 is neither floor nor ceil of 64 and
        # more than one replica per part.
        devs = layout({(1, 1): {'a': [101], 'b': [50], 'c': [51]}})

        def current(nodes):
            cur = [0] * len(nodes)
            for n in nodes:
                if n.key == (1, 1, 'a'):
                    cur[n.index] = 65
            return cur
        nodes, quota = self.check(devs, 2, 0.0, 64, current)
        by = {n.key: quota[n.index] for n in nodes}
        assert by[(1, 1, 'a')] == 64
        assert by[(1, 1, 'b')] + by[(1, 1, 'c')] == 64

    def test_current_prefers_holders_among_equal_choices(self):
        # 3 equal hosts, 2 replicas, 64 parts: 42.67 each, two round up;
        # the two currently above 42 should be the ones
        devs = layout({(1, 1): {'a': [1], 'b': [1], 'c': [1]}})

        def current(nodes):
            held = {(1, 1, 'a'): 42, (1, 1, 'b'): 43, (1, 1, 'c'): 43}
            return [held.get(n.key, 0) for n in nodes]
        nodes, quota = self.check(devs, 2, 0.0, 64, current)
        by = {n.key: quota[n.index] for n in nodes}
        assert (by[(1, 1, 'a')], by[(1, 1, 'b')], by[(1, 1, 'c')]) == \
            (42, 43, 43)

    def test_random_layouts_with_current(self):
        rng = random.Random(11)
        for _ in range(300):
            spec = {}
            for r in range(1, rng.randint(1, 2) + 1):
                for z in range(1, rng.randint(1, 3) + 1):
                    spec[(r, z)] = {
                        'h%d' % h: [rng.choice([0, 1, 2, 50, 100, 101])
                                    for _ in range(rng.randint(1, 3))]
                        for h in range(rng.randint(1, 3))}
            devs = layout(spec)
            if not any(d['weight'] for d in devs):
                continue
            parts = rng.choice([16, 64, 256])

            def current(nodes):
                # what a ring held before a change: near the share, +-2
                return [max(0, round(n.target * parts) + rng.randint(-2, 2))
                        for n in nodes]
            self.check(devs, rng.randint(1, 3), rng.choice([0, 0.5]),
                       parts, current)

    def test_random_layouts(self):
        rng = random.Random(3)
        for _ in range(200):
            spec = {}
            for r in range(1, rng.randint(1, 3) + 1):
                for z in range(1, rng.randint(1, 4) + 1):
                    spec[(r, z)] = {
                        'h%d' % h: [rng.choice([0, 1, 50, 100, 33.3, 250])
                                    for _ in range(rng.randint(1, 4))]
                        for h in range(rng.randint(1, 3))}
            devs = layout(spec)
            if not any(d['weight'] for d in devs):
                continue
            self.check(devs, rng.randint(1, 4),
                       rng.choice([0, 0.05, 0.5, 5]),
                       rng.choice([16, 256, 1024, 999]))
