"""tempauth: users from the config, self-contained tokens, container ACLs.

Configured in the proxy pipeline::

    [filter:tempauth]
    use = objstore.middleware.tempauth
    # user_<account>_<user> = <key> [group ...] [storage url]
    user_admin_admin = admin .admin .reseller_admin
    user_test_tester = testing .admin
    user_test_tester3 = testing3
    # reseller_prefix = AUTH_     auth_prefix = /auth/
    # token_life = 86400          storage_url_scheme = default
    # token_secret = (default: derived from the cluster's backend_secret)
    # allow_overrides = true

Auth v1.0: ``GET /auth/v1.0`` (also ``/auth/auth`` and
``/auth/v1/<account>/auth``) with ``X-Auth-User: <account>:<user>`` and
``X-Auth-Key`` (or ``X-Storage-User`` / ``X-Storage-Pass``) answers 200
with ``X-Storage-Url``, ``X-Auth-Token`` (= ``X-Storage-Token``) and
``X-Auth-Token-Expires``. Tokens are signed, not stored (see tokens.py),
so any worker of any proxy that shares the secret and the user lines
accepts them; a user's tokens die when the token expires or the user's
line changes.

Who may do what (Swift's tempauth rules):

* ``.reseller_admin``: anything in every account under the prefix;
* ``.admin`` users of an account: anything in it but PUT or DELETE of the
  account itself; they are its owners (``swift_owner``);
* everybody else (the account's other users, other accounts' users,
  anonymous clients): only what a container's ACL grants, i.e. objects
  through X-Container-Read (GET/HEAD) or X-Container-Write (PUT/POST/
  DELETE), container GET/HEAD through the read ACL; never the account,
  never a container PUT/POST/DELETE (so never an ACL change). OPTIONS
  passes (CORS preflight is the proxy's business).

Denied: 401 (with ``Www-Authenticate``) when the request carries no valid
token, 403 when it does. A token of ours that is expired, forged or
garbled is a 401 even where an ACL would admit anonymous clients.

Environ contract with the proxy (keys this middleware owns; whatever an
earlier element or the client left under them is discarded first):

* ``swift.authorize`` (and the same callable as ``objstore.authorize``):
  always set (unless an earlier middleware such as tempurl set
  ``swift.authorize_override``, in which case the request passes
  untouched). ``authorize(req)`` returns None to allow or a
  response (a WSGI app) to return instead. The proxy calls it for
  container and object requests once it knows the container's ACLs,
  with ``req.acl`` set to X-Container-Read (GET/HEAD) or
  X-Container-Write (PUT/POST/DELETE of objects). Requests that need no
  ACL are decided here already: denials are answered at once, so what
  reaches the proxy is allowed or still needs the ACL; calling
  ``authorize`` again for them is harmless. One exception: object
  requests carrying ``temp_url_sig`` always reach the proxy, for a
  tempurl middleware placed after this one to judge (it replaces
  ``swift.authorize``); so the proxy must call ``authorize`` for every
  object request before it touches anything.
* ``swift.clean_acl``: ``clean_acl(header, value)`` -> canonical value or
  ValueError (answer 400) for X-Container-Read/Write on container PUT/POST.
* ``swift_owner`` and ``objstore.account_owner``: True when the user owns
  the target account (its admin, or a reseller admin); the proxy may
  then auto-create the account and show owner-only headers (ACLs).
* ``REMOTE_USER``: the user's groups, comma-separated
  (``test,test:tester,AUTH_test``); ``reseller_request``: True for
  reseller admins.

Client-sent ``X-Backend-*`` headers are dropped before anything else.
"""
import base64
import binascii
import collections
import copy
import hashlib
import hmac
import json
import re
import time
from urllib.parse import parse_qs, quote, unquote

from objstore.common import info
from objstore.common.config import ConfigError, backend_secret, config_true
from objstore.common.http import (
    HTTPError, Response, Request, client_path, error_response, request_path)
from objstore.middleware import acl, tokens

DEFAULT_RESELLER_PREFIX = 'AUTH_'
DEFAULT_AUTH_PREFIX = '/auth/'
DEFAULT_TOKEN_LIFE = 86400
# verified tokens a worker keeps (then it forgets them all and starts over)
MAX_VERIFIED_TOKENS = 10000
ADMIN = '.admin'
RESELLER_ADMIN = '.reseller_admin'

AUTHORIZE = 'swift.authorize'
# The proxy consults this name before swift.authorize (objstore/proxy/
# auth.py); both carry the same callable so neither can be left stale.
OBJSTORE_AUTHORIZE = 'objstore.authorize'
PROXY_ACL = 'objstore.acl'
AUTHORIZE_OVERRIDE = 'swift.authorize_override'
CLEAN_ACL = 'swift.clean_acl'
SWIFT_OWNER = 'swift_owner'
ACCOUNT_OWNER = 'objstore.account_owner'
# Set by a middleware in front of us that authenticated the request by
# other means (the S3 API checks signatures made with the user's key):
# the name of the tempauth user the request acts as. Clients cannot set
# environ keys, so no token is needed then.
AUTHENTICATED_USER = 'objstore.s3.user'
RESELLER_REQUEST = 'reseller_request'
REMOTE_USER = 'REMOTE_USER'
OWNED_KEYS = (AUTHORIZE, OBJSTORE_AUTHORIZE, PROXY_ACL, CLEAN_ACL,
              SWIFT_OWNER, ACCOUNT_OWNER, RESELLER_REQUEST, REMOTE_USER)

READS = ('GET', 'HEAD')
_HOST = re.compile(r'[A-Za-z0-9._\-:\[\]]+\Z')
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"
_TOKEN_KEY_LABEL = b'objstore tempauth token key'
_DUMMY_KEY = b'\0' * 32

# The verdicts of decide().
OWNER, ALLOW, NEEDS_ACL, DENY = 'owner', 'allow', 'needs-acl', 'deny'

Target = collections.namedtuple('Target', 'account container obj')


class User:
    """One ``user_<account>_<user>`` line."""

    def __init__(self, account, user, key, groups, url, account_id):
        self.account, self.user, self.key = account, user, key
        self.name = '%s:%s' % (account, user)
        self.groups = tuple(groups)
        self.url, self.account_id = url, account_id
        self.admin = ADMIN in self.groups
        self.reseller_admin = RESELLER_ADMIN in self.groups

    def member_of(self):
        """The groups ACLs and REMOTE_USER see: the account, the user,
        the configured groups, and (for admins) the storage account."""
        out = [self.account, self.name]
        out += [g for g in self.groups if g != ADMIN]
        if self.admin:
            out.append(self.account_id)
        return list(dict.fromkeys(out))

    def fingerprint(self):
        """What a token is bound to: change any of it, old tokens die."""
        return json.dumps([self.name, self.key, self.groups, self.url,
                           self.account_id]).encode('utf-8')


def _b64_name(text, option):
    try:
        return base64.b64decode(text + '=' * (-len(text) % 4),
                                validate=True).decode('utf-8')
    except (binascii.Error, ValueError):
        raise ConfigError('tempauth: %s: names are not base64' % option)


def parse_users(conf, reseller_prefix):
    """{'account:user': User} from the ``user_`` / ``user64_`` options.

    ``user64_<b64 account>_<b64 user>`` is for names holding '_'. The
    optional last value is the storage URL when it holds '://' or
    '$HOST'; by default '$HOST/v1/<reseller_prefix><account>'. Note that
    the INI reader lower-cases option names, hence account and user names.
    """
    users = {}
    for option, value in conf.items():
        if option.startswith('user64_'):
            account, _, user = option[len('user64_'):].partition('_')
            account = _b64_name(account, option) if account else ''
            user = _b64_name(user, option) if user else ''
        elif option.startswith('user_'):
            account, _, user = option[len('user_'):].partition('_')
        else:
            continue
        if not account or not user or ':' in account:
            raise ConfigError('tempauth: %s: want user_<account>_<user>'
                              % option)
        values = value.split()
        if not values:
            raise ConfigError('tempauth: %s has no key' % option)
        key = values.pop(0)
        url = None
        if values and ('://' in values[-1] or '$HOST' in values[-1]):
            url = values.pop()
        if url is None:
            url = '$HOST/v1/%s' % quote(reseller_prefix + account, safe='')
        account_id = unquote(url.rstrip('/').rsplit('/', 1)[-1])
        entry = User(account, user, key, values, url, account_id)
        users[entry.name] = entry
    return users


def split_target(path):
    """Target(account, container, obj) of '/<version>/<a>[/<c>[/<o>]]'.

    Missing or empty parts are None, so '/v1/a/c/' is read as the
    container: the stricter of the two readings.
    """
    parts = path[1:].split('/', 3) if path.startswith('/') else []
    parts = [p or None for p in parts[1:]] + [None] * 3
    account, container, obj = parts[:3]
    if account is None:
        container = obj = None
    elif container is None:
        obj = None
    return Target(account, container, obj)


def decide(user, target, method, reseller_prefix):
    """OWNER, ALLOW, NEEDS_ACL or DENY for ``user`` (None: anonymous).

    Pure: the rules of the module docstring without the ACL itself.
    """
    account = target.account
    if account is None or not account.startswith(reseller_prefix) or \
            len(account) == len(reseller_prefix) or \
            account[len(reseller_prefix)] == '.':
        return DENY
    if user is not None and user.reseller_admin:
        return OWNER
    if user is not None and user.admin and account == user.account_id and \
            (target.container is not None or method not in ('PUT',
                                                            'DELETE')):
        return OWNER
    if method == 'OPTIONS':
        return ALLOW
    if target.container is None:
        return DENY
    if method not in READS and (target.obj is None or user is None):
        # No ACL grants container writes, and write ACLs name users
        # only: anonymous writes are never allowed.
        return DENY
    return NEEDS_ACL


def _wsgi_text(value):
    """Header text as the client meant it: WSGI strings carry raw bytes
    as latin-1; ACLs and user names are UTF-8."""
    if isinstance(value, bytes):
        value = value.decode('latin-1')
    if value is None:
        return None
    try:
        return value.encode('latin-1').decode('utf-8')
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _realm(account):
    return 'Swift realm="%s"' % quote(account or 'unknown', safe='')


def strip_backend_headers(environ):
    """Drop client-sent X-Backend-* headers: only the cluster's own
    components may speak them."""
    for key in [k for k in environ if k.startswith('HTTP_X_BACKEND_')]:
        del environ[key]


class TempAuth:
    def __init__(self, app, conf):
        self.app = app
        prefix = conf.get('reseller_prefix', DEFAULT_RESELLER_PREFIX).strip()
        if prefix and not prefix.endswith('_'):
            prefix += '_'
        self.reseller_prefix = prefix
        self.token_prefix = prefix + 'tk'
        auth_prefix = conf.get('auth_prefix', DEFAULT_AUTH_PREFIX).strip()
        auth_prefix = '/' + auth_prefix.strip('/') + '/'
        if auth_prefix == '//':
            raise ConfigError('tempauth: auth_prefix must not be empty')
        self.auth_prefix = auth_prefix
        try:
            self.token_life = int(conf.get('token_life', DEFAULT_TOKEN_LIFE))
        except ValueError:
            self.token_life = 0
        if self.token_life <= 0:
            raise ConfigError('tempauth: token_life must be a positive '
                              'number of seconds')
        self.url_scheme = conf.get('storage_url_scheme', 'default').strip()
        if self.url_scheme not in ('default', 'http', 'https'):
            raise ConfigError('tempauth: storage_url_scheme must be '
                              'default, http or https')
        self.allow_overrides = config_true(conf.get('allow_overrides',
                                                    'true'))
        secret = conf.get('token_secret', '').strip().encode('utf-8')
        if not secret:
            secret = hmac.new(backend_secret(), _TOKEN_KEY_LABEL,
                              hashlib.sha256).digest()
        self.secret = secret
        self.users = parse_users(conf, self.reseller_prefix)
        self._keys = {}       # user name -> its token signing key
        self._verified = {}   # token -> its Token, once its signature held

    # -- tokens --------------------------------------------------------

    def signing_key(self, name):
        """The key for ``name``'s tokens, or None for an unknown user
        (made once per user: the users are fixed for the process)."""
        key = self._keys.get(name)
        if key is None:
            user = self.users.get(name)
            if user is None:
                return None
            key = self._keys[name] = hmac.new(
                self.secret, user.fingerprint(), hashlib.sha256).digest()
        return key

    def issue_token(self, user, now=None):
        """(token, expires) for a configured User."""
        now = time.time() if now is None else now
        expires = int(now) + self.token_life
        token = tokens.make_token(self.token_prefix,
                                  self.signing_key(user.name), user.name,
                                  user.account_id, user.member_of(),
                                  expires)
        return token, expires

    def identify(self, environ, now=None):
        """(User or None, token_invalid) for the request's token.

        A token without our prefix is some other system's: the request
        is anonymous here, as in Swift. One with our prefix that does not
        verify makes ``token_invalid`` True.
        """
        name = environ.get(AUTHENTICATED_USER)
        if name is not None:
            user = self.users.get(name)
            return user, user is None
        token = environ.get('HTTP_X_AUTH_TOKEN') or \
            environ.get('HTTP_X_STORAGE_TOKEN')
        if not token or not tokens.is_token_for(self.token_prefix, token):
            return None, False
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = tokens.read_token(self.token_prefix, token,
                                           self.signing_key, now)
            except tokens.TokenError:
                return None, True
            self._remember(token, claims)
        elif claims.expires <= (time.time() if now is None else now):
            # pop, not del: the compute API calls this from OS threads,
            # and another may have emptied the store meanwhile
            self._verified.pop(token, None)
            return None, True
        return self.users[claims.user], False

    def _remember(self, token, claims):
        """Keep a token whose signature held: a client sends the same
        one with every request, and checking it again (two HMACs, a JSON
        decode, a JSON encode) was a twentieth of the proxy's time on a
        small PUT. Only its expiry is looked at again."""
        if len(self._verified) >= MAX_VERIFIED_TOKENS:
            self._verified.clear()
        self._verified[token] = claims

    # -- the auth endpoint ---------------------------------------------

    def storage_url(self, req, user):
        scheme = self.url_scheme
        if scheme == 'default':
            scheme = req.environ.get('wsgi.url_scheme', 'http')
        host = req.environ.get('HTTP_HOST', '')
        if not _HOST.match(host):
            host = '%s:%s' % (req.environ.get('SERVER_NAME', 'localhost'),
                              req.environ.get('SERVER_PORT', '80'))
        url = user.url.replace('$HOST', '%s://%s' % (scheme, host))
        return quote(url, safe=_URL_SAFE)

    def _credentials(self, req, path):
        """('account:user', key) from the headers; HTTPError otherwise."""
        segs = path[len(self.auth_prefix):].split('/')
        name = _wsgi_text(req.headers.get('X-Auth-User') or
                          req.headers.get('X-Storage-User'))
        key = _wsgi_text(req.headers.get('X-Auth-Key') or
                         req.headers.get('X-Storage-Pass'))
        if len(segs) >= 3 and segs[0] == 'v1' and segs[2] == 'auth':
            account = segs[1]
            if name and ':' not in name:
                name = '%s:%s' % (account, name)
            if name and name.split(':', 1)[0] != account:
                raise HTTPError(401, 'user is not in account %s' % account,
                                {'Www-Authenticate': _realm(account)})
        elif segs[0] not in ('v1.0', 'auth'):
            raise HTTPError(400, 'auth paths are %sv1.0, %sauth and '
                            '%sv1/<account>/auth' % ((self.auth_prefix,) * 3))
        if not name or not key or ':' not in name:
            raise HTTPError(401, 'X-Auth-User (account:user) and X-Auth-Key '
                            'are required',
                            {'Www-Authenticate': _realm(None)})
        return name, key

    def handle_auth(self, req, path):
        if req.method != 'GET':
            return error_response(405, 'auth takes GET', {'Allow': 'GET'},
                                  req)
        try:
            name, key = self._credentials(req, path)
        except HTTPError as e:
            return e.response(req)
        user = self.users.get(name)
        expected = user.key.encode('utf-8') if user else _DUMMY_KEY
        if not hmac.compare_digest(expected, key.encode('utf-8')) or \
                user is None:
            return error_response(
                401, 'invalid user or key',
                {'Www-Authenticate': _realm(name.split(':', 1)[0])}, req)
        token, expires = self.issue_token(user)
        url = self.storage_url(req, user)
        body = json.dumps({'storage': {'default': 'local', 'local': url}})
        resp = Response(status=200, body=body.encode('utf-8'),
                        content_type='application/json', charset='utf-8')
        resp.headers['X-Storage-Url'] = url
        resp.headers['X-Auth-Token'] = token
        resp.headers['X-Storage-Token'] = token
        resp.headers['X-Auth-Token-Expires'] = str(
            max(0, int(expires - time.time())))
        return resp

    # -- authorization -------------------------------------------------

    def denied(self, req, user, account):
        if user is None:
            return error_response(401, 'a valid X-Auth-Token is required',
                                  {'Www-Authenticate': _realm(account)},
                                  req)
        return error_response(403, '%s may not do this' % user.name,
                              request=req)

    def authorizer(self, user, token_invalid):
        """The ``swift.authorize`` callable for this request's identity.

        It reads the target from the request it is given, so the proxy
        may also ask about another path (a copy's source, say).
        """
        def authorize(req):
            try:
                target = split_target(request_path(req))
            except HTTPError as e:
                return e.response(req)
            if token_invalid:
                return self.denied(req, None, target.account)
            verdict = decide(user, target, req.method, self.reseller_prefix)
            if verdict == OWNER:
                req.environ[SWIFT_OWNER] = True
                req.environ[ACCOUNT_OWNER] = True
                return None
            # Asked about another path with the same environ: the flags
            # must not carry over from the request's own target.
            req.environ.pop(SWIFT_OWNER, None)
            req.environ.pop(ACCOUNT_OWNER, None)
            if verdict == ALLOW:
                return None
            if verdict == NEEDS_ACL and acl.grants(
                    _wsgi_text(getattr(req, 'acl', None)),
                    user.member_of() if user else (),
                    req.environ.get('HTTP_REFERER'),
                    reading=req.method in READS,
                    listing=target.obj is None):
                return None
            return self.denied(req, user, target.account)
        return authorize

    def __call__(self, environ, start_response):
        strip_backend_headers(environ)
        if self.allow_overrides and environ.get(AUTHORIZE_OVERRIDE):
            return self.app(environ, start_response)
        for key in OWNED_KEYS:
            environ.pop(key, None)
        req = Request(environ)
        try:
            path = client_path(req)
        except HTTPError as e:
            return e.response(req)(environ, start_response)
        if path.startswith(self.auth_prefix):
            return self.handle_auth(req, path)(environ, start_response)

        user, token_invalid = self.identify(environ)
        environ[AUTHORIZE] = environ[OBJSTORE_AUTHORIZE] = \
            self.authorizer(user, token_invalid)
        environ[CLEAN_ACL] = acl.clean_acl
        if user is not None:
            environ[REMOTE_USER] = ','.join(user.member_of())
            if user.reseller_admin:
                environ[RESELLER_REQUEST] = True

        target = split_target(path)
        if target.account is None:
            # /info and the like: the proxy decides what needs auth.
            return self.app(environ, start_response)
        if target.obj is not None and \
                'temp_url_sig' in parse_qs(environ.get('QUERY_STRING', '')):
            # An object temp URL: left to a tempurl middleware further
            # down, which replaces swift.authorize; without one, the
            # proxy's call to ours refuses what the token (or its
            # absence) does not allow.
            return self.app(environ, start_response)
        if token_invalid:
            verdict = DENY
        else:
            verdict = decide(user, target, req.method, self.reseller_prefix)
        if verdict == DENY:
            return self.denied(req, user, target.account)(environ,
                                                          start_response)
        if verdict == OWNER:
            environ[SWIFT_OWNER] = True
            environ[ACCOUNT_OWNER] = True
        return self.app(environ, start_response)


def filter_factory(global_conf, local_conf):
    conf = dict(global_conf)
    conf.update(local_conf)
    # Built once here, so a bad config fails at startup, not per request.
    template = TempAuth(None, conf)
    info.register('tempauth', account_acls=False)

    def wrap(app):
        middleware = copy.copy(template)
        middleware.app = app
        return middleware
    return wrap
