"""objstore-bench: how fast a Swift endpoint serves objects and listings.

Talks the Swift API with auth v1.0 to any endpoint (objstore or another
Swift), like python-swiftclient: --auth/--user/--key or $ST_AUTH,
$ST_USER, $ST_KEY. It runs these phases in this order (--phases picks
some):

  put, get, head, delete   N small objects (--count, --size, default
                           1000 x 4 KiB) at --concurrency (32)
  large-put, large-get     --large-count (8) objects of --large-size
                           (64 MiB) at --large-concurrency (4); bodies are
                           generated while sent and read in chunks and
                           dropped, never held in memory
  list-full, list-prefix   --full-listings (100) requests for a full page
                           (limit 10000) and --prefix-listings (1000)
                           prefix queries of a container holding
                           --listing-count (10000) zero-byte objects

Objects spread over --containers containers named bench-<run id>-<n>.
What a measured phase needs but did not create itself (the objects of a
get phase run without put, the listing container's objects) is put there
first, unmeasured. Everything created is deleted at the end unless --keep.

Each phase reports ops (successful requests), errors, seconds, ops/s,
MB/s (10**6 bytes), p50/p95/p99 latency in ms (sending the request to the
last byte of the response) and the client's own CPU seconds; --json
prints one JSON object instead of the table. A progress line goes to
stderr (-q silences it). Exit status: 0 all well, 1 a request failed
(or auth or cleanup did), 2 bad arguments.

Requests run in --processes worker processes, threads inside each, one
keep-alive connection per thread: see bench_runner for why.
"""
import argparse
import json
import os
import re
import secrets
import sys
import time

from objstore.cli import bench_stats
from objstore.cli.bench_client import (
    NETWORK_ERRORS, AuthError, Connection, auth_v1)
from objstore.cli.bench_progress import Progress
from objstore.cli.bench_runner import Pool, WorkerFailed
from objstore.cli.bench_workload import PHASES, Workload

PROG = 'objstore-bench'
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SMALL_PHASES = ('put', 'get', 'head', 'delete')
LARGE_PHASES = ('large-put', 'large-get')
LISTING_PHASES = ('list-full', 'list-prefix')
_SIZE = re.compile(r'^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$', re.I)
_UNITS = {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}


class UsageError(Exception):
    """A bad argument: one line for the user, exit status 2."""


def parse_size(text):
    """'4096', '4K', '64M', '1GiB' -> bytes (K, M, G, T are powers of
    1024)."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(
            'not a size: %r (try 4096, 4K, 64M, 1G)' % text)
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_phases(text):
    """'get,put' -> ('put', 'get'): known names in run order; 'all' is
    every phase."""
    names = [n.strip() for n in text.split(',') if n.strip()]
    if 'all' in names:
        return PHASES
    unknown = [n for n in names if n not in PHASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            'unknown phase %r (choose from %s)'
            % (','.join(unknown), ','.join(PHASES)))
    return tuple(p for p in PHASES if p in names)


def default_processes():
    """Two worker processes, more on bigger machines (half the cores, at
    most 8). Measured on 2 cores: against a canned-answer server one
    process tops out near 7,000 small requests/s (its GIL), two reached
    11,000; against the all-in-one cluster, which does far fewer, one and
    two processes gave the same figures within the noise."""
    return max(2, min(8, (os.cpu_count() or 1) // 2))


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser():
    p = _Parser(prog=PROG, description=__doc__.split('\n')[0],
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog='\n'.join(__doc__.split('\n')[2:]))
    env = os.environ.get
    p.add_argument('-A', '--auth', default=env('ST_AUTH'),
                   help='auth v1.0 URL (default $ST_AUTH)')
    p.add_argument('-U', '--user', default=env('ST_USER'),
                   help='account:user (default $ST_USER)')
    p.add_argument('-K', '--key', default=env('ST_KEY'),
                   help='the key (default $ST_KEY)')
    p.add_argument('--phases', type=parse_phases, default=PHASES,
                   help='comma-separated phases to run (default all: %s)'
                   % ','.join(PHASES))
    p.add_argument('-c', '--concurrency', type=int, default=32,
                   help='requests in flight for small objects and '
                        'listings (default 32)')
    p.add_argument('--large-concurrency', type=int, default=4,
                   help='requests in flight for large objects (default 4)')
    p.add_argument('-s', '--size', type=parse_size, default=4096,
                   help='small object size (default 4K)')
    p.add_argument('-n', '--count', type=int, default=1000,
                   help='small objects (default 1000)')
    p.add_argument('--large-size', type=parse_size, default=64 << 20,
                   help='large object size (default 64M)')
    p.add_argument('--large-count', type=int, default=8,
                   help='large objects (default 8)')
    p.add_argument('--containers', type=int, default=1,
                   help='containers the objects spread over (default 1)')
    p.add_argument('--listing-count', type=int, default=10000,
                   help='objects in the listed container (default 10000)')
    p.add_argument('--full-listings', type=int, default=100,
                   help='full-page listing requests (default 100)')
    p.add_argument('--prefix-listings', type=int, default=1000,
                   help='prefix listing requests (default 1000)')
    p.add_argument('-P', '--processes', type=int,
                   default=default_processes(),
                   help='client worker processes (default %d here)'
                   % default_processes())
    p.add_argument('--timeout', type=float, default=60.0,
                   help='seconds a request may stall (default 60)')
    p.add_argument('--json', action='store_true',
                   help='print one JSON object instead of the table')
    p.add_argument('--keep', action='store_true',
                   help='leave the containers and objects in place')
    p.add_argument('-q', '--quiet', action='store_true',
                   help='no progress on stderr')
    return p


def parse_args(argv):
    """argv -> argparse namespace; UsageError with one line if bad."""
    args = build_parser().parse_args(argv)
    if not args.auth or not args.user or args.key is None:
        raise UsageError('give --auth, --user and --key (or $ST_AUTH, '
                         '$ST_USER, $ST_KEY)')
    for name in ('concurrency', 'large_concurrency', 'processes'):
        if not 1 <= getattr(args, name) <= 1024:
            raise UsageError('--%s must be 1-1024' % name.replace('_', '-'))
    for name in ('count', 'large_count', 'containers', 'listing_count',
                 'full_listings', 'prefix_listings', 'size', 'large_size'):
        if getattr(args, name) < 1:
            raise UsageError('--%s must be at least 1'
                             % name.replace('_', '-'))
    if args.timeout <= 0:
        raise UsageError('--timeout must be positive')
    return args


def new_run_id():
    """Sortable and unique: when it started plus a random tail."""
    return time.strftime('%Y%m%d%H%M%S') + secrets.token_hex(3)


class Run:
    """One benchmark run: its containers, its pool, its results."""

    def __init__(self, args, workload, progress):
        self.args, self.w, self.progress = args, workload, progress
        self.results = {}
        self.setup_errors = self.cleanup_errors = 0
        self.present = set()    # which kinds of objects may exist now
        self.pool = None

    def _admin(self, method, container):
        conn = Connection(self.w.storage_url, self.w.token, self.w.timeout)
        try:
            return conn.request(method, '/' + container)[0]
        finally:
            conn.close()

    def create_containers(self):
        for name in self.w.all_containers():
            status = self._admin('PUT', name)
            if status not in (201, 202):
                raise RuntimeError('cannot create container %s: HTTP %d'
                                   % (name, status))

    def _phase(self, phase, concurrency):
        total = self.w.total(phase)
        self.progress.start(phase, total)
        return self.pool.run(phase, concurrency, self.progress.update)

    def measure(self, phase, concurrency):
        part = self._phase(phase, concurrency)
        summary = bench_stats.summarize(
            part['latencies'], part['errors'], part['bytes'],
            part['seconds'], part['cpu'], concurrency, part['first_error'])
        self.progress.finish(summary)
        self.results[phase] = summary

    def unmeasured(self, phase, concurrency):
        part = self._phase(phase, concurrency)
        errors = part['errors']
        self.progress.note('%s: %d done, %d errors%s' % (
            phase, len(part['latencies']), errors,
            ' (%s)' % part['first_error'] if part['first_error'] else ''))
        return errors

    def run_phases(self):
        a = self.args
        for phase in a.phases:
            concurrency = a.large_concurrency if phase in LARGE_PHASES \
                else a.concurrency
            if phase in ('get', 'head', 'delete') and \
                    'small' not in self.present:
                self.present.add('small')
                self.setup_errors += self.unmeasured('setup-put',
                                                     a.concurrency)
            if phase == 'large-get' and 'large' not in self.present:
                self.present.add('large')
                self.setup_errors += self.unmeasured('setup-large-put',
                                                     a.large_concurrency)
            if phase in LISTING_PHASES and 'list' not in self.present:
                self.present.add('list')
                self.setup_errors += self.unmeasured('setup-list',
                                                     a.concurrency)
                self.wait_listed()
            if phase == 'put':
                self.present.add('small')
            if phase == 'large-put':
                self.present.add('large')
            self.measure(phase, concurrency)
            if phase == 'delete' and not self.results[phase]['errors']:
                self.present.discard('small')

    def wait_listed(self, patience=60.0):
        """Wait until the listing container counts every listing object:
        container updates may trail the object PUTs, and a listing phase
        that starts early would count missing names as errors."""
        want = self.w.listing_count
        deadline = time.monotonic() + patience
        conn = Connection(self.w.storage_url, self.w.token, self.w.timeout)
        try:
            while True:
                status, headers = conn.head('/' + self.w.listing_container)
                have = int(headers.get('x-container-object-count', -1))
                if have >= want or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
        finally:
            conn.close()
        if have != want:
            self.progress.note('listing container holds %d objects, not %d'
                               % (have, want))

    def cleanup(self):
        """Delete what the run created; counts what could not be."""
        for kind, phase, conc in (
                ('small', 'cleanup-small', self.args.concurrency),
                ('large', 'cleanup-large', self.args.large_concurrency),
                ('list', 'cleanup-list', self.args.concurrency)):
            if kind in self.present:
                self.cleanup_errors += self.unmeasured(phase, conc)
        for name in self.w.all_containers():
            # a listing may lag the deletes for a moment: 409 means wait
            for delay in (0, 0.5, 1, 2, 4):
                time.sleep(delay)
                try:
                    status = self._admin('DELETE', name)
                except NETWORK_ERRORS:
                    status = 0
                if status != 409:
                    break
            if status not in (204, 404):
                self.cleanup_errors += 1
                self.progress.note('cannot delete container %s: %s'
                                   % (name, status or 'no connection'))

    def report(self):
        phase_errors = sum(r['errors'] for r in self.results.values())
        return {
            'tool': PROG,
            'run_id': self.w.run_id,
            'storage_url': self.w.storage_url,
            'settings': {
                'phases': list(self.args.phases),
                'size': self.w.size, 'count': self.w.count,
                'large_size': self.w.large_size,
                'large_count': self.w.large_count,
                'containers': self.w.containers,
                'listing_count': self.w.listing_count,
                'full_listings': self.w.full_listings,
                'prefix_listings': self.w.prefix_listings,
                'concurrency': self.args.concurrency,
                'large_concurrency': self.args.large_concurrency,
                'processes': self.args.processes,
            },
            'phases': self.results,
            'errors': phase_errors,
            'setup_errors': self.setup_errors,
            'cleanup_errors': self.cleanup_errors,
            'client_cpu_s': round(sum(r['client_cpu_s']
                                      for r in self.results.values()), 3),
        }


def exit_status(report):
    return EXIT_FAILED if (report['errors'] or report['setup_errors']
                           or report['cleanup_errors']) else EXIT_OK


def write_report(report, out, as_json):
    if as_json:
        out.write(json.dumps(report, indent=1) + '\n')
        return
    for line in bench_stats.format_table(report['phases']):
        out.write(line + '\n')
    s = report['settings']
    out.write('\nrun %s: %d x %d B small, %d x %d B large, %d listed; '
              'concurrency %d/%d, %d processes; client CPU %.2f s\n'
              % (report['run_id'], s['count'], s['size'], s['large_count'],
                 s['large_size'], s['listing_count'], s['concurrency'],
                 s['large_concurrency'], s['processes'],
                 report['client_cpu_s']))
    for name, r in report['phases'].items():
        if r.get('first_error'):
            out.write('%s: first error: %s\n' % (name, r['first_error']))
    if report['setup_errors'] or report['cleanup_errors']:
        out.write('setup errors %d, cleanup errors %d\n'
                  % (report['setup_errors'], report['cleanup_errors']))


def main(argv=None, out=None, err=None):
    """Run the benchmark; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        args = parse_args(argv)
    except UsageError as e:
        err.write('%s: error: %s\n' % (PROG, e))
        return EXIT_USAGE
    try:
        storage_url, token = auth_v1(args.auth, args.user, args.key,
                                     args.timeout)
    except AuthError as e:
        err.write('%s: %s\n' % (PROG, e))
        return EXIT_FAILED
    workload = Workload(
        storage_url=storage_url, token=token, run_id=new_run_id(),
        size=args.size, count=args.count, large_size=args.large_size,
        large_count=args.large_count, containers=args.containers,
        listing_count=args.listing_count, full_listings=args.full_listings,
        prefix_listings=args.prefix_listings, timeout=args.timeout)
    run = Run(args, workload, Progress(err, quiet=args.quiet))
    try:
        try:
            run.create_containers()
        except (RuntimeError, *NETWORK_ERRORS):
            run.cleanup()       # the containers made before the failure
            raise
        run.pool = Pool(workload, args.processes,
                        max(args.concurrency, args.large_concurrency))
        try:
            run.run_phases()
            if not args.keep:
                run.cleanup()
        finally:
            run.pool.close()
    except KeyboardInterrupt:
        err.write('\n%s: interrupted; containers bench-%s-* are left\n'
                  % (PROG, workload.run_id))
        return 130
    except WorkerFailed as e:
        err.write('%s: a worker failed:\n%s\n' % (PROG, e))
        return EXIT_FAILED
    except (RuntimeError, *NETWORK_ERRORS) as e:
        err.write('%s: %s\n' % (PROG, ' '.join(str(e).split())))
        return EXIT_FAILED
    report = run.report()
    write_report(report, out, args.json)
    out.flush()
    return exit_status(report)


if __name__ == '__main__':
    sys.exit(main())
