"""Reading an S3 request: which bucket, which key, which operation.

Pure functions over the request line and a few headers, so every rule
(bucket names, key lengths, listing parameters) is tested without a
server. Everything a client can get wrong raises S3Error with the code
S3 uses for it.
"""
import base64
import binascii
import collections
import re
from urllib.parse import parse_qsl, unquote

from objstore.middleware.s3api.errors import S3Error

MAX_KEY_BYTES = 1024
MAX_KEYS = 1000
DEFAULT_LOCATION = 'us-east-1'

# First path segments that belong to the Swift API on the same port.
SWIFT_ROOTS = frozenset(['v1', 'v1.0', 'auth', 'info', 'healthcheck'])

# Query parameters that name a sub-resource: they select the operation.
SUBRESOURCES = frozenset([
    'acl', 'location', 'uploads', 'uploadId', 'partNumber', 'versioning',
    'versions', 'delete', 'tagging', 'lifecycle', 'policy', 'cors',
    'logging', 'notification', 'replication', 'website', 'encryption',
    'requestPayment', 'accelerate', 'object-lock', 'retention',
    'legal-hold', 'restore', 'select', 'torrent', 'analytics',
    'inventory', 'metrics', 'ownershipControls', 'publicAccessBlock',
    'intelligent-tiering', 'attributes'])
# Sub-resources we answer; the rest get NotImplemented.
SUPPORTED = frozenset(['acl', 'location', 'uploads', 'uploadId',
                       'partNumber', 'versioning', 'versions', 'delete'])

_BUCKET = re.compile(r'[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]\Z')
_IPV4 = re.compile(r'\d{1,3}(\.\d{1,3}){3}\Z')

S3Request = collections.namedtuple(
    'S3Request', 'method bucket key query virtual_host')
ListParams = collections.namedtuple(
    'ListParams', 'prefix delimiter marker max_keys encoding_url '
                  'continuation_token start_after fetch_owner version')


def is_swift_path(path):
    """Whether a path belongs to the Swift API (``/v1/...``, ``/auth/``,
    ``/info``, ``/healthcheck``): a cheap look at the first segment."""
    first = path[1:].split('/', 1)[0]
    return first in SWIFT_ROOTS


def is_signed_the_s3_way(environ):
    """Whether a request carries an S3 signature (an ``AWS``/``AWS4``
    Authorization header, a V4 or V2 presigned query): then it is an S3
    request even on a path the Swift API also uses (buckets named
    ``info``, ``auth`` or ``v1.0``). Cheap: string tests only."""
    if environ.get('HTTP_AUTHORIZATION', '').startswith(
            ('AWS4-HMAC-SHA256 ', 'AWS ')):
        return True
    query = environ.get('QUERY_STRING', '')
    return 'X-Amz-Signature=' in query or (
        'AWSAccessKeyId=' in query and 'Signature=' in query)


def bucket_from_host(host, storage_domains):
    """The bucket a virtual-host-style Host names, or None.

    ``mybucket.s3.example.com`` with storage domain ``s3.example.com``
    names ``mybucket``; the port is ignored, case too (hosts are not
    case-sensitive). Bucket names may hold dots, so the whole part
    before the domain is the bucket.
    """
    if not host or not storage_domains:
        return None
    host = host.strip().lower()
    if host.startswith('['):
        return None
    host = host.rsplit(':', 1)[0] if ':' in host else host
    for domain in storage_domains:
        domain = domain.strip().lower().strip('.')
        if domain and host.endswith('.' + domain):
            bucket = host[:-len(domain) - 1]
            if bucket:
                return bucket
    return None


def validate_bucket(name):
    """S3's bucket naming rules (3-63 characters, lower-case letters,
    digits, dots and hyphens, starting and ending with a letter or digit,
    no ``..``, ``.-``/``-.``, not an IPv4 address); InvalidBucketName."""
    if not _BUCKET.match(name) or '..' in name or '.-' in name or \
            '-.' in name or _IPV4.match(name):
        raise S3Error('InvalidBucketName', resource=name, BucketName=name)
    return name


def validate_key(key):
    """A key of at most 1024 UTF-8 bytes; KeyTooLongError otherwise."""
    size = len(key.encode('utf-8'))
    if size > MAX_KEY_BYTES:
        raise S3Error('KeyTooLongError', Size=size,
                      MaxSizeAllowed=MAX_KEY_BYTES)
    return key


def parse_query(query_string):
    """{name: value} of a query string, blank values kept (``?acl``)."""
    try:
        pairs = parse_qsl(query_string or '', keep_blank_values=True,
                          encoding='utf-8', errors='strict')
    except UnicodeDecodeError:
        raise S3Error('InvalidArgument', 'The query string is not valid '
                      'UTF-8.')
    return dict(pairs)


def parse_request(method, path, query_string, host, storage_domains=()):
    """S3Request(method, bucket, key, query, virtual_host).

    ``path`` is the decoded request path (text). Path-style
    ``/bucket/key`` unless the Host names a bucket under one of the
    storage domains. bucket/key are None when absent (service / bucket
    requests).
    """
    query = parse_query(query_string)
    if '\x00' in path:
        raise S3Error('InvalidURI')
    bucket = bucket_from_host(host, storage_domains)
    virtual = bucket is not None
    rest = path[1:] if path.startswith('/') else path
    if virtual:
        key = rest or None
    else:
        bucket, _, key = rest.partition('/')
        bucket = bucket or None
        key = key or None
    if bucket is not None:
        validate_bucket(bucket)
    if key is not None:
        validate_key(key)
    unknown = [name for name in query
               if name in SUBRESOURCES and name not in SUPPORTED]
    if unknown:
        raise S3Error('NotImplemented', 'The %s sub-resource is not '
                      'implemented.' % unknown[0])
    return S3Request(method, bucket, key, query, virtual)


def _max_keys(query, name='max-keys'):
    """max-keys: an integer >= 0 (InvalidArgument), capped at 1000 as S3
    does (it never returns more, whatever was asked)."""
    text = query.get(name)
    if text is None or text == '':
        return MAX_KEYS
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or not text.strip().isdigit():
        raise S3Error('InvalidArgument', 'Provided max-keys not an integer '
                      'or within integer range', ArgumentName=name,
                      ArgumentValue=text)
    return min(value, MAX_KEYS)


def encode_token(name):
    """A V2 continuation token: opaque to clients, the last name here."""
    return base64.urlsafe_b64encode(name.encode('utf-8')).decode('ascii')


def decode_token(token):
    try:
        return base64.b64decode(token.encode('ascii'), altchars=b'-_',
                                validate=True).decode('utf-8')
    except (binascii.Error, ValueError, UnicodeError):
        raise S3Error('InvalidArgument', 'The continuation token provided '
                      'is incorrect', ArgumentName='continuation-token')


def listing_params(query):
    """ListParams for ListObjects (v1), ListObjectsV2 (``list-type=2``)
    and ListObjectVersions (``versions``)."""
    encoding = query.get('encoding-type')
    if encoding is not None and encoding != 'url':
        raise S3Error('InvalidArgument', 'Invalid Encoding Method '
                      'specified in Request', ArgumentName='encoding-type',
                      ArgumentValue=encoding)
    list_type = query.get('list-type')
    if list_type not in (None, '1', '2'):
        raise S3Error('InvalidArgument', 'Invalid List Type specified in '
                      'Request', ArgumentName='list-type',
                      ArgumentValue=list_type)
    version = 2 if list_type == '2' else 1
    if 'versions' in query:
        version = 'versions'
    token = query.get('continuation-token')
    start_after = query.get('start-after')
    if version == 2:
        marker = decode_token(token) if token is not None else \
            (start_after or '')
    elif version == 'versions':
        marker = query.get('key-marker', '')
    else:
        marker = query.get('marker', '')
    return ListParams(
        prefix=query.get('prefix', ''), delimiter=query.get('delimiter', ''),
        marker=marker, max_keys=_max_keys(query),
        encoding_url=encoding == 'url', continuation_token=token,
        start_after=start_after,
        fetch_owner=query.get('fetch-owner', '').lower() == 'true',
        version=version)


def parse_copy_source(value):
    """(bucket, key, version_id) of an ``x-amz-copy-source`` header:
    ``[/]bucket/key[?versionId=...]``, URL-encoded."""
    if not value:
        raise S3Error('InvalidArgument', 'Copy Source must mention the '
                      'source bucket and key: sourcebucket/sourcekey',
                      ArgumentName='x-amz-copy-source')
    path, _, query = value.partition('?')
    version = None
    if query:
        version = parse_query(query).get('versionId')
    try:
        path = unquote(path, errors='strict')
    except UnicodeDecodeError:
        path = ''
    bucket, _, key = path.lstrip('/').partition('/')
    if not bucket or not key:
        raise S3Error('InvalidArgument', 'Copy Source must mention the '
                      'source bucket and key: sourcebucket/sourcekey',
                      ArgumentName='x-amz-copy-source',
                      ArgumentValue=value)
    validate_bucket(bucket)
    validate_key(key)
    if version not in (None, 'null'):
        raise S3Error('NoSuchVersion', resource='/%s/%s' % (bucket, key),
                      Key=key, VersionId=version)
    return bucket, key, version


def decode_content_md5(value):
    """The hex md5 of a Content-MD5 header (base64 of 16 bytes), or
    InvalidDigest."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b''
    if len(raw) != 16:
        raise S3Error('InvalidDigest', **{'Content-MD5': value})
    return binascii.hexlify(raw).decode('ascii')


# Canned ACLs -> (X-Container-Read, X-Container-Write). Swift's ACLs
# cannot open writes to anonymous clients nor reads to "any
# authenticated user", so those parts of public-read-write and
# authenticated-read stay private (the canned name is kept and shown).
CANNED_ACLS = {
    'private': ('', ''),
    'public-read': ('.r:*,.rlistings', ''),
    'public-read-write': ('.r:*,.rlistings', ''),
    'authenticated-read': ('', ''),
}


def canned_acl(value):
    """The canned ACL named by x-amz-acl (default private)."""
    value = (value or 'private').strip()
    if value not in CANNED_ACLS:
        raise S3Error('InvalidArgument', ArgumentName='x-amz-acl',
                      ArgumentValue=value)
    return value
