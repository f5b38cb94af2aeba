#!/usr/bin/env python3
"""objstore next to OpenStack Swift on this machine, in one run.

    .venv/bin/python test/bench/compare.py [--quick] [--rounds 3]
        [--json out.json] [--phases put,get,...] [--count N] [--size S]
        [--concurrency N] [--large-size S] [--large-count N]
        [--large-concurrency N] [--listing-count N] [--workers N]
        [--keep-dir]

What one run does:

1. installs the reference, ``swift`` 2.38.3 from PyPI, into its own venv
   test/bench/.ref-venv if it is missing or incomplete (ref_cluster.py
   lists the packages and why), and memcached if missing (Debian package;
   the reference proxy's token and info cache);
2. lays out and starts two clusters of the same shape in one temporary
   directory, on free loopback ports: ours with ``objstore-aio``'s setup
   and start (servers only: no replicators, auditors, updaters, expirer)
   and Swift's as ref_cluster.py describes (its SAIO guide's settings,
   its daemons not started either), with the same worker count for every
   server (ours, read from our generated configs);
3. measures each idle cluster's server CPU per second (what every
   phase's CPU figure carries per second of its window) and the disk's
   own fsync'd sequential write speed in that directory (disk_write.py),
   since the large-PUT target depends on it;
4. runs ``objstore-bench --json`` against each cluster in turn, --rounds
   times each, alternating which goes first, with the other cluster
   stopped meanwhile (SIGSTOP, then SIGCONT: pause.py), so the measured
   one has the machine to itself as on the issue's idle machine (the
   reference's idle servers wake 1,300 times a second between them),
   each run only once the disk has settled (disk_write.settle: dirty
   pages flushed and the device idle, so no run pays for the last one's
   cleanup); while it runs, each line of its progress output that ends a
   phase (or an unmeasured setup or cleanup step) is a boundary at which
   the CPU seconds of every server process of that cluster and all their
   workers are read from /proc (proc_cpu.py), so each measured phase is
   charged exactly the server CPU spent during it (the first phase also
   carries the bench's login and container creation: a handful of
   requests);
5. prints the load average before and after, the disk figure, and per
   phase: our figure and the reference's (ops/s; MB/s for large objects;
   median over rounds), their ratio, the issue's target for it, p99
   latency of both, server CPU ms per operation of both (median over
   rounds) and errors; then each round's figures, so the noise
   shows; ``--json FILE`` saves all of it, with every bench report;
6. stops both clusters and removes the directory, also on Ctrl-C,
   SIGTERM or an error (``--keep-dir`` keeps the data and logs).

Swift is never imported here: it runs as its own programs from its venv.
The machine has 2 cores, shared with the client: both clusters and the
bench run on them, so the figures are only comparable within one run.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)

import disk_write  # noqa: E402
import pause  # noqa: E402
import proc_cpu  # noqa: E402
import ref_cluster  # noqa: E402
from objstore.cli import aio  # noqa: E402

BENCH = os.path.join(os.path.dirname(sys.executable), 'objstore-bench')
SIDES = ('objstore', 'swift')
SMALL = ('put', 'get', 'head', 'delete')
LARGE = ('large-put', 'large-get')
LISTING = ('list-full', 'list-prefix')
ALL_PHASES = SMALL + LARGE + LISTING
# objstore-bench's progress lines (stderr): the final line of a measured
# phase, and the line that ends an unmeasured setup or cleanup step.
PHASE_DONE = re.compile(r'^([a-z][a-z-]*): \d+ ops in ')
STEP_DONE = re.compile(r'^((?:setup|cleanup)-[a-z-]+): ')
QUICK = {'count': 100, 'large_size': '8M', 'large_count': 2,
         'listing_count': 500, 'full_listings': 10, 'prefix_listings': 50,
         'disk_size': 64 << 20}
BENCH_OPTIONS = ('phases', 'count', 'size', 'concurrency', 'large_size',
                 'large_count', 'large_concurrency', 'listing_count',
                 'full_listings', 'prefix_listings', 'processes')


class Interrupted(Exception):
    """SIGTERM: unwind like Ctrl-C so everything is stopped."""


def log(msg):
    sys.stderr.write('[compare] %s\n' % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------
# the clusters
# --------------------------------------------------------------------------
class Ours:
    """Our all-in-one cluster under ``var``, servers only."""

    name = 'objstore'

    def __init__(self, var, base_port, proxy_port, workers):
        self.var, self.base_port = var, base_port
        self.proxy_port, self.workers = proxy_port, workers
        self.started = False

    @property
    def auth_url(self):
        return 'http://127.0.0.1:%d/auth/v1.0' % self.proxy_port

    def setup(self):
        aio.setup(self.var, out=_Quiet(), base_port=self.base_port,
                  port=self.proxy_port, workers=self.workers)

    def start(self):
        self.started = True
        aio.start(self.var, out=_Quiet(), with_daemons=False)
        log('objstore cluster up: proxy on 127.0.0.1:%d, %d servers'
            % (self.proxy_port, len(self.pids())))

    def pids(self):
        # aio records each server's pid in var/run (aio._running_pid reads
        # it and checks the process lives)
        return [pid for pid in (aio.running_pid(self.var, kind, node)
                                for kind, node, _, _ in aio.servers(self.var))
                if pid]

    def stop(self):
        if self.started:
            aio.stop(self.var, out=_Quiet())
            self.started = False


class Ref:
    """The reference cluster (ref_cluster.RefCluster) with the same API."""

    name = 'swift'

    def __init__(self, var, base_port, proxy_port, workers):
        self.cluster = ref_cluster.RefCluster(var, workers, base_port,
                                              proxy_port, log=log)
        self.memcached = None

    @property
    def auth_url(self):
        return self.cluster.auth_url

    def setup(self):
        self.cluster.setup()

    def start(self):
        self.cluster.start(self.memcached)

    def pids(self):
        return self.cluster.pids()

    def stop(self):
        self.cluster.stop()


class _Quiet:
    """A stream for aio's chatter: kept out of the report."""

    def write(self, text):
        pass

    def flush(self):
        pass


def pick_ports():
    """(our storage base, ref storage base, our proxy, ref proxy): free
    now, distinct; proxy ports held open together so they differ."""
    ours = aio.free_base_port()
    ref = aio.free_base_port(candidates=[b for b in range(20000, 40000, 700)
                                         if b != ours])
    if ours is None or ref is None:
        raise RuntimeError('no free loopback ports for two clusters')
    socks = []
    try:
        for _ in range(2):
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            socks.append(s)
        proxies = [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
    return ours, ref, proxies[0], proxies[1]


# --------------------------------------------------------------------------
# one bench invocation, with CPU read at every phase boundary
# --------------------------------------------------------------------------
def bench_command(cluster, args):
    cmd = [BENCH, '--auth', cluster.auth_url, '--user', 'test:tester',
           '--key', 'testing', '--json']
    for opt in BENCH_OPTIONS:
        value = getattr(args, opt, None)
        if value is not None:
            cmd += ['--' + opt.replace('_', '-'), str(value)]
    return cmd


def run_bench(cluster, args, label):
    """Run objstore-bench once against ``cluster``; return its report
    plus 'server_cpu_s' per measured phase."""
    cmd = bench_command(cluster, args)
    roots = cluster.pids()
    last = proc_cpu.cpu_seconds(roots)
    last_t = time.monotonic()
    cpu, window = {}, {}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=REPO)
    out = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()),
                              daemon=True)
    reader.start()
    try:
        for raw in proc.stderr:
            line = raw.decode('utf-8', 'replace').rstrip()
            done = PHASE_DONE.match(line)
            step = STEP_DONE.match(line)
            if done or step:
                now, now_t = proc_cpu.cpu_seconds(roots), time.monotonic()
                if done:
                    cpu[done.group(1)] = now - last
                    window[done.group(1)] = now_t - last_t
                last, last_t = now, now_t
            if line:
                sys.stderr.write('  %s %s\n' % (label, line))
                sys.stderr.flush()
        proc.wait(args.bench_timeout)
        reader.join(60)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    text = out[0].decode('utf-8', 'replace') if out else ''
    try:
        report = json.loads(text)
    except ValueError:
        raise RuntimeError('objstore-bench against %s exited %s without a '
                           'report: %s' % (cluster.name, proc.returncode,
                                           text.strip()[-500:]))
    report['exit_status'] = proc.returncode
    report['server_processes'] = proc_cpu.count(roots)
    for phase, r in report.get('phases', {}).items():
        r['server_cpu_s'] = (round(cpu[phase], 3) if phase in cpu
                             else None)
        # wall time the CPU was read over: the phase itself plus the
        # moments before it (the first phase: login, containers; a listing
        # phase: waiting until the container lists every object)
        r['cpu_window_s'] = (round(window[phase], 3) if phase in window
                             else None)
    return report


def idle_cpu(cluster, seconds):
    """CPU seconds per second the cluster's servers spend doing nothing:
    what any phase's figure carries for each second of its window."""
    roots = cluster.pids()
    before, t = proc_cpu.cpu_seconds(roots), time.monotonic()
    time.sleep(seconds)
    return (proc_cpu.cpu_seconds(roots) - before) / (time.monotonic() - t)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, PermissionError):
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


# --------------------------------------------------------------------------
# summary and table
# --------------------------------------------------------------------------
def summarize(rounds):
    """{phase: {side: figures over rounds}} from the per-round reports."""
    out = {}
    for phase in ALL_PHASES:
        row = {}
        for side in SIDES:
            runs = [r['report']['phases'][phase] for r in rounds
                    if r['side'] == side and phase in r['report']['phases']]
            if not runs:
                continue
            ops = sum(r['ops'] for r in runs)
            cpus = [r['server_cpu_s'] for r in runs]
            cpu_known = all(c is not None for c in cpus)
            row[side] = {
                'ops_per_s': _median(r['ops_per_s'] for r in runs),
                'mb_per_s': _median(r['mb_per_s'] for r in runs),
                'p99_ms': _median(r['p99_ms'] for r in runs),
                'errors': sum(r['errors'] for r in runs),
                'ops': ops,
                # a median over rounds, as the throughput is: a round
                # the machine ran slow must not weigh in
                'server_cpu_ms_per_op': (_median(
                    1000.0 * r['server_cpu_s'] / r['ops'] for r in runs
                    if r['ops']) if cpu_known else None),
                'client_cpu_ms_per_op': _median(
                    1000.0 * r.get('client_cpu_s', 0) / r['ops']
                    for r in runs if r['ops']),
                'rounds': [r['mb_per_s'] if phase in LARGE
                           else r['ops_per_s'] for r in runs],
                'rounds_errors': [r['errors'] for r in runs],
                'seconds': round(sum(r['seconds'] for r in runs), 3),
                'cpu_window_s': (round(sum(r['cpu_window_s'] for r in runs),
                                       3) if cpu_known else None),
            }
        if row:
            out[phase] = row
    return out


def _median(values):
    """Median of the known values (a phase with no successful request
    has no latency), or None."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def figure(phase, fig):
    return fig['mb_per_s'] if phase in LARGE else fig['ops_per_s']


def _ratio(a, b):
    return a / b if a is not None and b else None


def target(phase, row, disk_mb_per_s):
    """(text, met) of issue 6's target for this phase, or ('', None)."""
    if 'objstore' not in row or 'swift' not in row:
        return '', None
    ours, ref = row['objstore'], row['swift']
    ratio = _ratio(figure(phase, ours), figure(phase, ref))
    if ratio is None:
        return '', None
    if phase in SMALL:
        cpu = _ratio(ours['server_cpu_ms_per_op'],
                     ref['server_cpu_ms_per_op'])
        met = (ratio >= 3 and not ours['errors'] and
               ours['p99_ms'] is not None and ref['p99_ms'] is not None
               and ours['p99_ms'] <= ref['p99_ms'] and
               (cpu is None or cpu <= 1 / 3.0))
        return '>=3x, p99<=, cpu<=1/3', met
    if phase == 'large-get':
        return '>=2x', ratio >= 2
    if phase == 'large-put':
        want = 1.5 * figure(phase, ref)
        text = '>=1.5x'
        if disk_mb_per_s:
            limit = 0.8 * disk_mb_per_s / ref_cluster.REPLICAS
            if limit < want:
                want, text = limit, '>=%.0f MB/s (disk)' % limit
        return text, figure(phase, ours) >= want
    if phase in LISTING:
        return '>=2x', ratio >= 2
    return '', None


def _f(value, fmt='%.1f', width=8):
    return ('%s' % (fmt % value if value is not None else '-')).rjust(width)


def render(summary, disk):
    lines = []
    head = ('%-11s %-5s %9s %9s %6s  %-22s %-4s %9s %9s  %9s %9s %6s  %s'
            % ('phase', 'unit', 'objstore', 'swift', 'ratio', 'target', '',
               'p99ms obj', 'p99ms ref', 'cpu/op obj', 'cpu/op ref',
               'cpu x', 'errors'))
    lines += [head, '-' * len(head)]
    for phase, row in summary.items():
        ours, ref = row.get('objstore'), row.get('swift')
        unit = 'MB/s' if phase in LARGE else 'ops/s'
        text, met = target(phase, row, disk and disk['mb_per_s'])
        fo = figure(phase, ours) if ours else None
        fr = figure(phase, ref) if ref else None
        co = ours and ours['server_cpu_ms_per_op']
        cr = ref and ref['server_cpu_ms_per_op']
        lines.append('%-11s %-5s %s %s %s  %-22s %-4s %s %s  %s %s %s  %s' % (
            phase, unit, _f(fo, width=9), _f(fr, width=9),
            _f(_ratio(fo, fr), '%.2f', 6), text,
            {True: 'ok', False: 'MISS', None: ''}[met],
            _f(ours and ours['p99_ms'], width=9),
            _f(ref and ref['p99_ms'], width=9),
            _f(co, '%.2f', 10), _f(cr, '%.2f', 10),
            _f(_ratio(co, cr), '%.2f', 6),
            '%s/%s' % (ours['errors'] if ours else '-',
                       ref['errors'] if ref else '-')))
    return lines


def render_rounds(summary):
    lines = []
    for phase, row in summary.items():
        lines.append('  %-11s %s' % (phase, '   '.join(
            '%s %s' % (side, ' '.join('%.1f' % v for v in row[side]['rounds']))
            for side in SIDES if side in row)))
    return lines


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(
        description='objstore and the reference Swift side by side: '
                    'objstore-bench against both clusters, alternating.')
    # Three by default: on this shared virtual machine one round in a few
    # runs everything a third slower (the same code's CPU per GET 0.87 ms
    # in one round, 1.44 ms in the next); the median of three leaves
    # such a round out, where that of two averages it in.
    p.add_argument('--rounds', type=int, default=3,
                   help='bench runs per cluster (default 3, at least 1)')
    p.add_argument('--quick', action='store_true',
                   help='a small smoke run (%s)' % ', '.join(
                       '%s %s' % kv for kv in QUICK.items()))
    p.add_argument('--json', metavar='FILE',
                   help='save settings, every bench report and the summary')
    p.add_argument('--workers', type=int, default=aio.DEFAULT_WORKERS,
                   help='workers per server of our cluster, and so of the '
                        'reference (default %d)' % aio.DEFAULT_WORKERS)
    p.add_argument('--dir', help='where to put both clusters (default a '
                                 'new temporary directory)')
    p.add_argument('--keep-dir', action='store_true',
                   help='keep the clusters\' data and logs afterwards')
    p.add_argument('--disk-size', type=int, default=256 << 20,
                   help='bytes for the disk write test (default 256 MiB)')
    p.add_argument('--idle-seconds', type=float, default=5.0,
                   help='seconds to measure each idle cluster\'s CPU '
                        '(default 5)')
    p.add_argument('--bench-timeout', type=float, default=7200,
                   help='seconds one bench run may take (default 7200)')
    g = p.add_argument_group('passed to objstore-bench (its defaults when '
                             'not given)')
    g.add_argument('--phases')
    for opt in BENCH_OPTIONS[1:]:
        g.add_argument('--' + opt.replace('_', '-'))
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if key == 'disk_size':
                if args.disk_size == 256 << 20:
                    args.disk_size = value
            elif getattr(args, key) is None:
                setattr(args, key, value)
    if args.rounds < 1:
        p.error('--rounds must be at least 1')
    return args


def machine():
    return {'cpus': os.cpu_count(), 'platform': platform.platform(),
            'python': platform.python_version(),
            'swift': ref_cluster.SWIFT_VERSION,
            'git': _git_head()}


def _git_head():
    try:
        return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                              cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except OSError:
        return None


def _on_sigterm(signum, frame):
    raise Interrupted()


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C must unwind even when started from a shell that ignores it
    # for background jobs
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if not os.path.exists(BENCH):
        log('%s is missing: pip install -e . in the venv first' % BENCH)
        return 2
    load_before = os.getloadavg()
    log('load average before the run: %.2f %.2f %.2f' % load_before)
    result = {'machine': machine(), 'settings': {
        k: v for k, v in vars(args).items() if k not in ('json',)},
        'load_before': load_before}
    try:
        ref_cluster.ensure_ref_venv(log)
        memcached = ref_cluster.ensure_memcached(log)
    except ref_cluster.ReferenceUnavailable as e:
        log('no reference: %s' % e)
        return 3
    run_dir = os.path.abspath(args.dir) if args.dir else \
        tempfile.mkdtemp(prefix='objstore-compare-')
    os.makedirs(run_dir, exist_ok=True)
    clusters = []
    status = 0
    try:
        ours_base, ref_base, ours_proxy, ref_proxy = pick_ports()
        ours = Ours(os.path.join(run_dir, 'objstore'), ours_base,
                    ours_proxy, args.workers)
        clusters.append(ours)
        ours.setup()
        workers = ref_cluster.read_workers(ours.var)
        result['workers'] = workers
        log('workers per server (both clusters): %s' % ', '.join(
            '%s %d' % kv for kv in sorted(workers.items())))
        ref = Ref(os.path.join(run_dir, 'swift'), ref_base, ref_proxy,
                  workers)
        ref.memcached = memcached
        clusters.append(ref)
        ref.setup()
        ours.start()
        ref.start()
        result['idle_cpu_per_s'] = idle = {
            c.name: idle_cpu(c, args.idle_seconds) for c in (ours, ref)}
        log('idle server CPU (s per s over %.0f s): %s' % (
            args.idle_seconds, ', '.join('%s %.3f' % kv
                                         for kv in idle.items())))
        disk = disk_write.fsync_write_mb_per_s(run_dir, args.disk_size)
        result['disk'] = disk
        log('disk: %d MiB written + fsync in %.2f s: %.1f MB/s'
            % (disk['bytes'] >> 20, disk['seconds'], disk['mb_per_s']))
        rounds = result['rounds'] = []
        for n in range(args.rounds):
            order = (ours, ref) if n % 2 == 0 else (ref, ours)
            for cluster in order:
                label = '[%s %d/%d]' % (cluster.name, n + 1, args.rounds)
                idle = ref if cluster is ours else ours
                with pause.paused(idle.pids()) as stopped:
                    log('%s %s paused (%d processes stopped)'
                        % (label, idle.name, len(stopped)))
                    waited = disk_write.settle(run_dir)
                    log('%s disk settled (sync, then idle) after %.1f s'
                        % (label, waited))
                    log('%s objstore-bench against %s'
                        % (label, cluster.auth_url))
                    report = run_bench(cluster, args, label)
                rounds.append({'round': n + 1, 'side': cluster.name,
                               'report': report})
                if report['exit_status']:
                    log('%s objstore-bench exited %s (errors: %s, setup '
                        '%s, cleanup %s)' % (
                            label, report['exit_status'],
                            report.get('errors'), report.get('setup_errors'),
                            report.get('cleanup_errors')))
        summary = summarize(rounds)
        result['summary'] = summary
        result['load_after'] = os.getloadavg()
        print_results(result, summary)
    except (KeyboardInterrupt, Interrupted):
        log('interrupted: stopping both clusters')
        status = 130
    except (RuntimeError, OSError, ref_cluster.ReferenceUnavailable) as e:
        log('failed: %s' % e)
        status = 1
    except Exception:
        log('failed:\n%s' % traceback.format_exc())
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for cluster in reversed(clusters):
            try:
                cluster.stop()
            except Exception as e:     # stop the others all the same
                log('stopping %s: %s' % (cluster.name, e))
        if args.keep_dir:
            log('kept %s' % run_dir)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.json and 'rounds' in result:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
        log('saved %s' % args.json)
    return status


def print_results(result, summary):
    out = sys.stdout
    s = result['settings']
    out.write('\nobjstore %s vs swift %s, %d CPUs, python %s; load average '
              'before %.2f %.2f %.2f, after %.2f %.2f %.2f\n' % (
                  result['machine']['git'], result['machine']['swift'],
                  result['machine']['cpus'], result['machine']['python'],
                  *result['load_before'], *result['load_after']))
    out.write('workers per server: %s; %d rounds each, alternating; bench '
              'options: %s\n' % (
                  ', '.join('%s %d' % kv
                            for kv in sorted(result['workers'].items())),
                  s['rounds'], ' '.join(
                      '--%s %s' % (o.replace('_', '-'), s[o])
                      for o in BENCH_OPTIONS if s.get(o) is not None)
                  or '(defaults)'))
    disk = result['disk']
    out.write('disk: fsync\'d sequential write %.1f MB/s (%d MiB); / %d '
              'replicas = %.1f MB/s\n' % (
                  disk['mb_per_s'], disk['bytes'] >> 20,
                  ref_cluster.REPLICAS,
                  disk['mb_per_s'] / ref_cluster.REPLICAS))
    out.write('idle server CPU, s per s: %s\n\n' % ', '.join(
        '%s %.3f' % kv for kv in result['idle_cpu_per_s'].items()))
    for line in render(summary, disk):
        out.write(line + '\n')
    out.write('\nper round (ops/s; MB/s for large):\n')
    for line in render_rounds(summary):
        out.write(line + '\n')
    out.write('\nfigures: median over rounds; ratio = objstore / swift; '
              'p99 in ms; cpu/op = ms of CPU of all server processes (with '
              'their workers, and the reference\'s memcached) during the '
              'phase per successful op, cpu x = objstore / swift; errors '
              'objstore/swift summed over rounds\n')
    out.flush()


if __name__ == '__main__':
    sys.exit(main())
