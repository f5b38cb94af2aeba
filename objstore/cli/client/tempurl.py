"""``objstore tempurl``: a temporary URL signed with the account's key.

The signature is the documented one: an HMAC, keyed with the
X-Account-Meta-Temp-URL-Key value, over ``METHOD\\nEXPIRES\\nPATH``;
hex for sha1 and sha256, ``sha512:`` + unpadded URL-safe base64 for
sha512. The URL carries ``temp_url_sig`` and ``temp_url_expires``.
"""
import base64
import hashlib
import hmac
import time

from objstore.cli.client.errors import UsageError

METHODS = ('GET', 'HEAD', 'PUT', 'POST', 'DELETE')
DIGESTS = ('sha1', 'sha256', 'sha512')


def check_path(path):
    """A temp URL path must name an object: /v1/<account>/<c>/<o>."""
    parts = path.split('/', 4)
    if len(parts) < 5 or parts[0] != '' or not all(parts[1:]):
        raise UsageError('temp URL path must be /v1/<account>/<container>/'
                         '<object>, not %r' % path)


def signature(key, method, expires, path, digest='sha256'):
    if digest not in DIGESTS:
        raise UsageError('unknown digest %r (one of %s)'
                         % (digest, ', '.join(DIGESTS)))
    body = '%s\n%d\n%s' % (method, expires, path)
    mac = hmac.new(key.encode('utf-8'), body.encode('utf-8'),
                   getattr(hashlib, digest))
    if digest == 'sha512':
        return 'sha512:' + base64.urlsafe_b64encode(
            mac.digest()).decode('ascii').rstrip('=')
    return mac.hexdigest()


def temp_url(method, seconds, path, key, digest='sha256', absolute=False,
             now=None):
    """The signed path+query for METHOD on PATH for SECONDS (or until
    the Unix time SECONDS when ``absolute``)."""
    method = method.upper()
    if method not in METHODS:
        raise UsageError('method must be one of %s, not %r'
                         % (', '.join(METHODS), method))
    try:
        seconds = int(seconds)
    except ValueError:
        raise UsageError('SECONDS must be a whole number, not %r' % seconds)
    if seconds <= 0:
        raise UsageError('SECONDS must be positive')
    check_path(path)
    expires = seconds if absolute else int(
        time.time() if now is None else now) + seconds
    sig = signature(key, method, expires, path, digest)
    return '%s?temp_url_sig=%s&temp_url_expires=%d' % (path, sig, expires)


def run(args, out):
    out.line(temp_url(args.method, args.seconds, args.path, args.key,
                      args.digest, args.absolute))
    return 0
