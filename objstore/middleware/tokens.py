"""Self-contained auth tokens: who, in which account and groups, until when.

A token is ``<prefix>`` + base64url(compact JSON claims) + ``.`` +
base64url(HMAC-SHA256 over prefix and claims). Whoever holds the signing
key checks one without a token store, so every worker and every proxy of
a cluster accept each other's tokens. The caller picks the key from the
claimed user (``key_for``), which lets tempauth bind a token to the
user's configured entry: changing a user's key or groups revokes the
user's tokens. Pure functions: no I/O, the clock is a parameter.
"""
import base64
import binascii
import collections
import hashlib
import hmac
import json
import re
import time

# Far above any real token (about 200 bytes), far below header limits.
MAX_TOKEN_LENGTH = 4096
_B64URL = re.compile(r'[A-Za-z0-9_-]+\Z')

Token = collections.namedtuple('Token', 'user account groups expires')


class TokenError(ValueError):
    """Not a valid token: garbled, forged, for an unknown user or expired.
    The message says which, for logs; clients only see a 401."""


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def _unb64(text):
    if not _B64URL.match(text):
        raise TokenError('garbled token')
    try:
        return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError('garbled token')


def _signature(key, signed):
    return _b64(hmac.new(key, signed.encode('ascii'), hashlib.sha256)
                .digest())


def make_token(prefix, key, user, account, groups, expires):
    """A token for ``user`` (account:user) of ``account`` until
    ``expires`` (unix time, whole seconds)."""
    claims = {'u': user, 'a': account, 'g': list(groups),
              'e': int(expires)}
    body = _b64(json.dumps(claims, separators=(',', ':'),
                           sort_keys=True).encode('ascii'))
    return '%s%s.%s' % (prefix, body, _signature(key, prefix + body))


def _claims(body):
    try:
        claims = json.loads(_unb64(body).decode('utf-8'))
    except (UnicodeDecodeError, ValueError):
        raise TokenError('garbled token')
    if not isinstance(claims, dict):
        raise TokenError('garbled token')
    user, account = claims.get('u'), claims.get('a')
    groups, expires = claims.get('g'), claims.get('e')
    if not isinstance(user, str) or not isinstance(account, str) or \
            not isinstance(groups, list) or \
            not all(isinstance(g, str) for g in groups) or \
            type(expires) is not int:
        raise TokenError('garbled token')
    return Token(user, account, tuple(groups), expires)


def is_token_for(prefix, token):
    """Whether ``token`` claims to be one of ours (by its prefix)."""
    return isinstance(token, str) and token.startswith(prefix)


def read_token(prefix, token, key_for, now=None):
    """The Token a valid, unexpired ``token`` carries; else TokenError.

    ``key_for(user)`` returns the signing key for the claimed user, or
    None when there is no such user. The signature is checked before
    anything the claims say is believed.
    """
    if not is_token_for(prefix, token) or len(token) > MAX_TOKEN_LENGTH \
            or not token.isascii():
        raise TokenError('not a token of ours')
    body, dot, signature = token[len(prefix):].partition('.')
    if not dot or not body or not signature:
        raise TokenError('garbled token')
    claims = _claims(body)
    key = key_for(claims.user)
    if key is None:
        raise TokenError('token for unknown user %r' % claims.user)
    expected = _signature(key, prefix + body)
    if not hmac.compare_digest(expected.encode('ascii'),
                               signature.encode('ascii')):
        raise TokenError('bad token signature')
    now = time.time() if now is None else now
    if claims.expires <= now:
        raise TokenError('token expired')
    return claims
