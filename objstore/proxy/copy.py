"""Server-side copy: where from, where to, and which headers carry over.

``PUT`` with ``X-Copy-From: <container>/<object>`` (optionally
``X-Copy-From-Account``) and ``COPY`` with ``Destination:
<container>/<object>`` (optionally ``Destination-Account``) both copy an
object without the client moving its bytes: the proxy reads the source
and streams it into the new object. Parsing, the metadata rules and the
plan of the two sub-requests (what the source GET asks for, what the
destination PUT must carry to store the same kind of object) are pure
functions here; the copy middleware (objstore/middleware/copy.py) does
the I/O.
"""
from urllib.parse import parse_qs, quote, unquote_to_bytes

from objstore.common import constraints
from objstore.common.config import config_true
from objstore.common.http import HTTPError, split_path

# headers of the source that describe its content and carry over
CONTENT_HEADERS = ('content-type', 'content-encoding', 'content-disposition',
                   'content-language', 'cache-control', 'expires',
                   'x-robots-tag')


def _decode(value, header):
    try:
        return unquote_to_bytes(value.encode('latin-1')).decode('utf-8')
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise HTTPError(400, '%s is not valid UTF-8' % header)


def parse_target(value, header):
    """(container, object) named by an X-Copy-From/Destination value.

    The value is percent-encoded '<container>/<object>', with or without
    a leading slash; anything else is a 412, as Swift answers.
    """
    text = _decode(value.strip(), header)
    if not text.startswith('/'):
        text = '/' + text
    try:
        container, obj = split_path(text, 2, 2, rest_with_last=True)
    except HTTPError:
        container = obj = None
    if not container or not obj:
        raise HTTPError(412, '%s header must be of the form <container '
                        'name>/<object name>' % header)
    return container, obj


def parse_account(value, header):
    """The account an X-Copy-From-Account/Destination-Account names."""
    text = _decode(value.strip(), header)
    if not text or '/' in text:
        raise HTTPError(412, '%s must name one account' % header)
    return text


def copied_headers(source_pairs, request_pairs, fresh_metadata,
                   request_has_type):
    """The new object's headers from the source's and the request's.

    The source's user metadata (unless ``fresh_metadata``) and content
    headers carry over; the request's headers win over them, its
    Content-Type only when the client really sent one.
    """
    out = {}
    for key, value in source_pairs:
        lkey = key.lower()
        if lkey in CONTENT_HEADERS or (
                not fresh_metadata and lkey.startswith('x-object-meta-')):
            out[lkey] = (key, value)
    for key, value in request_pairs:
        lkey = key.lower()
        if lkey == 'content-type' and not request_has_type:
            continue
        out[lkey] = (key, value)
    return dict(out.values())


def copied_from(container, obj):
    """X-Copied-From: the source as '<container>/<object>', quoted."""
    return quote('%s/%s' % (container, obj))


# -- planning the two sub-requests -------------------------------------------

# request headers that judge the source (Swift sends the copy request's
# own to the source GET): a failed condition answers the copy request
SOURCE_HEADERS = ('HTTP_RANGE', 'HTTP_IF_MATCH', 'HTTP_IF_NONE_MATCH',
                  'HTTP_IF_MODIFIED_SINCE', 'HTTP_IF_UNMODIFIED_SINCE')
# request headers the copy consumes; the destination PUT never sees them
CONSUMED = frozenset(SOURCE_HEADERS + (
    'HTTP_X_COPY_FROM', 'HTTP_X_COPY_FROM_ACCOUNT', 'HTTP_DESTINATION',
    'HTTP_DESTINATION_ACCOUNT', 'HTTP_X_FRESH_METADATA', 'HTTP_ETAG',
    'HTTP_TRANSFER_ENCODING', 'HTTP_EXPECT', 'HTTP_HOST', 'HTTP_X_NEWEST',
    'CONTENT_LENGTH'))
SYMLINK_PUT_HEADERS = ('X-Symlink-Target', 'X-Symlink-Target-Account',
                       'X-Symlink-Target-Etag')


def copy_modes(query_string):
    """(manifest_get, symlink_get): whether the copy request asked for
    the source as stored (``multipart-manifest=get``, ``symlink=get``)
    rather than as a GET shapes it (assembled, link followed)."""
    params = parse_qs(query_string or '', keep_blank_values=True)
    return (params.get('multipart-manifest', [''])[0].lower() == 'get',
            params.get('symlink', [''])[0].lower() == 'get')


def source_query(manifest_get, symlink_get):
    """The source GET's query string: an SLO manifest in the form a PUT
    takes (``format=raw``), a link as itself."""
    parts = []
    if manifest_get:
        parts.append('multipart-manifest=get&format=raw')
    if symlink_get:
        parts.append('symlink=get')
    return '&'.join(parts)


def source_environ_headers(environ):
    """The copy request's headers that go to the source GET."""
    headers = {key: environ[key] for key in SOURCE_HEADERS
               if environ.get(key)}
    headers['HTTP_X_NEWEST'] = 'true'
    return headers


def header_name(environ_key):
    """'HTTP_X_OBJECT_META_A_B' -> 'X-Object-Meta-A-B'."""
    key = environ_key[5:] if environ_key.startswith('HTTP_') else environ_key
    return '-'.join(word.capitalize() for word in key.split('_'))


def request_pairs(environ):
    """[(name, value)] of the copy request's headers that the new object
    may take (its metadata, content headers, X-Delete-*...)."""
    return [(header_name(key), value) for key, value in environ.items()
            if (key.startswith('HTTP_') or key == 'CONTENT_TYPE') and
            key not in CONSUMED]


def source_length(value):
    """The source's length from its Content-Length; 413 when it has none
    (a body of unknown size) or more than one object may hold."""
    try:
        length = int(value)
    except (TypeError, ValueError):
        length = None
    if length is None or length < 0:
        raise HTTPError(413, 'the source object has no known length')
    if length > constraints.MAX_FILE_SIZE:
        raise HTTPError(413, 'the source object is larger than %d bytes'
                        % constraints.MAX_FILE_SIZE)
    return length


def sink_plan(status, source_headers, manifest_get, symlink_get):
    """(query, headers) the destination PUT needs, beyond the copied
    metadata, to store what the source answer is.

    * an SLO manifest read as stored (``multipart-manifest=get``) goes
      back in as a manifest PUT, which checks its segments again;
    * a DLO manifest read as stored keeps its X-Object-Manifest;
    * a link read as itself (``symlink=get``) becomes a new link;
    * otherwise the bytes are copied, and a whole (200) plain object's
      ETag goes along so the object servers verify what they store (a
      large object's ETag is no MD5 of its bytes, a range's neither).
    """
    lower = {k.lower(): v for k, v in source_headers}
    slo = config_true(lower.get('x-static-large-object', ''))
    dlo = lower.get('x-object-manifest')
    if manifest_get and slo:
        return 'multipart-manifest=put', {}
    headers = {}
    if manifest_get and dlo is not None:
        headers['X-Object-Manifest'] = dlo
    if symlink_get and lower.get('x-symlink-target'):
        for name in SYMLINK_PUT_HEADERS:
            if lower.get(name.lower()):
                headers[name] = lower[name.lower()]
        return '', headers
    if status == 200 and not slo and (dlo is None or manifest_get) and \
            lower.get('etag'):
        headers['Etag'] = lower['etag'].strip('"')
    return '', headers
