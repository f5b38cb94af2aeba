"""tempurl: time-limited object URLs signed with the owner's key.

    [filter:tempurl]
    use = objstore.middleware.tempurl
    # methods = GET HEAD PUT POST DELETE
    # allowed_digests = sha256 sha512        (sha1 may be added)
    # incoming_remove_headers = x-timestamp x-open-expired
    # incoming_allow_headers =
    # outgoing_remove_headers = x-object-meta-*
    # outgoing_allow_headers = x-object-meta-public-*

The account's owner sets X-Account-Meta-Temp-URL-Key (and -Key-2, for
rotation) with an account POST, or X-Container-Meta-Temp-URL-Key(-2) on
a container, and hands out URLs signed with one of them (``objstore
tempurl``, ``swift tempurl``). The rules of the signature: see
tempurl_rules.py.

Place it before the auth filter, as in Swift::

    gatekeeper healthcheck bulk tempurl s3api tempauth copy slo dlo ...

A valid temp URL request gets ``swift.authorize`` (and
``objstore.authorize``) replaced by one that admits requests inside the
key's scope -- its account for an account key, its container for a
container key, so the segments of a large object and a symlink's target
are read as the signer could -- and ``swift.authorize_override``, which
tells tempauth to let the request pass untouched. Being in front of
tempauth means the key lookups (an account HEAD and a container HEAD
from the proxy's cache) also pass through it as sub-requests with an
allow-all authorize of their own, and a temp URL with a stray or stale
X-Auth-Token is still judged by its signature alone.

Anything wrong -- bad or missing signature, expiry, method, path outside
the prefix, client address outside ``temp_url_ip_range``, no key -- is
``401 Temp URL invalid`` before the object is touched, so a temp URL
never tells whether an object exists. X-Object-Manifest and
X-Symlink-Target on a temp URL request are a 400: a PUT URL must not
store a pointer to data the URL does not cover.

The Temp-URL keys are owner-only: this filter removes them from account
and container answers to anyone the auth filter did not mark as the
account's owner.
"""
import time

from objstore.common import info
from objstore.common.config import ConfigError
from objstore.common.http import (HTTPError, Request, client_path,
                                  error_response, request_path)
from objstore.middleware import subrequest as subreq
from objstore.middleware import tempurl_rules as rules
from objstore.proxy import auth

DEFAULT_INCOMING_REMOVE = 'x-timestamp x-open-expired'
DEFAULT_INCOMING_ALLOW = ''
DEFAULT_OUTGOING_REMOVE = 'x-object-meta-*'
DEFAULT_OUTGOING_ALLOW = 'x-object-meta-public-*'
DISALLOWED_INCOMING = ('X-Object-Manifest', 'X-Symlink-Target')
INVALID = '401 Unauthorized: Temp URL invalid'
TEMPURL_USER = '.wsgi.tempurl'


def _environ_header(key):
    """'HTTP_X_OBJECT_META_A' -> 'x-object-meta-a' (None for others)."""
    if not key.startswith('HTTP_'):
        return None
    return key[5:].replace('_', '-').lower()


def _realm(path):
    parts = path.split('/', 3)
    account = parts[2] if len(parts) > 2 and parts[2] else 'unknown'
    return 'Swift realm="%s"' % account


def invalid_response(req, path):
    """Swift's answer to any temp URL that does not hold."""
    return error_response(401, INVALID, {'Www-Authenticate': _realm(path)},
                          req)


def scoped_authorizer(grant):
    """swift.authorize for a valid temp URL: the grant's scope only."""
    def authorize(req):
        try:
            path = request_path(req)
        except HTTPError as e:
            return e.response(req)
        if rules.within(grant, path):
            return None
        return invalid_response(req, path)
    return authorize


class TempURL:
    def __init__(self, app, conf):
        self.app = app
        self.methods = tuple(m.upper() for m in conf.get(
            'methods', ' '.join(rules.DEFAULT_METHODS)).split())
        if not self.methods:
            raise ConfigError('tempurl: methods must name at least one')
        self.allowed_digests = tuple(conf.get(
            'allowed_digests', ' '.join(rules.DEFAULT_ALLOWED_DIGESTS))
            .lower().split())
        unknown = set(self.allowed_digests) - set(rules.DIGESTS)
        if unknown or not self.allowed_digests:
            raise ConfigError('tempurl: allowed_digests must be among %s'
                              % ' '.join(rules.DIGESTS))

        def patterns(name, default):
            return tuple(conf.get(name, default).lower().split())
        self.incoming_remove = patterns('incoming_remove_headers',
                                        DEFAULT_INCOMING_REMOVE)
        self.incoming_allow = patterns('incoming_allow_headers',
                                       DEFAULT_INCOMING_ALLOW)
        self.outgoing_remove = patterns('outgoing_remove_headers',
                                        DEFAULT_OUTGOING_REMOVE)
        self.outgoing_allow = patterns('outgoing_allow_headers',
                                       DEFAULT_OUTGOING_ALLOW)
        self._in_remove = rules.header_matcher(self.incoming_remove)
        self._in_allow = rules.header_matcher(self.incoming_allow)
        self._out_remove = rules.header_matcher(self.outgoing_remove)
        self._out_allow = rules.header_matcher(self.outgoing_allow)

    def public_info(self):
        settings = {
            'methods': list(self.methods),
            'incoming_remove_headers': list(self.incoming_remove),
            'incoming_allow_headers': list(self.incoming_allow),
            'outgoing_remove_headers': list(self.outgoing_remove),
            'outgoing_allow_headers': list(self.outgoing_allow),
            'allowed_digests': list(self.allowed_digests)}
        deprecated = [d for d in self.allowed_digests
                      if d in rules.DEPRECATED_DIGESTS]
        if deprecated:
            settings['deprecated_digests'] = deprecated
        return settings

    # -- the keys ------------------------------------------------------

    def _head(self, environ, path, cached=False):
        """Headers of a HEAD of ``path`` (not as the client's owner), or
        {}."""
        return subreq.head_headers(self.app, environ, path, cached,
                                   as_owner=False)

    def keys(self, environ, path):
        """[(key, scope)]: the account's keys, then the container's."""
        version, account, container, _ = rules.split_object_path(path)
        account_path = '/%s/%s' % (version, account)
        out = [(k, rules.ACCOUNT_SCOPE) for k in rules.keys_from(
            self._head(environ, account_path), rules.ACCOUNT_KEYS)]
        out += [(k, rules.CONTAINER_SCOPE) for k in rules.keys_from(
            self._head(environ, '%s/%s' % (account_path, container),
                       cached=True), rules.CONTAINER_KEYS)]
        return out

    # -- requests ------------------------------------------------------

    def _clean_incoming(self, environ):
        for key in list(environ):
            name = _environ_header(key)
            if name and self._in_remove(name) and not self._in_allow(name):
                del environ[key]

    def _outgoing(self, start_response, method, path, query):
        """start_response for a temp URL's answer: private metadata out,
        Content-Disposition in for a GET."""
        obj = rules.split_object_path(path)[3]

        def start(status, headers, exc_info=None):
            kept = [(k, v) for k, v in headers
                    if not self._out_remove(k) or self._out_allow(k)]
            if method == 'GET' and status[:1] == '2':
                existing = None
                for k, v in kept:
                    if k.lower() == 'content-disposition':
                        existing = v
                kept = [(k, v) for k, v in kept
                        if k.lower() != 'content-disposition']
                kept.append(('Content-Disposition', rules.content_disposition(
                    obj, query.filename, query.inline, existing)))
            return start_response(status, kept, exc_info)
        return start

    def _hiding_keys(self, environ, start_response):
        """start_response that drops the Temp-URL keys for non-owners
        (read when the answer starts: the auth filter has judged by
        then)."""
        def start(status, headers, exc_info=None):
            if not auth.is_owner(Request(environ)):
                headers = [(k, v) for k, v in headers
                           if k.lower() not in rules.OWNER_ONLY_HEADERS]
            return start_response(status, headers, exc_info)
        return start

    def handle(self, environ, start_response, query):
        req = Request(environ)
        method = req.method
        try:
            path = client_path(req)
        except HTTPError as e:
            return e.response(req)(environ, start_response)
        check = dict(client_ip=environ.get('REMOTE_ADDR'),
                     allowed_digests=self.allowed_digests,
                     methods=self.methods)
        try:
            now = time.time()
            # the cheap checks before any key is fetched
            rules.check_request(query, method, path, now, **check)
            grant = rules.validate(query, method, path,
                                   self.keys(environ, path), now, **check)
        except rules.Invalid:
            return invalid_response(req, path)(environ, start_response)
        for name in DISALLOWED_INCOMING:
            if name in req.headers:
                return error_response(
                    400, 'The header %r is not allowed in this tempurl'
                    % name, request=req)(environ, start_response)
        self._clean_incoming(environ)
        for key in auth.OWNER_KEYS:
            environ.pop(key, None)
        environ['swift.authorize'] = environ['objstore.authorize'] = \
            scoped_authorizer(grant)
        environ['swift.authorize_override'] = True
        environ['REMOTE_USER'] = TEMPURL_USER
        return self.app(environ, self._outgoing(start_response, method,
                                                path, query))

    def __call__(self, environ, start_response):
        if environ.get('REQUEST_METHOD') == 'OPTIONS':
            return self.app(environ, start_response)
        query = rules.parse_query(environ.get('QUERY_STRING'))
        if query is not None:
            return self.handle(environ, start_response, query)
        return self.app(environ, self._hiding_keys(environ, start_response))


def filter_factory(global_conf, local_conf):
    conf = dict(global_conf)
    conf.update(local_conf)
    # built once here: a bad config fails at startup
    template = TempURL(None, conf)
    info.register('tempurl', **template.public_info())

    def wrap(app):
        return TempURL(app, conf)
    return wrap
