"""Multipart uploads: the rules, without I/O.

Where an upload lives (the names of its marker and parts in the
bucket's segments container), what a client may send (part numbers,
upload ids, the CompleteMultipartUpload body, copy ranges), how a
completion is checked against the parts stored (InvalidPart,
InvalidPartOrder, EntityTooSmall), the ETag S3 gives the result, and
the XML answers. multipart.py does the talking to Swift.

Layout in ``<bucket>+segments`` (not a valid bucket name, so ListBuckets
never shows it): the upload's marker ``<key>/<uploadId>`` (an empty
object carrying the final object's Content-Type and metadata) and one
object per part, ``<key>/<uploadId>/<partNumber>``. An upload id is
``U`` and 32 hex digits, never all digits, so a listing row is a marker
when its last path component is an upload id and a part when it is a
number that follows one.
"""
import binascii
import collections
import hashlib
import re
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import quote

from objstore.middleware.s3api import xmlbody
from objstore.middleware.s3api.errors import S3Error

SEGMENTS_SUFFIX = '+segments'
MAX_PARTS = 10000
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_UPLOADS = 1000
UPLOAD_SYSMETA = 'X-Object-Sysmeta-S3api-Upload-Id'
ETAG_SYSMETA = 'X-Object-Sysmeta-S3api-Etag'
_UPLOAD_ID = re.compile(r'U[0-9a-f]{32}\Z')
_RANGE = re.compile(r'bytes=([0-9]+)-([0-9]+)\Z')
_DIGITS = re.compile(r'[0-9]+\Z')


def is_digits(text):
    """ASCII digits only (str.isdigit also takes '²' and '٣')."""
    return bool(_DIGITS.match(text or ''))

Upload = collections.namedtuple('Upload', 'key upload_id initiated')
Part = collections.namedtuple('Part', 'number etag size last_modified')


# -- names ------------------------------------------------------------------

def segments_container(bucket):
    return bucket + SEGMENTS_SUFFIX


def new_upload_id():
    return 'U' + uuid.uuid4().hex


def is_upload_id(text):
    return bool(_UPLOAD_ID.match(text or ''))


def check_upload_id(text):
    """An upload id of ours, or NoSuchUpload (nothing else is looked up)."""
    if not is_upload_id(text):
        raise S3Error('NoSuchUpload', UploadId=text or '')
    return text


def marker_name(key, upload_id):
    return '%s/%s' % (key, upload_id)


def part_name(key, upload_id, number):
    return '%s/%s/%d' % (key, upload_id, number)


def parse_row_name(name):
    """('marker', key, upload_id), ('part', key, upload_id, number) or
    None for a segments-container row name."""
    head, _, last = name.rpartition('/')
    if not head:
        return None
    if is_upload_id(last):
        return ('marker', head, last)
    if is_digits(last) and last[0] != '0':
        key, _, upload_id = head.rpartition('/')
        if key and is_upload_id(upload_id):
            return ('part', key, upload_id, int(last))
    return None


# -- request values -----------------------------------------------------------

def part_number(text):
    """A part number 1..10000 (InvalidArgument otherwise)."""
    value = None
    if is_digits(text):
        value = int(text)
    if value is None or not 1 <= value <= MAX_PARTS:
        raise S3Error('InvalidArgument', 'Part number must be an integer '
                      'between 1 and %d, inclusive' % MAX_PARTS,
                      ArgumentName='partNumber', ArgumentValue=text or '')
    return value


def bounded_int(query, name, default, maximum):
    """An integer query parameter >= 0, capped at ``maximum``."""
    text = query.get(name)
    if text is None or text == '':
        return default
    if not is_digits(text):
        raise S3Error('InvalidArgument', 'Provided %s not an integer or '
                      'within integer range' % name, ArgumentName=name,
                      ArgumentValue=text)
    return min(int(text), maximum)


def copy_range(text, size):
    """(first, last) of an x-amz-copy-source-range against a source of
    ``size`` bytes; None for no header."""
    if text is None:
        return None
    match = _RANGE.match(text.strip())
    if not match:
        raise S3Error('InvalidArgument', 'The x-amz-copy-source-range '
                      'value must be of the form bytes=first-last where '
                      'first and last are the zero-based offsets of the '
                      'first and last bytes to copy',
                      ArgumentName='x-amz-copy-source-range',
                      ArgumentValue=text)
    first, last = int(match.group(1)), int(match.group(2))
    if first > last or last >= size:
        raise S3Error('InvalidRange', 'The requested range is not '
                      'satisfiable', RangeRequested=text,
                      ActualObjectSize=size)
    return first, last


def parse_complete(body):
    """[(part number, etag without quotes)] of a CompleteMultipartUpload
    body, in the order given; MalformedXML when it does not read as one,
    InvalidPartOrder when the numbers are not ascending."""
    root = xmlbody.parse(body, 'CompleteMultipartUpload')
    parts = []
    for item in xmlbody.children(root, 'Part'):
        number = (xmlbody.child_text(item, 'PartNumber') or '').strip()
        etag = xmlbody.child_text(item, 'ETag')
        if not is_digits(number) or etag is None:
            raise S3Error('MalformedXML')
        parts.append((int(number), etag.strip().strip('"').lower()))
    if not parts or len(parts) > MAX_PARTS:
        raise S3Error('MalformedXML')
    for (before, _), (after, _) in zip(parts, parts[1:]):
        if after <= before:
            raise S3Error('InvalidPartOrder')
    return parts


def check_parts(wanted, stored, min_part_size=MIN_PART_SIZE):
    """The stored Parts a completion uses, in order.

    ``wanted``: parse_complete's list; ``stored``: {number: Part}.
    InvalidPart when one is missing or its ETag differs, EntityTooSmall
    when any but the last is under ``min_part_size``.
    """
    used = []
    for number, etag in wanted:
        part = stored.get(number)
        if part is None or part.etag.lower() != etag:
            raise S3Error('InvalidPart', PartNumber=number, ETag=etag)
        used.append(part)
    for part in used[:-1]:
        if part.size < min_part_size:
            raise S3Error('EntityTooSmall', ProposedSize=part.size,
                          MinSizeAllowed=min_part_size,
                          PartNumber=part.number)
    return used


def s3_etag(part_etags):
    """S3's ETag of a multipart object: the MD5 of the parts' binary
    MD5s, a dash and the number of parts (unquoted)."""
    digest = hashlib.md5(usedforsecurity=False)
    for etag in part_etags:
        digest.update(binascii.unhexlify(etag))
    return '%s-%d' % (digest.hexdigest(), len(part_etags))


def manifest(bucket, key, upload_id, parts):
    """The SLO manifest (a list for json.dumps) of the completed
    object's parts."""
    container = segments_container(bucket)
    return [{'path': '/%s/%s' % (container,
                                 part_name(key, upload_id, part.number)),
             'etag': part.etag, 'size_bytes': part.size} for part in parts]


def part_span(entries, number):
    """(first, last, count) of part ``number``'s bytes in a stored
    manifest's entries; None when there is no such part."""
    if not 1 <= number <= len(entries):
        return None
    first = sum(e['bytes'] for e in entries[:number - 1])
    size = entries[number - 1]['bytes']
    return first, first + size - 1, len(entries)


# -- conditions -----------------------------------------------------------

def _etags(value):
    return [v.strip().strip('"').lower() for v in value.split(',')
            if v.strip()]


def date_conditions(headers):
    """The conditions a Swift request is left to judge: the dates, less
    those an ETag condition overrides (RFC 7232 section 6: If-Match
    before If-Unmodified-Since, If-None-Match before If-Modified-Since).
    The ETag ones are evaluate_conditions' (against the S3 ETag)."""
    out = {name: headers[name] for name in ('If-Modified-Since',
                                            'If-Unmodified-Since')
           if name in headers}
    if 'If-Match' in headers:
        out.pop('If-Unmodified-Since', None)
    if 'If-None-Match' in headers:
        out.pop('If-Modified-Since', None)
    return out


def evaluate_conditions(headers, etag):
    """412, 304 or None for If-Match / If-None-Match against ``etag``
    (the S3 ETag, which is not Swift's for a multipart object)."""
    etag = (etag or '').strip().strip('"').lower()
    if_match = headers.get('If-Match')
    if if_match is not None:
        wanted = _etags(if_match)
        if '*' not in wanted and etag not in wanted:
            return 412
    if_none = headers.get('If-None-Match')
    if if_none is not None:
        wanted = _etags(if_none)
        if '*' in wanted or etag in wanted:
            return 304
    return None


# -- listings ---------------------------------------------------------------

def list_uploads(uploads, prefix='', delimiter='', key_marker='',
                 upload_id_marker='', max_uploads=MAX_UPLOADS):
    """(uploads, common prefixes, truncated) of a ListMultipartUploads
    page: ``uploads`` sorted by key then id."""
    out, prefixes, count = [], [], 0
    truncated = False
    for upload in sorted(uploads, key=lambda u: (u.key, u.upload_id)):
        key = upload.key
        if not key.startswith(prefix):
            continue
        if key < key_marker or (key == key_marker and (
                not upload_id_marker or upload.upload_id <=
                upload_id_marker)):
            continue
        common = None
        if delimiter:
            index = key.find(delimiter, len(prefix))
            if index >= 0:
                common = key[:index + len(delimiter)]
        if common is not None and prefixes and prefixes[-1] == common:
            continue
        if common is not None and common <= key_marker:
            continue
        if count >= max_uploads:
            truncated = True
            break
        count += 1
        if common is not None:
            prefixes.append(common)
        else:
            out.append(upload)
    return out, prefixes, truncated


def list_parts(parts, number_marker=0, max_parts=MAX_PARTS):
    """(parts, truncated) after ``number_marker``, in number order."""
    after = sorted((p for p in parts if p.number > number_marker),
                   key=lambda p: p.number)
    return after[:max_parts], len(after) > max_parts


# -- XML answers ----------------------------------------------------------

NS = xmlbody.NS


def _root(tag):
    return ET.Element(tag, {'xmlns': NS})


def _add(parent, tag, text=None):
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def _person(parent, tag, owner):
    node = _add(parent, tag)
    _add(node, 'ID', owner)
    _add(node, 'DisplayName', owner)


def _enc(encode, value):
    return quote(value, safe='/') if encode else value


def initiate_result(bucket, key, upload_id):
    root = _root('InitiateMultipartUploadResult')
    _add(root, 'Bucket', bucket)
    _add(root, 'Key', key)
    _add(root, 'UploadId', upload_id)
    return xmlbody.to_bytes(root)


def complete_result(location, bucket, key, etag):
    root = _root('CompleteMultipartUploadResult')
    _add(root, 'Location', location)
    _add(root, 'Bucket', bucket)
    _add(root, 'Key', key)
    _add(root, 'ETag', '"%s"' % etag)
    return xmlbody.to_bytes(root)


def copy_part_result(etag, last_modified):
    root = _root('CopyPartResult')
    _add(root, 'LastModified', last_modified)
    _add(root, 'ETag', '"%s"' % etag)
    return xmlbody.to_bytes(root)


def list_parts_result(bucket, key, upload_id, owner, parts, number_marker,
                      max_parts, truncated, encode=False):
    root = _root('ListPartsResult')
    _add(root, 'Bucket', bucket)
    _add(root, 'Key', _enc(encode, key))
    _add(root, 'UploadId', upload_id)
    _person(root, 'Initiator', owner)
    _person(root, 'Owner', owner)
    _add(root, 'StorageClass', 'STANDARD')
    _add(root, 'PartNumberMarker', number_marker)
    _add(root, 'NextPartNumberMarker', parts[-1].number if parts else 0)
    _add(root, 'MaxParts', max_parts)
    if encode:
        _add(root, 'EncodingType', 'url')
    _add(root, 'IsTruncated', 'true' if truncated else 'false')
    for part in parts:
        node = _add(root, 'Part')
        _add(node, 'PartNumber', part.number)
        _add(node, 'LastModified', part.last_modified)
        _add(node, 'ETag', '"%s"' % part.etag)
        _add(node, 'Size', part.size)
    return xmlbody.to_bytes(root)


def list_uploads_result(bucket, owner, uploads, prefixes, truncated, prefix,
                        delimiter, key_marker, upload_id_marker, max_uploads,
                        encode=False):
    root = _root('ListMultipartUploadsResult')
    _add(root, 'Bucket', bucket)
    _add(root, 'KeyMarker', _enc(encode, key_marker))
    _add(root, 'UploadIdMarker', upload_id_marker)
    last_key = last_id = ''
    if truncated:
        if uploads and (not prefixes or uploads[-1].key > prefixes[-1]):
            last_key, last_id = uploads[-1].key, uploads[-1].upload_id
        elif prefixes:
            last_key = prefixes[-1]
    _add(root, 'NextKeyMarker', _enc(encode, last_key))
    _add(root, 'NextUploadIdMarker', last_id)
    if delimiter:
        _add(root, 'Delimiter', _enc(encode, delimiter))
    _add(root, 'Prefix', _enc(encode, prefix))
    _add(root, 'MaxUploads', max_uploads)
    if encode:
        _add(root, 'EncodingType', 'url')
    _add(root, 'IsTruncated', 'true' if truncated else 'false')
    for upload in uploads:
        node = _add(root, 'Upload')
        _add(node, 'Key', _enc(encode, upload.key))
        _add(node, 'UploadId', upload.upload_id)
        _person(node, 'Initiator', owner)
        _person(node, 'Owner', owner)
        _add(node, 'StorageClass', 'STANDARD')
        _add(node, 'Initiated', upload.initiated)
    for common in prefixes:
        _add(_add(root, 'CommonPrefixes'), 'Prefix', _enc(encode, common))
    return xmlbody.to_bytes(root)
