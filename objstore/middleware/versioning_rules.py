"""The rules of legacy object versioning, as pure functions.

versioned_writes.py does the requests; everything it decides -- how a
container's versioning headers become system metadata and back, what an
archived version is called, which headers an archived copy keeps, what
a delete marker looks like and how a failed sub-request is answered --
is here, so it is tested without servers.

Two modes, one per container (Swift's legacy versioning):

* ``stack`` (``X-Versions-Location``): an overwrite archives the current
  object first; a DELETE brings the newest archived version back (and
  removes it from the archive), or deletes the object when there is none.
* ``history`` (``X-History-Location``): overwrites and deletes both
  archive the current object; a DELETE also leaves a zero-byte delete
  marker in the archive and removes the object.
"""
from urllib.parse import quote, unquote

from objstore.common.timestamp import Timestamp

STACK, HISTORY = 'stack', 'history'
# client header -> mode, and back
CLIENT_HEADERS = {STACK: 'X-Versions-Location', HISTORY: 'X-History-Location'}
SYSMETA_LOCATION = 'X-Container-Sysmeta-Versions-Location'
SYSMETA_MODE = 'X-Container-Sysmeta-Versions-Mode'
DELETE_MARKER_TYPE = 'application/x-deleted;swift_versions_deleted=1'
MAX_CONTAINER_NAME = 256

# headers of the current object an archived copy keeps (besides user and
# system metadata): what describes its content and what makes it a large
# object or a link; never its timestamp or expiry
KEPT_HEADERS = ('content-type', 'content-encoding', 'content-disposition',
                'content-language', 'cache-control', 'expires',
                'x-robots-tag', 'x-object-manifest', 'x-static-large-object',
                'x-symlink-target', 'x-symlink-target-account',
                'x-symlink-target-etag', 'etag')
KEPT_PREFIXES = ('x-object-meta-', 'x-object-sysmeta-')


class RuleError(Exception):
    """A request the rules refuse: ``status`` and a one-line reason."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _location_value(value):
    """The container a location header names, percent-encoded as it is
    stored; RuleError for a name that cannot be a container."""
    try:
        name = unquote(value.strip().encode('latin-1').decode('utf-8'),
                       errors='strict')
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise RuleError(400, 'Versions location is not valid UTF-8')
    if '/' in name:
        raise RuleError(412, 'Container name cannot contain slashes')
    if len(name.encode('utf-8')) > MAX_CONTAINER_NAME:
        raise RuleError(400, 'Versions location container name is longer '
                        'than %d bytes' % MAX_CONTAINER_NAME)
    return quote(name)


def container_update(headers):
    """The system metadata a container PUT/POST sets from the client's
    versioning headers (``headers``: a case-insensitive mapping).

    Returns None when the request does not touch versioning, else a dict
    for both sysmeta headers ('' removes). An empty location or an
    ``X-Remove-*`` header turns versioning off; setting both modes is a
    400, as Swift documents.
    """
    given = {}
    for mode, name in CLIENT_HEADERS.items():
        value = headers.get(name)
        if value is None and headers.get('X-Remove-' + name[2:]) is not None:
            value = ''
        if value is not None:
            given[mode] = value.strip()
    if not given:
        return None
    if len(given) == 2 and all(given.values()):
        raise RuleError(400, 'Only one of X-Versions-Location or '
                        'X-History-Location may be specified')
    for mode in (STACK, HISTORY):
        if given.get(mode):
            return {SYSMETA_LOCATION: _location_value(given[mode]),
                    SYSMETA_MODE: mode}
    return {SYSMETA_LOCATION: '', SYSMETA_MODE: ''}


def container_versioning(headers):
    """(location, mode) a container's answer headers record, location
    unquoted; (None, None) when the container is not versioned."""
    location = headers.get(SYSMETA_LOCATION)
    if not location:
        return None, None
    mode = headers.get(SYSMETA_MODE) or STACK
    if mode not in CLIENT_HEADERS:
        mode = STACK
    return unquote(location), mode


def client_view(headers):
    """{header: value} a client sees for the container's versioning:
    the location under the header of its mode, as it was set."""
    location = headers.get(SYSMETA_LOCATION)
    if not location:
        return {}
    _, mode = container_versioning(headers)
    return {CLIENT_HEADERS[mode]: location}


def version_prefix(obj):
    """The archive names of ``obj`` start with this: its length in
    characters as three hex digits, the name, a slash."""
    return '%03x%s/' % (len(obj), obj)


def version_name(obj, timestamp):
    """Archive name of the version of ``obj`` written at ``timestamp``
    (a Timestamp, str or float): sorts by time within the prefix."""
    if not isinstance(timestamp, Timestamp):
        timestamp = Timestamp(timestamp)
    return version_prefix(obj) + timestamp.internal


def object_timestamp(headers):
    """When the current object was written, from its answer headers
    (X-Timestamp, else Last-Modified); None when neither says."""
    value = headers.get('X-Timestamp')
    if value:
        try:
            return Timestamp(value)
        except ValueError:
            pass
    modified = headers.get('Last-Modified')
    if modified:
        from email.utils import parsedate_to_datetime
        try:
            return Timestamp(parsedate_to_datetime(modified).timestamp())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return None


def is_delete_marker(row):
    """Whether a listing row (dict) of the archive is a delete marker."""
    content_type = (row.get('content_type') or '').replace(' ', '').lower()
    return content_type == DELETE_MARKER_TYPE


def archived_headers(pairs):
    """{name: value} of a stored object's answer headers (``pairs``) that
    its archived copy (or restored version) is written with."""
    out = {}
    for key, value in pairs:
        lkey = key.lower()
        if lkey in KEPT_HEADERS or lkey.startswith(KEPT_PREFIXES):
            if lkey == 'etag':
                value = value.strip('"')
            out[key] = value
    return out


def failure_status(status):
    """How a client is answered when archiving or restoring failed with
    ``status``: a denial as it is, any other client error (a missing
    archive container, say) 412, a server error 503 -- the object is
    left as it was in every case."""
    if status in (401, 403):
        return status
    if 400 <= status < 500:
        return 412
    return 503


def delete_plan(rows, object_exists):
    """What a stack-mode DELETE does, given the archive's rows for the
    object newest first (``rows``, any iterable: read only as far as
    needed) and ``object_exists()`` (asked only when it matters).

    Returns (restore, marker): the rows whose versions to bring back, in
    order of preference (the first one still readable wins; a lazy
    iterator), and the delete-marker row to remove afterwards (or None).
    Nothing to restore and no marker: the DELETE goes through as it is.
    A newest delete marker (left by history mode) means the object was
    deleted: if it is back, the DELETE just removes it; if not, the
    version before the marker comes back and the marker goes away too.
    """
    rows = iter(rows)
    newest = next(rows, None)
    if newest is None:
        return iter(()), None
    if not is_delete_marker(newest):
        return _until_marker(newest, rows), None
    if object_exists():
        return iter(()), None
    return _until_marker(None, rows), newest


def _until_marker(first, rows):
    if first is not None:
        yield first
    for row in rows:
        if is_delete_marker(row):
            return
        yield row
