"""The compute scheduler: pure host filtering, weighing and selection.

The API server loads host records, builds a Request and calls select_host;
this package does no I/O of its own.
"""
from compute.scheduler.filters import (
    ALL_FILTERS, DEFAULT_FILTERS, ComputeFilter, CoreFilter, DiskFilter,
    HostFilter, ImagePropertiesFilter, RamFilter)
from compute.scheduler.hosts import Flavor, HostState, Request
from compute.scheduler.select import (
    NO_VALID_HOST, NoValidHost, SchedulerOptions, claim, filter_hosts,
    rank_hosts, scheduler_options, select_host)
from compute.scheduler.weighers import (
    ALL_WEIGHERS, DEFAULT_WEIGHERS, CpuWeigher, DiskWeigher, RamWeigher,
    Weigher)

__all__ = [
    'ALL_FILTERS', 'DEFAULT_FILTERS', 'ComputeFilter', 'CoreFilter',
    'DiskFilter', 'HostFilter', 'ImagePropertiesFilter', 'RamFilter',
    'Flavor', 'HostState', 'Request',
    'NO_VALID_HOST', 'NoValidHost', 'SchedulerOptions', 'claim',
    'filter_hosts', 'rank_hosts', 'scheduler_options', 'select_host',
    'ALL_WEIGHERS', 'DEFAULT_WEIGHERS', 'CpuWeigher', 'DiskWeigher',
    'RamWeigher', 'Weigher',
]
