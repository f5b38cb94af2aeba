"""objstore-bench end to end on a tiny workload against a real cluster.

Only that it runs: every phase happens, nothing fails, the JSON has its
fields, and it cleans up. How fast anything is is never asserted here
(the numbers come from test/bench/ on an idle machine).
"""
import json
import os
import subprocess
import sys

import requests

BENCH = os.path.join(os.path.dirname(sys.executable), 'objstore-bench')
TINY = ['--count', '20', '--large-count', '1', '--large-size', '1M',
        '--listing-count', '50', '--full-listings', '5',
        '--prefix-listings', '20', '--concurrency', '8']
PHASES = ['put', 'get', 'head', 'delete', 'large-put', 'large-get',
          'list-full', 'list-prefix']


def bench(cluster, *args, user='test:tester', key='testing'):
    command = [BENCH] if os.path.exists(BENCH) else \
        [sys.executable, '-m', 'objstore.cli.bench']
    env = {k: v for k, v in os.environ.items() if not k.startswith('ST_')}
    return subprocess.run(
        command + ['--auth', cluster['auth_url'], '--user', user,
                   '--key', key] + list(args),
        env=env, capture_output=True, text=True, timeout=300)


def containers(cluster):
    resp = requests.get(cluster['auth_url'], headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
    url, token = resp.headers['X-Storage-Url'], resp.headers['X-Auth-Token']
    listing = requests.get(url, params={'format': 'json'},
                           headers={'X-Auth-Token': token})
    return [c['name'] for c in listing.json()] if listing.status_code == 200 \
        else []


def test_every_phase_runs_without_errors_and_cleans_up(aio_cluster):
    done = bench(aio_cluster, '--json', '--processes', '2', *TINY)
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert list(report['phases']) == PHASES
    for name, phase in report['phases'].items():
        assert phase['errors'] == 0, (name, phase)
        assert phase['ops'] > 0 and phase['seconds'] > 0
        for field in ('ops_per_s', 'mb_per_s', 'p50_ms', 'p95_ms',
                      'p99_ms', 'client_cpu_s'):
            assert phase[field] >= 0, (name, field)
    assert report['phases']['put']['ops'] == 20
    assert report['phases']['large-get']['mb_per_s'] > 0
    assert report['setup_errors'] == report['cleanup_errors'] == 0
    assert report['client_cpu_s'] > 0
    assert 'list-full' in done.stderr           # the progress lines
    assert not [c for c in containers(aio_cluster)
                if c.startswith('bench-' + report['run_id'])]


def test_table_output_with_one_process_and_keep(aio_cluster):
    done = bench(aio_cluster, '--processes', '1', '--phases', 'get,head',
                 '--keep', '-q', *TINY)
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ['phase', 'ops', 'errors']
    assert [line.split()[0] for line in lines[1:3]] == ['get', 'head']
    assert done.stderr == ''
    run_id = lines[-1].split()[1].rstrip(':')
    assert 'bench-%s-0' % run_id in containers(aio_cluster)


def test_a_wrong_key_is_one_line_and_status_1(aio_cluster):
    done = bench(aio_cluster, *TINY, key='wrong')
    assert done.returncode == 1
    assert done.stderr.startswith('objstore-bench: auth at ')
    assert done.stderr.count('\n') == 1 and done.stdout == ''
