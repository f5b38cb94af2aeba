"""AWS Signature Version 2 for S3 (``Authorization: AWS key:sig`` and
``?AWSAccessKeyId=..&Signature=..&Expires=..``), as pure functions.

The string to sign is::

    METHOD \\n Content-MD5 \\n Content-Type \\n Date \\n
    x-amz-* headers (lower-case, sorted, 'name:value\\n' each)
    /bucket/key?sub-resources

Date is the ``Date`` header (empty when ``x-amz-date`` is sent: that one
is among the x-amz headers then), or the ``Expires`` parameter for a
presigned URL. The resource is the path as the client sent it,
prefixed with the bucket for virtual-hosted requests, plus the
sub-resources S3 lists (acl, uploads, uploadId, partNumber,
response-* overrides...) sorted by name, their values decoded. The
signature is base64(HMAC-SHA1(secret, string to sign)).
"""
import base64
import hashlib
import hmac
import time
from urllib.parse import quote

from objstore.middleware.s3api.errors import S3Error
from objstore.middleware.s3api.sigv4 import (
    check_skew, header, parse_amz_date, parse_http_date,
    query_pairs, wsgi_text)

# Query parameters that name a sub-resource and so are signed.
SUBRESOURCES = frozenset([
    'accelerate', 'acl', 'analytics', 'cors', 'delete', 'inventory',
    'lifecycle', 'location', 'logging', 'metrics', 'notification',
    'object-lock', 'partNumber', 'policy', 'replication',
    'requestPayment', 'response-cache-control',
    'response-content-disposition', 'response-content-encoding',
    'response-content-language', 'response-content-type',
    'response-expires', 'restore', 'select', 'select-type',
    'storageClass', 'tagging', 'torrent', 'uploadId', 'uploads',
    'versionId', 'versioning', 'versions', 'website'])


def parse_authorization(value):
    """(access key, signature) of 'AWS <access key>:<signature>'. The
    access key may hold ':' (ours are 'account:user'); a base64
    signature never does."""
    if not value.startswith('AWS '):
        raise S3Error('AuthorizationHeaderMalformed')
    access_key, colon, signature = value[4:].strip().rpartition(':')
    if not colon or not access_key or not signature:
        raise S3Error('AuthorizationHeaderMalformed',
                      'The authorization header is malformed; expecting '
                      '"AWS <AccessKeyId>:<Signature>".')
    return access_key, signature


def canonical_path(environ, host_bucket=None):
    """The path as sent (raw), with '/bucket' in front for a
    virtual-hosted request."""
    raw = environ.get('RAW_PATH_INFO')
    if raw is None:
        raw = quote(environ.get('PATH_INFO', '').encode('latin-1'),
                    safe='/~')
    raw = raw or '/'
    if host_bucket:
        raw = '/' + host_bucket + raw
    return raw


def canonical_subresources(query_string):
    """'?name=value&name' of the signed sub-resources, sorted by name
    ('' when there are none)."""
    found = []
    for piece in (query_string or '').split('&'):
        if not piece:
            continue
        [(name, value)] = query_pairs(piece)
        if name in SUBRESOURCES:
            found.append((name, '%s=%s' % (name, value) if '=' in piece
                          else name))
    if not found:
        return ''
    found.sort(key=lambda item: item[0])
    return '?' + '&'.join(text for _, text in found)


def canonical_amz_headers(environ, query=None):
    """'name:value\\n' for every x-amz-* header, sorted. For a presigned
    URL, x-amz-* parameters stand in for headers not sent (SDKs move
    them into the query when presigning)."""
    found = {}
    for key, value in environ.items():
        if key.startswith('HTTP_X_AMZ_'):
            name = key[5:].lower().replace('_', '-')
            found[name] = ' '.join(wsgi_text(value).split())
    for name, value in (query or {}).items():
        if name.lower().startswith('x-amz-') and name.lower() not in found:
            found[name.lower()] = ' '.join(value.split())
    return ''.join('%s:%s\n' % (n, found[n]) for n in sorted(found))


def string_to_sign(environ, date_line, host_bucket=None, query=None):
    def standard(name):
        value = header(environ, name)
        if value is None and query is not None:
            value = query.get(name)
        return (value or '').strip()
    return ''.join([
        environ.get('REQUEST_METHOD', 'GET'), '\n',
        standard('content-md5'), '\n',
        standard('content-type'), '\n',
        date_line, '\n',
        canonical_amz_headers(environ, query),
        canonical_path(environ, host_bucket),
        canonical_subresources(environ.get('QUERY_STRING', ''))])


def sign(secret, text):
    digest = hmac.new(secret.encode('utf-8'),
                      text.encode('utf-8', 'surrogateescape'),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode('ascii')


def header_date_line(environ, now):
    """The Date line of a header-signed request, after checking the
    request time is within 15 minutes of ``now``."""
    amz = header(environ, 'x-amz-date')
    if amz is not None:
        when = parse_http_date(amz) or parse_amz_date(amz.strip())
        line = ''
    else:
        line = (header(environ, 'date') or '').strip()
        when = parse_http_date(line)
    if when is None:
        raise S3Error('AccessDenied', 'AWS authentication requires a valid '
                      'Date or x-amz-date header')
    check_skew(when, now)
    return line


def query_date_line(query, now):
    """The Date line of a presigned URL: its Expires, which must be an
    epoch time not yet passed."""
    expires = query.get('Expires', '')
    try:
        deadline = int(expires)
    except ValueError:
        raise S3Error('AccessDenied', 'Query-string authentication '
                      'requires the Signature, Expires and AWSAccessKeyId '
                      'parameters')
    if now > deadline:
        raise S3Error(
            'AccessDenied', 'Request has expired',
            Expires=time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                  time.gmtime(deadline)),
            ServerTime=time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                     time.gmtime(now)))
    return expires


def parse_query(query):
    """(access key, signature) of a V2 presigned URL (a dict)."""
    if not query.get('AWSAccessKeyId') or not query.get('Signature') or \
            'Expires' not in query:
        raise S3Error('AccessDenied', 'Query-string authentication '
                      'requires the Signature, Expires and AWSAccessKeyId '
                      'parameters')
    return query['AWSAccessKeyId'], query['Signature']


def verify(environ, access_key, signature, secret, date_line,
           host_bucket=None, query=None):
    """SignatureDoesNotMatch unless ``signature`` is what ``secret``
    gives for this request."""
    sts = string_to_sign(environ, date_line, host_bucket, query)
    want = sign(secret, sts)
    if not hmac.compare_digest(want.encode('ascii'),
                               signature.encode('utf-8', 'surrogateescape')):
        raise S3Error('SignatureDoesNotMatch', AWSAccessKeyId=access_key,
                      StringToSign=sts, SignatureProvided=signature)

