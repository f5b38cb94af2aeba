#!/usr/bin/env python3
"""Ring builder and ring lookups, ours next to OpenStack Swift's, in one run.

    .venv/bin/python test/bench/ring_bench.py [--part-power 18] [--devices 100]
        [--zones 5] [--lookups 200000] [--uneven] [--json out.json]
        [--skip-reference]

Both builders get the same device layout, seed and steps: an initial
rebalance, then one new device and a second rebalance (min_part_hours
pretended past), then the ring file is written, loaded with each side's
Ring class and asked for the same paths. Numbers that the two builders
report differently (balance, dispersion, "parts moved") are also computed
here from each side's own replica-to-partition-to-device table, by the
same code, so the columns can be compared.

Why separate processes: swift and this project both define a ring
module and both lean on eventlet; loading them together would make a
comparison of two processes that differ from any real deployment. Each
side therefore runs in its own fresh interpreter (ours in this venv,
swift's in test/bench/.ref-venv, built here on first use with only the
packages swift's ring code imports) and hands back JSON on stdout. The
measuring code (this module's ``run_scenario``) is shared, so both sides
are timed and counted identically; this module itself imports neither
ring library at import time.
"""
import argparse
import array
import hashlib
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from itertools import islice

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
REF_VENV = os.path.join(HERE, '.ref-venv')
REF_DRIVER = os.path.join(HERE, 'ref_ring_driver.py')

# swift's ring modules import swift.common.utils, which needs eventlet (and
# through it greenlet and dnspython); nothing else of swift's long
# requirement list is touched, so swift goes in with --no-deps.
SWIFT_VERSION = '2.38.3'
REF_REQUIREMENTS = ['eventlet==0.41.3']
REF_CHECK = 'from swift.common.ring import RingBuilder, Ring'

HASH_PREFIX = b'bench'
HASH_SUFFIX = b'bench'
WORKER_TIMEOUT = 3600


class ReferenceUnavailable(Exception):
    """The reference venv could not be built or used; message says why."""


# --------------------------------------------------------------------------
# device layouts
# --------------------------------------------------------------------------
def _split(total, n):
    """``total`` items over ``n`` bins, the first bins one larger."""
    return [total // n + (1 if i < total % n else 0) for i in range(n)]


def build_layout(devices, zones, uneven=False, seed=1, per_host=4):
    """Device dicts (region 1) spread over ``zones`` zones, 4 per host.

    Even: every weight 100. Uneven: weights drawn from 50-200 and the last
    zone holds half the devices of the others, so balance has real work to
    do while every zone stays under a third of the weight (3 replicas can
    still be fully dispersed over zones).
    """
    if zones < 1 or devices < zones:
        raise SystemExit('need at least one device per zone')
    counts = _split(devices, zones)
    if uneven and zones > 1:
        give = counts[-1] // 2
        counts[-1] -= give
        for i, extra in enumerate(_split(give, zones - 1)):
            counts[i] += extra
    rng = random.Random(seed)
    devs = []
    for z, count in enumerate(counts, 1):
        for i in range(count):
            host, disk = divmod(i, per_host)
            weight = rng.choice((50, 75, 100, 125, 150, 200)) if uneven \
                else 100
            devs.append(_dev(len(devs), z, host, disk, weight))
    return devs


def _dev(dev_id, zone, host, disk, weight):
    # loopback-range labels: the ring never connects to them
    return {'id': dev_id, 'region': 1, 'zone': zone,
            'ip': '127.1.%d.%d' % (zone, host + 1), 'port': 6200,
            'device': 'sd%s' % chr(ord('a') + disk % 26) +
            ('' if disk < 26 else str(disk // 26)),
            'weight': float(weight), 'meta': ''}


def new_device(devs, zone):
    """A device on a host that zone ``zone`` does not have yet."""
    hosts = {d['ip'] for d in devs if d['zone'] == zone}
    return _dev(len(devs), zone, len(hosts) + 100, 0, 100)


def lookup_names(count, seed):
    """``count`` (account, container, object) paths, same in every process."""
    rng = random.Random(seed)
    return [('AUTH_%016x' % rng.getrandbits(64),
             'cont%d' % rng.randrange(1000),
             'obj/%016x' % rng.getrandbits(64)) for _ in range(count)]


# --------------------------------------------------------------------------
# metrics computed from a replica -> part -> device-id table
# --------------------------------------------------------------------------
def part_counts(rows, ndevs):
    counts = [0] * ndevs
    for row in rows:
        for d in row:
            counts[d] += 1
    return counts


def common_balance(rows, devs):
    """max over weighted devices of |100 * parts / wanted - 100|."""
    live = [d for d in devs if d is not None]
    counts = part_counts(rows, max(d['id'] for d in live) + 1)
    total_w = sum(d['weight'] for d in live)
    cells = len(rows) * len(rows[0])
    worst = 0.0
    for d in live:
        if d['weight'] > 0:
            wanted = d['weight'] * cells / total_w
            worst = max(worst, abs(100.0 * counts[d['id']] / wanted - 100.0))
    return worst


def common_dispersion(rows, devs):
    """Percent of parts with too many replicas in one zone / on one host.

    "Too many" = more than ceil(replicas / number of weighted zones
    (hosts)), the most a fully dispersed placement needs; exact for the
    single-region layouts this benchmark builds.
    """
    live = [d for d in devs if d is not None and d['weight'] > 0]
    ndevs = max(d['id'] for d in devs if d is not None) + 1
    zone_of = [None] * ndevs
    host_of = [None] * ndevs
    for d in devs:
        if d is not None:
            zone_of[d['id']] = (d['region'], d['zone'])
            host_of[d['id']] = (d['region'], d['zone'], d['ip'])
    replicas = len(rows)
    zone_cap = math.ceil(replicas / len({zone_of[d['id']] for d in live}))
    host_cap = math.ceil(replicas / len({host_of[d['id']] for d in live}))
    zone_bad = host_bad = 0
    for devs_of_part in zip(*rows):
        zs = [zone_of[d] for d in devs_of_part]
        if max(zs.count(z) for z in set(zs)) > zone_cap:
            zone_bad += 1
        hs = [host_of[d] for d in devs_of_part]
        if max(hs.count(h) for h in set(hs)) > host_cap:
            host_bad += 1
    parts = len(rows[0])
    return 100.0 * zone_bad / parts, 100.0 * host_bad / parts


def movement(before, after):
    """(cells whose device changed, parts touched, parts with >1 moved)."""
    per_part = [0] * len(before[0])
    cells = 0
    for old, new in zip(before, after):
        for part, (a, b) in enumerate(zip(old, new)):
            if a != b:
                per_part[part] += 1
                cells += 1
    touched = sum(1 for n in per_part if n)
    multi = sum(1 for n in per_part if n > 1)
    return cells, touched, multi


def replica_peers(rows, ndevs):
    """(min, mean) over devices of how many other devices share a part.

    A device's peers are where the other replicas of its partitions live:
    when it fails, they are the sources that re-create its data, so more
    peers spread that work wider.
    """
    peers = [set() for _ in range(ndevs)]
    for devs_of_part in zip(*rows):
        for d in devs_of_part:
            peers[d].update(devs_of_part)
    sizes = [len(p) - 1 for p in peers if p]
    return min(sizes), sum(sizes) / len(sizes)


def _snapshot(rows):
    return [array.array('l', row) for row in rows]


# --------------------------------------------------------------------------
# the scenario, run inside one side's worker process
# --------------------------------------------------------------------------
def run_scenario(side, spec):
    """Run every step on one side; returns a flat dict of metrics.

    ``side`` adapts one ring library (see ObjstoreSide / ref_ring_driver's
    SwiftSide): new_builder, add_dev, rebalance, pretend_min_part_hours,
    rows, own_balance, own_dispersion, write_ring, load_ring.
    """
    out = {'library_version': side.version(),
           'python': platform.python_version()}
    devs = [dict(d) for d in spec['devices']]
    b = side.new_builder(spec['part_power'], spec['replicas'],
                         spec['min_part_hours'])
    for d in devs:
        side.add_dev(b, d)

    t = time.perf_counter()
    own_moved = side.rebalance(b, spec['seed'])
    out['init_time'] = time.perf_counter() - t
    out['init_own_moved'] = own_moved
    rows0 = _snapshot(side.rows(b))
    _state(out, 'init', side, b, rows0, devs)

    new = dict(spec['new_device'])
    side.add_dev(b, new)
    devs.append(new)
    side.pretend_min_part_hours(b)
    t = time.perf_counter()
    own_moved = side.rebalance(b, spec['seed'] + 1)
    out['add_time'] = time.perf_counter() - t
    out['add_own_moved'] = own_moved
    rows1 = _snapshot(side.rows(b))
    _state(out, 'add', side, b, rows1, devs)
    cells, touched, multi = movement(rows0, rows1)
    total_w = sum(d['weight'] for d in devs)
    ideal = len(rows1) * len(rows1[0]) * new['weight'] / total_w
    out['add_moved'] = cells
    out['add_parts_touched'] = touched
    out['add_multi_moved'] = multi
    out['add_ideal'] = ideal
    out['add_moved_ratio'] = cells / ideal
    out['add_new_dev_parts'] = part_counts(rows1, len(devs))[new['id']]
    del rows0, rows1

    names = lookup_names(spec['lookups'], spec['seed'])
    with tempfile.TemporaryDirectory(prefix='ring-bench-') as tmp:
        path = os.path.join(tmp, 'object.ring.gz')
        t = time.perf_counter()
        side.write_ring(b, path)
        out['ring_write_time'] = time.perf_counter() - t
        out['ring_file_bytes'] = os.path.getsize(path)
        t = time.perf_counter()
        ring = side.load_ring(path)
        out['ring_load_time'] = time.perf_counter() - t
        _lookups(out, ring, names, spec['handoff_lookups'])
    return out


def _state(out, prefix, side, b, rows, devs):
    out[prefix + '_balance'] = common_balance(rows, devs)
    out[prefix + '_own_balance'] = side.own_balance(b)
    zone, host = common_dispersion(rows, devs)
    out[prefix + '_zone_overfull'] = zone
    out[prefix + '_host_overfull'] = host
    out[prefix + '_own_dispersion'] = side.own_dispersion(b)
    low, mean = replica_peers(rows, max(d['id'] for d in devs) + 1)
    out[prefix + '_peers_min'] = low
    out[prefix + '_peers_mean'] = mean


def _best_rate(items, call, chunks=5):
    """(best chunk rate, overall rate) of ``call`` over ``items``.

    The machine may be shared; the fastest of a few equal chunks is the
    figure least disturbed by other work, the overall one is kept too.
    """
    size = max(1, -(-len(items) // chunks))
    best = 0.0
    total = 0.0
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        t = time.perf_counter()
        call(chunk)
        elapsed = time.perf_counter() - t
        total += elapsed
        best = max(best, len(chunk) / elapsed)
    return best, (len(items) / total if total else 0.0)


def _lookups(out, ring, names, handoff_count):
    get_nodes = ring.get_nodes
    parts = []

    def lookup(chunk):
        append = parts.append
        for a, c, o in chunk:
            append(get_nodes(a, c, o)[0])

    out['lookup_rate'], out['lookup_rate_overall'] = _best_rate(names,
                                                                lookup)
    # the same paths must land on the same partitions on both sides
    out['lookup_parts_md5'] = hashlib.md5(
        array.array('L', parts).tobytes()).hexdigest()
    sample = parts[:handoff_count]
    more = ring.get_more_nodes
    found = []

    def handoffs(chunk):
        n = 0
        for part in chunk:
            n += len(list(islice(more(part), 2)))
        found.append(n)

    out['handoff_rate'], out['handoff_rate_overall'] = (
        _best_rate(sample, handoffs) if sample else (0.0, 0.0))
    out['handoff_lookups'] = len(sample)
    out['handoffs_found'] = sum(found)   # sanity: 2 per lookup expected


class ObjstoreSide:
    """Our rings package, imported only inside our own worker process."""

    name = 'objstore'

    def __init__(self):
        if REPO not in sys.path:
            sys.path.insert(0, REPO)
        from rings.builder import RingBuilder
        from rings.ring import Ring
        self._builder_cls = RingBuilder
        self._ring_cls = Ring

    def version(self):
        try:
            from importlib.metadata import version
            return version('objstore')
        except Exception:
            return 'unknown'

    def new_builder(self, part_power, replicas, min_part_hours):
        return self._builder_cls(part_power, replicas, min_part_hours)

    def add_dev(self, b, dev):
        b.add_dev(dict(dev))

    def rebalance(self, b, seed):
        return b.rebalance(seed=seed)[0]

    def pretend_min_part_hours(self, b):
        b.pretend_min_part_hours_passed()

    def rows(self, b):
        return b._rows

    def own_balance(self, b):
        return b.get_balance()

    def own_dispersion(self, b):
        return b.dispersion_report()['max_dispersion']

    def write_ring(self, b, path):
        b.get_ring().save(path)

    def load_ring(self, path):
        return self._ring_cls(path, hash_prefix=HASH_PREFIX,
                              hash_suffix=HASH_SUFFIX, reload_interval=15)


def worker_main(side, spec_path):
    """Run the scenario for one side and print its JSON on stdout."""
    with open(spec_path) as f:
        spec = json.load(f)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr          # library chatter must not spoil the JSON
    try:
        result = run_scenario(side, spec)
    finally:
        sys.stdout = real_stdout
    result['loaded_modules_ok'] = _isolated(side.name)
    print(json.dumps(result))
    return 0


def _isolated(name):
    """True when the other side's ring library is not in this process."""
    other = 'swift.common.ring' if name == 'objstore' else 'rings.builder'
    return other not in sys.modules


# --------------------------------------------------------------------------
# the reference venv
# --------------------------------------------------------------------------
def ref_python():
    return os.path.join(REF_VENV, 'bin', 'python')


def _ref_works(check=REF_CHECK):
    py = ref_python()
    if not os.path.exists(py):
        return False
    probe = subprocess.run([py, '-c', check], capture_output=True,
                           text=True, timeout=300)
    return probe.returncode == 0


def ensure_ref_venv(log, requirements=REF_REQUIREMENTS, check=REF_CHECK):
    """Make test/bench/.ref-venv pass ``check`` (by default: import
    swift's ring) with swift --no-deps plus ``requirements``; or raise.

    compare.py (ref_cluster.py) asks for more, to run Swift's servers; an
    existing venv is kept and only completed.
    """
    if _ref_works(check):
        return
    log('building the reference venv %s (swift %s, --no-deps, plus %s)'
        % (os.path.relpath(REF_VENV), SWIFT_VERSION,
           ', '.join(requirements)))
    base = shutil.which('python3') or sys.executable
    steps = [
        [base, '-m', 'venv', '--clear', REF_VENV],
        [ref_python(), '-m', 'pip', 'install', '-q', '--timeout', '30',
         '--retries', '2', '--no-deps', 'swift==%s' % SWIFT_VERSION],
        [ref_python(), '-m', 'pip', 'install', '-q', '--timeout', '30',
         '--retries', '2'] + list(requirements),
    ]
    if os.path.exists(ref_python()):
        steps = steps[1:]            # keep the venv, finish its installs
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ReferenceUnavailable('%s: %s' % (' '.join(cmd[:4]), e))
        if proc.returncode != 0:
            tail = '\n'.join((proc.stderr or proc.stdout).strip()
                             .splitlines()[-6:])
            raise ReferenceUnavailable(
                'command failed: %s\n%s' % (' '.join(cmd), tail))
    if not _ref_works(check):
        raise ReferenceUnavailable('the venv was built but `%s` fails in it'
                                   % check)


# --------------------------------------------------------------------------
# running the workers and printing
# --------------------------------------------------------------------------
def run_worker(cmd, label):
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=WORKER_TIMEOUT, cwd=HERE)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError('%s worker failed (exit %s):\n%s'
                           % (label, proc.returncode,
                              proc.stderr.strip()[-3000:]))
    return json.loads(lines[-1])


# (key, label, format, better: 'lower' | 'higher' | None, flag tolerance)
METRICS = [
    (None, 'initial rebalance', None, None, 0),
    ('init_time', 'wall time (s)', '%.2f', 'lower', 0.2),
    ('init_balance', 'balance % (common)', '%.4f', 'lower', 0.05),
    ('init_own_balance', "balance % (builder's own)", '%.4f', None, 0),
    ('init_zone_overfull', 'parts over-full in a zone %', '%.3f', 'lower',
     0.01),
    ('init_host_overfull', 'parts over-full on a host %', '%.3f', 'lower',
     0.01),
    ('init_own_dispersion', "dispersion (builder's own)", '%.3f', None, 0),
    ('init_peers_min', 'replica peers per device, min', '%d', 'higher', 0),
    ('init_peers_mean', 'replica peers per device, mean', '%.1f', 'higher',
     0.5),
    ('init_own_moved', "reported moved (builder's own) *", '%d', None, 0),
    (None, 'add one device (weight 100), rebalance', None, None, 0),
    ('add_time', 'wall time (s)', '%.2f', 'lower', 0.2),
    ('add_moved', 'part-replicas moved', '%d', 'lower', 0),
    ('add_ideal', 'ideal (new device fair share)', '%.1f', None, 0),
    ('add_moved_ratio', 'moved / ideal', '%.3f', 'lower', 0.02),
    ('add_parts_touched', 'partitions touched', '%d', 'lower', 0),
    ('add_multi_moved', 'partitions with >1 replica moved', '%d', 'lower', 0),
    ('add_new_dev_parts', 'part-replicas on the new device', '%d', None, 0),
    ('add_balance', 'balance % (common)', '%.4f', 'lower', 0.05),
    ('add_own_balance', "balance % (builder's own)", '%.4f', None, 0),
    ('add_zone_overfull', 'parts over-full in a zone %', '%.3f', 'lower',
     0.01),
    ('add_host_overfull', 'parts over-full on a host %', '%.3f', 'lower',
     0.01),
    ('add_own_dispersion', "dispersion (builder's own)", '%.3f', None, 0),
    ('add_peers_min', 'replica peers per device, min', '%d', 'higher', 0),
    ('add_peers_mean', 'replica peers per device, mean', '%.1f', 'higher',
     0.5),
    ('add_own_moved', "reported moved (builder's own) *", '%d', None, 0),
    (None, 'ring file and lookups', None, None, 0),
    ('ring_write_time', 'write ring file (s)', '%.3f', 'lower', 0.05),
    ('ring_file_bytes', 'ring file size (bytes)', '%d', None, 0),
    ('ring_load_time', 'load Ring (s)', '%.3f', 'lower', 0.05),
    ('lookup_rate', 'get_nodes per second (best of 5)', '%.0f', 'higher',
     0),
    ('lookup_rate_overall', 'get_nodes per second (overall)', '%.0f',
     'higher', 0),
    ('handoff_rate', 'first 2 handoffs per second (best of 5)', '%.0f',
     'higher', 0),
    ('handoff_rate_overall', 'first 2 handoffs per second (overall)',
     '%.0f', 'higher', 0),
]


def _worse(better, ours, ref, tol):
    """True when ours is worse than swift's by more than noise."""
    if better is None or ours is None or ref is None:
        return False
    diff = ours - ref if better == 'lower' else ref - ours
    if diff <= tol:
        return False
    return ref == 0 or diff / abs(ref) > 0.05


def render_table(ours, ref):
    rows = [('metric', 'objstore', 'swift', 'ratio', '')]
    for key, label, fmt, better, tol in METRICS:
        if key is None:
            rows.append(('[%s]' % label, '', '', '', ''))
            continue
        a = ours.get(key)
        b = ref.get(key) if ref else None
        ratio = ('%.2f' % (a / b)) if (a is not None and b) else '-'
        flag = '<- objstore worse' if _worse(better, a, b, tol) else ''
        rows.append(('  ' + label, fmt % a if a is not None else '-',
                     fmt % b if b is not None else 'n/a', ratio, flag))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, r in enumerate(rows):
        lines.append('%-*s  %*s  %*s  %*s  %s' % (
            widths[0], r[0], widths[1], r[1], widths[2], r[2],
            widths[3], r[3], r[4]))
        if i == 0:
            lines.append('-' * (sum(widths) + 6))
    return '\n'.join(lines).rstrip()


def git_state():
    """Commit of the tree measured, and whether rings/ has local edits."""
    try:
        rev = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short',
                              'HEAD'], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        dirty = subprocess.run(['git', '-C', REPO, 'status', '--porcelain',
                                '--', 'rings'], capture_output=True,
                               text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return 'unknown'
    if not dirty:
        return rev or 'unknown'
    digest = hashlib.md5()
    rings_dir = os.path.join(REPO, 'rings')
    for name in sorted(os.listdir(rings_dir)):
        if name.endswith('.py'):
            with open(os.path.join(rings_dir, name), 'rb') as f:
                digest.update(name.encode() + f.read())
    return '%s + uncommitted changes in rings/ (content md5 %s)' % (
        rev or 'unknown', digest.hexdigest()[:10])


def parse_args(argv):
    p = argparse.ArgumentParser(
        description='Ring builder/lookup benchmark: objstore vs OpenStack '
                    'Swift, side by side.')
    p.add_argument('--part-power', type=int, default=18)
    p.add_argument('--replicas', type=int, default=3)
    p.add_argument('--min-part-hours', type=int, default=1)
    p.add_argument('--devices', type=int, default=100)
    p.add_argument('--zones', type=int, default=5)
    p.add_argument('--uneven', action='store_true',
                   help='mixed weights 50-200 and one smaller zone')
    p.add_argument('--lookups', type=int, default=200000,
                   help='get_nodes calls per side')
    p.add_argument('--handoff-lookups', type=int, default=50000,
                   help='get_more_nodes calls per side (at most --lookups)')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--json', metavar='PATH', help='also write results here')
    p.add_argument('--skip-reference', action='store_true',
                   help='run objstore only')
    p.add_argument('--worker', choices=['objstore'], help=argparse.SUPPRESS)
    p.add_argument('--spec', help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(ObjstoreSide(), args.spec)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    devs = build_layout(args.devices, args.zones, args.uneven, args.seed)
    spec = {'part_power': args.part_power, 'replicas': args.replicas,
            'min_part_hours': args.min_part_hours, 'seed': args.seed,
            'devices': devs,
            'new_device': new_device(devs, min(3, args.zones)),
            'lookups': args.lookups,
            'handoff_lookups': min(args.handoff_lookups, args.lookups)}

    load_before = ' '.join('%.2f' % x for x in os.getloadavg())
    ref_error = None
    if not args.skip_reference:
        try:
            ensure_ref_venv(log)
        except (ReferenceUnavailable, OSError,
                subprocess.TimeoutExpired) as e:
            ref_error = str(e)
            log('\nREFERENCE UNAVAILABLE: could not set up OpenStack Swift '
                'in %s:\n%s\n(no network to PyPI?) Running objstore only; '
                'use --skip-reference to do that on purpose.\n'
                % (os.path.relpath(REF_VENV), ref_error))

    with tempfile.NamedTemporaryFile('w', suffix='.json',
                                     prefix='ring-bench-spec-',
                                     delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    try:
        log('objstore: part power %d, %d devices, %d zones%s ...'
            % (args.part_power, len(devs), args.zones,
               ' (uneven)' if args.uneven else ''))
        try:
            ours = run_worker([sys.executable, os.path.abspath(__file__),
                               '--worker', 'objstore', '--spec', spec_path],
                              'objstore')
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            log(str(e))
            return 1
        ref = None
        if not args.skip_reference and ref_error is None:
            log('swift: same scenario ...')
            try:
                ref = run_worker([ref_python(), REF_DRIVER, spec_path],
                                 'swift')
            except (RuntimeError, ValueError, OSError,
                    subprocess.TimeoutExpired) as e:
                ref_error = str(e)
                log('\nREFERENCE RUN FAILED, objstore column only:\n%s\n'
                    % ref_error)
    finally:
        os.unlink(spec_path)

    weights = sorted({d['weight'] for d in devs})
    print('load average before the run: %s; objstore tree: %s'
          % (load_before, git_state()))
    print('ring benchmark: part power %d, %d replicas, min_part_hours %d, '
          '%d devices in %d zones (1 region), weights %s; +1 device in zone '
          '%d; %d lookups, %d handoff lookups, seed %d'
          % (args.part_power, args.replicas, args.min_part_hours, len(devs),
             args.zones, ','.join('%g' % w for w in weights),
             spec['new_device']['zone'], args.lookups,
             spec['handoff_lookups'], args.seed))
    print('python %s (%s); objstore %s; swift %s'
          % (ours['python'], platform.machine(), ours['library_version'],
             ref['library_version'] + ' (python %s)' % ref['python']
             if ref else 'not run'))
    print()
    print(render_table(ours, ref))
    print()
    print('ratio = objstore / swift. balance: max over devices of '
          '|100*parts/wanted - 100|, wanted by weight. "over-full": parts '
          'with more replicas in one zone/host than full dispersion needs. '
          'replica peers: other devices holding a replica of one of a '
          "device's partitions. * objstore reports partitions moved, swift "
          'partition-replicas moved (initial: every one).')
    notes = []
    if ref and ref['lookup_parts_md5'] != ours['lookup_parts_md5']:
        notes.append('WARNING: the same paths map to different partitions '
                     'on the two sides (hash scheme differs)')
    elif ref:
        notes.append('partition of every looked-up path agrees on both '
                     'sides')
    if not ours.get('loaded_modules_ok') or \
            (ref and not ref.get('loaded_modules_ok')):
        notes.append('WARNING: a worker had both ring libraries loaded')
    if ref_error:
        notes.append('swift NOT RUN: reference unavailable (reason on '
                     'stderr above); exit status 3')
    elif args.skip_reference:
        notes.append('swift not run (--skip-reference)')
    for n in notes:
        print(n)

    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'config': {k: v for k, v in spec.items()
                                  if k != 'devices'},
                       'devices': devs,
                       'uneven': args.uneven,
                       'objstore_tree': git_state(),
                       'load_average_before': load_before,
                       'python': platform.python_version(),
                       'objstore': ours, 'swift': ref,
                       'reference_error': ref_error}, f, indent=2)
    return 3 if ref_error else 0


if __name__ == '__main__':
    sys.exit(main())
