"""compute.conf reading: sections, [DEFAULT], numbers, the secret."""
import pytest

from compute.common import config


def _write(tmp_path, text):
    path = tmp_path / 'compute.conf'
    path.write_text(text)
    return str(path)


def test_sections_carry_defaults(tmp_path):
    conf = config.load(_write(tmp_path, '[DEFAULT]\nagent_secret = %s\n'
                              '[api]\nbind_port = 8774\n' % ('k' * 20)))
    assert conf['api'] == {'bind_port': '8774'}
    api = config.section(conf, 'api')
    assert api['bind_port'] == '8774' and api['agent_secret'] == 'k' * 20
    assert config.section(conf, 'agent') == {'agent_secret': 'k' * 20}
    assert config.secret(api) == 'k' * 20


def test_own_options_leave_defaults_out(tmp_path):
    conf = config.load(_write(tmp_path, '[DEFAULT]\nagent_secret = %s\n'
                              '[flavors]\nm1.x = 1,512,1\n' % ('k' * 20)))
    assert config.own(conf, 'flavors') == {'m1.x': '1,512,1'}
    assert config.own(conf, 'absent') == {}


def test_missing_and_garbled_files(tmp_path):
    with pytest.raises(config.ConfigError, match='cannot read'):
        config.load(str(tmp_path / 'absent.conf'))
    with pytest.raises(config.ConfigError):
        config.load(_write(tmp_path, 'no section header\n'))


@pytest.mark.parametrize('value', ['', 'short'])
def test_weak_secret_refused(value):
    with pytest.raises(config.ConfigError, match='agent_secret'):
        config.secret({'agent_secret': value})


def test_numbers():
    assert config.number({'a': ' 5 '}, 'a', 1, int) == 5
    assert config.number({}, 'a', 7) == 7
    assert config.number({'a': ''}, 'a', 7) == 7
    for bad in ('x', '-1', 'nan'):
        with pytest.raises(config.ConfigError):
            config.number({'a': bad}, 'a', 1)


def test_paths_made_absolute(tmp_path):
    assert config.path({'d': 'sub'}, 'd', 'x', base=str(tmp_path)) == \
        str(tmp_path / 'sub')
    assert config.path({}, 'd', '/abs') == '/abs'
