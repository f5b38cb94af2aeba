"""S3 XML documents: building answers and reading request bodies.

Pure. Answers are built with ElementTree in the S3 namespace, so names
and values are always escaped. Request bodies are read defensively: a
size cap, no DOCTYPE (hence no entity expansion of any kind), and any
parse failure or unexpected shape is MalformedXML.
"""
import calendar
import time
import xml.etree.ElementTree as ET
from email.utils import parsedate_tz, mktime_tz
from urllib.parse import quote

from objstore.middleware.s3api.errors import S3Error

NS = 'http://s3.amazonaws.com/doc/2006-03-01/'
XSI = 'http://www.w3.org/2001/XMLSchema-instance'
MAX_BODY = 2 * 1024 * 1024
ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers'
AUTHENTICATED_USERS = \
    'http://acs.amazonaws.com/groups/global/AuthenticatedUsers'
PERMISSIONS = ('FULL_CONTROL', 'READ', 'WRITE', 'READ_ACP', 'WRITE_ACP')
MAX_DELETE_KEYS = 1000


# -- time ---------------------------------------------------------------

def iso8601(seconds):
    """'2009-10-12T17:50:30.000Z' for a Unix time (S3 keeps milliseconds)."""
    seconds = float(seconds)
    whole = int(seconds)
    millis = int(round((seconds - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(whole)) + \
        '.%03dZ' % millis


def listing_time(text):
    """S3's time for a Swift listing's ``last_modified``
    ('2024-01-02T03:04:05.123456')."""
    if not text:
        return iso8601(0)
    base, _, frac = text.rstrip('Z').partition('.')
    try:
        seconds = calendar.timegm(time.strptime(base, '%Y-%m-%dT%H:%M:%S'))
    except ValueError:
        return iso8601(0)
    frac = (frac + '000')[:3] if frac.isdigit() else '000'
    return iso8601(seconds)[:-4] + '%sZ' % frac


def http_date_to_iso(value):
    """ISO time of an HTTP date (Last-Modified), now when unreadable."""
    parsed = parsedate_tz(value or '')
    if parsed is None:
        return iso8601(time.time())
    return iso8601(mktime_tz(parsed))


# -- building -------------------------------------------------------------

def _root(tag):
    return ET.Element(tag, {'xmlns': NS})


def _add(parent, tag, text=None):
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def _bool(value):
    return 'true' if value else 'false'


def to_bytes(root):
    """The document as UTF-8 bytes with an XML declaration."""
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n' +
            ET.tostring(root, encoding='unicode').encode('utf-8'))


def _owner(parent, owner_id, display_name, tag='Owner'):
    owner = _add(parent, tag)
    _add(owner, 'ID', owner_id)
    _add(owner, 'DisplayName', display_name)
    return owner


def list_all_my_buckets(owner_id, display_name, buckets):
    """ListAllMyBucketsResult for [(name, iso creation time)]."""
    root = _root('ListAllMyBucketsResult')
    _owner(root, owner_id, display_name)
    container = _add(root, 'Buckets')
    for name, created in buckets:
        bucket = _add(container, 'Bucket')
        _add(bucket, 'Name', name)
        _add(bucket, 'CreationDate', created)
    return to_bytes(root)


def _enc(params, value):
    """A name as the client asked: URL-encoded with encoding-type=url."""
    if value is None:
        return None
    return quote(value, safe='/') if params.encoding_url else value


def list_bucket(bucket, params, objects, prefixes, truncated, next_marker,
                owner=None, next_token=None):
    """ListBucketResult (v1 or v2 by ``params.version``).

    ``objects``: [{'key', 'last_modified' (ISO), 'etag' (quoted), 'size',
    'storage_class'}]; ``prefixes``: [common prefix]; ``owner``: (id,
    name) shown in v1 always and in v2 with fetch-owner.
    """
    root = _root('ListBucketResult')
    _add(root, 'Name', bucket)
    _add(root, 'Prefix', _enc(params, params.prefix))
    if params.version == 2:
        if params.start_after is not None:
            _add(root, 'StartAfter', _enc(params, params.start_after))
        if params.continuation_token is not None:
            _add(root, 'ContinuationToken', params.continuation_token)
        if next_token is not None:
            _add(root, 'NextContinuationToken', next_token)
        _add(root, 'KeyCount', len(objects) + len(prefixes))
    else:
        _add(root, 'Marker', _enc(params, params.marker))
        if truncated and params.delimiter and next_marker is not None:
            _add(root, 'NextMarker', _enc(params, next_marker))
    _add(root, 'MaxKeys', params.max_keys)
    if params.delimiter:
        _add(root, 'Delimiter', _enc(params, params.delimiter))
    if params.encoding_url:
        _add(root, 'EncodingType', 'url')
    _add(root, 'IsTruncated', _bool(truncated))
    for obj in objects:
        contents = _add(root, 'Contents')
        _add(contents, 'Key', _enc(params, obj['key']))
        _add(contents, 'LastModified', obj['last_modified'])
        _add(contents, 'ETag', obj['etag'])
        _add(contents, 'Size', obj['size'])
        if owner is not None and (params.version != 2 or
                                  params.fetch_owner):
            _owner(contents, *owner)
        _add(contents, 'StorageClass', obj.get('storage_class', 'STANDARD'))
    for prefix in prefixes:
        common = _add(root, 'CommonPrefixes')
        _add(common, 'Prefix', _enc(params, prefix))
    return to_bytes(root)


def list_versions(bucket, params, objects, prefixes, truncated,
                  next_marker, owner):
    """ListVersionsResult: without versioning every object is its own
    only, latest version, VersionId ``null``."""
    root = _root('ListVersionsResult')
    _add(root, 'Name', bucket)
    _add(root, 'Prefix', _enc(params, params.prefix))
    _add(root, 'KeyMarker', _enc(params, params.marker))
    _add(root, 'VersionIdMarker', '')
    if truncated and next_marker is not None:
        _add(root, 'NextKeyMarker', _enc(params, next_marker))
        _add(root, 'NextVersionIdMarker', 'null')
    _add(root, 'MaxKeys', params.max_keys)
    if params.delimiter:
        _add(root, 'Delimiter', _enc(params, params.delimiter))
    if params.encoding_url:
        _add(root, 'EncodingType', 'url')
    _add(root, 'IsTruncated', _bool(truncated))
    for obj in objects:
        version = _add(root, 'Version')
        _add(version, 'Key', _enc(params, obj['key']))
        _add(version, 'VersionId', 'null')
        _add(version, 'IsLatest', 'true')
        _add(version, 'LastModified', obj['last_modified'])
        _add(version, 'ETag', obj['etag'])
        _add(version, 'Size', obj['size'])
        _owner(version, *owner)
        _add(version, 'StorageClass', obj.get('storage_class', 'STANDARD'))
    for prefix in prefixes:
        common = _add(root, 'CommonPrefixes')
        _add(common, 'Prefix', _enc(params, prefix))
    return to_bytes(root)


def location_constraint(location):
    """LocationConstraint: empty for us-east-1, as S3 answers."""
    root = _root('LocationConstraint')
    if location and location != 'us-east-1':
        root.text = location
    return to_bytes(root)


def versioning_configuration(status=None):
    """VersioningConfiguration: empty for a bucket never versioned."""
    root = _root('VersioningConfiguration')
    if status:
        _add(root, 'Status', status)
    return to_bytes(root)


def canned_grants(canned):
    """The grants a canned ACL stands for (besides the owner's
    FULL_CONTROL): [(group uri, permission)]."""
    return {
        'private': [],
        'public-read': [(ALL_USERS, 'READ')],
        'public-read-write': [(ALL_USERS, 'READ'), (ALL_USERS, 'WRITE')],
        'authenticated-read': [(AUTHENTICATED_USERS, 'READ')],
    }.get(canned, [])


def access_control_policy(owner_id, display_name, canned='private'):
    """AccessControlPolicy: the owner's FULL_CONTROL plus the canned
    ACL's group grants."""
    root = _root('AccessControlPolicy')
    root.set('xmlns:xsi', XSI)
    _owner(root, owner_id, display_name)
    grants = _add(root, 'AccessControlList')
    grant = _add(grants, 'Grant')
    grantee = _add(grant, 'Grantee')
    grantee.set('xsi:type', 'CanonicalUser')
    _add(grantee, 'ID', owner_id)
    _add(grantee, 'DisplayName', display_name)
    _add(grant, 'Permission', 'FULL_CONTROL')
    for uri, permission in canned_grants(canned):
        grant = _add(grants, 'Grant')
        grantee = _add(grant, 'Grantee')
        grantee.set('xsi:type', 'Group')
        _add(grantee, 'URI', uri)
        _add(grant, 'Permission', permission)
    return to_bytes(root)


def copy_object_result(etag, last_modified):
    root = _root('CopyObjectResult')
    _add(root, 'LastModified', last_modified)
    _add(root, 'ETag', etag)
    return to_bytes(root)


def delete_result(deleted, errors, quiet=False):
    """DeleteResult: [key] deleted (left out in quiet mode) and
    [(key, code, message)] errors (always shown)."""
    root = _root('DeleteResult')
    if not quiet:
        for key in deleted:
            item = _add(root, 'Deleted')
            _add(item, 'Key', key)
    for key, code, message in errors:
        item = _add(root, 'Error')
        _add(item, 'Key', key)
        _add(item, 'Code', code)
        _add(item, 'Message', message)
    return to_bytes(root)


# -- reading ----------------------------------------------------------

def _local(tag):
    return tag.rsplit('}', 1)[-1] if isinstance(tag, str) else ''


def parse(body, root_name, error='MalformedXML'):
    """The root Element of an XML request body named ``root_name``
    (namespace ignored; tags left namespaced), or S3Error(error)."""
    if len(body) > MAX_BODY:
        raise S3Error(error, 'Your XML document is too large.')
    # S3's bodies are UTF-8. Decoded here, and fed to expat as text (which
    # makes it ignore the declared encoding), no other encoding (UTF-16,
    # say) can hide a DOCTYPE or an entity declaration from this check.
    try:
        text = body.decode('utf-8')
    except UnicodeDecodeError:
        raise S3Error(error)
    upper = text.upper()
    if '<!DOCTYPE' in upper or '<!ENTITY' in upper:
        raise S3Error(error)
    try:
        parser = ET.XMLParser()
        parser.feed(text)
        root = parser.close()
    except (ET.ParseError, ValueError):
        raise S3Error(error)
    if _local(root.tag) != root_name:
        raise S3Error(error)
    return root


def children(element, name):
    return [c for c in element if _local(c.tag) == name]


def child_text(element, name, default=None):
    found = children(element, name)
    if not found:
        return default
    return found[0].text or ''


def parse_location(body):
    """The LocationConstraint of a CreateBucketConfiguration body ('' if
    none given)."""
    root = parse(body, 'CreateBucketConfiguration')
    return (child_text(root, 'LocationConstraint', '') or '').strip()


def parse_delete(body):
    """(quiet, [(key, version id or None)]) of a Delete body; 1 to 1000
    objects, each with a Key (MalformedXML otherwise)."""
    root = parse(body, 'Delete')
    quiet = (child_text(root, 'Quiet', 'false') or '').strip().lower() == \
        'true'
    objects = []
    for item in children(root, 'Object'):
        key = child_text(item, 'Key')
        if key is None or key == '':
            raise S3Error('MalformedXML')
        objects.append((key, child_text(item, 'VersionId')))
    if not objects or len(objects) > MAX_DELETE_KEYS:
        raise S3Error('MalformedXML')
    return quiet, objects


def parse_acl(body):
    """[(grantee kind, grantee value, permission)] of an
    AccessControlPolicy body. kind: 'CanonicalUser' (value = ID),
    'Group' (value = URI) or 'AmazonCustomerByEmail' (value = address).
    MalformedACLError when it does not read as a policy."""
    root = parse(body, 'AccessControlPolicy', error='MalformedACLError')
    lists = children(root, 'AccessControlList')
    if len(lists) != 1:
        raise S3Error('MalformedACLError')
    grants = []
    for grant in children(lists[0], 'Grant'):
        grantees = children(grant, 'Grantee')
        permission = (child_text(grant, 'Permission', '') or '').strip()
        if len(grantees) != 1 or permission not in PERMISSIONS:
            raise S3Error('MalformedACLError')
        grantee = grantees[0]
        kind = grantee.get('{%s}type' % XSI) or grantee.get('type')
        value = None
        if kind == 'Group':
            value = child_text(grantee, 'URI')
        elif kind == 'CanonicalUser':
            value = child_text(grantee, 'ID')
        elif kind == 'AmazonCustomerByEmail':
            value = child_text(grantee, 'EmailAddress')
        if value is None:
            raise S3Error('MalformedACLError')
        grants.append((kind, value.strip(), permission))
    return grants
