"""Sub-requests: a request a middleware sends down the pipeline on its
client's behalf (a large object's segments, a symlink's target, a copy's
two ends, a bulk item, an archived version).

Every middleware that does so builds its environ here, with one rule for
what crosses from the client's request:

* who the client is and how auth judges: the ``objstore.*`` and
  ``swift.*`` keys (``swift.authorize`` judges the new path as it judged
  the client's; the gatekeeper's ``objstore.sysmeta_trusted`` lets the
  system metadata of the middleware below cross, as on the client's own
  request), ``REMOTE_USER``, the token (a filter in front of auth, such
  as bulk, needs it), the server's and the WSGI keys;
* the owner flags (``swift_owner``, ``objstore.account_owner``) only
  when the new path is in the same account: they are the auth filter's
  verdict on the client's own account. tempauth's ``authorize`` sets or
  clears them again for every path it is asked about, so this is the
  safe default for filters that do not;
* never the client's headers, query, body, Range or conditions, nor the
  proxy's ACL of the client's container (``objstore.acl``) or a
  one-request directive (``objstore.cached_info_ok``).
"""
import io
from urllib.parse import quote

from objstore.common.http import HTTPError, Request, request_path
from objstore.proxy.auth import OWNER_KEYS
from objstore.proxy.headers import CACHED_INFO_OK

KEPT = ('REMOTE_USER', 'REMOTE_ADDR', 'REMOTE_PORT', 'SERVER_NAME',
        'SERVER_PORT', 'SERVER_PROTOCOL', 'SCRIPT_NAME', 'HTTP_HOST',
        'HTTP_REFERER', 'HTTP_USER_AGENT', 'HTTP_X_AUTH_TOKEN',
        'HTTP_X_STORAGE_TOKEN', 'reseller_request', 'wsgi.version',
        'wsgi.url_scheme', 'wsgi.errors', 'wsgi.multithread',
        'wsgi.multiprocess', 'wsgi.run_once')
KEPT_PREFIXES = ('objstore.', 'swift.')
# about the client's own request only (the owner flags cross by the
# rule above)
PER_REQUEST = ('objstore.acl', CACHED_INFO_OK) + OWNER_KEYS


def account_of(path):
    """The account of a '/<version>/<account>[/...]' path, or None."""
    parts = path.split('/', 3)
    if len(parts) < 3 or not parts[2]:
        return None
    return parts[2]


def _own_account(environ):
    try:
        return account_of(request_path(Request(environ)))
    except HTTPError:
        return None


def environ_key(name):
    """'X-Object-Meta-A' -> 'HTTP_X_OBJECT_META_A' (CONTENT_TYPE and
    CONTENT_LENGTH as WSGI spells them)."""
    key = name.upper().replace('-', '_')
    if key not in ('CONTENT_TYPE', 'CONTENT_LENGTH'):
        key = 'HTTP_' + key
    return key


def sub_environ(environ, method, path, query='', headers=None, body=b'',
                length=None):
    """A WSGI environ for ``method`` on ``path`` (a /v1/... path, text,
    unquoted), made from the client's ``environ`` by the rule above.

    ``headers``: {name: value}; ``body``: bytes or a readable, of
    ``length`` bytes (None with a readable: sent chunked).
    """
    env = {k: v for k, v in environ.items()
           if k in KEPT or (k.startswith(KEPT_PREFIXES) and
                            k not in PER_REQUEST)}
    own = _own_account(environ)
    if own is not None and own == account_of(path):
        env.update((k, environ[k]) for k in OWNER_KEYS if k in environ)
    if isinstance(body, (bytes, bytearray)):
        length = len(body)
        body = io.BytesIO(body)
    env.update({
        'REQUEST_METHOD': method, 'RAW_PATH_INFO': quote(path),
        'PATH_INFO': path.encode('utf-8').decode('latin-1'),
        'QUERY_STRING': query, 'wsgi.input': body})
    if length is None:
        env['HTTP_TRANSFER_ENCODING'] = 'chunked'
    else:
        env['CONTENT_LENGTH'] = str(length)
    for name, value in (headers or {}).items():
        env[environ_key(name)] = value
    return env


def subrequest(app, environ, method, path, query='', headers=None,
               body=b''):
    """The Response of ``app`` (the rest of the pipeline) to a
    sub-request; its body is still a lazy app_iter."""
    env = sub_environ(environ, method, path, query, headers, body)
    return Request(env).get_response(app)


def close_body(resp):
    """Release a sub-request's answer without reading it."""
    close = getattr(resp.app_iter, 'close', None)
    if close is not None:
        close()


def _allow_all(req):
    return None


def head_headers(app, environ, path, cached=False, as_owner=True):
    """The headers of a HEAD of ``path`` made with no ACL check (the
    client's own request is judged later, by the proxy), or {} unless it
    answers 2xx. ``cached``: a container HEAD may come from the proxy's
    info cache. ``as_owner`` False drops the client's owner flags, for a
    caller that must see only what any reader sees of ``path``."""
    env = sub_environ(environ, 'HEAD', path)
    env['swift.authorize'] = env['objstore.authorize'] = _allow_all
    env['swift.authorize_override'] = True
    if not as_owner:
        for key in OWNER_KEYS:
            env.pop(key, None)
    if cached:
        env[CACHED_INFO_OK] = True
    resp = Request(env).get_response(app)
    close_body(resp)
    if not 200 <= resp.status_int < 300:
        return {}
    return resp.headers
