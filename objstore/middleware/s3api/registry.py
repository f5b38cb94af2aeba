"""One bucket namespace for the whole cluster: who owns which bucket name.

A bucket is a container in its owner's account, so without more two
accounts could both have ``photos``; S3 clients expect bucket names to
be global (``BucketAlreadyExists``). The registry is kept in objstore
itself: a reserved account (``registry_account``, default
``.s3_buckets``) holds one container, ``buckets``, with one zero-byte
object per bucket name whose metadata names the owner's account (and,
for operators, the user who created it).

The account's name starts with '.', so no tempauth user reaches it: its
``decide`` refuses accounts without the reseller prefix and those whose
name after the prefix starts with '.', reseller admins included; no S3
request names another account either (a bucket is always looked up in
the signer's). The middleware alone reads and writes it, with
sub-requests that skip authorisation (``privileged``).

Claims are atomic enough: an object PUT with ``If-None-Match: *`` is
refused (412) by the object servers when the name is stored already,
so of two accounts racing for a name one wins and the other is told
``BucketAlreadyExists``.
"""
import logging

from objstore.common.config import ConfigError
from objstore.middleware.s3api import swift
from objstore.middleware.s3api.errors import S3Error

log = logging.getLogger('objstore.s3api')

DEFAULT_ACCOUNT = '.s3_buckets'
CONTAINER = 'buckets'
OWNER_ACCOUNT = 'X-Object-Meta-Owner-Account'
OWNER_USER = 'X-Object-Meta-Owner-User'
ENTRY_TYPE = 'application/x-s3-bucket'
# environ keys that make the rest of the pipeline skip authorisation
_OVERRIDE = 'swift.authorize_override'
_AUTHORIZE_KEYS = ('swift.authorize', 'objstore.authorize')
_OWNER_KEYS = ('swift_owner', 'objstore.account_owner')
# the outcomes of claim_verdict()
MINE, TAKEN, GONE = 'mine', 'taken', 'gone'
ATTEMPTS = 3


# -- pure parts ----------------------------------------------------------

def registry_account(conf):
    """The registry's account from ``[filter:s3api] registry_account``;
    None (no registry: bucket names are unique per account only) when it
    is set empty. It must start with '.' so no user's token reaches it."""
    name = conf.get('registry_account', DEFAULT_ACCOUNT)
    name = (name or '').strip()
    if not name:
        return None
    if not name.startswith('.') or '/' in name or name in ('.', '..'):
        raise ConfigError('s3api: registry_account must start with "." '
                          'and contain no "/" (got %r)' % name)
    return name


def entry_headers(account, user):
    """The headers of the PUT that claims a bucket name for ``account``:
    only if no one holds it yet."""
    return {'If-None-Match': '*', 'Content-Type': ENTRY_TYPE,
            OWNER_ACCOUNT: account, OWNER_USER: user}


def owner_of(headers):
    """The owner account an entry's HEAD answer names (None if none)."""
    for name, value in headers.items():
        if name.lower() == OWNER_ACCOUNT.lower():
            return value.strip() or None
    return None


def claim_verdict(caller, owner):
    """What a refused claim means: the name is the caller's already
    (MINE), another account's (TAKEN), or was released since (GONE: try
    again)."""
    if owner is None:
        return GONE
    return MINE if owner == caller else TAKEN


def held_by_another(caller, owner):
    """Whether a bucket the caller cannot see is another account's: S3
    then answers AccessDenied rather than NoSuchBucket."""
    return owner is not None and owner != caller


def privileged(env):
    """Make a sub-request environ skip the auth filter and the proxy's
    ACL checks, and count as the account's owner (so the registry account
    is created on first use). Only for sub-requests to the registry."""
    env[_OVERRIDE] = True
    for key in _AUTHORIZE_KEYS:
        env[key] = _allow_all
    for key in _OWNER_KEYS:
        env[key] = True
    for key in [k for k in env if k.startswith('objstore.s3.')]:
        del env[key]        # not the client's request any more
    return env


def _allow_all(req):
    return None


def _unavailable(what, status):
    log.error('s3api: bucket registry %s failed: %s', what, status)
    return S3Error('ServiceUnavailable', 'The bucket registry is not '
                   'available; please try again.')


# -- the registry --------------------------------------------------------

class BucketRegistry:
    """Reads and writes the registry through the rest of the pipeline
    (``app``); every call takes the client's environ to copy the
    request's plumbing (not its identity) from."""

    def __init__(self, app, account=DEFAULT_ACCOUNT, container=CONTAINER):
        self.app = app
        self.account = account
        self.container = container

    def _call(self, environ, method, bucket=None, headers=None):
        path = swift.swift_path(self.account, self.container, bucket)
        env = privileged(swift.sub_environ(environ, method, path, headers))
        resp = swift.call(self.app, env)
        swift.close(resp)
        return resp

    def owner(self, environ, bucket):
        """The account that owns ``bucket``, None if nobody does."""
        resp = self._call(environ, 'HEAD', bucket)
        if resp.status_int == 404:
            return None
        if not 200 <= resp.status_int < 300:
            raise _unavailable('HEAD of %s' % bucket, resp.status)
        return owner_of(resp.headers)

    def owned_by_another(self, environ, bucket, account):
        """Whether another account than ``account`` holds ``bucket``'s
        name. Asked only on the not-found path; a registry that cannot
        answer says no (the caller keeps its NoSuchBucket)."""
        try:
            return held_by_another(account, self.owner(environ, bucket))
        except S3Error:
            return False

    def claim(self, environ, bucket, account, user):
        """Claim ``bucket`` for ``account``: True when this call claimed
        it, False when the account held it already; BucketAlreadyExists
        when another account does."""
        for _ in range(ATTEMPTS):
            resp = self._call(environ, 'PUT', bucket,
                              entry_headers(account, user))
            status = resp.status_int
            if status == 201:
                return True
            if status == 412:
                verdict = claim_verdict(account, self.owner(environ,
                                                            bucket))
                if verdict == MINE:
                    return False
                if verdict == TAKEN:
                    raise S3Error('BucketAlreadyExists',
                                  resource='/' + bucket, BucketName=bucket)
                continue        # released meanwhile: claim again
            if status == 404:
                self._create_container(environ)
                continue
            raise _unavailable('claim of %s' % bucket, resp.status)
        raise _unavailable('claim of %s' % bucket, 'too many attempts')

    def release(self, environ, bucket, account):
        """Free ``bucket`` if ``account`` holds it (a bucket deleted, or a
        claim whose bucket could not be made). Another account's entry
        is left alone."""
        if self.owner(environ, bucket) != account:
            return
        resp = self._call(environ, 'DELETE', bucket)
        if not (200 <= resp.status_int < 300 or resp.status_int == 404):
            raise _unavailable('release of %s' % bucket, resp.status)

    def _create_container(self, environ):
        """The registry's container (and account) on first use."""
        path = swift.swift_path(self.account, self.container)
        env = privileged(swift.sub_environ(environ, 'PUT', path))
        resp = swift.call(self.app, env)
        swift.close(resp)
        if resp.status_int not in (201, 202):
            raise _unavailable('creation of %s' % path, resp.status)
        log.info('s3api: created the bucket registry %s', path)


def from_conf(app, conf):
    """The registry the config asks for, or None."""
    account = registry_account(conf)
    return BucketRegistry(app, account) if account else None
