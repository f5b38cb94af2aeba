"""Host selection end to end: filters + weighers, failures, claims, config."""
import itertools

import pytest

from compute.scheduler import (
    ComputeFilter, CoreFilter, Flavor, HostState, NoValidHost, RamFilter,
    Request, SchedulerOptions, claim, filter_hosts, rank_hosts,
    scheduler_options, select_host)

NOW = 1_700_000_000.0
TINY = Flavor('m1.tiny', 1, 512, 1)
LARGE = Flavor('m1.large', 4, 4096, 40)


def host(name, ram_mb=8192, vcpus=4, disk_gb=100, **kw):
    kw.setdefault('last_heartbeat', NOW - 1)
    return HostState(name=name, vcpus_total=vcpus, ram_mb_total=ram_mb,
                     disk_gb_total=disk_gb, **kw)


def request(flavor=TINY, props=None, **kw):
    return Request(flavor=flavor, now=NOW, image_properties=props or {},
                   **kw)


# --- choices follow the weighers ------------------------------------------

def test_two_hosts_spread_picks_the_emptier():
    hosts = [host('small', ram_mb=4096), host('big', ram_mb=16384)]
    assert select_host(hosts, request()).name == 'big'


def test_two_hosts_pack_picks_the_fuller():
    hosts = [host('small', ram_mb=4096), host('big', ram_mb=16384)]
    chosen = select_host(hosts, request(),
                         multipliers={'ram_weight_multiplier': -1.0})
    assert chosen.name == 'small'


def test_usage_not_total_decides_the_spread():
    hosts = [host('big-busy', ram_mb=16384, ram_mb_used=14336),
             host('small-idle', ram_mb=4096)]
    assert select_host(hosts, request()).name == 'small-idle'


def test_best_weighted_host_is_skipped_when_filtered():
    hosts = [host('big-dead', ram_mb=65536, last_heartbeat=NOW - 600),
             host('big-off', ram_mb=65536, enabled=False),
             host('small', ram_mb=2048)]
    assert select_host(hosts, request()).name == 'small'


def test_cpu_weigher_can_override_ram_preference():
    hosts = [host('roomy', ram_mb=16384, vcpus=2),
             host('cores', ram_mb=8192, vcpus=16)]
    assert select_host(hosts, request()).name == 'roomy'
    assert select_host(hosts, request(), multipliers={
        'cpu_weight_multiplier': 2.0}).name == 'cores'


def test_spread_with_claims_alternates_equal_hosts():
    hosts = {h.name: h for h in (host('a'), host('b'))}
    placed = []
    for _ in range(4):
        chosen = select_host(hosts.values(), request())
        placed.append(chosen.name)
        hosts[chosen.name] = claim(chosen, TINY)
    assert placed == ['a', 'b', 'a', 'b']


def test_pack_with_claims_fills_one_host_first():
    half = Flavor('half', 1, 1024, 1)
    hosts = {h.name: h for h in (host('a', ram_mb=2048),
                                 host('b', ram_mb=2048))}
    placed = []
    for _ in range(5):
        try:
            chosen = select_host(hosts.values(), request(half), multipliers={
                'ram_weight_multiplier': -1.0})
        except NoValidHost as e:
            placed.append(e.reason)
            break
        placed.append(chosen.name)
        hosts[chosen.name] = claim(chosen, half)
    # a wins the first tie by name, is then the fuller one until full,
    # then b fills; the fifth guest fits nowhere.
    assert placed[:4] == ['a', 'a', 'b', 'b']
    assert placed[4].endswith('RamFilter removed 2 '
                              '(needs 1024 MB, at most 0 MB free)')


# --- determinism ------------------------------------------------------------

def test_ties_go_to_the_first_name_whatever_the_input_order():
    names = ['c', 'a', 'b']
    for order in itertools.permutations(names):
        hosts = [host(n) for n in order]
        assert select_host(hosts, request()).name == 'a'
        assert [h.name for h in rank_hosts(hosts, request())] == \
            ['a', 'b', 'c']


def test_rank_hosts_orders_best_first_then_by_name():
    hosts = [host('z', ram_mb=4096), host('m', ram_mb=16384),
             host('b', ram_mb=4096), host('dead', last_heartbeat=0)]
    assert [h.name for h in rank_hosts(hosts, request())] == ['m', 'b', 'z']


def test_duplicate_host_names_are_refused():
    with pytest.raises(ValueError, match='host a is listed twice'):
        select_host([host('a'), host('a', ram_mb=1)], request())


# --- nothing fits -----------------------------------------------------------

def test_no_valid_host_names_the_filters_and_why():
    hosts = [host('small', ram_mb=2048),
             host('silent', ram_mb=16384, last_heartbeat=NOW - 95)]
    with pytest.raises(NoValidHost) as info:
        select_host(hosts, request(LARGE))
    assert str(info.value) == info.value.reason == (
        'No valid host was found. There are not enough hosts available: '
        '2 hosts; ComputeFilter removed 1 (no heartbeat for 95 s), '
        'RamFilter removed 1 (needs 4096 MB, at most 2048 MB free)')


def test_no_valid_host_keeps_per_host_detail_for_logs():
    hosts = [host('small', ram_mb=2048), host('off', enabled=False)]
    with pytest.raises(NoValidHost) as info:
        select_host(hosts, request(LARGE))
    removed = {name: [(h.name, r) for h, r in failed]
               for name, failed in info.value.removed}
    assert removed == {
        'ComputeFilter': [('off', 'disabled')],
        'RamFilter': [('small', 'needs 4096 MB, 2048 MB free')]}
    assert 'small' not in info.value.reason and 'off' not in \
        info.value.reason


def test_each_host_is_counted_against_the_first_filter_it_fails():
    # Dead and too small: only ComputeFilter, which ran first, counts it.
    hosts = [host('a', ram_mb=1024, last_heartbeat=NOW - 100),
             host('b', ram_mb=8192, vcpus=1, vcpus_used=1)]
    with pytest.raises(NoValidHost) as info:
        select_host(hosts, request(LARGE))
    assert info.value.reason.endswith(
        '2 hosts; ComputeFilter removed 1 (no heartbeat for 100 s), '
        'CoreFilter removed 1 (needs 4 vCPUs, at most 3 vCPUs free)')
    assert 'RamFilter' not in info.value.reason


def test_no_hosts_at_all():
    with pytest.raises(NoValidHost, match='^No valid host was found. There '
                       'are not enough hosts available: no compute hosts '
                       'are registered$'):
        select_host([], request())


def test_one_host_reason_is_singular_and_counts_image_min_disk():
    with pytest.raises(NoValidHost) as info:
        select_host([host('only', disk_gb=30)],
                    request(TINY, props={'min_disk': '50',
                                         'hypervisor_type': 'qemu'}))
    assert info.value.reason == (
        'No valid host was found. There are not enough hosts available: '
        '1 host; DiskFilter removed 1 (needs 50 GB, at most 30 GB free)')


def test_filter_hosts_reports_survivors_and_removals():
    hosts = [host('ok'), host('arm', architecture='aarch64')]
    passed, removed = filter_hosts(hosts, request(props={
        'architecture': 'x86_64'}))
    assert [h.name for h in passed] == ['ok']
    assert [(f.name, [h.name for h, _ in failed]) for f, failed in removed] \
        == [('ImagePropertiesFilter', ['arm'])]


# --- request errors ---------------------------------------------------------

def test_flavor_smaller_than_image_min_ram_is_a_request_error():
    r = request(TINY, props={'min_ram': '1024'})
    with pytest.raises(ValueError, match='flavor m1.tiny has 512 MB of RAM '
                                         'but the image needs at least '
                                         '1024 MB'):
        select_host([host('a')], r)
    # Raised before filtering: even with no hosts it is not NoValidHost.
    with pytest.raises(ValueError) as info:
        select_host([], r)
    assert not isinstance(info.value, NoValidHost)


def test_flavor_equal_to_image_min_ram_is_fine():
    r = request(Flavor('exact', 1, 1024, 1), props={'min_ram': 1024})
    assert select_host([host('a')], r).name == 'a'


def test_unknown_multiplier_is_refused_even_when_nothing_fits():
    with pytest.raises(ValueError, match='unknown weight multiplier'):
        select_host([], request(), multipliers={'ram_weight': 1})


# --- claim ------------------------------------------------------------------

def test_claim_adds_usage_and_leaves_the_original_alone():
    h = host('a', vcpus_used=1, ram_mb_used=100, disk_gb_used=5)
    after = claim(h, LARGE)
    assert (after.vcpus_used, after.ram_mb_used, after.disk_gb_used) == \
        (5, 4196, 45)
    assert (h.vcpus_used, h.ram_mb_used, h.disk_gb_used) == (1, 100, 5)
    assert after.free_ram_mb == h.free_ram_mb - 4096
    assert after.name == 'a' and after.last_heartbeat == h.last_heartbeat


def test_claim_can_reserve_the_image_min_disk():
    r = request(Flavor('zero-disk', 1, 512, 0), props={'min_disk': '8'})
    assert claim(host('a'), r.flavor, disk_gb=r.disk_gb).disk_gb_used == 8
    assert claim(host('a'), r.flavor).disk_gb_used == 0


# --- configuration ----------------------------------------------------------

def test_options_defaults():
    opts = scheduler_options({})
    assert opts.heartbeat_timeout == 60.0
    assert opts.multipliers == {'ram_weight_multiplier': 1.0,
                                'cpu_weight_multiplier': 0.0,
                                'disk_weight_multiplier': 0.0}
    assert [f.name for f in opts.filters] == [
        'ComputeFilter', 'ImagePropertiesFilter', 'RamFilter', 'CoreFilter',
        'DiskFilter']
    assert scheduler_options(None) == SchedulerOptions(
        multipliers=opts.multipliers)


def test_options_from_config_strings():
    opts = scheduler_options({
        'ram_weight_multiplier': '-1.0', 'cpu_weight_multiplier': ' 0.5 ',
        'heartbeat_timeout': '120', 'disk_weight_multiplier': '',
        'enabled_filters': ' RamFilter, ComputeFilter ,,RamFilter',
        'bind_port': '8774'})
    assert opts.multipliers == {'ram_weight_multiplier': -1.0,
                                'cpu_weight_multiplier': 0.5,
                                'disk_weight_multiplier': 0.0}
    assert opts.heartbeat_timeout == 120.0
    assert [type(f) for f in opts.filters] == [RamFilter, ComputeFilter]


def test_options_drive_selection():
    opts = scheduler_options({'ram_weight_multiplier': '-1',
                              'heartbeat_timeout': '120'})
    hosts = [host('small', ram_mb=4096, last_heartbeat=NOW - 90),
             host('big', ram_mb=16384)]
    r = opts.request(TINY, NOW)
    assert r.heartbeat_timeout == 120.0
    assert opts.select(hosts, r).name == 'small'
    # Under the default 60 s timeout the silent small host is out.
    assert scheduler_options({'ram_weight_multiplier': '-1'}).select(
        hosts, request()).name == 'big'


def test_enabled_filters_decide_what_is_checked():
    hosts = [host('tiny', ram_mb=256, vcpus=1)]
    with pytest.raises(NoValidHost, match='RamFilter removed 1'):
        select_host(hosts, request())
    opts = scheduler_options({'enabled_filters': 'ComputeFilter,'
                                                 'CoreFilter'})
    assert [type(f) for f in opts.filters] == [ComputeFilter, CoreFilter]
    assert opts.select(hosts, request()).name == 'tiny'


@pytest.mark.parametrize('conf, words', [
    ({'enabled_filters': 'ComputeFilter, RAMFilter'},
     'unknown scheduler filter RAMFilter; known filters:'),
    ({'enabled_filters': ' , '}, 'enabled_filters names no filter'),
    ({'heartbeat_timeout': '0'}, 'heartbeat_timeout must be above 0'),
    ({'heartbeat_timeout': '-5'}, 'heartbeat_timeout must be above 0'),
    ({'heartbeat_timeout': 'soon'}, 'heartbeat_timeout must be a number'),
    ({'heartbeat_timeout': 'inf'}, 'heartbeat_timeout must be a finite'),
    ({'ram_weight_multiplier': 'spread'},
     'ram_weight_multiplier must be a number'),
    ({'cpu_weight_multiplier': 'nan'},
     'cpu_weight_multiplier must be a finite'),
])
def test_bad_config_values_name_the_key(conf, words):
    with pytest.raises(ValueError, match=words):
        scheduler_options(conf)
