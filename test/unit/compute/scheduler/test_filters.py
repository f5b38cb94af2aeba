"""Host records, requests and each host filter: pass, fail and reason text."""
import pytest

from compute.scheduler.filters import (
    DEFAULT_FILTERS, ComputeFilter, CoreFilter, DiskFilter, HostFilter,
    ImagePropertiesFilter, RamFilter, filters_from_names)
from compute.scheduler.hosts import Flavor, HostState, Request

NOW = 1_700_000_000.0


def host(name='h1', **kw):
    """A healthy, empty 4-core / 8 GB / 100 GB qemu x86_64 host."""
    fields = dict(name=name, enabled=True, last_heartbeat=NOW - 5,
                  hypervisor_type='qemu', architecture='x86_64',
                  vcpus_total=4, ram_mb_total=8192, disk_gb_total=100)
    fields.update(kw)
    return HostState(**fields)


def request(vcpus=1, ram_mb=512, disk_gb=1, props=None, **kw):
    return Request(flavor=Flavor('test', vcpus, ram_mb, disk_gb), now=NOW,
                   image_properties=props or {}, **kw)


# --- HostState -----------------------------------------------------------

def test_free_capacity_applies_ratios_reserve_and_usage():
    h = host(vcpus_total=4, vcpus_used=3, cpu_allocation_ratio=4.0,
             ram_mb_total=8192, ram_mb_used=1024, reserved_ram_mb=512,
             ram_allocation_ratio=1.5, disk_gb_total=100, disk_gb_used=30,
             disk_allocation_ratio=1.0)
    assert h.free_vcpus == 13
    assert h.free_ram_mb == 8192 * 1.5 - 512 - 1024
    assert h.free_disk_gb == 70


def test_default_ratios_overcommit_cpu_only():
    h = host()
    assert (h.cpu_allocation_ratio, h.ram_allocation_ratio,
            h.disk_allocation_ratio, h.reserved_ram_mb) == (4.0, 1.0, 1.0, 0)
    assert h.free_vcpus == 16 and h.free_ram_mb == 8192


def test_free_capacity_is_whole_and_may_be_negative():
    h = host(ram_mb_total=1000, ram_allocation_ratio=1.0005, ram_mb_used=0)
    assert h.free_ram_mb == 1000          # 1000.5 floored
    assert isinstance(h.free_ram_mb, int)
    assert host(vcpus_total=1, vcpus_used=6).free_vcpus == -2


def test_from_dict_round_trip_and_ignores_extra_columns():
    original = host(vcpus_used=2, ram_mb_used=100, reserved_ram_mb=256)
    row = dict(original.to_dict(), id=7, agent_url='http://x')
    assert HostState.from_dict(row) == original
    assert HostState.from_dict(original.to_dict()) == original


def test_from_dict_accepts_sqlite_and_string_values():
    h = HostState.from_dict({'name': 'n', 'enabled': 0, 'vcpus_total': '8',
                             'ram_mb_total': 4096.0,
                             'cpu_allocation_ratio': '2.5',
                             'last_heartbeat': '123.5'})
    assert h.enabled is False
    assert (h.vcpus_total, h.ram_mb_total) == (8, 4096)
    assert h.cpu_allocation_ratio == 2.5 and h.last_heartbeat == 123.5


def test_from_dict_requires_name():
    with pytest.raises(ValueError, match='needs a name'):
        HostState.from_dict({'vcpus_total': 4})


@pytest.mark.parametrize('field, value, words', [
    ('name', '', 'non-empty name'),
    ('vcpus_used', -1, 'vcpus_used of host h1 must be at least 0'),
    ('ram_mb_total', 'lots', 'ram_mb_total of host h1 must be a whole'),
    ('disk_gb_total', 1.5, 'disk_gb_total of host h1 must be a whole'),
    ('cpu_allocation_ratio', 0, 'cpu_allocation_ratio of host h1'),
    ('ram_allocation_ratio', float('nan'), 'ram_allocation_ratio'),
    ('enabled', 'maybe', 'enabled must be true or false'),
    ('enabled', 2, 'enabled must be true or false'),
    ('last_heartbeat', 'yesterday', 'last_heartbeat must be epoch'),
])
def test_bad_host_values_are_refused(field, value, words):
    with pytest.raises(ValueError, match=words):
        host(**{field: value})


def test_host_names_are_normalised():
    h = host(architecture='AMD64', hypervisor_type=' KVM ')
    assert (h.architecture, h.hypervisor_type) == ('x86_64', 'kvm')


# --- Flavor and Request ----------------------------------------------------

@pytest.mark.parametrize('vcpus, ram_mb, disk_gb, words', [
    (0, 512, 1, 'vcpus must be at least 1'),
    (1, 0, 1, 'ram_mb must be at least 1'),
    (1, 512, -1, 'disk_gb must be at least 0'),
    (True, 512, 1, 'vcpus must be a whole'),
])
def test_bad_flavors_are_refused(vcpus, ram_mb, disk_gb, words):
    with pytest.raises(ValueError, match=words):
        Flavor('f', vcpus, ram_mb, disk_gb)


def test_request_parses_image_properties_from_metadata_strings():
    r = request(props={'min_ram': '1024', 'min_disk': ' 20 ',
                       'architecture': 'arm64', 'hypervisor_type': 'QEMU',
                       'checksum': 'abc'})
    assert (r.min_ram_mb, r.min_disk_gb) == (1024, 20)
    assert (r.architecture, r.hypervisor_type) == ('aarch64', 'qemu')


def test_request_blank_properties_mean_no_requirement():
    r = request(props={'min_ram': '', 'min_disk': None,
                       'architecture': '', 'hypervisor_type': ' '})
    assert (r.min_ram_mb, r.min_disk_gb) == (0, 0)
    assert r.architecture is None and r.hypervisor_type is None


@pytest.mark.parametrize('props, words', [
    ({'min_ram': 'a lot'}, 'min_ram'),
    ({'min_disk': '-3'}, 'min_disk'),
    ({'min_ram': '1.5'}, 'min_ram'),
])
def test_request_refuses_bad_image_properties(props, words):
    with pytest.raises(ValueError, match=words):
        request(props=props)


def test_request_refuses_bad_timeout_and_clock():
    with pytest.raises(ValueError, match='heartbeat_timeout'):
        request(heartbeat_timeout=0)
    with pytest.raises(ValueError, match='now'):
        Request(flavor=Flavor('f', 1, 1), now=float('inf'))


def test_request_accepts_flavor_dict():
    r = Request(flavor={'name': 'm1.tiny', 'vcpus': 1, 'ram_mb': 512,
                        'disk_gb': 1, 'id': 1}, now=NOW)
    assert r.flavor == Flavor('m1.tiny', 1, 512, 1)


def test_request_disk_grows_to_image_min_disk():
    assert request(disk_gb=0, props={'min_disk': '8'}).disk_gb == 8
    assert request(disk_gb=20, props={'min_disk': '8'}).disk_gb == 20


# --- ComputeFilter ---------------------------------------------------------

def test_compute_filter_passes_enabled_fresh_host():
    assert ComputeFilter().passes(host(), request()) == (True, None)


def test_compute_filter_refuses_disabled_host_even_if_fresh():
    assert ComputeFilter().passes(host(enabled=False), request()) == \
        (False, 'disabled')


def test_compute_filter_refuses_silent_host_with_its_age():
    ok, reason = ComputeFilter().passes(host(last_heartbeat=NOW - 95),
                                        request())
    assert (ok, reason) == (False, 'no heartbeat for 95 s')


def test_compute_filter_age_rounds_up_past_the_timeout():
    ok, reason = ComputeFilter().passes(host(last_heartbeat=NOW - 60.2),
                                        request())
    assert (ok, reason) == (False, 'no heartbeat for 61 s')


def test_compute_filter_boundary_is_strict():
    f = ComputeFilter()
    assert f.passes(host(last_heartbeat=NOW - 60), request())[0] is False
    assert f.passes(host(last_heartbeat=NOW - 59.9), request())[0] is True


def test_compute_filter_uses_the_request_timeout():
    h = host(last_heartbeat=NOW - 90)
    assert ComputeFilter().passes(h, request())[0] is False
    assert ComputeFilter().passes(h, request(heartbeat_timeout=120)) == \
        (True, None)


def test_compute_filter_accepts_heartbeat_from_a_clock_ahead():
    assert ComputeFilter().passes(host(last_heartbeat=NOW + 30),
                                  request()) == (True, None)


def test_compute_filter_host_that_never_reported():
    assert ComputeFilter().passes(host(last_heartbeat=0), request()) == \
        (False, 'never sent a heartbeat')


def test_compute_filter_summary_counts_and_quotes_freshest_silence():
    f, r = ComputeFilter(), request()
    hosts = [host('a', enabled=False), host('b', last_heartbeat=NOW - 300),
             host('c', last_heartbeat=NOW - 95), host('d', enabled=False),
             host('e', last_heartbeat=0)]
    failures = [(h, f.passes(h, r)[1]) for h in hosts]
    assert f.summarize(failures, r) == (
        'disabled (2 hosts); no heartbeat for 95 s or more (2 hosts); '
        'never sent a heartbeat')
    assert f.summarize(failures[2:3], r) == 'no heartbeat for 95 s'


# --- RamFilter, CoreFilter, DiskFilter ------------------------------------

def test_ram_filter_passes_exact_fit_and_fails_one_mb_short():
    f = RamFilter()
    assert f.passes(host(ram_mb_total=2048), request(ram_mb=2048)) == \
        (True, None)
    assert f.passes(host(ram_mb_total=2047), request(ram_mb=2048)) == \
        (False, 'needs 2048 MB, 2047 MB free')


def test_ram_filter_counts_reserve_usage_and_ratio():
    f, r = RamFilter(), request(ram_mb=4096)
    assert f.passes(host(ram_mb_total=8192, ram_mb_used=2048,
                         reserved_ram_mb=2048), r) == (True, None)
    assert f.passes(host(ram_mb_total=8192, ram_mb_used=4096,
                         reserved_ram_mb=1), r) == \
        (False, 'needs 4096 MB, 4095 MB free')
    assert f.passes(host(ram_mb_total=4000, ram_allocation_ratio=1.5,
                         ram_mb_used=1500), r) == (True, None)


def test_ram_filter_never_reports_negative_free():
    h = host(ram_mb_total=1024, ram_mb_used=2048)
    assert RamFilter().passes(h, request(ram_mb=512)) == \
        (False, 'needs 512 MB, 0 MB free')


def test_ram_filter_summary_quotes_largest_free():
    f, r = RamFilter(), request(ram_mb=4096)
    hosts = [host('a', ram_mb_total=1024), host('b', ram_mb_total=2048)]
    failures = [(h, f.passes(h, r)[1]) for h in hosts]
    assert f.summarize(failures, r) == 'needs 4096 MB, at most 2048 MB free'


def test_core_filter_overcommits_by_ratio():
    f = CoreFilter()
    h = host(vcpus_total=2, vcpus_used=6)     # 2 * 4.0 = 8, 2 left
    assert f.passes(h, request(vcpus=2)) == (True, None)
    assert f.passes(h, request(vcpus=4)) == \
        (False, 'needs 4 vCPUs, 2 vCPUs free')
    assert f.passes(host(vcpus_total=1, vcpus_used=4), request(vcpus=1)) == \
        (False, 'needs 1 vCPU, 0 vCPUs free')
    h1 = host(vcpus_total=1, cpu_allocation_ratio=1.0)
    assert f.summarize([(h1, 'x')], request(vcpus=2)) == \
        'needs 2 vCPUs, at most 1 vCPU free'


def test_disk_filter_uses_larger_of_flavor_and_image_min_disk():
    f = DiskFilter()
    h = host(disk_gb_total=50, disk_gb_used=30)
    assert f.passes(h, request(disk_gb=20)) == (True, None)
    assert f.passes(h, request(disk_gb=10, props={'min_disk': '40'})) == \
        (False, 'needs 40 GB, 20 GB free')
    assert f.passes(h, request(disk_gb=25)) == \
        (False, 'needs 25 GB, 20 GB free')


# --- ImagePropertiesFilter ------------------------------------------------

def test_image_without_requirements_runs_anywhere():
    f = ImagePropertiesFilter()
    odd = host(architecture='ppc64le', hypervisor_type='test')
    assert f.passes(odd, request()) == (True, None)


def test_image_architecture_must_match_host():
    f = ImagePropertiesFilter()
    r = request(props={'architecture': 'aarch64'})
    assert f.passes(host(), r) == \
        (False, 'image needs architecture aarch64, host is x86_64')
    assert f.passes(host(architecture='arm64'), r) == (True, None)


def test_image_architecture_aliases_match():
    r = request(props={'architecture': 'amd64'})
    assert ImagePropertiesFilter().passes(host(), r) == (True, None)


@pytest.mark.parametrize('wanted, host_type, ok', [
    ('qemu', 'qemu', True),
    ('qemu', 'kvm', True),       # KVM is QEMU with acceleration
    ('kvm', 'kvm', True),
    ('kvm', 'qemu', False),      # a KVM image cannot fall back to TCG
    ('QEMU', 'KVM', True),
    ('xen', 'xen', True),
    ('xen', 'qemu', False),
    ('qemu', 'test', False),
    ('lxc', 'kvm', False),
])
def test_image_hypervisor_type_rules(wanted, host_type, ok):
    result = ImagePropertiesFilter().passes(
        host(hypervisor_type=host_type),
        request(props={'hypervisor_type': wanted}))
    if ok:
        assert result == (True, None)
    else:
        assert result == (False, 'image needs hypervisor %s, host runs %s'
                          % (wanted.lower(), host_type.lower()))


def test_image_filter_summary_groups_identical_reasons():
    f = ImagePropertiesFilter()
    r = request(props={'hypervisor_type': 'kvm'})
    hosts = [host('a'), host('b'), host('c', hypervisor_type='xen')]
    failures = [(h, f.passes(h, r)[1]) for h in hosts]
    assert f.summarize(failures, r) == (
        'image needs hypervisor kvm, host runs qemu (2 hosts); '
        'image needs hypervisor kvm, host runs xen')


def test_default_summary_caps_distinct_reasons():
    failures = [(host('h%d' % i), 'reason %d' % i) for i in range(5)]
    assert HostFilter().summarize(failures, request()) == (
        'reason 0; reason 1; reason 2; and 2 other reasons')


# --- registry -------------------------------------------------------------

def test_default_filters_and_order():
    assert [f.name for f in DEFAULT_FILTERS] == [
        'ComputeFilter', 'ImagePropertiesFilter', 'RamFilter', 'CoreFilter',
        'DiskFilter']


def test_filters_from_names_keeps_order_and_refuses_unknown():
    chosen = filters_from_names(['RamFilter', 'ComputeFilter'])
    assert [type(f) for f in chosen] == [RamFilter, ComputeFilter]
    with pytest.raises(ValueError, match='unknown scheduler filters '
                                         'RAMFilter, Nope; known filters: '
                                         'ComputeFilter'):
        filters_from_names(['RAMFilter', 'Nope', 'CoreFilter'])
