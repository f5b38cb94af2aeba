"""objstore-aio setup: the layout `make run` builds."""
import io
import os

from objstore.cli import aio
from objstore.common.config import hash_secret
from rings.builder import RingBuilder
from rings.ring import Ring


def test_setup_lays_out_config_rings_and_devices(tmp_path):
    out = io.StringIO()
    assert aio.setup(str(tmp_path), out=out) == 0
    etc = tmp_path / 'etc'
    prefix, suffix = hash_secret(str(etc / 'objstore.conf'))
    assert len(prefix) == 32 and len(suffix) == 32 and prefix != suffix
    assert oct(os.stat(etc / 'objstore.conf').st_mode & 0o777) == '0o600'
    for node in range(1, aio.NODES + 1):
        assert (tmp_path / 'srv' / ('node%d' % node) / ('d%d' % node)).is_dir()
    for kind in ('account', 'container', 'object'):
        ring = Ring(str(etc / (kind + '.ring.gz')), prefix, suffix)
        assert ring.replica_count == aio.REPLICAS
        assert ring.partition_count == 2 ** aio.PART_POWER
        ports = sorted(d['port'] for d in ring.devs)
        assert ports == [aio.port_for(kind, n) for n in range(1, 5)]
        part, nodes = ring.get_nodes('AUTH_test', 'c', 'o')
        assert len({n['zone'] for n in nodes}) == 3
        assert RingBuilder.load(str(etc / (kind + '.builder'))).get_balance() \
            < 1.0
    assert 'object.builder' in out.getvalue()


def test_setup_is_idempotent_and_keeps_the_secret(tmp_path):
    aio.setup(str(tmp_path), out=io.StringIO())
    conf = tmp_path / 'etc' / 'objstore.conf'
    ring = tmp_path / 'etc' / 'object.ring.gz'
    before = (conf.read_bytes(), ring.read_bytes())
    out = io.StringIO()
    assert aio.setup(str(tmp_path), out=out) == 0
    assert (conf.read_bytes(), ring.read_bytes()) == before
    assert 'kept cluster config' in out.getvalue()


def test_missing_ring_is_rewritten_from_the_builder(tmp_path):
    aio.setup(str(tmp_path), out=io.StringIO())
    ring = tmp_path / 'etc' / 'container.ring.gz'
    data = ring.read_bytes()
    ring.unlink()
    aio.setup(str(tmp_path), out=io.StringIO())
    assert ring.read_bytes() == data


def test_main_reports_an_unusable_directory(tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    assert aio.main(['setup', '--var', str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('objstore-aio: ') and err.count('\n') == 1


def test_every_node_gets_its_daemons_configured(tmp_path):
    from objstore.common.daemon import load_daemon_conf
    aio.setup(str(tmp_path), out=io.StringIO())
    found = aio.daemons(str(tmp_path))
    assert len(found) == aio.NODES * len(aio.DAEMONS)
    for section, node, module, conf in found:
        kind = section.split('-')[0]
        assert conf.endswith('node%d/%s-server.conf' % (node, kind))
        settings = load_daemon_conf(conf, section, '%s-server' % kind)
        # the daemon sees its node's devices and its own short interval
        assert settings['devices'].endswith('srv/node%d' % node)
        assert float(settings['interval']) <= 300
        assert module.startswith('objstore.%s.' % ('obj' if kind == 'object'
                                                   else kind))
