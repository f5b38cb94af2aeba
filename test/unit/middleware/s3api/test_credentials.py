"""S3 credentials from the proxy config: tempauth users and s3_key_ lines."""
import pytest

from objstore.common.config import ConfigError
from objstore.middleware.s3api.credentials import Credentials

CONF = """
[DEFAULT]
log_level = INFO

[pipeline:main]
pipeline = gatekeeper s3api tempauth proxy-server

[filter:tempauth]
use = objstore.middleware.tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 http://example.com/v1/AUTH_other

[filter:s3api]
use = objstore.middleware.s3api.middleware
s3_key_AKIAIOSFODNN7EXAMPLE = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    test:tester
"""


def write(tmp_path, text):
    path = tmp_path / 'proxy-server.conf'
    path.write_text(text)
    return {'__file__': str(path)}


def test_tempauth_users_and_extra_keys(tmp_path):
    creds = Credentials.from_conf(write(tmp_path, CONF), {})
    assert creds.lookup('test:tester') == ('testing', 'test:tester',
                                           'AUTH_test')
    assert creds.lookup('admin:admin') == ('admin', 'admin:admin',
                                           'AUTH_admin')
    assert creds.lookup('test2:tester2')[2] == 'AUTH_other'
    # the access key keeps its case although INI option names do not
    assert creds.lookup('AKIAIOSFODNN7EXAMPLE') == (
        'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'test:tester',
        'AUTH_test')
    assert creds.lookup('akiaiosfodnn7example') is None
    assert creds.lookup('test:nobody') is None


def test_reseller_prefix_is_tempauths(tmp_path):
    text = CONF.replace('use = objstore.middleware.tempauth',
                        'use = objstore.middleware.tempauth\n'
                        'reseller_prefix = KEY')
    creds = Credentials.from_conf(write(tmp_path, text), {})
    assert creds.lookup('test:tester')[2] == 'KEY_test'


@pytest.mark.parametrize('line', [
    's3_key_AK = onlysecret',
    's3_key_AK = secret nocolon',
    's3_key_AK = secret test:unknown',
])
def test_bad_key_lines_fail_at_startup(tmp_path, line):
    with pytest.raises(ConfigError):
        Credentials.from_conf(write(tmp_path, CONF + line + '\n'), {})


def test_without_a_config_file_local_conf_counts():
    creds = Credentials.from_conf({}, {'s3_key_ak': 's3cret a:u'})
    assert creds.lookup('ak') == ('s3cret', 'a:u', 'AUTH_a')
