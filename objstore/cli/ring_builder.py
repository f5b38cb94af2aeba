"""objstore-ring-builder: the operator's command line for builder files.

    objstore-ring-builder BUILDER_FILE [COMMAND [ARGS...]]

The commands and device strings are the ones operators know from
OpenStack Swift's ``swift-ring-builder`` (see USAGE below and devspec.py).

Every command loads the builder file, makes all its changes in memory and
saves only when every step succeeded, so a typo never leaves a half-applied
change behind. ``rebalance`` also writes the ring file servers read
(``object.builder`` -> ``object.ring.gz``) and keeps the previous builder
in ``backups/`` beside it.

Exit codes: 0 done; 1 warning, nothing was written (a rebalance that
could not or need not move anything); 2 error, with one line on stderr
and no file changed. No arguments, ``-h``, ``--help`` or ``help`` print
the usage and exit 0.
"""
import datetime
import os
import shutil
import sys
import time

from objstore.cli.devspec import (
    DevSpecError, FLAG_FIELDS, dev_from_flags, format_dev, format_ip,
    meta_matches, parse_add_value, parse_change_value, parse_search_value,
    parse_weight, split_field_flags)
from rings.builder import RingBuilder, RingBuilderError
from rings.ringdata import RingData, RingFileError

EXIT_SUCCESS = 0
EXIT_WARNING = 1
EXIT_ERROR = 2

PROG = 'objstore-ring-builder'
HELP_WORDS = ('-h', '--help', 'help')
# above this balance a rebalance suggests pushing the ring and coming back
BALANCE_NOTE = 5.0

USAGE = """\
usage: %(prog)s BUILDER_FILE [COMMAND [ARGS...]]

Without a command, shows a summary of the builder and its devices.

Commands:
  create <part_power> <replicas> <min_part_hours>
      Make a new builder file (refuses to overwrite one).
  add [r<region>]z<zone>-<ip>:<port>[R<ip>:<port>]/<device>[_<meta>] <weight>
      [<device> <weight> ...]
  add --region <n> --zone <n> --ip <ip> --port <n> [--replication-ip <ip>]
      [--replication-port <n>] --device <name> --weight <w> [--meta <text>]
      Add devices; they get partitions at the next rebalance.
  remove <search-value> [<search-value> ...]
      Mark matching devices for removal at the next rebalance.
  set_weight <search-value> <weight> [<search-value> <weight> ...]
  set_info <search-value> <ip>:<port>[R<ip>:<port>]/<device>_<meta> [...]
      Change address, device name or meta; any part may be left out.
  set_overload <value>[%%]
      0.1 or 10%% both mean ten percent.
  set_min_part_hours <hours>
  pretend_min_part_hours_passed
      Let every partition move at the next rebalance.
  rebalance [--seed <n>] [--force]
      Reassign partitions; write the builder, the ring file and a backup.
  write_ring
      Write the ring file from the builder without rebalancing.
  validate
      Check the partition assignment.
  search <search-value> [...]
  list_parts <search-value> [...]
      Partitions with replicas on the matching devices.
  dispersion [<search-value> ...] [--verbose]
      Replicas per partition in each region, zone and host (and device).

Search values: d<id>r<region>z<zone>-<ip>:<port>R<ip>:<port>/<device>_<meta>
with every part optional, e.g. d3, z2, r1z2-10.0.0.1, 10.0.0.1:6200, /sdb1,
_ssd (meta matches as a substring). Put IPv6 addresses in brackets:
[::1]:6200. Instead of a search value, flags select devices: --id --region
--zone --ip --port --replication-ip --replication-port --device --meta
--weight (set_weight then takes just the weight).

Exit codes: 0 success, 1 warning (nothing written), 2 error (nothing
changed).
""" % {'prog': PROG}


class CommandError(Exception):
    """Bad input for a command; the message is shown as is."""


class Session:
    """One command run: the builder file, where output goes."""

    def __init__(self, path, out):
        self.path = path
        self.out = out

    def say(self, text=''):
        print(text, file=self.out)

    def load(self):
        return RingBuilder.load(self.path)

    def save(self, builder):
        builder.save(self.path)

    @property
    def ring_path(self):
        return ring_path_for(self.path)


def ring_path_for(builder_path):
    """object.builder -> object.ring.gz (other names just get .ring.gz)."""
    base = builder_path
    if base.endswith('.builder'):
        base = base[:-len('.builder')]
    return base + '.ring.gz'


def backup_path_for(builder_path, now=None):
    """backups/<unix time>.<file name> in the builder's directory.

    Two rebalances within one second (scripts) get <time>-<n>.<name>, so
    no backup ever overwrites another.
    """
    directory = os.path.join(os.path.dirname(os.path.abspath(builder_path)),
                             'backups')
    now = int(time.time() if now is None else now)
    name = os.path.basename(builder_path)
    path = os.path.join(directory, '%d.%s' % (now, name))
    n = 0
    while os.path.lexists(path):
        n += 1
        path = os.path.join(directory, '%d-%d.%s' % (now, n, name))
    return path


# -- argument helpers --------------------------------------------------------

def _whole(value, name):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CommandError('%s must be a whole number, got %r'
                           % (name, value))


def _number(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CommandError('%s must be a number, got %r' % (name, value))


def _expect(args, count, syntax):
    if len(args) != count:
        raise CommandError('usage: %s' % syntax)


def _flag_label(flags):
    inverse = {field: name for name, (field, _) in FLAG_FIELDS.items()}
    return ' '.join('--%s %s' % (inverse[k], v) for k, v in flags.items())


def _searches(args, syntax):
    """[(label, criteria)] from search values and/or field flags."""
    flags, values = split_field_flags(args)
    out = [(v, parse_search_value(v)) for v in values]
    if flags:
        out.append((_flag_label(flags), flags))
    if not out:
        raise CommandError('usage: %s' % syntax)
    return out


def _match(builder, criteria):
    exact = {k: v for k, v in criteria.items() if k != 'meta'}
    return [d for d in builder.search_devs(**exact)
            if meta_matches(d, criteria)]


def _select(builder, searches):
    """Devices matching any search, by id; every search must match."""
    found = {}
    for label, criteria in searches:
        devs = _match(builder, criteria)
        if not devs:
            raise CommandError('no device matches %s' % label)
        for dev in devs:
            found[dev['id']] = dev
    return [found[i] for i in sorted(found)]


def _pairs(args, syntax, second):
    """[(a, b)] from a b a b ...; ``second`` names b in the error."""
    if not args:
        raise CommandError('usage: %s' % syntax)
    if len(args) % 2:
        raise CommandError('%r has no %s after it' % (args[-1], second))
    return list(zip(args[::2], args[1::2]))


# -- reporting helpers -------------------------------------------------------

def _pending_removal(builder):
    return builder.removal_pending


def _seconds_until_all_may_move(builder, now=None):
    return builder.seconds_until_all_may_move(now)


def _duration(seconds):
    return str(datetime.timedelta(seconds=int(seconds)))


def _table(headers, rows):
    """Columns right-aligned except the last (free text)."""
    cells = [list(headers)] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [c.rjust(w) for c, w in zip(row[:-1], widths[:-1])]
        parts.append(row[-1])
        lines.append('  '.join(parts).rstrip())
    return lines


def _device_lines(builder, devs):
    parts = builder.dev_parts()
    balances = builder.dev_balances(parts)
    removing = _pending_removal(builder)
    rows = []
    for dev in devs:
        rows.append((
            dev['id'], dev['region'], dev['zone'],
            '%s:%d' % (format_ip(dev['ip']), dev['port']),
            '%s:%d' % (format_ip(dev['replication_ip']),
                       dev['replication_port']),
            dev['device'], '%.2f' % dev['weight'], parts[dev['id']],
            '%.2f' % balances[dev['id']],
            'DEL' if dev['id'] in removing else '', dev.get('meta') or ''))
    return _table(('id', 'region', 'zone', 'ip:port', 'replication ip:port',
                   'name', 'weight', 'partitions', 'balance', 'flags',
                   'meta'), rows)


def _ring_version(path):
    """Version of the ring file at path, None when missing or unreadable."""
    if not os.path.exists(path):
        return None
    try:
        return RingData.load(path).version
    except RingFileError:
        return None


# -- commands ----------------------------------------------------------------

COMMANDS = {}


def command(name):
    def register(func):
        COMMANDS[name] = func
        return func
    return register


@command(None)
def cmd_summary(s, args):
    if args:
        raise CommandError('unexpected %r' % args[0])
    b = s.load()
    devs = list(b.iter_devs())
    regions = {d['region'] for d in devs}
    zones = {(d['region'], d['zone']) for d in devs}
    wait = _seconds_until_all_may_move(b)
    s.say('%s, build version %d' % (s.path, b.version))
    s.say('part power %d (%d partitions), %d replicas, min_part_hours %d '
          '(%s until every partition may move)'
          % (b.part_power, b.parts, b.replicas, b.min_part_hours,
             _duration(wait)))
    s.say('%d regions, %d zones, %d devices'
          % (len(regions), len(zones), len(devs)))
    s.say('balance %.2f, dispersion %.2f, overload %.2f%% (%.6f), '
          'required overload %.2f%%'
          % (b.get_balance(), b.dispersion_report()['max_dispersion'],
             100 * b.overload, b.overload, 100 * b.get_required_overload()))
    if not b.ever_rebalanced:
        s.say('never rebalanced; no ring file written yet')
    else:
        version = _ring_version(s.ring_path)
        if version is None:
            state = 'missing (run write_ring)'
        elif version == b.version:
            state = 'up-to-date'
        else:
            state = 'obsolete (version %d; rebalance or write_ring)' % version
        s.say('ring file %s is %s' % (s.ring_path, state))
    if devs:
        s.say('Devices:')
        for line in _device_lines(b, devs):
            s.say('  ' + line)
    else:
        s.say('No devices.')
    return EXIT_SUCCESS


@command('create')
def cmd_create(s, args):
    syntax = 'create <part_power> <replicas> <min_part_hours>'
    _expect(args, 3, syntax)
    part_power = _whole(args[0], 'part_power')
    replicas = _number(args[1], 'replicas')
    hours = _whole(args[2], 'min_part_hours')
    if os.path.lexists(s.path):
        raise CommandError('%s already exists; not overwriting it' % s.path)
    directory = os.path.dirname(os.path.abspath(s.path))
    if not os.path.isdir(directory):
        raise CommandError('directory %s does not exist' % directory)
    b = RingBuilder(part_power, replicas, hours)
    s.save(b)
    s.say('Created %s: %d partitions (part power %d), %d replicas, '
          'min_part_hours %d' % (s.path, b.parts, b.part_power, b.replicas,
                                 b.min_part_hours))
    return EXIT_SUCCESS


@command('add')
def cmd_add(s, args):
    syntax = ('add [r<region>]z<zone>-<ip>:<port>[R<ip>:<port>]/<device>'
              '[_<meta>] <weight> [...]  or  add --zone .. --ip .. --port .. '
              '--device .. --weight ..')
    if any(a.startswith('--') for a in args):
        flags, rest = split_field_flags(args)
        if rest:
            raise CommandError('unexpected %r after the add flags' % rest[0])
        devs = [dev_from_flags(flags)]
    else:
        devs = []
        for value, weight in _pairs(args, syntax, 'weight'):
            dev = parse_add_value(value)
            dev['weight'] = parse_weight(weight)
            devs.append(dev)
    b = s.load()
    added = []
    for dev in devs:
        dev_id = b.add_dev(dev)
        added.append(b.devs[dev_id])
    s.save(b)
    for dev in added:
        s.say('Device %s with %s weight got id %d'
              % (format_dev(dev), dev['weight'], dev['id']))
    return EXIT_SUCCESS


@command('remove')
def cmd_remove(s, args):
    searches = _searches(args, 'remove <search-value> [...]')
    b = s.load()
    devs = _select(b, searches)
    for dev in devs:
        b.remove_dev(dev['id'])
    s.save(b)
    for dev in devs:
        s.say('%s marked for removal; it leaves at the next rebalance'
              % format_dev(dev))
    return EXIT_SUCCESS


@command('set_weight')
def cmd_set_weight(s, args):
    syntax = ('set_weight <search-value> <weight> [...]  or  '
              'set_weight --<field> <value> ... <weight>')
    flags, rest = split_field_flags(args)
    if flags:
        if len(rest) != 1:
            raise CommandError('usage: %s' % syntax)
        jobs = [((_flag_label(flags), flags), rest[0])]
    else:
        jobs = [((v, parse_search_value(v)), w)
                for v, w in _pairs(rest, syntax, 'weight')]
    jobs = [(search, parse_weight(w)) for search, w in jobs]
    b = s.load()
    lines = []
    for search, weight in jobs:
        for dev in _select(b, [search]):
            old = dev['weight']
            b.set_dev_weight(dev['id'], weight)
            lines.append('%s weight set to %s (was %s)'
                         % (format_dev(dev), weight, old))
    s.save(b)
    for line in lines:
        s.say(line)
    return EXIT_SUCCESS


@command('set_info')
def cmd_set_info(s, args):
    syntax = ('set_info <search-value> '
              '<ip>:<port>[R<ip>:<port>]/<device>_<meta> [...]')
    jobs = [((v, parse_search_value(v)), parse_change_value(c))
            for v, c in _pairs(args, syntax, 'change value')]
    b = s.load()
    lines = []
    for search, change in jobs:
        for dev in _select(b, [search]):
            before = format_dev(dev)
            b.set_dev_info(dev['id'], **change)
            lines.append('Device %s is now %s'
                         % (before, format_dev(b.devs[dev['id']])))
    s.save(b)
    for line in lines:
        s.say(line)
    return EXIT_SUCCESS


def parse_overload(text):
    """'0.1' -> 0.1 and '10%' -> 0.1; returns (fraction, had_percent)."""
    value = text.strip()
    percent = value.endswith('%')
    if percent:
        value = value[:-1]
    number = _number(value, 'overload')
    return (number / 100.0 if percent else number), percent


@command('set_overload')
def cmd_set_overload(s, args):
    _expect(args, 1, 'set_overload <value>[%]')
    fraction, percent = parse_overload(args[0])
    b = s.load()
    b.set_overload(fraction)
    s.save(b)
    s.say('The overload factor is now %.2f%% (%.6f)'
          % (100 * b.overload, b.overload))
    if not percent and fraction > 1:
        s.say('Note: %s without "%%" is a fraction, so this is %.0f%%; '
              'write %s%% for %s percent.'
              % (args[0], 100 * fraction, args[0], args[0]))
    return EXIT_SUCCESS


@command('set_min_part_hours')
def cmd_set_min_part_hours(s, args):
    _expect(args, 1, 'set_min_part_hours <hours>')
    hours = _whole(args[0], 'min_part_hours')
    b = s.load()
    b.set_min_part_hours(hours)
    s.save(b)
    s.say('The minimum number of hours before a partition can be '
          'reassigned is now %d' % b.min_part_hours)
    return EXIT_SUCCESS


@command('pretend_min_part_hours_passed')
def cmd_pretend(s, args):
    _expect(args, 0, 'pretend_min_part_hours_passed')
    b = s.load()
    b.pretend_min_part_hours_passed()
    s.save(b)
    s.say('Every partition may move at the next rebalance.')
    return EXIT_SUCCESS


def _rebalance_options(args):
    seed, force = None, False
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in ('--force', '-f'):
            force = True
        elif arg in ('--seed', '-s'):
            if i >= len(args):
                raise CommandError('--seed needs a value')
            seed = _whole(args[i], 'seed')
            i += 1
        elif arg.startswith('--seed='):
            seed = _whole(arg.split('=', 1)[1], 'seed')
        elif not arg.startswith('-') and seed is None:
            seed = _whole(arg, 'seed')      # the old positional form
        else:
            raise CommandError('usage: rebalance [--seed <n>] [--force]')
    return seed, force


@command('rebalance')
def cmd_rebalance(s, args):
    """Rebalance; write backup, builder, then ring.

    Nothing is written when nothing moved, no device left and the ring
    file already holds this builder version (exit 1), unless --force.
    The builder is saved before the ring: if writing the ring then fails,
    ``write_ring`` recreates it from the builder, while the other order
    could ship a ring the builder does not know about.
    """
    seed, force = _rebalance_options(args)
    b = s.load()
    ring_version = _ring_version(s.ring_path)
    moved, balance, removed = b.rebalance(seed=seed)
    wait = _seconds_until_all_may_move(b)
    if not moved and not removed and not force and \
            ring_version == b.version:
        s.say('No partitions could be reassigned.')
        if wait:
            s.say('Partitions moved less than min_part_hours (%d) ago may '
                  'not move yet: %s remaining.'
                  % (b.min_part_hours, _duration(wait)))
        else:
            s.say('There is no need to do so at this time.')
        s.say('Nothing written.')
        return EXIT_WARNING
    ring = b.get_ring()         # validates the assignment before writing
    dispersion = b.dispersion_report()['max_dispersion']
    backup = backup_path_for(s.path)
    os.makedirs(os.path.dirname(backup), exist_ok=True)
    shutil.copyfile(s.path, backup)
    s.save(b)
    ring.save(s.ring_path)
    s.say('Reassigned %d (%.2f%%) partitions. Balance is now %.2f. '
          'Dispersion is now %.2f.'
          % (moved, 100.0 * moved / b.parts, balance, dispersion))
    if removed:
        s.say('Removed %d device(s).' % removed)
    s.say('Wrote %s and %s (version %d); previous builder kept as %s'
          % (s.path, s.ring_path, b.version, backup))
    if not moved and wait:
        s.say('Note: partitions moved less than min_part_hours (%d) ago '
              'could not move yet: %s remaining.'
              % (b.min_part_hours, _duration(wait)))
    elif balance > BALANCE_NOTE:
        s.say('Note: balance %.2f; push this ring, wait out min_part_hours '
              '(%d) and rebalance again.' % (balance, b.min_part_hours))
    return EXIT_SUCCESS


@command('write_ring')
def cmd_write_ring(s, args):
    _expect(args, 0, 'write_ring')
    b = s.load()
    if not b.ever_rebalanced:
        raise CommandError('%s has never been rebalanced; run rebalance '
                           'first' % s.path)
    b.get_ring().save(s.ring_path)
    s.say('Wrote %s (version %d)' % (s.ring_path, b.version))
    return EXIT_SUCCESS


@command('validate')
def cmd_validate(s, args):
    _expect(args, 0, 'validate')
    b = s.load()
    b.validate()
    s.say('%s is valid: %d partitions x %d replicas on %d devices'
          % (s.path, b.parts, b.replicas, len(list(b.iter_devs()))))
    return EXIT_SUCCESS


@command('search')
def cmd_search(s, args):
    searches = _searches(args, 'search <search-value> [...]')
    b = s.load()
    devs = _select(b, searches)
    s.say('Devices:')
    for line in _device_lines(b, devs):
        s.say('  ' + line)
    return EXIT_SUCCESS


@command('list_parts')
def cmd_list_parts(s, args):
    searches = _searches(args, 'list_parts <search-value> [...]')
    b = s.load()
    devs = _select(b, searches)
    if not b.ever_rebalanced:
        raise CommandError('%s has never been rebalanced; no partitions '
                           'yet' % s.path)
    counts = b.parts_on(d['id'] for d in devs)
    if not counts:
        s.say('No partitions on the matching devices.')
        return EXIT_SUCCESS
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    for line in _table(('Partition', 'Matches'), rows):
        s.say(line)
    return EXIT_SUCCESS


def _tier_label(builder, key):
    label = 'r%d' % key[0]
    if len(key) > 1:
        label += 'z%d' % key[1]
    if len(key) > 2:
        label += '-%s' % format_ip(key[2])
    if len(key) > 3:
        dev = builder.devs[key[3]]
        label += '/%s' % (dev['device'] if dev else 'd%d' % key[3])
    return label


@command('dispersion')
def cmd_dispersion(s, args):
    verbose = False
    rest = []
    for arg in args:
        if arg in ('--verbose', '-v'):
            verbose = True
        else:
            rest.append(arg)
    searches = _searches(rest, 'dispersion') if rest else []
    b = s.load()
    wanted = None
    if searches:
        wanted = set()
        for dev in _select(b, searches):
            full = (dev['region'], dev['zone'], dev['ip'], dev['id'])
            wanted.update(full[:n] for n in range(1, 5))
    report = b.dispersion_report()
    s.say('Dispersion is %.2f, Balance is %.2f, Overload is %.2f%%'
          % (report['max_dispersion'], b.get_balance(), 100 * b.overload))
    s.say('Required overload is %.2f%%' % (100 * b.get_required_overload()))
    if not b.ever_rebalanced:
        s.say('Never rebalanced: no partitions placed yet.')
        return EXIT_SUCCESS
    rows = []
    for key in sorted(report['tiers']):
        tier = report['tiers'][key]
        if len(key) == 4 and not verbose:
            continue
        if wanted is not None and key not in wanted:
            continue
        counts = tier['counts']
        over = sum(counts[tier['max_replicas'] + 1:])
        rows.append([_tier_label(b, key), b.parts - counts[0],
                     '%.2f' % (100.0 * over / b.parts), tier['max_replicas']]
                    + counts + [''])
    headers = (['Tier', 'Parts', '% over', 'Max']
               + [str(n) for n in range(b.replicas + 1)] + [''])
    for line in _table(headers, rows):
        s.say(line)
    return EXIT_SUCCESS


# -- entry point -------------------------------------------------------------

def _one_line(error):
    if isinstance(error, OSError) and error.strerror:
        where = error.filename
        text = '%s: %s' % (where, error.strerror) if where else \
            error.strerror
    else:
        text = str(error) or error.__class__.__name__
    return ' '.join(text.split())


def main(argv=None, out=None, err=None):
    """Run one command; returns the exit code (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if not argv or argv[0] in HELP_WORDS or \
            (len(argv) > 1 and argv[1] in HELP_WORDS):
        out.write(USAGE)
        return EXIT_SUCCESS
    path, name, args = argv[0], (argv[1] if len(argv) > 1 else None), \
        argv[2:]
    handler = COMMANDS.get(name)
    if handler is None:
        print('error: unknown command %r (run %s -h for the list)'
              % (name, PROG), file=err)
        return EXIT_ERROR
    try:
        return handler(Session(path, out), args)
    except BrokenPipeError:
        # output piped into head(1) and the like; any change is saved
        # before anything is printed, so this is no failure
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SUCCESS
    except (CommandError, DevSpecError, RingBuilderError, RingFileError,
            OSError) as e:
        print('error: %s' % _one_line(e), file=err)
        return EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main())
