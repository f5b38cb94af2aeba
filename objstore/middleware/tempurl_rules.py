"""The rules of temporary URLs, as pure functions (no I/O, no WSGI).

A temp URL is an object URL plus a query that proves the account's (or
the container's) owner allowed one method on it until a time:

* ``temp_url_sig``: an HMAC keyed with one of the owner's Temp-URL keys,
  over ``METHOD\\nEXPIRES\\nPATH`` (``ip=<range>\\n`` in front when the
  URL names ``temp_url_ip_range``). Written as hex -- its length names
  the digest: 40 sha1, 64 sha256, 128 sha512 -- or as
  ``<digest>:<base64>`` (URL-safe alphabet, padding optional), the form
  clients use for sha512.
* ``temp_url_expires``: Unix seconds, or ISO 8601 UTC
  (``2030-01-02T03:04:05Z``); the HMAC is over the Unix seconds either
  way.
* ``temp_url_prefix``: the signature covers every object of the
  container whose name starts with the prefix; PATH in the HMAC is then
  ``prefix:/v1/<account>/<container>/<prefix>``.
* ``filename`` / ``inline``: how a browser should present a GET
  (Content-Disposition).

A HEAD may use a signature made for GET, POST or PUT: whoever may read
or write an object may look at its headers.
"""
import base64
import binascii
import calendar
import collections
import hashlib
import hmac
import ipaddress
import time
from urllib.parse import parse_qs, quote

DIGESTS = ('sha1', 'sha256', 'sha512')
HEX_LENGTHS = {40: 'sha1', 64: 'sha256', 128: 'sha512'}
DEFAULT_ALLOWED_DIGESTS = ('sha256', 'sha512')
DEPRECATED_DIGESTS = ('sha1',)
DEFAULT_METHODS = ('GET', 'HEAD', 'PUT', 'POST', 'DELETE')
# what HEAD may be signed as, in the order tried
HEAD_SIGNED_AS = ('HEAD', 'GET', 'POST', 'PUT')
ISO8601 = '%Y-%m-%dT%H:%M:%SZ'

ACCOUNT_KEYS = ('x-account-meta-temp-url-key',
                'x-account-meta-temp-url-key-2')
CONTAINER_KEYS = ('x-container-meta-temp-url-key',
                  'x-container-meta-temp-url-key-2')
# headers only the account's owner may see (Swift's owner-only headers
# that concern temp URLs)
OWNER_ONLY_HEADERS = frozenset(ACCOUNT_KEYS + CONTAINER_KEYS)
QUERY_NAMES = ('temp_url_sig', 'temp_url_expires', 'temp_url_prefix',
               'temp_url_ip_range', 'filename', 'inline')

ACCOUNT_SCOPE, CONTAINER_SCOPE = 'account', 'container'

# What a temp URL's query says; None where the query lacks a part.
TempURLQuery = collections.namedtuple(
    'TempURLQuery', 'sig expires prefix ip_range filename inline')
# What a valid temp URL grants: requests within ``scope`` of the path.
Grant = collections.namedtuple('Grant', 'scope account container')


class Invalid(Exception):
    """The temp URL does not hold: answer 401, whatever the reason
    (the reason is for logs and tests, never for the client)."""


def parse_query(query_string):
    """TempURLQuery of a raw query string, or None when it names neither
    ``temp_url_sig`` nor ``temp_url_expires`` (not a temp URL at all)."""
    params = parse_qs(query_string or '', keep_blank_values=True)
    if 'temp_url_sig' not in params and 'temp_url_expires' not in params:
        return None

    def first(name):
        values = params.get(name)
        return values[0] if values else None
    return TempURLQuery(first('temp_url_sig'), first('temp_url_expires'),
                        first('temp_url_prefix'), first('temp_url_ip_range'),
                        first('filename'), 'inline' in params)


def parse_expires(value):
    """Unix seconds of ``temp_url_expires`` (digits or ISO 8601 UTC)."""
    if value is None or value == '':
        raise Invalid('temp_url_expires is missing')
    if value.isdigit() and value.isascii():
        return int(value)
    try:
        return calendar.timegm(time.strptime(value, ISO8601))
    except ValueError:
        raise Invalid('temp_url_expires is neither Unix time nor '
                      'ISO 8601 UTC: %r' % value)


def parse_signature(sig):
    """(digest name, raw HMAC bytes) of ``temp_url_sig``."""
    if not sig:
        raise Invalid('temp_url_sig is missing')
    if ':' in sig:
        digest, _, encoded = sig.partition(':')
        if digest not in DIGESTS:
            raise Invalid('unknown digest %r' % digest)
        # a '+' the client left unescaped arrives as ' '
        encoded = encoded.replace(' ', '-').replace('+', '-') \
            .replace('/', '_')
        try:
            raw = base64.urlsafe_b64decode(encoded + '=' * (-len(encoded)
                                                            % 4))
        except (binascii.Error, ValueError):
            raise Invalid('temp_url_sig is not base64')
        if len(raw) != hashlib.new(digest).digest_size:
            raise Invalid('temp_url_sig has the wrong length for %s'
                          % digest)
        return digest, raw
    digest = HEX_LENGTHS.get(len(sig))
    if digest is None:
        raise Invalid('temp_url_sig has no digest of %d hex digits'
                      % len(sig))
    try:
        return digest, bytes.fromhex(sig)
    except ValueError:
        raise Invalid('temp_url_sig is not hex')


def parse_ip_range(value):
    """The network ``temp_url_ip_range`` names (one address or CIDR)."""
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise Invalid('temp_url_ip_range is not an address or network: '
                      '%r' % value)


def ip_allowed(ip_range, client_ip):
    """Whether ``client_ip`` (text) lies in the ``ip_range`` text."""
    network = parse_ip_range(ip_range)
    try:
        return ipaddress.ip_address(client_ip or '') in network
    except ValueError:
        return False


def signed_path(path, prefix=None):
    """What the HMAC covers for '/v1/a/c/o' (the request path, decoded):
    the path itself, or 'prefix:/v1/a/c/<prefix>' for a prefix URL.
    Invalid when the object name does not start with the prefix."""
    version, account, container, obj = split_object_path(path)
    if prefix is None:
        return path
    if not obj.startswith(prefix):
        raise Invalid('object %r is outside temp_url_prefix %r'
                      % (obj, prefix))
    return 'prefix:/%s/%s/%s/%s' % (version, account, container, prefix)


def split_object_path(path):
    """(version, account, container, object) of an object path; Invalid
    for anything else (temp URLs name objects only)."""
    parts = path.split('/', 4)
    if len(parts) != 5 or parts[0] != '' or not all(parts[1:]):
        raise Invalid('not an object path: %r' % path)
    return tuple(parts[1:])


def hmac_body(method, expires, path, ip_range=None):
    """The signed text (``path`` as signed_path() gives it)."""
    parts = [method, str(expires), path]
    if ip_range is not None:
        parts.insert(0, 'ip=%s' % ip_range)
    return '\n'.join(parts)


def sign(key, method, expires, path, digest='sha256', ip_range=None):
    """The raw HMAC a client makes for these parts (tests, tools)."""
    return hmac.new(key.encode('utf-8'),
                    hmac_body(method, expires, path, ip_range).encode(
                        'utf-8'), digest).digest()


def methods_to_try(method):
    """The methods a signature may name for a request of ``method``."""
    return HEAD_SIGNED_AS if method == 'HEAD' else (method,)


def validate(query, method, path, keys, now, client_ip,
             allowed_digests=DEFAULT_ALLOWED_DIGESTS,
             methods=DEFAULT_METHODS):
    """The Grant of a temp URL request, or raise Invalid.

    ``keys``: [(key, scope)] with scope ACCOUNT_SCOPE or CONTAINER_SCOPE;
    ``path``: the decoded request path; ``now``: Unix time. Everything
    but the keys is checked first, so a caller may ask check_request()
    before it fetches them.
    """
    check_request(query, method, path, now, client_ip, allowed_digests,
                  methods)
    digest, sig = parse_signature(query.sig)
    expires = parse_expires(query.expires)
    body_path = signed_path(path, query.prefix)
    _, account, container, _ = split_object_path(path)
    for key, scope in keys:
        for signed_method in methods_to_try(method):
            if signed_method not in methods:
                continue
            expected = sign(key, signed_method, expires, body_path, digest,
                            query.ip_range)
            if hmac.compare_digest(expected, sig):
                return Grant(scope, account, container)
    raise Invalid('no key signs this request')


def check_request(query, method, path, now, client_ip,
                  allowed_digests=DEFAULT_ALLOWED_DIGESTS,
                  methods=DEFAULT_METHODS):
    """Everything validate() checks that needs no key; raises Invalid."""
    if method not in methods:
        raise Invalid('method %s is not allowed with temp URLs' % method)
    digest, _ = parse_signature(query.sig)
    if digest not in allowed_digests:
        raise Invalid('digest %s is not allowed here' % digest)
    if parse_expires(query.expires) < now:
        raise Invalid('temp URL expired')
    signed_path(path, query.prefix)
    if query.ip_range is not None and not ip_allowed(query.ip_range,
                                                     client_ip):
        raise Invalid('client address %s is outside temp_url_ip_range'
                      % client_ip)


def keys_from(headers, names):
    """The non-empty key values among ``headers`` (case-insensitive)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return [lowered[n] for n in names if lowered.get(n)]


def within(grant, path):
    """Whether a request for ``path`` (decoded) is inside the grant:
    the same account (account keys) or container (container keys). So
    a large object's segments and a symlink's target may be read
    through the URL of the manifest or link, as the signer could."""
    parts = path.split('/', 4)
    if len(parts) < 3 or parts[0] != '' or parts[2] != grant.account:
        return False
    if grant.scope == ACCOUNT_SCOPE:
        return True
    return len(parts) >= 4 and parts[3] == grant.container


def header_matcher(patterns):
    """f(name) -> bool for header names (lower-case patterns; a trailing
    '*' matches any rest)."""
    exact = frozenset(p for p in patterns if not p.endswith('*'))
    prefixes = tuple(p[:-1] for p in patterns if p.endswith('*'))

    def matches(name):
        name = name.lower()
        return name in exact or (bool(prefixes) and
                                 name.startswith(prefixes))
    return matches


def content_disposition(obj, filename=None, inline=False, existing=None):
    """Content-Disposition for a temp URL GET: as ``filename`` /
    ``inline`` ask, else the object's own, else an attachment named
    after the object's last path segment."""
    if inline:
        value = 'inline' if filename is None else _disposition('inline',
                                                              filename)
    elif filename is not None:
        value = _disposition('attachment', filename)
    elif existing:
        value = existing
    else:
        value = _disposition('attachment',
                             obj.rstrip('/').rsplit('/', 1)[-1])
    return value.replace('\r', '%0D').replace('\n', '%0A')


def _disposition(kind, filename):
    # RFC 6266: a quoted plain name for old agents, filename* for UTF-8
    return '%s; filename="%s"; filename*=UTF-8\'\'%s' % (
        kind, quote(filename, safe=' /'), quote(filename))
