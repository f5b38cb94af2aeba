import json
import os

import pytest

from objstore.common import daemon
from objstore.common.config import ConfigError
from rings.builder import RingBuilder


def write(path, text):
    path.write_text(text)
    return str(path)


def test_conf_layers_default_server_then_own_section(tmp_path):
    conf = write(tmp_path / 'object-server.conf', (
        '[DEFAULT]\nbind_ip = 10.0.0.1\nbind_port = 6200\ninterval = 1\n'
        '[object-server]\ndevices = /srv/x\ninterval = 2\n'
        '[object-replicator]\ninterval = 3\n'))
    merged = daemon.load_daemon_conf(conf, 'object-replicator',
                                     'object-server')
    assert merged['bind_ip'] == '10.0.0.1'
    assert merged['devices'] == '/srv/x'
    assert merged['interval'] == '3'
    # the daemon's own section may be absent
    merged = daemon.load_daemon_conf(conf, 'object-auditor',
                                     'object-server')
    assert merged['interval'] == '2'


def test_conf_numbers_are_checked():
    assert daemon.conf_float({'x': '1.5'}, 'x', 0) == 1.5
    assert daemon.conf_int({}, 'x', 7) == 7
    with pytest.raises(ConfigError):
        daemon.conf_int({'x': 'lots'}, 'x', 0)
    with pytest.raises(ConfigError):
        daemon.conf_float({'x': ''}, 'x', 0)


def test_is_local_matches_port_and_ip_or_wildcard():
    dev = {'ip': '10.0.0.1', 'port': 6200, 'device': 'd1'}
    assert daemon.is_local(dev, '10.0.0.1', 6200)
    assert daemon.is_local(dev, '0.0.0.0', '6200')
    assert not daemon.is_local(dev, '10.0.0.2', 6200)
    assert not daemon.is_local(dev, '10.0.0.1', 6201)
    assert not daemon.is_local(None, '10.0.0.1', 6200)


def test_walkers_find_partitions_hash_dirs_and_databases(tmp_path):
    dev = tmp_path / 'd1'
    hsh = 'a' * 29 + 'abc'
    (dev / 'containers' / '5' / 'abc' / hsh).mkdir(parents=True)
    (dev / 'containers' / '5' / 'abc' / hsh / (hsh + '.db')).write_bytes(b'')
    other = 'b' * 29 + 'abc'
    (dev / 'containers' / '5' / 'abc' / other).mkdir()  # no db file
    (dev / 'containers' / '5' / 'hashes.msgpack').write_bytes(b'')
    (dev / 'containers' / 'junk').mkdir()
    (dev / 'containers' / '7').write_text('not a dir')
    parts = list(daemon.iter_partitions(str(dev), 'containers'))
    assert parts == [(5, str(dev / 'containers' / '5'))]
    found = list(daemon.iter_hash_dirs(parts[0][1]))
    assert [h for _, h, _ in found] == [hsh, other]
    dbs = list(daemon.iter_databases(str(dev), 'containers'))
    assert dbs == [(5, hsh, str(dev / 'containers' / '5' / 'abc' / hsh /
                                   (hsh + '.db')))]
    assert list(daemon.iter_partitions(str(tmp_path / 'none'), 'x')) == []


class CountingDaemon(daemon.Daemon):
    """Counts the devices it sees; fails when told to."""
    section = 'test-daemon'
    server_section = 'object-server'
    kind = 'object'

    def run_once(self):
        if self.conf.get('fail'):
            raise RuntimeError('boom')
        return {'devices': len(self.local_devices()),
                'ours': sum(1 for dev, _ in self.local_devices() if dev)}


@pytest.fixture
def node(tmp_path, cluster_conf):
    ring_dir = tmp_path / 'rings'
    ring_dir.mkdir()
    builder = RingBuilder(4, 2, 0)
    for n in (1, 2):
        builder.add_dev({'region': 1, 'zone': n, 'ip': '127.0.0.1',
                         'port': 6000 + n, 'device': 'd%d' % n,
                         'weight': 1.0})
    builder.rebalance(seed=1)
    builder.get_ring().save(str(ring_dir / 'object.ring.gz'))
    devices = tmp_path / 'srv'
    for name in ('d1', 'old'):
        (devices / name).mkdir(parents=True)
    return write(tmp_path / 'object-server.conf', (
        '[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = 6001\n'
        '[object-server]\ndevices = %s\nmount_check = false\n'
        '[test-daemon]\nring_dir = %s\n' % (devices, ring_dir)))


def test_once_prints_counts_and_sees_local_devices(node, capsys):
    main = daemon.daemon_main(CountingDaemon)
    assert main([node, '--once']) == 0
    stats = json.loads(capsys.readouterr().out)
    # d1 is ours by the ring; 'old' is a directory the ring does not name
    assert stats['devices'] == 2 and stats['ours'] == 1
    assert stats['elapsed'] >= 0


def test_failed_pass_exits_1_and_bad_conf_exits_2(node, tmp_path, capsys):
    with open(node, 'a') as f:
        f.write('fail = yes\n')
    main = daemon.daemon_main(CountingDaemon)
    assert main([node, '--once']) == 1
    assert json.loads(capsys.readouterr().out) == {'error': 1}
    bad = write(tmp_path / 'bad.conf', '[object-server]\ninterval = soon\n')
    assert main([bad, '--once']) == 2
    assert 'interval must be a number' in capsys.readouterr().err
    assert main([str(tmp_path / 'missing.conf'), '--once']) == 2
    assert not os.path.exists(tmp_path / 'missing.conf')
