"""Probe-test fixtures: one real multi-node cluster per test module, and
the convergence figures every scenario reports.

A module may set ``CLUSTER_OPTIONS`` (keyword arguments of
cluster.Cluster, e.g. ``{'small_devices': {2: 24 << 20}}``). Leftovers of
a crashed earlier session (namespaces, links, mounts, processes) are
cleaned up before the first cluster starts; everything this session
creates is released at its end even when tests fail.

Each scenario calls ``record(...)`` with how long convergence took and how
many objects it checked; the figures are printed, written as JSON next to
the module's cluster, and summed up (table + JSON path) at session end.
"""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cluster as probe_cluster  # noqa: E402
import topology  # noqa: E402

_RESULTS = []


@pytest.fixture(scope='session')
def probe_registry():
    topology.sweep_leftovers()
    registry = topology.Registry()
    try:
        yield registry
    finally:
        topology.release(registry.data)
        registry.discard()


@pytest.fixture(scope='module')
def cluster(request, tmp_path_factory, probe_registry):
    options = dict(getattr(request.module, 'CLUSTER_OPTIONS', {}))
    name = request.module.__name__.rsplit('.', 1)[-1]
    root = tmp_path_factory.mktemp(name) / 'var'
    made = probe_cluster.Cluster(str(root), registry=probe_registry,
                                 **options)
    try:
        made.start()
    except probe_cluster.Unsupported as e:
        made.close()
        pytest.skip(str(e))
    except BaseException:
        made.close()
        raise
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def record(request, cluster):
    """record(converged_seconds=..., objects_checked=..., **more)."""
    def record(**figures):
        entry = {'scenario': request.node.name,
                 'module': request.module.__name__.rsplit('.', 1)[-1],
                 'network': cluster.network.kind}
        entry.update(figures)
        entry = json.loads(json.dumps(entry))   # figures as they are now
        path = os.path.join(os.path.dirname(cluster.var),
                            'convergence-%s.json' % request.node.name)
        with open(path, 'w') as f:
            json.dump(entry, f, indent=1, sort_keys=True)
        entry['file'] = path
        _RESULTS.append(entry)
        print('\nPROBE %s' % _describe(entry))
        return entry
    return record


def _describe(entry):
    skip = ('scenario', 'module', 'file')
    return '%s: %s' % (entry['scenario'], ', '.join(
        '%s=%s' % (k, entry[k]) for k in sorted(entry) if k not in skip))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _RESULTS:
        return
    terminalreporter.section('probe convergence figures')
    for entry in _RESULTS:
        terminalreporter.write_line(_describe(entry))
    try:
        base = config._tmp_path_factory.getbasetemp()
    except AttributeError:
        base = os.path.dirname(_RESULTS[0]['file'])
    path = os.path.join(str(base), 'probe-convergence.json')
    with open(path, 'w') as f:
        json.dump(_RESULTS, f, indent=1, sort_keys=True)
    terminalreporter.write_line('figures written to %s' % path)
