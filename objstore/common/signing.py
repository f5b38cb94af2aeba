"""Signing internal requests (proxy -> storage node, scheduler -> agent).

Storage nodes accept a request only when it carries an HMAC-SHA256 over
its method, path, query string, signing time and key headers, made with the
cluster secret, and the signing time is recent. Without the secret nobody
on the network can write to a storage node, even from inside the cluster
network. Pure functions: no I/O.
"""
import hashlib
import hmac
import time
from urllib.parse import quote

SIGNATURE_HEADER = 'X-Backend-Signature'
SIGN_TIME_HEADER = 'X-Backend-Sign-Time'
MAX_SKEW = 60.0
# Headers that steer what a storage node does; changing any of them in
# flight breaks the signature.
SIGNED_HEADERS = (
    'x-timestamp', 'content-length', 'etag', 'x-delete-at',
    'x-container-host', 'x-container-partition', 'x-container-device',
    'x-account-host', 'x-account-partition', 'x-account-device',
    'x-backend-replication', 'x-size', 'x-content-type', 'x-etag',
    'x-put-timestamp', 'x-delete-timestamp', 'x-object-count',
    'x-bytes-used',
)


# Where each signed header lives in a WSGI environ.
_ENVIRON_KEYS = {name: 'CONTENT_LENGTH' if name == 'content-length'
                 else 'HTTP_' + name.upper().replace('-', '_')
                 for name in SIGNED_HEADERS}
_keyed = {}     # secret -> an HMAC already keyed with it, to copy


def _canonical(method, path, query, sign_time, get):
    """The signed text; ``get(lower_name)`` looks a header up."""
    lines = [method.upper(), path, query or '', sign_time]
    for name in SIGNED_HEADERS:
        value = get(name)
        if value is not None:
            lines.append('%s:%s' % (name, str(value).strip()))
    return '\n'.join(lines).encode('utf-8', 'surrogateescape')


def _digest(secret, message):
    """HMAC-SHA256 of ``message``. Keying an HMAC hashes the secret's
    pads, as much work as the short message itself: do it once per
    secret and copy the keyed state for each request."""
    keyed = _keyed.get(secret)
    if keyed is None:
        key = secret.encode('utf-8') if isinstance(secret, str) else secret
        keyed = _keyed[secret] = hmac.new(key, digestmod=hashlib.sha256)
    mac = keyed.copy()
    mac.update(message)
    return mac.hexdigest()


def sign(secret, method, path, headers, query='', now=None):
    """Return ``headers`` plus the signature headers (a new dict).

    ``path`` is the request path as sent on the wire (percent-encoded).
    """
    if not secret:
        raise ValueError('no cluster secret to sign with')
    sign_time = '%.6f' % (time.time() if now is None else now)
    lower = {k.lower(): v for k, v in headers.items()}
    out = dict(headers)
    out[SIGN_TIME_HEADER] = sign_time
    out[SIGNATURE_HEADER] = _digest(
        secret, _canonical(method, path, query, sign_time, lower.get))
    return out


def verify(secret, method, path, headers, query='', now=None,
           max_skew=MAX_SKEW):
    """None when the request is signed and fresh, else the reason."""
    lower = {k.lower(): v for k, v in headers.items()}
    return _verify(secret, method, path, query, lower.get, now, max_skew)


def _verify(secret, method, path, query, get, now, max_skew):
    signature = get(SIGNATURE_HEADER.lower())
    sign_time = get(SIGN_TIME_HEADER.lower())
    if not signature or not sign_time:
        return 'request is not signed'
    try:
        when = float(sign_time)
    except ValueError:
        return 'bad signing time'
    now = time.time() if now is None else now
    if abs(now - when) > max_skew:
        return 'stale signature'
    expected = _digest(secret, _canonical(method, path, query, sign_time,
                                          get))
    if not hmac.compare_digest(expected, signature):
        return 'bad signature'
    return None


def verify_environ(secret, environ, now=None, max_skew=MAX_SKEW):
    """verify() for a WSGI request, against the path as it was sent.

    The signed path is the raw (still percent-encoded) path the server
    saw when it provides one (our http_server's RAW_PATH_INFO), else the
    decoded PATH_INFO re-encoded the way backend.request encodes it. The
    signed headers are read straight from the environ: no header dict is
    built per request.
    """
    wire = environ.get('RAW_PATH_INFO')
    if wire is None:
        raw = environ.get('PATH_INFO', '').encode('latin-1', 'replace')
        wire = quote(raw, safe='/')

    def get(name):
        key = _ENVIRON_KEYS.get(name)
        if key is None:      # the signature headers themselves
            key = 'HTTP_' + name.upper().replace('-', '_')
        value = environ.get(key)
        # an empty Content-Length is no Content-Length (as WSGI has it)
        return None if key == 'CONTENT_LENGTH' and not value else value
    return _verify(secret, environ.get('REQUEST_METHOD', ''), wire,
                   environ.get('QUERY_STRING', ''), get, now, max_skew)
