"""objstore-bench without a server: arguments, arithmetic, output shapes."""
import argparse
import io
import json
import socket

import pytest

from objstore.cli import bench, bench_stats
from objstore.cli.bench_progress import Progress
from objstore.cli.bench_runner import share
from objstore.cli.bench_workload import PHASES, Workload

AUTH = ['--auth', 'http://127.0.0.1:1/auth/v1.0', '--user', 'test:tester',
        '--key', 'testing']


# -- arguments -----------------------------------------------------------------

@pytest.mark.parametrize('text,size', [
    ('4096', 4096), ('4K', 4096), ('4k', 4096), ('4KiB', 4096),
    ('64M', 64 << 20), ('1G', 1 << 30), ('2 MiB', 2 << 20), ('0', 0)])
def test_parse_size(text, size):
    assert bench.parse_size(text) == size


@pytest.mark.parametrize('text', ['', 'K', '1.5M', '-1', '4X', '4KB!'])
def test_parse_size_refuses_garbage(text):
    with pytest.raises(argparse.ArgumentTypeError):
        bench.parse_size(text)


def test_parse_phases_keeps_run_order_and_knows_all():
    assert bench.parse_phases('get,put') == ('put', 'get')
    assert bench.parse_phases('list-prefix, large-get,get') == \
        ('get', 'large-get', 'list-prefix')
    assert bench.parse_phases('all') == PHASES
    for bad in ('post', 'put,nope', ','):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_phases(bad)


def test_defaults_follow_the_issue(monkeypatch):
    for name in ('ST_AUTH', 'ST_USER', 'ST_KEY'):
        monkeypatch.delenv(name, raising=False)
    args = bench.parse_args(AUTH)
    assert (args.size, args.count, args.concurrency) == (4096, 1000, 32)
    assert (args.large_size, args.large_count, args.large_concurrency) == \
        (64 << 20, 8, 4)
    assert (args.containers, args.listing_count) == (1, 10000)
    assert args.phases == PHASES and not args.json and not args.keep
    assert args.processes >= 2


def test_credentials_come_from_the_swiftclient_environment(monkeypatch):
    monkeypatch.setenv('ST_AUTH', 'http://h:8080/auth/v1.0')
    monkeypatch.setenv('ST_USER', 'a:u')
    monkeypatch.setenv('ST_KEY', 'k')
    args = bench.parse_args(['--count', '5'])
    assert (args.auth, args.user, args.key) == \
        ('http://h:8080/auth/v1.0', 'a:u', 'k')


@pytest.mark.parametrize('argv', [
    [], AUTH + ['--count', '0'], AUTH + ['--concurrency', '0'],
    AUTH + ['--size', 'big'], AUTH + ['--phases', 'post'],
    AUTH + ['--no-such-option'], AUTH + ['--timeout', '0']])
def test_bad_arguments_give_one_line_and_status_2(argv, monkeypatch,
                                                  capsys):
    for name in ('ST_AUTH', 'ST_USER', 'ST_KEY'):
        monkeypatch.delenv(name, raising=False)
    err = io.StringIO()
    assert bench.main(argv, out=io.StringIO(), err=err) == 2
    text = err.getvalue()
    assert text.startswith('objstore-bench: error: ')
    assert text.count('\n') == 1


def test_unreachable_auth_is_one_line_and_status_1():
    with socket.socket() as s:      # a port nothing listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    err = io.StringIO()
    argv = ['--auth', 'http://127.0.0.1:%d/auth/v1.0' % port,
            '--user', 'u', '--key', 'k']
    assert bench.main(argv, out=io.StringIO(), err=err) == 1
    assert err.getvalue().startswith('objstore-bench: cannot reach ')
    assert err.getvalue().count('\n') == 1


# -- statistics ------------------------------------------------------------------

def test_percentile_interpolates_between_ranks():
    values = [1.0, 2.0, 3.0, 4.0]
    assert bench_stats.percentile(values, 0) == 1.0
    assert bench_stats.percentile(values, 50) == 2.5
    assert bench_stats.percentile(values, 100) == 4.0
    assert bench_stats.percentile(list(range(101)), 99) == 99
    assert bench_stats.percentile([7.0], 95) == 7.0
    assert bench_stats.percentile([], 50) is None
    with pytest.raises(ValueError):
        bench_stats.percentile(values, 101)


def test_summarize_counts_successes_and_rates():
    s = bench_stats.summarize([0.004, 0.001, 0.002, 0.003], errors=1,
                              nbytes=8 * 1000 * 1000, seconds=2.0, cpu=0.25,
                              concurrency=4, first_error='HTTP 503')
    assert s['ops'] == 4 and s['errors'] == 1
    assert s['ops_per_s'] == 2.0 and s['mb_per_s'] == 4.0
    assert s['p50_ms'] == 2.5 and s['p99_ms'] == pytest.approx(3.97)
    assert s['client_cpu_s'] == 0.25 and s['concurrency'] == 4
    assert s['first_error'] == 'HTTP 503'
    for field in bench_stats.PHASE_FIELDS:
        assert field in s


def test_summarize_of_nothing_has_no_latencies_and_no_rates():
    s = bench_stats.summarize([], errors=3, nbytes=0, seconds=0.0)
    assert s['ops'] == 0 and s['ops_per_s'] == 0.0
    assert s['p50_ms'] is None and s['p95_ms'] is None
    assert 'first_error' not in s


def test_merge_parts_spans_first_start_to_last_end():
    parts = [
        {'start': 10.0, 'end': 12.0, 'latencies': [0.1, 0.2], 'errors': 0,
         'bytes': 100, 'cpu': 0.5, 'first_error': None},
        {'start': 10.5, 'end': 13.0, 'latencies': [0.3], 'errors': 2,
         'bytes': 50, 'cpu': 0.25, 'first_error': 'HTTP 500'},
    ]
    merged = bench_stats.merge_parts(parts)
    assert merged['seconds'] == 3.0
    assert sorted(merged['latencies']) == [0.1, 0.2, 0.3]
    assert (merged['errors'], merged['bytes'], merged['cpu']) == (2, 150,
                                                                  0.75)
    assert merged['first_error'] == 'HTTP 500'


def test_table_has_a_row_per_phase_and_dashes_for_no_latency():
    phases = {
        'put': bench_stats.summarize([0.01] * 10, 0, 40960, 1.0),
        'large-get': bench_stats.summarize([], 1, 0, 1.0),
    }
    lines = bench_stats.format_table(phases)
    assert lines[0].split()[:3] == ['phase', 'ops', 'errors']
    assert lines[1].split()[:4] == ['put', '10', '0', '1.00']
    assert lines[2].startswith('large-get') and ' - ' in lines[2]
    assert len({len(line) for line in lines}) == 1    # columns line up


# -- how work is shared ------------------------------------------------------------

@pytest.mark.parametrize('total,concurrency,procs', [
    (1000, 32, 2), (8, 4, 2), (7, 5, 2), (10, 3, 4), (5, 1, 1)])
def test_share_gives_every_request_once_in_proportion(total, concurrency,
                                                      procs):
    seen = []
    for proc in range(procs):
        slots, mine = share(total, concurrency, proc, procs)
        assert all(t % procs == proc for t in slots)
        if not slots:
            assert not mine
        elif total >= concurrency * 4:
            expect = total * len(slots) / concurrency
            assert abs(len(mine) - expect) <= len(slots)
        seen += mine
    assert sorted(seen) == list(range(total))


# -- names ----------------------------------------------------------------------

def test_workload_names_spread_over_containers():
    w = Workload('http://h/v1/AUTH_t', 'tok', 'RUN', containers=3,
                 listing_count=10000)
    assert w.small_path(4) == '/bench-RUN-1/o00000004'
    assert w.large_path(2) == '/bench-RUN-2/large000002'
    assert w.all_containers() == ['bench-RUN-0', 'bench-RUN-1',
                                  'bench-RUN-2', 'bench-RUN-list']
    assert w.prefix_groups == 100
    assert w.listing_name(4217) == 'g017/o00004217'
    assert sum(w.prefix_expected(g) for g in range(100)) == 10000
    small = Workload('u', 't', 'r', listing_count=50)
    assert small.prefix_groups == 5 and small.prefix_expected(4) == 10


# -- progress and the report --------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_rewrites_one_line_on_a_terminal():
    out, clock = io.StringIO(), Clock()
    p = Progress(out, tty=True, clock=clock)
    p.start('get', 100)
    clock.now = 1.0
    p.update(50, 0)
    clock.now = 2.0
    p.update(100, 0)
    p.finish(bench_stats.summarize([0.01] * 100, 0, 0, 2.0))
    text = out.getvalue()
    assert text.count('\r') == 3 and text.count('\n') == 1
    assert 'get: 50/100, 50.0/s' in text
    assert text.rstrip().endswith('0 errors')


def test_progress_into_a_log_writes_now_and_then():
    out, clock = io.StringIO(), Clock()
    p = Progress(out, tty=False, every=5.0, clock=clock)
    p.start('put', 1000)
    for step in range(1, 12):
        clock.now = float(step)
        p.update(step * 10, 0)
    assert '\r' not in out.getvalue()
    assert out.getvalue().count('\n') == 2      # at 5 s and 10 s


def test_quiet_progress_writes_nothing():
    out = io.StringIO()
    p = Progress(out, tty=True, quiet=True)
    p.start('put', 1)
    p.update(1, 0)
    p.note('setup')
    assert out.getvalue() == ''


def _report(errors=0):
    args = bench.parse_args(AUTH + ['--count', '10', '--phases', 'put,get'])
    w = Workload('http://h/v1/AUTH_t', 'tok', 'RUN', count=10)
    run = bench.Run(args, w, Progress(io.StringIO(), quiet=True))
    run.results['put'] = bench_stats.summarize([0.01] * 10, errors, 40960,
                                               1.0, 0.5)
    run.results['get'] = bench_stats.summarize([0.002] * 10, 0, 40960,
                                               0.5, 0.25)
    return run.report()


def test_json_report_shape():
    report = json.loads(json.dumps(_report()))
    assert list(report['phases']) == ['put', 'get']
    for phase in report['phases'].values():
        for field in ('ops', 'ops_per_s', 'mb_per_s', 'p50_ms', 'p95_ms',
                      'p99_ms', 'errors', 'seconds', 'client_cpu_s'):
            assert field in phase
    assert report['client_cpu_s'] == 0.75
    assert report['settings']['count'] == 10
    assert report['errors'] == 0
    assert bench.exit_status(report) == 0
    assert bench.exit_status(_report(errors=2)) == 1


def test_written_report_is_a_table_or_json():
    out = io.StringIO()
    bench.write_report(_report(), out, as_json=False)
    assert out.getvalue().splitlines()[0].startswith('phase')
    out = io.StringIO()
    bench.write_report(_report(), out, as_json=True)
    assert json.loads(out.getvalue())['tool'] == 'objstore-bench'
