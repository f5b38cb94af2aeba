"""Weighers: raw weights, normalisation, multipliers and their composition."""
import math

import pytest

from compute.scheduler.hosts import Flavor, HostState, Request
from compute.scheduler.weighers import (
    DEFAULT_WEIGHERS, CpuWeigher, DiskWeigher, RamWeigher, normalize,
    resolve_multipliers, weigh)

NOW = 1_700_000_000.0


def host(name, ram_mb=8192, vcpus=4, disk_gb=100, **kw):
    return HostState(name=name, last_heartbeat=NOW, vcpus_total=vcpus,
                     ram_mb_total=ram_mb, disk_gb_total=disk_gb, **kw)


def request(vcpus=1, ram_mb=1024, disk_gb=10, props=None):
    return Request(flavor=Flavor('f', vcpus, ram_mb, disk_gb), now=NOW,
                   image_properties=props or {})


def test_normalize_maps_range_to_unit_interval():
    assert normalize([2048, 6144, 4096]) == [0.0, 1.0, 0.5]
    assert normalize([-10, 10]) == [0.0, 1.0]


def test_normalize_equal_or_single_values_give_no_preference():
    assert normalize([5, 5, 5]) == [0.0, 0.0, 0.0]
    assert normalize([7]) == [0.0]
    assert normalize([]) == []


def test_raw_weights_are_free_capacity_after_placing_the_flavor():
    h = host('a', ram_mb=8192, vcpus=2, disk_gb=100, ram_mb_used=1000,
             vcpus_used=3, disk_gb_used=50)
    r = request(vcpus=2, ram_mb=1024, disk_gb=5, props={'min_disk': '20'})
    assert RamWeigher().raw(h, r) == 8192 - 1000 - 1024
    assert CpuWeigher().raw(h, r) == 2 * 4 - 3 - 2
    assert DiskWeigher().raw(h, r) == 100 - 50 - 20


def test_defaults_spread_on_ram_and_leave_cpu_and_disk_off():
    assert resolve_multipliers(DEFAULT_WEIGHERS) == {
        'ram_weight_multiplier': 1.0, 'cpu_weight_multiplier': 0.0,
        'disk_weight_multiplier': 0.0}


def test_spread_prefers_most_free_ram():
    hosts = [host('small', ram_mb=4096), host('big', ram_mb=16384),
             host('mid', ram_mb=8192)]
    weights = weigh(hosts, request())
    assert weights[1] == 1.0 and weights[0] == 0.0
    assert 0.0 < weights[2] < 1.0


def test_pack_prefers_least_free_ram():
    hosts = [host('small', ram_mb=4096), host('big', ram_mb=16384)]
    weights = weigh(hosts, request(),
                    multipliers={'ram_weight_multiplier': -1.0})
    assert weights == [0.0, -1.0]


def test_cpu_weigher_is_off_by_default():
    hosts = [host('few', vcpus=2), host('many', vcpus=32)]
    assert weigh(hosts, request()) == [0.0, 0.0]
    assert weigh(hosts, request(),
                 multipliers={'cpu_weight_multiplier': 1.0}) == [0.0, 1.0]


def test_weighers_compose_by_multiplier():
    # 'roomy' has more RAM, 'cores' more vCPUs: the multipliers decide.
    hosts = [host('roomy', ram_mb=16384, vcpus=2),
             host('cores', ram_mb=8192, vcpus=16)]
    assert weigh(hosts, request()) == [1.0, 0.0]
    both = {'ram_weight_multiplier': 1.0, 'cpu_weight_multiplier': 2.0}
    assert weigh(hosts, request(), multipliers=both) == [1.0, 2.0]


def test_units_do_not_matter_after_normalisation():
    # A 1 GB RAM difference counts as much as a 64 vCPU difference.
    hosts = [host('a', ram_mb=9216, vcpus=1), host('b', ram_mb=8192,
                                                    vcpus=17)]
    even = {'ram_weight_multiplier': 1.0, 'cpu_weight_multiplier': 1.0}
    assert weigh(hosts, request(), multipliers=even) == [1.0, 1.0]


def test_weigher_list_limits_what_counts():
    hosts = [host('a', ram_mb=4096, vcpus=8), host('b', ram_mb=8192,
                                                   vcpus=2)]
    assert weigh(hosts, request(), weighers=(CpuWeigher(),),
                 multipliers={'cpu_weight_multiplier': 1.0,
                              'ram_weight_multiplier': 5.0}) == [1.0, 0.0]


def test_string_multipliers_are_accepted():
    assert resolve_multipliers(DEFAULT_WEIGHERS,
                               {'ram_weight_multiplier': '-2.5'})[
        'ram_weight_multiplier'] == -2.5


@pytest.mark.parametrize('multipliers, words', [
    ({'ram_weight_multiplyer': 1.0}, 'unknown weight multiplier '
                                     'ram_weight_multiplyer'),
    ({'ram_weight_multiplier': 'lots'}, 'ram_weight_multiplier must be a '
                                        'number'),
    ({'cpu_weight_multiplier': math.nan}, 'must be a finite number'),
    ({'disk_weight_multiplier': math.inf}, 'must be a finite number'),
    ({'ram_weight_multiplier': True}, 'must be a finite number'),
])
def test_bad_multipliers_are_refused(multipliers, words):
    with pytest.raises(ValueError, match=words):
        weigh([host('a')], request(), multipliers=multipliers)
