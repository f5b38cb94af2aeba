"""Server-side copy: where from, where to, and which headers carry over.

``PUT`` with ``X-Copy-From: <container>/<object>`` (optionally
``X-Copy-From-Account``) and ``COPY`` with ``Destination:
<container>/<object>`` (optionally ``Destination-Account``) both copy an
object without the client moving its bytes: the proxy reads the source
and streams it into the new object. Parsing and the metadata rules are
pure functions here; obj.py does the I/O.
"""
import io
from urllib.parse import quote, unquote_to_bytes

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


# environ keys a sub-request keeps: who the client is and how auth
# decides, never the body or the parsed request of the original
_KEPT = ('REMOTE_USER', 'HTTP_REFERER', 'REMOTE_ADDR', 'REMOTE_PORT',
         'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'SCRIPT_NAME',
         'wsgi.version',
         'wsgi.url_scheme', 'wsgi.errors', 'wsgi.multithread',
         'wsgi.multiprocess', 'wsgi.run_once')
_DROPPED = ('objstore.acl', 'objstore.account_owner', 'swift_owner')


def sub_environ(environ, method, account, container, obj,
                same_account=True, headers=None):
    """A WSGI environ for the proxy's own request to another object.

    Auth state rides along (the auth filter's authorize callback judges
    the new path); the owner flag only when the account is the same.
    ``headers`` are the sub-request's HTTP_* and CONTENT_* keys.
    """
    env = {k: v for k, v in environ.items()
           if k in _KEPT or (k.startswith(('objstore.', 'swift.')) and
                             k not in _DROPPED)}
    if same_account:
        for key in ('objstore.account_owner', 'swift_owner'):
            if key in environ:
                env[key] = environ[key]
    raw = '/v1/%s/%s/%s' % (quote(account), quote(container), quote(obj))
    env.update({
        'REQUEST_METHOD': method, 'RAW_PATH_INFO': raw,
        'PATH_INFO': unquote_to_bytes(raw).decode('latin-1'),
        'QUERY_STRING': '', 'CONTENT_LENGTH': '0',
        'wsgi.input': io.BytesIO(b'')})
    env.update(headers or {})
    return env
