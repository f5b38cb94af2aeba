"""Where the credentials come from and how a token is obtained.

Two ways in, as python-swiftclient reads them: auth v1.0 with
``--auth/--user/--key`` (or ST_AUTH, ST_USER, ST_KEY), or a token and
storage URL the user already has (``--os-auth-token/--os-storage-url``,
or OS_AUTH_TOKEN, OS_STORAGE_URL). A storage URL given with v1.0
credentials replaces the one the auth server returns. settings() is
pure: it only merges options and environment.
"""
import collections
from urllib.parse import urlsplit, urlunsplit

import requests

from objstore.cli.client.connection import wire_headers
from objstore.cli.client.errors import ClientError, UsageError

Settings = collections.namedtuple(
    'Settings', 'auth_url user key token storage_url')


def settings(args, env):
    """The credentials to use from parsed ``args`` and ``env``."""
    def pick(option, name):
        value = getattr(args, option, None)
        return value if value else (env.get(name) or None)
    return Settings(pick('auth', 'ST_AUTH'), pick('user', 'ST_USER'),
                    pick('key', 'ST_KEY'),
                    pick('os_auth_token', 'OS_AUTH_TOKEN'),
                    pick('os_storage_url', 'OS_STORAGE_URL'))


def check(creds):
    """Refuse incomplete credentials before any request is made."""
    if creds.token and creds.storage_url:
        return
    if creds.auth_url and creds.user and creds.key:
        return
    missing = [name for name, value in (('--auth/ST_AUTH', creds.auth_url),
                                        ('--user/ST_USER', creds.user),
                                        ('--key/ST_KEY', creds.key))
               if not value]
    raise UsageError('no credentials: give %s (or --os-auth-token and '
                     '--os-storage-url)' % ', '.join(missing))


def authenticate(creds, session=None, timeout=30):
    """(storage_url, token) for ``creds``, asking the auth server when no
    token was given."""
    check(creds)
    if creds.token and creds.storage_url:
        return creds.storage_url, creds.token
    session = session or requests.Session()
    try:
        resp = session.get(creds.auth_url, timeout=timeout,
                           headers=wire_headers({'X-Auth-User': creds.user,
                                                 'X-Auth-Key': creds.key}))
    except requests.ConnectionError as e:
        reason = 'connection refused' if 'refused' in str(e) else \
            'no connection'
        raise ClientError('cannot connect to %s (%s)'
                          % (creds.auth_url, reason))
    except requests.RequestException as e:
        raise ClientError('auth request to %s failed: %s'
                          % (creds.auth_url, e))
    if resp.status_code in (401, 403):
        raise ClientError('authentication failed for user %s at %s (%d)'
                          % (creds.user, creds.auth_url, resp.status_code),
                          resp.status_code)
    if resp.status_code // 100 != 2:
        raise ClientError('auth server %s answered %d %s'
                          % (creds.auth_url, resp.status_code, resp.reason),
                          resp.status_code)
    url = resp.headers.get('X-Storage-Url')
    token = resp.headers.get('X-Auth-Token') or resp.headers.get(
        'X-Storage-Token')
    if not url or not token:
        raise ClientError('auth server %s returned no storage URL or token'
                          % creds.auth_url)
    return creds.storage_url or url, token


def info_url(url):
    """The cluster's /info URL from a storage or auth URL (it sits at the
    root, before /v1 or /auth)."""
    parts = urlsplit(url)
    path = parts.path + '/'
    found = [path.index(m) for m in ('/v1/', '/v1.0/', '/auth/')
             if m in path]
    path = path[:min(found)] if found else ''
    return urlunsplit((parts.scheme, parts.netloc, path + '/info', '', ''))
