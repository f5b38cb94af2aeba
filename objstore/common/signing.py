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


def _canonical(method, path, query, sign_time, headers):
    lower = {k.lower(): v for k, v in headers.items()}
    lines = [method.upper(), path, query or '', sign_time]
    for name in SIGNED_HEADERS:
        value = lower.get(name)
        if value is not None:
            lines.append('%s:%s' % (name, str(value).strip()))
    return '\n'.join(lines).encode('utf-8', 'surrogateescape')


def _digest(secret, message):
    if isinstance(secret, str):
        secret = secret.encode('utf-8')
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret, method, path, headers, query='', now=None):
    """Return ``headers`` plus the signature headers (a new dict).

    ``path`` is the request path as sent on the wire (percent-encoded).
    """
    if not secret:
        raise ValueError('no cluster secret to sign with')
    sign_time = '%.6f' % (time.time() if now is None else now)
    out = dict(headers)
    out[SIGN_TIME_HEADER] = sign_time
    out[SIGNATURE_HEADER] = _digest(
        secret, _canonical(method, path, query, sign_time, headers))
    return out


def verify(secret, method, path, headers, query='', now=None,
           max_skew=MAX_SKEW):
    """None when the request is signed and fresh, else the reason."""
    lower = {k.lower(): v for k, v in headers.items()}
    signature = lower.get(SIGNATURE_HEADER.lower())
    sign_time = lower.get(SIGN_TIME_HEADER.lower())
    if not signature or not sign_time:
        return 'request is not signed'
    try:
        when = float(sign_time)
    except ValueError:
        return 'bad signing time'
    now = time.time() if now is None else now
    if abs(now - when) > max_skew:
        return 'stale signature'
    headers = {k: v for k, v in headers.items()
               if k.lower() not in (SIGNATURE_HEADER.lower(),
                                    SIGN_TIME_HEADER.lower())}
    expected = _digest(secret, _canonical(method, path, query, sign_time,
                                          headers))
    if not hmac.compare_digest(expected, signature):
        return 'bad signature'
    return None


def environ_headers(environ):
    """A WSGI environ's request headers as {'X-Name': value}."""
    headers = {k[5:].replace('_', '-').title(): v
               for k, v in environ.items() if k.startswith('HTTP_')}
    for key, name in (('CONTENT_LENGTH', 'Content-Length'),
                      ('CONTENT_TYPE', 'Content-Type')):
        if environ.get(key):
            headers[name] = environ[key]
    return headers


def verify_environ(secret, environ, now=None, max_skew=MAX_SKEW):
    """verify() for a WSGI request, against the path as it was sent.

    The signed path is the raw (still percent-encoded) path the server
    saw when it provides one (eventlet's RAW_PATH_INFO), else the decoded
    PATH_INFO re-encoded the way backend.request encodes it.
    """
    wire = environ.get('RAW_PATH_INFO')
    if wire is None:
        raw = environ.get('PATH_INFO', '').encode('latin-1', 'replace')
        wire = quote(raw, safe='/')
    return verify(secret, environ.get('REQUEST_METHOD', ''), wire,
                  environ_headers(environ), environ.get('QUERY_STRING', ''),
                  now=now, max_skew=max_skew)
