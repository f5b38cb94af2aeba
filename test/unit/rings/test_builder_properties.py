"""Property tests for the ring builder (hypothesis).

Random device trees (1-3 regions, 1-5 zones per region, 1-4 hosts per
zone, 1-4 devices per host) and random replica counts are rebalanced, and
the invariants the builder documents are checked from the outside: from
its rows, its device list and the targets of rings.targets (pure
arithmetic, tested on its own in test_targets.py).

Times passed as ``now`` are realistic unix times: after
pretend_min_part_hours_passed() partitions look last moved at the epoch.
"""
import collections
import math

from hypothesis import HealthCheck, assume, example, given, note, settings
from hypothesis import strategies as st

from rings import targets as tg
from rings.builder import RingBuilder

T0 = 1_700_000_000.0
HOUR = 3600.0
EPS = 1e-9

FAST = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
# for properties that only hold on some layouts (assume() drops the rest)
FILTERED = settings(FAST, max_examples=80,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])

few_weights = st.sampled_from([50.0, 100.0, 150.0, 200.0])
any_weights = st.one_of(few_weights,
                        st.floats(1.0, 400.0).map(lambda w: round(w, 2)))


@st.composite
def layouts(draw, weights=any_weights):
    """A list of device dicts (no ids) over a random tree."""
    devs = []
    for region in range(1, draw(st.integers(1, 3)) + 1):
        for zone in range(1, draw(st.integers(1, 5)) + 1):
            for host in range(1, draw(st.integers(1, 4)) + 1):
                for n in range(draw(st.integers(1, 4))):
                    devs.append({'region': region, 'zone': zone,
                                 'ip': '10.%d.%d.%d' % (region, zone, host),
                                 'port': 6200, 'device': 'sd' + 'abcd'[n],
                                 'weight': draw(weights)})
    return devs


@st.composite
def symmetric_layouts(draw):
    """Every region, zone and host alike, one weight: nothing lopsided."""
    shape = [draw(st.integers(1, 3)), draw(st.integers(1, 4)),
             draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    weight = draw(few_weights)
    return [{'region': r, 'zone': z, 'ip': '10.%d.%d.%d' % (r, z, h),
             'port': 6200, 'device': 'sd' + 'abcd'[n], 'weight': weight}
            for r in range(1, shape[0] + 1) for z in range(1, shape[1] + 1)
            for h in range(1, shape[2] + 1) for n in range(shape[3])]


@st.composite
def spread_layouts(draw):
    """Several zones of similar size: the layouts where weight share and
    full dispersion agree (no overload needed) are common here, so the
    properties that only hold there get enough multi-replica examples."""
    devs = []
    for region in range(1, draw(st.sampled_from([1, 1, 2])) + 1):
        for zone in range(1, draw(st.integers(2, 5)) + 1):
            for host in range(1, draw(st.integers(1, 3)) + 1):
                for n in range(draw(st.integers(1, 3))):
                    devs.append({'region': region, 'zone': zone,
                                 'ip': '10.%d.%d.%d' % (region, zone, host),
                                 'port': 6200, 'device': 'sd' + 'abc'[n],
                                 'weight': draw(st.sampled_from(
                                     [100.0, 150.0, 200.0]))})
    return devs


balance_friendly = st.one_of(layouts(few_weights), spread_layouts())


@st.composite
def many_zone_scenarios(draw):
    """2-4 replicas over more zones than replicas, zones alike in shape,
    device weights 100-200: a replicated ring that needs no overload."""
    replicas = draw(st.sampled_from([2, 3, 4]))
    zones = replicas + draw(st.integers(1, 3))
    hosts, per_host = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    devs = [{'region': 1, 'zone': z, 'ip': '10.1.%d.%d' % (z, h),
             'port': 6200, 'device': 'sd' + 'abc'[n],
             'weight': draw(st.sampled_from([100.0, 150.0, 200.0]))}
            for z in range(1, zones + 1) for h in range(1, hosts + 1)
            for n in range(per_host)]
    return (devs, replicas, draw(st.sampled_from(range(6, 11))),
            draw(st.integers(0, 2 ** 32 - 1)))


@st.composite
def scenarios(draw, layout=None):
    devs = draw(layout if layout is not None else layouts())
    # sampled_from: uniform, where integers() leans to the low end; one
    # replica is the easy case, so it is drawn less often
    replicas = min(len(devs), draw(st.sampled_from([1, 2, 2, 3, 3, 4])))
    part_power = draw(st.sampled_from(range(6, 11)))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return devs, replicas, part_power, seed


def make_builder(devs, replicas, part_power, min_part_hours=1, overload=0.0):
    b = RingBuilder(part_power, replicas, min_part_hours)
    for d in devs:
        b.add_dev(dict(d))
    if overload:
        b.set_overload(overload)
    return b


def rows(b):
    return [list(r) for r in b._rows]


def changed_cells(before, after):
    """[(replica, part)] whose device changed."""
    return [(r, p) for r, (x, y) in enumerate(zip(before, after))
            for p in range(len(x)) if x[p] != y[p]]


def tier_chains(b):
    """dev id -> its tier keys (region, zone, host, device)."""
    return {d['id']: [tg.tier_key(d, lvl) for lvl in range(4)]
            for d in b.iter_devs()}


def check_assignment(b):
    """Invariant 1: every replica on a distinct, existing device."""
    assert b.validate()
    assert len(b._rows) == b.replicas
    for p in range(b.parts):
        ids = [row[p] for row in b._rows]
        assert all(i >= 0 and b.devs[i] is not None for i in ids), (p, ids)
        assert len(set(ids)) == b.replicas, (p, ids)


def weight_share_is_feasible(b):
    """True when no device or tier is capped by its device count, so each
    device's target with overload 0 is exactly its weight share."""
    saved = b.overload
    b.overload = 0.0
    try:
        nodes, dev_node = b._tree()
    finally:
        b.overload = saved
    wanted = b.parts_wanted()
    return all(abs(node.weighted * b.parts - wanted[i]) < 1e-6
               for i, node in dev_node.items())


# a random change to a built ring (see apply_change)
change = st.one_of(
    st.tuples(st.just('add'), few_weights, st.integers(0, 10 ** 6)),
    st.tuples(st.just('weight'), st.integers(0, 10 ** 6), few_weights),
    st.tuples(st.just('zero'), st.integers(0, 10 ** 6)))
any_change = st.one_of(change,
                       st.tuples(st.just('remove'), st.integers(0, 10 ** 6)))


def apply_change(b, ch, tag):
    """add: a device on a new host of an existing zone or in a new zone;
    weight: reweight a device; zero: drain a device; remove: remove one.
    Never leaves fewer weighted devices than replicas."""
    if ch[0] == 'add':
        zones = sorted({(d['region'], d['zone']) for d in b.iter_devs()})
        pick = ch[2] % (len(zones) + 1)
        region, zone = zones[pick] if pick < len(zones) else (1, 99)
        b.add_dev({'region': region, 'zone': zone,
                   'ip': '10.77.%d.%d' % (tag, zone), 'port': 6200,
                   'device': 'new', 'weight': ch[1]})
        return
    ids = [d['id'] for d in b.iter_devs() if d['weight'] > 0]
    dev_id = ids[ch[1] % len(ids)]
    if ch[0] == 'weight':
        b.set_dev_weight(dev_id, ch[2])
    elif len(ids) > b.replicas:
        if ch[0] == 'zero':
            b.set_dev_weight(dev_id, 0)
        else:
            b.remove_dev(dev_id)


# -- 1. a valid assignment ------------------------------------------------

@FAST
@given(scenarios(), st.booleans())
def test_every_replica_on_distinct_device(scenario, add_zero_weight):
    devs, replicas, part_power, seed = scenario
    b = make_builder(devs, replicas, part_power)
    if add_zero_weight:
        zero = b.add_dev({'region': 1, 'zone': 1, 'ip': '10.9.9.9',
                          'port': 6200, 'device': 'sdz', 'weight': 0})
    moved, _, removed = b.rebalance(seed=seed, now=T0)
    assert moved == b.parts and removed == 0
    check_assignment(b)
    counts = b.dev_parts()
    assert sum(counts) == b.parts * replicas
    if add_zero_weight:
        assert counts[zero] == 0


# -- 2. dispersion -------------------------------------------------------

@FAST
@given(scenarios(symmetric_layouts()))
def test_symmetric_layout_fully_dispersed_without_overload(scenario):
    devs, replicas, part_power, seed = scenario
    b = make_builder(devs, replicas, part_power)
    assert b.get_required_overload() < 1e-9
    b.rebalance(seed=seed, now=T0)
    check_assignment(b)
    assert b.dispersion_report()['max_dispersion'] == 0


@FAST
@given(scenarios(), st.sampled_from(['large', 'exact']))
def test_enough_overload_gives_full_dispersion(scenario, how):
    """Whenever get_required_overload() <= the overload set, the ring is
    fully dispersed (max_dispersion 0). 'exact' sets the overload to the
    required value itself, as an operator reading the report would."""
    devs, replicas, part_power, seed = scenario
    b = make_builder(devs, replicas, part_power)
    required = b.get_required_overload()
    b.set_overload(10.0 if how == 'large' else required)
    assume(required <= b.overload)
    note('required overload %r' % required)
    b.rebalance(seed=seed, now=T0)
    check_assignment(b)
    report = b.dispersion_report()
    bad = {k: t['counts'] for k, t in report['tiers'].items()
           if any(t['counts'][n] for n in range(t['max_replicas'] + 1,
                                                 replicas + 1))}
    assert report['max_dispersion'] == 0, bad


def check_tier_bounds(b):
    """Every tier holds floor(target) to ceil(target) replicas of every
    part (never more than it has devices): the per-part bounds the builder
    promises (targets.py's ``hi``; the lower bound since "Builder: enforce
    each tier's lower bound"), recomputed here from the targets."""
    nodes, _ = b._tree()
    upper = {n.key: min(n.ndevs, math.ceil(n.target - EPS))
             for n in nodes[1:]}
    lower = {n.key: math.floor(n.target + EPS) for n in nodes[1:]}
    chains = tier_chains(b)
    for p in range(b.parts):
        count = collections.Counter()
        for row in b._rows:
            count.update(chains[row[p]])
        for key, n in count.items():
            assert n <= upper[key], ('above ceil(target)', p, key, n)
        for key, low in lower.items():
            assert count[key] >= low, ('below floor(target)', p, key,
                                       count[key], low)


@FAST
@given(scenarios(), st.sampled_from([0.0, 0.1, 0.5, 10.0]))
def test_no_tier_above_ceil_of_target(scenario, overload):
    devs, replicas, part_power, seed = scenario
    b = make_builder(devs, replicas, part_power, overload=overload)
    b.rebalance(seed=seed, now=T0)
    check_assignment(b)
    check_tier_bounds(b)


def _host(ip, *weights):
    return [{'region': 1, 'zone': 1, 'ip': ip, 'port': 6200,
             'device': 'sd' + 'abcd'[n], 'weight': w}
            for n, w in enumerate(weights)]


@FAST
@given(scenarios(), any_change, st.sampled_from([0.0, 0.1, 10.0]))
# found by hypothesis: dropping device 1 makes host 10.1.1.1's share exactly
# one replica per part; it held 65 of 64 before, quotas() rounded it up to
# 65 again (unreachable), and device 6 kept 2 parts for a target of 0.63
@example(scenario=(_host('10.1.1.1', 50.0, 2.0, 50.0, 1.0) +
                   _host('10.1.1.2', 50.0) + _host('10.1.1.3', 50.0, 1.0),
                   2, 6, 0),
         ch=('zero', 1), overload=0.0)
# found by hypothesis: after device 0 is drained, devices 2 and 4 must each
# hold every part (target 1.0); two parts lack device 2 and device 3 keeps
# 4 parts for a target of 2.1. Fixing it needs a chain across hosts (a
# replica from host 10.1.2.3 to device 2, one from device 3 back to that
# host); balancing host by host never finds it.
@example(scenario=([{'region': 1, 'zone': 1, 'ip': '10.1.1.1', 'port': 6200,
                     'device': 'sda', 'weight': 100.0},
                    {'region': 1, 'zone': 1, 'ip': '10.1.1.2', 'port': 6200,
                     'device': 'sda', 'weight': 150.0}] +
                   [dict(d, zone=2) for d in
                    _host('10.1.2.1', 150.0, 1.0, 314.0) +
                    _host('10.1.2.2', 100.0) + _host('10.1.2.3', 200.0)],
                   4, 6, 0),
         ch=('zero', 0), overload=0.0)
# found by hypothesis: after device 0 is drained, host 10.1.1.2's target
# is 1.0025 replicas, so every part needs one there; part 6 has none
@example(scenario=(_host('10.1.1.1', 50.0, 50.0, 50.0) +
                   _host('10.1.1.2', 50.0, 50.0, 101.0) +
                   [dict(d, zone=2) for d in _host('10.1.2.1', 50.0)] +
                   [dict(d, zone=3) for d in _host('10.1.3.1', 50.0)],
                   2, 6, 0),
         ch=('zero', 0), overload=0.0)
def test_bounds_restored_after_change_when_nothing_locked(scenario, ch,
                                                          overload):
    """With min_part_hours 0 every replica may move, so one rebalance after
    a change brings back the per-part tier bounds and the balance."""
    devs, replicas, part_power, seed = scenario
    b = make_builder(devs, replicas, part_power, min_part_hours=0,
                     overload=overload)
    b.rebalance(seed=seed, now=T0)
    apply_change(b, ch, 1)
    b.rebalance(seed=seed, now=T0 + 1)
    check_assignment(b)
    check_tier_bounds(b)
    check_balanced_to_target(b)


# -- 3. balance ----------------------------------------------------------

def balance_bound(wanted):
    # A device holds an integer number of partition-replicas and its
    # quota is a rounding of its (real) target, so one part of rounding is
    # unavoidable; beyond that we allow 1% of what it wants:
    #     |parts - wanted| <= max(0.01 * wanted, 1 + 1e-6)
    return max(0.01 * wanted, 1 + 1e-6)


@FILTERED
@given(st.one_of(scenarios(balance_friendly), many_zone_scenarios()))
def test_balanced_to_weight_share_when_dispersion_allows(scenario):
    """Layouts where dispersion forces no imbalance (required overload 0)
    and no device is capped: every device within balance_bound of its
    weight share (parts_wanted)."""
    devs, replicas, part_power, seed = scenario
    b = make_builder(devs, replicas, part_power)
    assume(b.get_required_overload() < 1e-9)
    assume(weight_share_is_feasible(b))
    b.rebalance(seed=seed, now=T0)
    check_assignment(b)
    have, wanted = b.dev_parts(), b.parts_wanted()
    off = {i: (have[i], round(wanted[i], 3)) for i in range(len(have))
           if abs(have[i] - wanted[i]) > balance_bound(wanted[i])}
    assert not off, off


@FAST
@given(scenarios(), st.sampled_from([0.0, 0.1, 10.0]))
def test_balanced_to_target(scenario, overload):
    """Any layout, any overload: each device holds its target (the weight
    share bent by caps and overload) within balance_bound."""
    devs, replicas, part_power, seed = scenario
    b = make_builder(devs, replicas, part_power, overload=overload)
    b.rebalance(seed=seed, now=T0)
    check_assignment(b)
    check_balanced_to_target(b)


def check_balanced_to_target(b):
    _, dev_node = b._tree()
    have = b.dev_parts()
    off = {}
    for i, node in dev_node.items():
        want = node.target * b.parts
        if abs(have[i] - want) > balance_bound(want):
            off[i] = (have[i], round(want, 3))
    assert not off, off


# -- 4. min_part_hours ---------------------------------------------------

def at_most_one_replica_per_part(cells):
    per_part = collections.Counter(p for _, p in cells)
    return not per_part or max(per_part.values()) == 1


@FAST
@given(scenarios(), change, change, change)
def test_min_part_hours(scenario, ch1, ch2, ch3):
    devs, replicas, part_power, seed = scenario
    b = make_builder(devs, replicas, part_power, min_part_hours=1)
    b.rebalance(seed=seed, now=T0)
    b.pretend_min_part_hours_passed()

    apply_change(b, ch1, 1)
    t1 = T0 + 10 * HOUR
    before = rows(b)
    b.rebalance(seed=seed, now=t1)
    first = changed_cells(before, rows(b))
    check_assignment(b)
    assert at_most_one_replica_per_part(first), first
    first_parts = {p for _, p in first}

    # less than an hour later: nothing that just moved may move again
    apply_change(b, ch2, 2)
    before = rows(b)
    b.rebalance(seed=seed, now=t1 + 0.5 * HOUR)
    second = changed_cells(before, rows(b))
    check_assignment(b)
    assert not first_parts & {p for _, p in second}
    assert at_most_one_replica_per_part(second), second

    # once the hour has (been pretended to have) passed, anything may move,
    # but still one replica of a part per rebalance
    b.pretend_min_part_hours_passed()
    apply_change(b, ch3, 3)
    before = rows(b)
    b.rebalance(seed=seed, now=t1 + 0.75 * HOUR)
    third = changed_cells(before, rows(b))
    check_assignment(b)
    assert at_most_one_replica_per_part(third), third


@FAST
@given(scenarios(), st.integers(0, 10 ** 6))
def test_removed_device_drains_even_within_min_part_hours(scenario, pick):
    devs, replicas, part_power, seed = scenario
    assume(len(devs) > replicas)
    b = make_builder(devs, replicas, part_power, min_part_hours=24)
    b.rebalance(seed=seed, now=T0)
    victim = pick % len(devs)
    before = rows(b)
    b.remove_dev(victim)
    _, _, removed = b.rebalance(seed=seed, now=T0 + 60)
    assert removed == 1
    check_assignment(b)
    moved = changed_cells(before, rows(b))
    # every partition moved at T0, so only the victim's replicas could go
    assert set(moved) == {(r, p) for r, row in enumerate(before)
                          for p, d in enumerate(row) if d == victim}


# -- 5. minimal movement -------------------------------------------------

def tier_bounds(b):
    nodes, _ = b._tree()
    return {n.key: n.hi for n in nodes}


@FILTERED
@given(st.one_of(scenarios(balance_friendly), many_zone_scenarios()),
       few_weights,
       st.sampled_from(['new region', 'new zone']), st.integers(0, 10 ** 6))
def test_adding_a_device_moves_little(scenario, new_weight, where, pick):
    """Adding one device of weight w moves about its share.

    ideal = parts * replicas * w / total weight after (what the new device
    is meant to receive); need = the cells every under-quota device must
    receive, from the quotas of rings.targets (ideal plus rounding: an old
    device's quota may round up after the change). The rebalance moves no
    more than ceil(1.05 * max(ideal, need)) + 2 replica cells, and at least
    one when ideal >= 1.

    This holds where every over-quota device can hand its excess straight
    to the new one, so the scenarios are restricted to that:
    * weight shares reachable before and after (required overload 0, no
      capped device) and no existing tier's per-part bound changed, so
      dispersion forces no moves of its own;
    * the new device in a new region, or in a new zone of a region whose
      bound never blocks (hi >= replicas): no part holds a replica in its
      tiers yet, so any replica of any part may move to it.
    Elsewhere the lower bound is not ``ideal``: a new device on an existing
    host or zone can only take parts without a replica there, and when the
    initial placement correlated devices (e.g. every part on host A also on
    zone 2) the excess of some devices must travel through a second device.
    Hypothesis found such cases (45 cells for an ideal of 32, 24 for 18),
    where the builder's movement was the minimum possible from that state.
    """
    devs, replicas, part_power, seed = scenario
    b = make_builder(devs, replicas, part_power)
    assume(b.get_required_overload() < 1e-9 and weight_share_is_feasible(b))
    b.rebalance(seed=seed, now=T0)
    b.pretend_min_part_hours_passed()
    bounds_before = tier_bounds(b)
    if where == 'new region':
        region, zone = max(d['region'] for d in devs) + 1, 1
    else:
        region = devs[pick % len(devs)]['region']
        zone = max(d['zone'] for d in devs if d['region'] == region) + 1
    new_id = b.add_dev({'region': region, 'zone': zone,
                        'ip': '10.%d.%d.1' % (region, zone),
                        'port': 6200, 'device': 'sdnew',
                        'weight': new_weight})
    assume(b.get_required_overload() < 1e-9 and weight_share_is_feasible(b))
    bounds_after = tier_bounds(b)
    assume(all(bounds_after[k] == v for k, v in bounds_before.items()))
    if where == 'new zone':
        assume(bounds_after[(region,)] >= replicas)
    total = sum(d['weight'] for d in b.iter_devs())
    ideal = b.parts * replicas * new_weight / total
    nodes, dev_node = b._tree()
    quota = tg.quotas(nodes, b.parts)
    have = b.dev_parts()
    need = sum(max(0, quota[node.index] - have[i])
               for i, node in dev_node.items())
    before = rows(b)
    b.rebalance(seed=seed, now=T0 + HOUR)
    check_assignment(b)
    moved = changed_cells(before, rows(b))
    note('ideal %.2f need %d moved %d, new device has %d' % (
        ideal, need, len(moved), b.dev_parts()[new_id]))
    assert len(moved) <= math.ceil(max(ideal, need) * 1.05) + 2
    if ideal >= 1:
        assert len(moved) >= 1


# -- 6. determinism ------------------------------------------------------

@FAST
@given(scenarios(), any_change)
def test_same_seed_same_rows(scenario, ch):
    devs, replicas, part_power, seed = scenario
    built = []
    for _ in range(2):
        b = make_builder(devs, replicas, part_power)
        b.rebalance(seed=seed, now=T0)
        b.pretend_min_part_hours_passed()
        apply_change(b, ch, 1)
        b.rebalance(seed=seed + 1, now=T0 + HOUR)
        built.append(b)
    assert rows(built[0]) == rows(built[1])
    assert list(built[0]._moved_at) == list(built[1]._moved_at)
    assert built[0].version == built[1].version


# -- 7. save/load is transparent -----------------------------------------

@FAST
@given(scenarios(), any_change, st.booleans())
def test_save_load_then_rebalance_identical(tmp_path_factory, scenario, ch,
                                            passed):
    devs, replicas, part_power, seed = scenario
    path = str(tmp_path_factory.mktemp('b') / 'object.builder')
    kept = make_builder(devs, replicas, part_power)
    kept.rebalance(seed=seed, now=T0)
    kept.save(path)
    loaded = RingBuilder.load(path)
    for b in (kept, loaded):
        if passed:
            b.pretend_min_part_hours_passed()
        apply_change(b, ch, 1)
        b.rebalance(seed=seed, now=T0 + 0.5 * HOUR)
    assert rows(kept) == rows(loaded)
    assert list(kept._moved_at) == list(loaded._moved_at)
    assert kept.devs == loaded.devs
    assert kept.version == loaded.version
