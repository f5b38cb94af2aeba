"""Cluster config: where it is found and how the hash secret is read."""
import pytest

from objstore.common import config


def write(tmp_path, text):
    path = tmp_path / 'objstore.conf'
    path.write_text(text)
    return str(path)


def test_hash_secret_reads_prefix_and_suffix(tmp_path):
    path = write(tmp_path, '[hash]\npath_prefix = pre\npath_suffix = suf\n')
    assert config.hash_secret(path) == (b'pre', b'suf')


def test_hash_secret_allows_one_side_empty(tmp_path):
    path = write(tmp_path, '[hash]\npath_suffix = only\n')
    assert config.hash_secret(path) == (b'', b'only')


def test_hash_secret_refuses_no_secret(tmp_path):
    path = write(tmp_path, '[hash]\npath_prefix =\npath_suffix =\n')
    with pytest.raises(config.ConfigError, match='path_prefix or path_suffix'):
        config.hash_secret(path)


def test_env_var_names_the_config(tmp_path, monkeypatch):
    path = write(tmp_path, '[hash]\npath_suffix = fromenv\n')
    monkeypatch.setenv(config.CONF_ENV, path)
    assert config.cluster_conf_path() == path
    assert config.hash_secret() == (b'', b'fromenv')
    monkeypatch.delenv(config.CONF_ENV)
    assert config.cluster_conf_path() == config.DEFAULT_CONF


def test_missing_and_malformed_files_raise_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match='cannot read'):
        config.read_conf(str(tmp_path / 'nope.conf'))
    bad = write(tmp_path, 'no section header\n')
    with pytest.raises(config.ConfigError, match='invalid config'):
        config.read_conf(bad)


def test_sample_config_parses():
    import os
    here = os.path.dirname(__file__)
    sample = os.path.join(here, '..', '..', '..', 'etc', 'objstore.conf')
    conf = config.read_conf(sample)
    assert conf['hash']['path_suffix']
    assert 'backend_secret' in conf['cluster']


@pytest.mark.parametrize('value,expected', [
    ('true', True), ('Yes', True), ('1', True), ('on', True),
    ('false', False), ('0', False), ('', False), ('no', False)])
def test_config_true(value, expected):
    assert config.config_true(value) is expected
