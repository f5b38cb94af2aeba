"""AWS Signature Version 4 for S3, as pure functions of a WSGI environ.

Two ways to carry it: the ``Authorization: AWS4-HMAC-SHA256
Credential=..., SignedHeaders=..., Signature=...`` header, or a presigned
URL's ``X-Amz-*`` query parameters. Either way the server rebuilds the
canonical request from what it received, signs it with the secret it
holds for the access key, and compares.

S3's canonical request differs from other AWS services' in two ways we
honour: the path is not normalised (``a/../b`` and ``//`` stay), and each
path segment is percent-encoded exactly once. The payload line is the
client's ``x-amz-content-sha256`` (a hex digest, ``UNSIGNED-PAYLOAD`` or
a ``STREAMING-*`` marker); for presigned URLs always ``UNSIGNED-PAYLOAD``.

Nothing here reads a body or a clock: ``now`` is a parameter, and the
caller (auth.py) wraps ``wsgi.input`` when the payload must be checked.
"""
import calendar
import collections
import email.utils
import hashlib
import hmac
import re
import time
from urllib.parse import unquote_to_bytes

from objstore.middleware.s3api.errors import S3Error

ALGORITHM = 'AWS4-HMAC-SHA256'
SERVICE = 's3'
TERMINATOR = 'aws4_request'
UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'
STREAMING_PAYLOAD = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'
STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER'
EMPTY_SHA256 = hashlib.sha256(b'').hexdigest()
MAX_SKEW = 15 * 60          # seconds either way, as S3 allows
MAX_EXPIRES = 7 * 24 * 3600  # a presigned URL lives a week at most
AMZ_DATE_FORMAT = '%Y%m%dT%H%M%SZ'

_UNRESERVED = frozenset(b'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
                        b'0123456789-._~')
_HEX64 = re.compile(r'^[0-9a-fA-F]{64}$')

# What the client signed, whichever way it sent it.
Signed = collections.namedtuple(
    'Signed', 'access_key date region service amz_date signed_headers '
              'signature presigned expires')


# -- encoding ------------------------------------------------------------

def uri_encode(data, keep_slash=False):
    """AWS's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ as %XX
    (upper-case hex); '/' kept only when ``keep_slash``."""
    if isinstance(data, str):
        data = data.encode('utf-8', 'surrogateescape')
    out = []
    for byte in data:
        if byte in _UNRESERVED or (keep_slash and byte == 0x2f):
            out.append(chr(byte))
        else:
            out.append('%%%02X' % byte)
    return ''.join(out)


def wsgi_text(value):
    """A WSGI (latin-1) string as the text the client sent (UTF-8)."""
    return value.encode('latin-1').decode('utf-8', 'surrogateescape')


def header(environ, name):
    """A request header by its lower-case name from the environ, as
    text; None when absent."""
    key = name.upper().replace('-', '_')
    if key not in ('CONTENT_TYPE', 'CONTENT_LENGTH'):
        key = 'HTTP_' + key
    value = environ.get(key)
    return None if value is None else wsgi_text(value)


def query_pairs(query_string):
    """[(name, value)] of a raw query string, percent-decoded; a '+' is
    a space, as in any form-encoded query (clients send %2B for '+')."""
    pairs = []
    for piece in (query_string or '').split('&'):
        if not piece:
            continue
        name, _, value = piece.partition('=')
        pairs.append((_decode(name), _decode(value)))
    return pairs


def _decode(text):
    text = text.replace('+', ' ')
    return unquote_to_bytes(text.encode('latin-1')).decode(
        'utf-8', 'surrogateescape')


# -- canonical request -----------------------------------------------------

def canonical_uri(environ):
    """The request path, each segment decoded then encoded once.

    From the raw path when the server gives it (so an encoded '/' in a
    key, %2F, stays one), else from the already-decoded PATH_INFO.
    """
    raw = environ.get('RAW_PATH_INFO')
    if raw is not None:
        segments = [unquote_to_bytes(s.encode('latin-1'))
                    for s in raw.split('/')]
    else:
        segments = environ.get('PATH_INFO', '').encode('latin-1').split(b'/')
    return '/'.join(uri_encode(s) for s in segments) or '/'


def canonical_query(query_string, exclude=()):
    """Name=value pairs, each encoded with UriEncode, sorted by name then
    value, joined by '&'; names in ``exclude`` (X-Amz-Signature) left out."""
    pairs = sorted((uri_encode(n), uri_encode(v))
                   for n, v in query_pairs(query_string) if n not in exclude)
    return '&'.join('%s=%s' % p for p in pairs)


def canonical_headers(environ, signed_headers):
    """'name:value\\n' for each signed header, values trimmed and inner
    runs of spaces collapsed, as the client signed them."""
    lines = []
    for name in signed_headers:
        value = header(environ, name)
        lines.append('%s:%s\n' % (name, ' '.join((value or '').split())))
    return ''.join(lines)


def canonical_request(method, uri, query, headers_block, signed_headers,
                      payload_hash):
    return '\n'.join([method, uri, query, headers_block,
                      ';'.join(signed_headers), payload_hash])


def scope(date, region, service=SERVICE):
    return '/'.join([date, region, service, TERMINATOR])


def string_to_sign(amz_date, credential_scope, canonical):
    digest = hashlib.sha256(
        canonical.encode('utf-8', 'surrogateescape')).hexdigest()
    return '\n'.join([ALGORITHM, amz_date, credential_scope, digest])


def signing_key(secret, date, region, service=SERVICE):
    """The key derived from the secret for one day, region and service."""
    key = ('AWS4' + secret).encode('utf-8')
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode('utf-8'), hashlib.sha256).digest()
    return key


def sign(key, text):
    return hmac.new(key, text.encode('utf-8'), hashlib.sha256).hexdigest()


# -- parsing what the client sent ----------------------------------------

def is_header_auth(environ):
    return (environ.get('HTTP_AUTHORIZATION') or '').startswith(
        ALGORITHM + ' ')


def is_presigned(query):
    """True when the query (a dict) carries V4 presigned parameters."""
    return 'X-Amz-Algorithm' in query or 'X-Amz-Credential' in query or \
        'X-Amz-Signature' in query


def _header_malformed(message=None, **extra):
    text = 'The authorization header is malformed; %s' % message \
        if message else None
    return S3Error('AuthorizationHeaderMalformed', text, **extra)


def _query_error(message, **extra):
    return S3Error('AuthorizationQueryParametersError', message, **extra)


def _credential(value, error):
    """(access_key, date, region, service) of 'AKID/date/region/s3/
    aws4_request'; the access key may itself hold '/'."""
    parts = value.rsplit('/', 4)
    if len(parts) != 5 or not all(parts) or parts[4] != TERMINATOR:
        raise error('the Credential is mal-formed; expecting '
                    '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    if not re.match(r'^\d{8}$', parts[1]):
        raise error('incorrect date format "%s". This date in the '
                    'credential must be in the format "yyyyMMdd".'
                    % parts[1])
    if parts[3] != SERVICE:
        raise error('incorrect service "%s". This endpoint belongs to '
                    '"%s".' % (parts[3], SERVICE))
    return parts[:4]


def _signed_header_names(value, error):
    names = value.split(';')
    if not value or any(not n or n != n.strip().lower() for n in names):
        raise error('the SignedHeaders are mal-formed.')
    return tuple(names)


def parse_authorization(value):
    """Signed(...) from an ``AWS4-HMAC-SHA256 Credential=..,
    SignedHeaders=.., Signature=..`` header (without its date, which
    the caller adds); AuthorizationHeaderMalformed when it is not one."""
    algorithm, _, rest = value.partition(' ')
    if algorithm != ALGORITHM:
        raise _header_malformed('the authorization mechanism %r is not '
                                'supported.' % algorithm)
    fields = {}
    for item in rest.split(','):
        name, eq, field = item.strip().partition('=')
        if not eq or name in fields:
            raise _header_malformed('it must hold Credential, '
                                    'SignedHeaders and Signature, each '
                                    'once, as name=value.')
        fields[name] = field.strip()
    missing = [n for n in ('Credential', 'SignedHeaders', 'Signature')
               if not fields.get(n)]
    if missing:
        raise _header_malformed('missing %s.' % ', '.join(missing))
    if set(fields) - {'Credential', 'SignedHeaders', 'Signature'}:
        raise _header_malformed('unknown field(s) %s.' % ', '.join(
            sorted(set(fields) - {'Credential', 'SignedHeaders',
                                  'Signature'})))
    access_key, date, region, service = _credential(
        fields['Credential'], _header_malformed)
    names = _signed_header_names(fields['SignedHeaders'], _header_malformed)
    return Signed(access_key, date, region, service, None, names,
                  fields['Signature'], False, None)


def parse_presigned(query):
    """Signed(...) from a presigned URL's query (a dict of decoded
    values); AuthorizationQueryParametersError when it is not one."""
    needed = ('X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date',
              'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature')
    missing = [n for n in needed if not query.get(n)]
    if missing:
        raise _query_error(
            'Query-string authentication version 4 requires the '
            'X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, '
            'X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires '
            'parameters.')
    if query['X-Amz-Algorithm'] != ALGORITHM:
        raise _query_error('X-Amz-Algorithm only supports "%s"'
                           % ALGORITHM)

    def error(message):
        return _query_error('Error parsing the X-Amz-Credential '
                            'parameter; ' + message)
    access_key, date, region, service = _credential(
        query['X-Amz-Credential'], error)
    try:
        expires = int(query['X-Amz-Expires'])
    except ValueError:
        raise _query_error('X-Amz-Expires should be a number')
    if expires < 0:
        raise _query_error('X-Amz-Expires must be non-negative')
    if expires > MAX_EXPIRES:
        raise _query_error('X-Amz-Expires must be less than a week (in '
                           'seconds) that is; %d seconds' % MAX_EXPIRES)
    names = _signed_header_names(
        query['X-Amz-SignedHeaders'],
        lambda m: _query_error('X-Amz-SignedHeaders: ' + m))
    return Signed(access_key, date, region, service, query['X-Amz-Date'],
                  names, query['X-Amz-Signature'], True, expires)


def parse_amz_date(text):
    """Seconds since the epoch of '20130524T000000Z', or None."""
    try:
        return calendar.timegm(time.strptime(text, AMZ_DATE_FORMAT))
    except (TypeError, ValueError):
        return None


def parse_http_date(text):
    """Seconds since the epoch of an RFC 7231 date, or None."""
    try:
        parsed = email.utils.parsedate_tz(text)
        return None if parsed is None else email.utils.mktime_tz(parsed)
    except (TypeError, ValueError, OverflowError):
        return None


def request_date(environ):
    """(amz_date string, epoch seconds) of a header-signed request:
    X-Amz-Date, else Date (rewritten in the ISO 8601 basic form the
    string to sign uses); AccessDenied when neither is valid."""
    amz = header(environ, 'x-amz-date')
    if amz is not None:
        when = parse_amz_date(amz.strip())
        if when is not None:
            return amz.strip(), when
    else:
        when = parse_http_date(header(environ, 'date'))
        if when is not None:
            return time.strftime(AMZ_DATE_FORMAT, time.gmtime(when)), when
    raise S3Error('AccessDenied', 'AWS authentication requires a valid '
                  'Date or x-amz-date header')


def check_skew(when, now):
    """RequestTimeTooSkewed when the request's time is more than 15
    minutes from ours."""
    if abs(now - when) > MAX_SKEW:
        raise S3Error(
            'RequestTimeTooSkewed',
            RequestTime=time.strftime(AMZ_DATE_FORMAT, time.gmtime(when)),
            ServerTime=time.strftime(AMZ_DATE_FORMAT, time.gmtime(now)),
            MaxAllowedSkewMilliseconds=MAX_SKEW * 1000)


def check_presigned_time(signed, now):
    """AccessDenied when a presigned URL has expired or is not valid
    yet (signed more than the allowed skew in the future)."""
    when = parse_amz_date(signed.amz_date)
    if when is None:
        raise _query_error("X-Amz-Date must be in the ISO8601 Long Format "
                           "\"yyyyMMdd'T'HHmmss'Z'\"")
    if when - now > MAX_SKEW:
        raise S3Error('AccessDenied', 'Request is not valid yet')
    if now > when + signed.expires:
        raise S3Error(
            'AccessDenied', 'Request has expired',
            **{'X-Amz-Expires': signed.expires,
               'Expires': time.strftime(
                   '%Y-%m-%dT%H:%M:%SZ', time.gmtime(when + signed.expires)),
               'ServerTime': time.strftime(
                   '%Y-%m-%dT%H:%M:%SZ', time.gmtime(now))})
    return when


def check_region(signed, location):
    """The credential's region must be ours (``location``); None
    accepts any. S3 names the right one so SDKs can retry there."""
    if location is None or signed.region == location:
        return
    if signed.presigned:
        raise _query_error("Error parsing the X-Amz-Credential parameter; "
                           "the region '%s' is wrong; expecting '%s'"
                           % (signed.region, location), Region=location)
    raise _header_malformed("the region '%s' is wrong; expecting '%s'"
                            % (signed.region, location), Region=location)


def check_payload_hash(value):
    """The x-amz-content-sha256 value, validated (header auth)."""
    if value is None:
        raise S3Error('InvalidRequest', 'Missing required header for this '
                      'request: x-amz-content-sha256')
    if value in (UNSIGNED_PAYLOAD, STREAMING_PAYLOAD,
                 STREAMING_UNSIGNED_TRAILER) or _HEX64.match(value):
        return value
    raise S3Error('InvalidArgument', 'x-amz-content-sha256 must be '
                  'UNSIGNED-PAYLOAD, %s, %s or a valid sha256 value.'
                  % (STREAMING_PAYLOAD, STREAMING_UNSIGNED_TRAILER),
                  ArgumentName='x-amz-content-sha256', ArgumentValue=value)


def check_signed_headers(environ, signed):
    """S3's rules: 'host' is always signed; with header auth every
    x-amz-* header sent is signed too."""
    if 'host' not in signed.signed_headers:
        raise S3Error('AccessDenied', 'There were headers present in the '
                      'request which were not signed',
                      HeadersNotSigned='host')
    if signed.presigned:
        return
    unsigned = sorted(
        k[5:].lower().replace('_', '-') for k in environ
        if k.startswith('HTTP_X_AMZ_') and
        k[5:].lower().replace('_', '-') not in signed.signed_headers)
    if unsigned:
        raise S3Error('AccessDenied', 'There were headers present in the '
                      'request which were not signed',
                      HeadersNotSigned=', '.join(unsigned))


# -- verification --------------------------------------------------------

def expected(environ, signed, secret, payload_hash):
    """(canonical request, string to sign, signature) the client should
    have produced for this request with ``secret``."""
    exclude = ('X-Amz-Signature',) if signed.presigned else ()
    canonical = canonical_request(
        environ.get('REQUEST_METHOD', 'GET'), canonical_uri(environ),
        canonical_query(environ.get('QUERY_STRING', ''), exclude),
        canonical_headers(environ, signed.signed_headers),
        signed.signed_headers, payload_hash)
    sts = string_to_sign(signed.amz_date,
                         scope(signed.date, signed.region, signed.service),
                         canonical)
    key = signing_key(secret, signed.date, signed.region, signed.service)
    return canonical, sts, sign(key, sts)


def verify(environ, signed, secret, payload_hash):
    """SignatureDoesNotMatch unless the client's signature is the one
    ``secret`` gives; returns the signing key (the aws-chunked decoder
    signs each chunk with it)."""
    canonical, sts, signature = expected(environ, signed, secret,
                                         payload_hash)
    if not hmac.compare_digest(signature.encode('ascii'),
                               signed.signature.encode('utf-8',
                                                       'surrogateescape')):
        raise S3Error('SignatureDoesNotMatch',
                      AWSAccessKeyId=signed.access_key, StringToSign=sts,
                      SignatureProvided=signed.signature,
                      CanonicalRequest=canonical)
    return signing_key(secret, signed.date, signed.region, signed.service)


def check_scope_date(signed):
    """The credential's day must be the request's day."""
    if signed.amz_date[:8] != signed.date:
        message = 'Invalid credential date. Date is not the same as ' \
                  'X-Amz-Date.'
        if signed.presigned:
            raise _query_error(message)
        raise S3Error('AuthorizationHeaderMalformed',
                      'The authorization header is malformed; ' + message)


class Sha256Input:
    """A ``wsgi.input`` that checks the body against the client's
    ``x-amz-content-sha256`` as it is read.

    The check happens on the read that returns the last byte (the reader
    may never ask again once it has Content-Length bytes), which then
    raises XAmzContentSHA256Mismatch instead of returning them, so a
    body that does not match is never complete downstream. The error is
    also kept in ``.error``.
    """

    def __init__(self, raw, length, expected_hex):
        self.raw, self.left = raw, length
        self.expected = expected_hex.lower()
        self.hasher = hashlib.sha256()
        self.done = False
        self.error = None

    def read(self, size=-1):
        return self._pass(self.raw.read, size)

    def readline(self, size=-1):
        return self._pass(self.raw.readline, size)

    def _pass(self, reader, size):
        if self.error is not None:
            raise self.error
        if self.done:
            return b''
        if self.left is not None and (size is None or size < 0 or
                                      size > self.left):
            size = self.left
        data = reader(size) if size is not None else reader()
        self.hasher.update(data)
        if self.left is not None:
            self.left -= len(data)
        if not data or self.left == 0 or (size is not None and size < 0):
            self._finish(short=bool(self.left) and not data)
        return data

    def _finish(self, short):
        self.done = True
        if short:
            self.error = S3Error('IncompleteBody')
        elif self.hasher.hexdigest() != self.expected:
            self.error = S3Error(
                'XAmzContentSHA256Mismatch',
                ClientComputedContentSHA256=self.expected,
                S3ComputedContentSHA256=self.hasher.hexdigest())
        if self.error is not None:
            raise self.error
