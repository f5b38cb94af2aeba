"""objstore-ring-builder driven through main(), as an operator would."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from objstore.cli.ring_builder import COMMANDS, main, ring_path_for
from rings.builder import RingBuilder
from rings.ring import Ring

REPO = Path(__file__).resolve().parents[3]

DEVS = ['r1z1-10.0.0.1:6200/sdb1', 'r1z2-10.0.0.2:6200/sdb1',
        'r1z3-10.0.0.3:6200/sdb1_ssd', 'r1z4-10.0.0.4:6200/sdb1']


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def ok(capsys, *args):
    rc, out, err = run(capsys, *args)
    assert (rc, err) == (0, ''), out
    return out


@pytest.fixture
def path(tmp_path, capsys):
    """A builder with four devices in four zones, never rebalanced."""
    p = str(tmp_path / 'object.builder')
    ok(capsys, p, 'create', 8, 3, 1)
    args = []
    for spec in DEVS:
        args += [spec, '100']
    ok(capsys, p, 'add', *args)
    return p


@pytest.fixture
def built(path, capsys):
    """The same builder, rebalanced once (ring file written)."""
    ok(capsys, path, 'rebalance', '--seed', 1)
    return path


def load(path):
    return RingBuilder.load(path)


def files_under(directory):
    return sorted(str(p.relative_to(directory))
                  for p in Path(directory).rglob('*'))


def snapshot(directory):
    return {name: (Path(directory, name).read_bytes()
                   if Path(directory, name).is_file() else None)
            for name in files_under(directory)}


# -- usage -------------------------------------------------------------------

@pytest.mark.parametrize('argv', [[], ['-h'], ['--help'], ['help'],
                                  ['object.builder', 'help'],
                                  ['object.builder', '-h']])
def test_usage_lists_every_command(capsys, argv):
    rc, out, err = run(capsys, *argv)
    assert (rc, err) == (0, '')
    for name in COMMANDS:
        if name is not None:
            assert name in out
    assert 'usage:' in out


def test_ring_path_for():
    assert ring_path_for('/etc/objstore/object.builder') == \
        '/etc/objstore/object.ring.gz'
    assert ring_path_for('object-1.builder') == 'object-1.ring.gz'
    assert ring_path_for('rings/acct') == 'rings/acct.ring.gz'


# -- create / add / rebalance ------------------------------------------------

def test_create_add_rebalance_writes_builder_ring_and_backup(path, capsys):
    before = Path(path).read_bytes()
    rc, out, err = run(capsys, path, 'rebalance', '--seed', '7')
    assert (rc, err) == (0, '')
    assert 'Reassigned 256 (100.00%) partitions.' in out
    assert 'Balance is now 0.00.' in out
    assert 'Dispersion is now 0.00.' in out
    ring_file = ring_path_for(path)
    assert os.path.exists(ring_file)
    ring = Ring(ring_file, hash_prefix=b'pre', hash_suffix=b'suf')
    assert ring.replica_count == 3
    assert ring.partition_count == 256
    part, nodes = ring.get_nodes('AUTH_a', 'c', 'o')
    assert 0 <= part < 256
    assert len({n['id'] for n in nodes}) == 3
    assert {n['ip'] for n in ring.devs} == {'10.0.0.%d' % i
                                            for i in range(1, 5)}
    b = load(path)
    assert b.ever_rebalanced and b.dev_parts() == [192] * 4
    assert ring.version == b.version
    backups = list(Path(path).parent.joinpath('backups').iterdir())
    assert len(backups) == 1
    assert backups[0].name.endswith('.object.builder')
    assert backups[0].name.split('.')[0].isdigit()
    assert backups[0].read_bytes() == before


def test_add_reports_ids_and_every_form(tmp_path, capsys):
    p = str(tmp_path / 'x.builder')
    ok(capsys, p, 'create', 6, 3, 0)
    out = ok(capsys, p, 'add', 'z1-127.0.0.1:6200/sdb1', '100',
             'r2z1-127.0.0.1:6200R127.0.0.2:6300/sdc_meta text', '50',
             'r1z2-[::1]:6200/sdb1', '10')
    assert 'got id 0' in out and 'got id 1' in out and 'got id 2' in out
    out = ok(capsys, p, 'add', '--region', '2', '--zone', '3', '--ip',
             '[2001:db8::1]', '--port', '6200', '--replication-ip',
             '10.9.9.9', '--replication-port', '6400', '--device', 'sdd',
             '--weight', '25', '--meta', 'flagged')
    assert 'got id 3' in out
    devs = load(p).devs
    assert (devs[0]['region'], devs[0]['zone']) == (1, 1)
    assert (devs[1]['region'], devs[1]['replication_ip'],
            devs[1]['replication_port'], devs[1]['device'],
            devs[1]['meta'], devs[1]['weight']) == \
        (2, '127.0.0.2', 6300, 'sdc', 'meta text', 50.0)
    assert devs[2]['ip'] == '::1'
    assert (devs[3]['ip'], devs[3]['replication_ip'],
            devs[3]['replication_port'], devs[3]['meta']) == \
        ('2001:db8::1', '10.9.9.9', 6400, 'flagged')
    ok(capsys, p, 'rebalance')
    ring = Ring(ring_path_for(p), hash_prefix=b'a', hash_suffix=b'b')
    assert ring.devs[2]['ip'] == '::1'


def test_summary_shows_builder_and_devices(built, capsys):
    ok(capsys, built, 'set_overload', '10%')
    out = ok(capsys, built)
    assert 'part power 8 (256 partitions), 3 replicas, min_part_hours 1' \
        in out
    assert '1 regions, 4 zones, 4 devices' in out
    assert 'balance 0.00' in out and 'dispersion 0.00' in out
    assert 'overload 10.00% (0.100000)' in out
    assert 'required overload' in out
    assert 'obsolete' in out        # overload changed since the ring
    header = next(line for line in out.splitlines() if 'partitions' in line
                  and 'ip:port' in line)
    for column in ('id', 'region', 'zone', 'replication ip:port', 'name',
                   'weight', 'balance', 'meta'):
        assert column in header
    rows = [line.split() for line in out.splitlines()
            if '10.0.0.' in line]
    assert len(rows) == 4
    assert rows[2][:9] == ['2', '1', '3', '10.0.0.3:6200', '10.0.0.3:6200',
                           'sdb1', '100.00', '192', '0.00']
    assert rows[2][-1] == 'ssd'


def test_summary_of_new_builder(path, capsys):
    out = ok(capsys, path)
    assert 'never rebalanced' in out
    assert out.count('10.0.0.') == 8


def test_summary_says_ring_up_to_date(built, capsys):
    assert 'is up-to-date' in ok(capsys, built)
    os.unlink(ring_path_for(built))
    assert 'missing' in ok(capsys, built)


# -- bad input: exit 2, one line, nothing changed ----------------------------

BAD = [
    ['frobnicate'],
    ['add'],
    ['add', 'r1z1-10.0.0.9:6200', '100'],                 # no device
    ['add', 'garbage', '100'],
    ['add', 'r1z1-10.0.0.9:6200/sdb1'],                   # no weight
    ['add', 'r1z1-10.0.0.1:6200/sdb1', '100'],            # duplicate
    ['add', 'r1z1-10.0.0.9:6200/sdb1', '-1'],             # weight < 0
    ['add', 'r1z1-10.0.0.9:6200/sdb1', 'heavy'],
    ['add', 'r1z5-10.0.0.9:6200/sdb1', '100',             # dup in one call
     'r1z5-10.0.0.9:6200/sdb1', '100'],
    ['add', 'r1z5-10.0.0.9:6200/sdb1', '100',             # 2nd malformed
     'r1z5-10.0.0.9:6200', '100'],
    ['add', 'r1z1-::1:6200/sdb1', '100'],
    ['add', '--zone', '1', '--ip', '10.0.0.9', '--port', '6200',
     '--device', 'sdb1'],
    ['add', '--zone', 'x', '--ip', '10.0.0.9', '--port', '6200',
     '--device', 'sdb1', '--weight', '1'],
    ['add', '--zone', '1', '--ip', '10.0.0.9', '--port', '6200',
     '--device', 'sdb1', '--weight', '1', 'extra'],
    ['remove'],
    ['remove', 'd99'],
    ['remove', 'z9'],
    ['remove', 'd0', '/nope'],                             # 2nd matches none
    ['remove', '--zone', '9'],
    ['set_weight', 'd0'],
    ['set_weight', 'd0', 'abc'],
    ['set_weight', 'd0', '-5'],
    ['set_weight', 'd99', '10'],
    ['set_weight', 'd0', '10', 'd99', '10'],
    ['set_weight', '--zone', '1'],
    ['set_info', 'd0', '10.0.0.2:6200/sdb1'],              # = device 1
    ['set_info', 'd0', 'R'],
    ['set_info', 'd99', ':6201'],
    ['set_info', 'd0'],
    ['set_overload'],
    ['set_overload', 'lots'],
    ['set_overload', '-1'],
    ['set_overload', '5%%'],
    ['set_min_part_hours', 'x'],
    ['set_min_part_hours', '10000'],
    ['set_min_part_hours', '1', '2'],
    ['pretend_min_part_hours_passed', 'now'],
    ['rebalance', '--seed', 'x'],
    ['rebalance', '--seed'],
    ['rebalance', '--bogus'],
    ['create', '8', '3', '1'],                             # exists
    ['search'],
    ['search', 'z9'],
    ['search', 'z1host'],
    ['search', '--colour', 'red'],
    ['list_parts', 'd99'],
    ['list_parts'],
    ['dispersion', 'd99'],
    ['validate', 'extra'],
    ['write_ring', 'extra'],
]


def _check_refused(capsys, directory, argv):
    before = snapshot(directory)
    rc, out, err = run(capsys, *argv)
    assert rc == 2, (argv, out, err)
    assert out == ''
    assert err.startswith('error: ') and err.endswith('\n')
    assert err.count('\n') == 1, err
    assert 'Traceback' not in err
    assert snapshot(directory) == before


@pytest.mark.parametrize('argv', BAD, ids=[' '.join(a) for a in BAD])
def test_bad_input_changes_nothing(built, capsys, argv):
    _check_refused(capsys, Path(built).parent, [built] + argv)


@pytest.mark.parametrize('argv', [
    ['validate'], ['write_ring'], ['list_parts', 'd0'],
    ['rebalance'],                             # not enough devices
], ids=lambda a: ' '.join(a))
def test_refused_on_unbalanced_builder(tmp_path, capsys, argv):
    p = str(tmp_path / 'object.builder')
    ok(capsys, p, 'create', 8, 3, 1)
    ok(capsys, p, 'add', DEVS[0], 100, DEVS[1], 100)
    _check_refused(capsys, tmp_path, [p] + argv)


@pytest.mark.parametrize('argv', [
    ['create', '0', '3', '1'],
    ['create', '25', '3', '1'],
    ['create', 'eight', '3', '1'],
    ['create', '8', '3.5', '1'],
    ['create', '8', '0', '1'],
    ['create', '8', 'three', '1'],
    ['create', '8', '3', '-1'],
    ['create', '8', '3', 'soon'],
    ['create', '8', '3'],
    ['add', DEVS[0], '100'],
    ['rebalance'],
    [],                                        # summary
    ['search', 'd0'],
], ids=lambda a: ' '.join(a) or 'summary')
def test_bad_create_or_missing_builder(tmp_path, capsys, argv):
    p = str(tmp_path / 'object.builder')
    _check_refused(capsys, tmp_path, [p] + argv)
    assert not os.path.exists(p)


def test_create_in_missing_directory(tmp_path, capsys):
    p = str(tmp_path / 'nope' / 'object.builder')
    _check_refused(capsys, tmp_path, [p, 'create', 8, 3, 1])


def test_corrupt_builder_file(tmp_path, capsys):
    p = tmp_path / 'object.builder'
    p.write_bytes(b'not gzip at all')
    _check_refused(capsys, tmp_path, [str(p)])
    _check_refused(capsys, tmp_path, [str(p), 'rebalance'])


# -- rebalance, min_part_hours -----------------------------------------------

def test_rebalance_with_nothing_to_do_warns_and_writes_nothing(built,
                                                                capsys):
    ok(capsys, built, 'pretend_min_part_hours_passed')
    directory = Path(built).parent
    before = snapshot(directory)
    rc, out, err = run(capsys, built, 'rebalance')
    assert (rc, err) == (1, '')
    assert 'No partitions could be reassigned' in out
    assert snapshot(directory) == before


def test_rebalance_force_writes_anyway(built, capsys):
    ok(capsys, built, 'pretend_min_part_hours_passed')
    os.utime(ring_path_for(built), (1, 1))
    out = ok(capsys, built, 'rebalance', '--force')
    assert 'Reassigned 0 (0.00%)' in out
    assert os.stat(ring_path_for(built)).st_mtime > 1
    assert len(os.listdir(Path(built).parent / 'backups')) == 2


def test_rebalance_rewrites_a_missing_ring_file(built, capsys):
    ok(capsys, built, 'pretend_min_part_hours_passed')
    os.unlink(ring_path_for(built))
    ok(capsys, built, 'rebalance')
    assert os.path.exists(ring_path_for(built))


def test_min_part_hours_honoured_until_pretend(built, capsys):
    ok(capsys, built, 'add', 'r1z5-10.0.0.5:6200/sdb1', '100')
    # the device is new, but every partition moved less than an hour ago
    out = ok(capsys, built, 'rebalance')
    assert 'Reassigned 0 (0.00%)' in out
    assert 'could not move yet' in out
    assert load(built).dev_parts()[4] == 0
    ring = Ring(ring_path_for(built), hash_prefix=b'a', hash_suffix=b'b')
    assert ring.devs[4]['ip'] == '10.0.0.5'          # the ring knows it
    rc, out, _ = run(capsys, built, 'rebalance')
    assert rc == 1
    assert 'remaining' in out
    ok(capsys, built, 'pretend_min_part_hours_passed')
    out = ok(capsys, built, 'rebalance')
    assert 'Reassigned 0 ' not in out
    parts = load(built).dev_parts()
    assert parts[4] > 0 and sum(parts) == 256 * 3


def test_set_min_part_hours_zero_lets_partitions_move(built, capsys):
    ok(capsys, built, 'set_min_part_hours', '0')
    assert load(built).min_part_hours == 0
    ok(capsys, built, 'add', 'r1z5-10.0.0.5:6200/sdb1', '100')
    ok(capsys, built, 'rebalance')
    assert load(built).dev_parts()[4] > 0


def test_remove_then_rebalance_drops_the_device(built, capsys):
    out = ok(capsys, built, 'remove', 'd3')
    assert 'd3r1z4-10.0.0.4:6200' in out and 'removal' in out
    out = ok(capsys, built, 'search', 'd3')
    assert 'DEL' in out
    out = ok(capsys, built, 'rebalance')
    assert 'Removed 1 device' in out
    b = load(built)
    assert len(list(b.iter_devs())) == 3
    assert b.dev_parts() == [256, 256, 256]
    ring = Ring(ring_path_for(built), hash_prefix=b'a', hash_suffix=b'b')
    for part in range(ring.partition_count):
        assert 3 not in {d['id'] for d in ring.get_part_nodes(part)}
    rc, _, err = run(capsys, built, 'search', 'd3')
    assert rc == 2 and 'no device matches d3' in err


def test_remove_several_devices_at_once(built, capsys):
    ok(capsys, built, 'add', 'r1z5-10.0.0.5:6200/sdb1', '100',
       'r1z5-10.0.0.5:6200/sdc1', '100')
    out = ok(capsys, built, 'remove', 'z5')
    assert out.count('removal') == 2


# -- weights, info, overload -------------------------------------------------

def test_set_weight_pairs_and_flags(built, capsys):
    out = ok(capsys, built, 'set_weight', 'd0', '50', 'z2', '75.5')
    assert 'weight set to 50.0 (was 100.0)' in out
    devs = load(built).devs
    assert (devs[0]['weight'], devs[1]['weight']) == (50.0, 75.5)
    ok(capsys, built, 'set_weight', '--zone', '3', '--ip', '10.0.0.3', '20')
    assert load(built).devs[2]['weight'] == 20.0


def test_set_weight_applies_to_every_match(built, capsys):
    out = ok(capsys, built, 'set_weight', ':6200', '10')
    assert out.count('weight set to 10.0') == 4
    assert {d['weight'] for d in load(built).iter_devs()} == {10.0}


def test_set_info(built, capsys):
    out = ok(capsys, built, 'set_info', 'd1',
             '10.0.1.2:6201R10.0.1.3:6301/sdc_new meta')
    assert 'is now d1r1z2-10.0.1.2:6201R10.0.1.3:6301/sdc_"new meta"' in out
    dev = load(built).devs[1]
    assert (dev['ip'], dev['port'], dev['replication_ip'],
            dev['replication_port'], dev['device'], dev['meta']) == \
        ('10.0.1.2', 6201, '10.0.1.3', 6301, 'sdc', 'new meta')
    ok(capsys, built, 'set_info', '/sdc', ':6209')
    assert load(built).devs[1]['port'] == 6209
    # the address change reaches the ring without moving partitions
    ok(capsys, built, 'write_ring')
    ring = Ring(ring_path_for(built), hash_prefix=b'a', hash_suffix=b'b')
    assert ring.devs[1]['port'] == 6209


@pytest.mark.parametrize('value, fraction', [('10%', 0.1), ('0.1', 0.1),
                                             ('0.25', 0.25), ('0', 0.0),
                                             ('12.5%', 0.125)])
def test_set_overload(built, capsys, value, fraction):
    out = ok(capsys, built, 'set_overload', value)
    assert load(built).overload == pytest.approx(fraction)
    assert '%.2f%%' % (fraction * 100) in out


def test_set_overload_warns_about_a_big_plain_number(built, capsys):
    out = ok(capsys, built, 'set_overload', '10')
    assert load(built).overload == 10.0
    assert 'write 10%' in out


# -- reports -----------------------------------------------------------------

def test_search_outputs(built, capsys):
    out = ok(capsys, built, 'search', 'z2')
    assert '10.0.0.2:6200' in out and '10.0.0.1:6200' not in out
    out = ok(capsys, built, 'search', '_ss')            # meta substring
    assert '10.0.0.3:6200' in out and out.count('10.0.0.') == 2
    out = ok(capsys, built, 'search', '--zone', '4')
    assert '10.0.0.4:6200' in out and '10.0.0.2' not in out
    out = ok(capsys, built, 'search', 'd0', 'd1')
    assert '10.0.0.1:6200' in out and '10.0.0.2:6200' in out
    out = ok(capsys, built, 'search', '10.0.0.1:6200/sdb1')
    assert '10.0.0.1:6200' in out


def test_list_parts(built, capsys):
    out = ok(capsys, built, 'list_parts', 'd0')
    lines = out.splitlines()
    assert lines[0].split() == ['Partition', 'Matches']
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == load(built).dev_parts()[0]
    assert {r[1] for r in rows} == {'1'}
    out = ok(capsys, built, 'list_parts', 'd0', 'd1')
    rows = [line.split() for line in out.splitlines()[1:]]
    counts = [int(r[1]) for r in rows]
    assert counts == sorted(counts, reverse=True) and counts[0] == 2
    parts_on = load(built).parts_on([0, 1])
    assert {int(r[0]): int(r[1]) for r in rows} == parts_on


def test_dispersion(built, capsys):
    out = ok(capsys, built, 'dispersion')
    assert out.startswith('Dispersion is 0.00, Balance is 0.00')
    tiers = [line.split()[0] for line in out.splitlines()[3:]]
    assert 'r1' in tiers and 'r1z1' in tiers and 'r1z1-10.0.0.1' in tiers
    assert not any('/' in t for t in tiers)
    out = ok(capsys, built, 'dispersion', '--verbose')
    assert 'r1z1-10.0.0.1/sdb1' in out
    out = ok(capsys, built, 'dispersion', 'z2', '--verbose')
    tiers = [line.split()[0] for line in out.splitlines()[3:]]
    assert tiers == ['r1', 'r1z2', 'r1z2-10.0.0.2', 'r1z2-10.0.0.2/sdb1']
    row = next(line.split() for line in out.splitlines()
               if line.split()[0] == 'r1z2')
    # parts, %over, max, then parts with 0..3 replicas in zone 2
    assert row[1:] == ['192', '0.00', '1', '64', '192', '0', '0']


def test_validate(built, capsys):
    out = ok(capsys, built, 'validate')
    assert 'is valid' in out and '256 partitions x 3 replicas' in out


def test_write_ring(built, capsys):
    os.unlink(ring_path_for(built))
    out = ok(capsys, built, 'write_ring')
    assert 'Wrote' in out
    ring = Ring(ring_path_for(built), hash_prefix=b'a', hash_suffix=b'b')
    assert ring.partition_count == 256


def test_output_goes_to_the_given_stream(built, capsys):
    import io
    out, err = io.StringIO(), io.StringIO()
    assert main([built, 'search', 'd0'], out=out, err=err) == 0
    assert '10.0.0.1' in out.getvalue()
    assert main([built, 'search', 'd9'], out=out, err=err) == 2
    assert err.getvalue() == 'error: no device matches d9\n'
    assert capsys.readouterr() == ('', '')


# -- the real command --------------------------------------------------------

def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    return env


def _exercise(cmd, tmp_path):
    p = str(tmp_path / 'object.builder')

    def sh(*args):
        return subprocess.run(cmd + [p] + [str(a) for a in args],
                              capture_output=True, text=True, env=_env(),
                              cwd=str(tmp_path), timeout=60)
    assert sh('create', 6, 3, 1).returncode == 0
    r = sh('add', *sum([[d, 100] for d in DEVS], []))
    assert r.returncode == 0, r.stderr
    r = sh('rebalance')
    assert r.returncode == 0, r.stderr
    assert 'Reassigned 64 (100.00%) partitions' in r.stdout
    Ring(ring_path_for(p), hash_prefix=b'a', hash_suffix=b'b')
    r = sh('remove', 'd42')
    assert r.returncode == 2
    assert r.stderr == 'error: no device matches d42\n'
    assert r.stdout == ''
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(),
                       timeout=60)
    assert r.returncode == 0 and 'rebalance' in r.stdout


def test_module_runs_as_a_command(tmp_path):
    _exercise([sys.executable, '-m', 'objstore.cli.ring_builder'], tmp_path)


def test_console_script(tmp_path):
    script = Path(sys.executable).parent / 'objstore-ring-builder'
    if not script.exists():
        pytest.skip('package not installed (pip install -e .)')
    _exercise([str(script)], tmp_path)
