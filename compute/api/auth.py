"""Who is calling the compute API: objstore's tempauth tokens, read locally.

Users log in to objstore and bring the token to the compute API. Tokens
are self-contained and signed (objstore.middleware.tempauth), so the API
checks them with the proxy's own [filter:tempauth] settings and never asks
the proxy: no round trip per request, and the API works while the proxy
is busy. The caller's project is the token's storage account (AUTH_test),
the same account its images live in.
"""
import dataclasses

from compute.common.jsonapi import HttpError
from objstore.common.wsgi import load_app_conf
from objstore.middleware.tempauth import TempAuth

TEMPAUTH_SECTION = 'filter:tempauth'
ADMIN_GROUPS = frozenset(('.admin', '.reseller_admin'))


@dataclasses.dataclass(frozen=True)
class Caller:
    """An authenticated user: project (= storage account), name, groups,
    and the token itself (builds pass it on so agents can fetch images)."""

    project: str
    user: str
    groups: tuple
    token: str

    @property
    def is_admin(self):
        """Admins of an account or of the whole cloud see hosts."""
        return bool(ADMIN_GROUPS.intersection(self.groups))


class Authenticator:
    """Validates X-Auth-Token headers against tempauth settings."""

    def __init__(self, tempauth_conf):
        self.tempauth = TempAuth(None, dict(tempauth_conf))

    @classmethod
    def from_proxy_conf(cls, path):
        """The [filter:tempauth] section of the proxy config at `path`
        (with its [DEFAULT]); objstore's ConfigError if it is missing."""
        return cls(load_app_conf(path, TEMPAUTH_SECTION))

    def accounts(self):
        """Every storage account a tempauth user has, sorted: the
        accounts whose public images other users may see."""
        return sorted({user.account_id
                       for user in self.tempauth.users.values()})

    def identify(self, environ):
        """The Caller of a request; HttpError 401 without a valid token."""
        token = environ.get('HTTP_X_AUTH_TOKEN') or ''
        if not token:
            raise HttpError(401, 'authentication required: send an '
                                 'X-Auth-Token header')
        user, invalid = self.tempauth.identify(
            {'HTTP_X_AUTH_TOKEN': token})
        if user is None:
            if invalid:
                raise HttpError(401, 'the token is invalid or expired')
            raise HttpError(401, 'the token is not one this cloud issued')
        return Caller(project=user.account_id, user=user.name,
                      groups=tuple(user.groups), token=token)


def require_admin(caller):
    """HttpError 403 unless `caller` is an admin."""
    if not caller.is_admin:
        raise HttpError(403, 'this needs an admin (.admin or '
                             '.reseller_admin) account')
