"""Authenticator: tempauth tokens validated locally, admins recognised."""
import pytest

from compute.api.auth import Authenticator, require_admin
from compute.common.jsonapi import HttpError
from objstore.common.config import ConfigError

CONF = """\
[filter:tempauth]
use = objstore.middleware.tempauth
token_secret = unit-test-token-secret
token_life = 100
user_test_tester = testing .admin
user_test_tester3 = testing3
user_admin_admin = admin .reseller_admin
"""


@pytest.fixture
def auth(tmp_path):
    path = tmp_path / 'proxy-server.conf'
    path.write_text(CONF)
    return Authenticator.from_proxy_conf(str(path))


def token(auth, name, now=None):
    return auth.tempauth.issue_token(auth.tempauth.users[name], now)[0]


def test_identifies_project_user_and_groups(auth):
    caller = auth.identify({'HTTP_X_AUTH_TOKEN': token(auth, 'test:tester')})
    assert caller.project == 'AUTH_test'
    assert caller.user == 'test:tester'
    assert caller.is_admin
    require_admin(caller)


def test_plain_user_is_not_admin(auth):
    caller = auth.identify({'HTTP_X_AUTH_TOKEN':
                            token(auth, 'test:tester3')})
    assert not caller.is_admin
    with pytest.raises(HttpError) as info:
        require_admin(caller)
    assert info.value.status == 403


def test_reseller_admin_is_admin(auth):
    caller = auth.identify({'HTTP_X_AUTH_TOKEN': token(auth, 'admin:admin')})
    assert caller.is_admin and caller.project == 'AUTH_admin'


@pytest.mark.parametrize('environ,needle', [
    ({}, 'X-Auth-Token'),
    ({'HTTP_X_AUTH_TOKEN': 'AUTH_tkgarbage'}, 'invalid'),
    ({'HTTP_X_AUTH_TOKEN': 'someone-elses'}, 'not one this cloud'),
])
def test_bad_tokens_are_401(auth, environ, needle):
    with pytest.raises(HttpError) as info:
        auth.identify(environ)
    assert info.value.status == 401
    assert needle in info.value.message


def test_expired_token_is_401(auth):
    old = token(auth, 'test:tester', now=1000)
    with pytest.raises(HttpError) as info:
        auth.identify({'HTTP_X_AUTH_TOKEN': old})
    assert info.value.status == 401


def test_token_of_another_secret_is_401(auth, tmp_path):
    other_path = tmp_path / 'other.conf'
    other_path.write_text(CONF.replace('unit-test-token-secret', 'other'))
    other = Authenticator.from_proxy_conf(str(other_path))
    with pytest.raises(HttpError):
        auth.identify({'HTTP_X_AUTH_TOKEN': token(other, 'test:tester')})


def test_missing_tempauth_section(tmp_path):
    path = tmp_path / 'proxy.conf'
    path.write_text('[app:proxy-server]\nuse = x\n')
    with pytest.raises(ConfigError):
        Authenticator.from_proxy_conf(str(path))


def test_accounts_are_every_tempauth_users_account(auth):
    """Candidate owners of public images: one entry per account."""
    assert auth.accounts() == ['AUTH_admin', 'AUTH_test']
