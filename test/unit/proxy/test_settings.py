"""The proxy's settings: parsed once, bad values refused at startup."""
import pytest

from objstore.common.config import ConfigError
from objstore.proxy.settings import Settings


def test_defaults_and_overrides():
    settings = Settings.from_conf({})
    assert settings.node_timeout == 10.0 and settings.conn_timeout == 0.5
    assert settings.account_autocreate is True
    assert settings.allow_account_management is False
    assert settings.node_count(3) == 6
    settings = Settings.from_conf({
        'node_timeout': '2.5', 'request_node_count': '4',
        'allow_account_management': 'yes', 'trans_id_suffix': '-x'})
    assert settings.node_timeout == 2.5 and settings.node_count(3) == 4
    assert settings.allow_account_management is True
    assert settings.trans_id_suffix == '-x'


@pytest.mark.parametrize('conf', [
    {'node_timeout': 'soon'}, {'node_timeout': '0'},
    {'conn_timeout': '-1'}, {'error_suppression_limit': '1.5'},
    {'put_queue_depth': '0'}])
def test_bad_values_are_config_errors(conf):
    with pytest.raises(ConfigError):
        Settings.from_conf(conf)
