"""Multipart uploads over Swift: ``handle(ctx) -> Answer``.

The router in middleware.py sends every request with ``?uploads``,
``?uploadId`` or ``?partNumber`` here. Parts are plain objects in the
bucket's segments container, the upload a marker object beside them
(multipart_rules.py has the layout and every rule); completing an upload
PUTs an SLO manifest of the parts at the key (``?multipart-manifest=put``),
so GET serves the parts as one object and a Swift client sees a static
large object. The S3 ETag (``<md5 of md5s>-<n>``) and the upload id are
kept in the manifest's system metadata; ``s3_etag`` and the helpers
below let the object paths in middleware.py show that ETag and delete
the parts with the object.
"""
import json
import logging

from objstore.middleware.s3api import swift, xmlbody
from objstore.middleware.s3api import multipart_rules as rules
from objstore.middleware.s3api.errors import S3Error

log = logging.getLogger('objstore.s3api')

LISTING_PAGE = 10000


def _answer(*args, **kwargs):
    from objstore.middleware.s3api.middleware import Answer
    return Answer(*args, **kwargs)


def _xml(body):
    return _answer(200, [('Content-Type', 'application/xml')], body)


def handle(ctx):
    method, query = ctx.req.method, ctx.query
    if ctx.bucket is None:
        raise S3Error('InvalidRequest', 'A bucket must be named.')
    if ctx.key is None:
        if 'uploads' in query and method == 'GET':
            return list_uploads(ctx)
        raise S3Error('MethodNotAllowed', resource=ctx.resource(),
                      Method=method, ResourceType='BUCKET')
    if 'uploadId' in query:
        upload_id = query['uploadId']
        if method == 'PUT' and 'partNumber' in query:
            number = rules.part_number(query['partNumber'])
            if 'x-amz-copy-source' in ctx.headers:
                return upload_part_copy(ctx, upload_id, number)
            return upload_part(ctx, upload_id, number)
        handler = {'GET': list_parts, 'POST': complete,
                   'DELETE': abort}.get(method)
    elif 'uploads' in query:
        handler = create if method == 'POST' else None
        upload_id = None
    else:
        number = rules.part_number(query.get('partNumber'))
        if method in ('GET', 'HEAD'):
            return get_part(ctx, number)
        raise S3Error('InvalidRequest', 'partNumber needs an uploadId '
                      'for %s.' % method)
    if handler is None:
        raise S3Error('MethodNotAllowed', resource=ctx.resource(),
                      Method=method, ResourceType='OBJECT')
    if upload_id is None:
        return handler(ctx)
    return handler(ctx, upload_id)


# -- the upload's marker ------------------------------------------------------

def _segments(ctx):
    return rules.segments_container(ctx.bucket)


def _no_upload(ctx, upload_id):
    """NoSuchBucket when the bucket is gone, else NoSuchUpload."""
    if not ctx.bucket_exists():
        raise S3Error('NoSuchBucket', resource='/' + ctx.bucket,
                      BucketName=ctx.bucket)
    raise S3Error('NoSuchUpload', resource=ctx.resource(),
                  UploadId=upload_id)


def head_marker(ctx, upload_id):
    """The upload marker's HEAD answer, or NoSuchUpload."""
    rules.check_upload_id(upload_id)
    resp = ctx.swift('HEAD', _segments(ctx),
                     rules.marker_name(ctx.key, upload_id))
    swift.close(resp)
    if resp.status_int == 404:
        _no_upload(ctx, upload_id)
    if not 200 <= resp.status_int < 300:
        ctx.fail(resp, key=ctx.key)
    if resp.headers.get(rules.UPLOAD_SYSMETA) != upload_id:
        _no_upload(ctx, upload_id)
    return resp


def create(ctx):
    """CreateMultipartUpload: the segments container (on demand) and the
    marker, which keeps the final object's Content-Type and metadata."""
    if 'x-amz-acl' in ctx.headers:
        from objstore.middleware.s3api import request as s3request
        if s3request.canned_acl(ctx.headers['x-amz-acl']) != 'private':
            raise S3Error('NotImplemented', 'Object ACLs other than '
                          'private are not implemented.')
    ctx.head_bucket()
    resp = ctx.swift('PUT', _segments(ctx))
    swift.close(resp)
    if resp.status_int not in (201, 202):
        ctx.fail(resp)
    upload_id = rules.new_upload_id()
    headers = swift.object_headers_from_s3(ctx.header_items())
    headers.setdefault('Content-Type', 'application/octet-stream')
    headers[rules.UPLOAD_SYSMETA] = upload_id
    resp = ctx.swift('PUT', _segments(ctx),
                     rules.marker_name(ctx.key, upload_id), headers=headers)
    swift.close(resp)
    if resp.status_int != 201:
        ctx.fail(resp, key=ctx.key)
    return _xml(rules.initiate_result(ctx.bucket, ctx.key, upload_id))


# -- parts ------------------------------------------------------------------

def _part_length(ctx):
    length = ctx.environ.get('CONTENT_LENGTH')
    if length in (None, ''):
        if 'chunked' in ctx.environ.get('HTTP_TRANSFER_ENCODING',
                                        '').lower():
            return None
        raise S3Error('MissingContentLength')
    if not rules.is_digits(length):
        raise S3Error('InvalidArgument', 'Invalid Content-Length',
                      ArgumentName='Content-Length', ArgumentValue=length)
    return int(length)


def upload_part(ctx, upload_id, number):
    length = _part_length(ctx)
    headers = {}
    md5 = ctx.headers.get('Content-MD5')
    if md5 is not None:
        from objstore.middleware.s3api import request as s3request
        headers['Etag'] = s3request.decode_content_md5(md5)
    head_marker(ctx, upload_id)
    resp = swift.put_verified(ctx, _segments(ctx),
                              rules.part_name(ctx.key, upload_id, number),
                              headers, ctx.environ['wsgi.input'], length)
    if resp.status_int != 201:
        ctx.fail(resp, key=ctx.key)
    return _answer(200, [('ETag', swift.quote_etag(
        resp.headers.get('Etag', '')))])


def upload_part_copy(ctx, upload_id, number):
    from objstore.middleware.s3api import request as s3request
    from objstore.middleware.s3api.middleware import (
        COPY_CONDITIONS, check_copy_conditions)
    src_bucket, src_key, _ = s3request.parse_copy_source(
        ctx.headers['x-amz-copy-source'])
    head_marker(ctx, upload_id)
    conditions = {name: ctx.headers[amz]
                  for amz, name in COPY_CONDITIONS.items()
                  if amz in ctx.headers}
    wanted = ctx.headers.get('x-amz-copy-source-range')
    headers = rules.date_conditions(conditions)
    if wanted is not None:
        head = ctx.swift('HEAD', src_bucket, src_key, headers=headers)
        swift.close(head)
        if head.status_int == 200:
            check_copy_conditions(head, conditions, src_bucket, src_key)
        if head.status_int in (304, 412):
            raise S3Error('PreconditionFailed',
                          resource='/%s/%s' % (src_bucket, src_key))
        if head.status_int != 200:
            ctx.fail(head, key=src_key, bucket=src_bucket)
        first, last = rules.copy_range(wanted, head.content_length or 0)
        headers['Range'] = 'bytes=%d-%d' % (first, last)
    src = ctx.swift('GET', src_bucket, src_key, headers=headers)
    if src.status_int in (200, 206):
        check_copy_conditions(src, conditions, src_bucket, src_key)
    if src.status_int in (304, 412):
        swift.close(src)
        raise S3Error('PreconditionFailed',
                      resource='/%s/%s' % (src_bucket, src_key))
    if src.status_int == 416:
        swift.close(src)
        raise S3Error('InvalidRange', resource='/%s/%s' % (src_bucket,
                                                           src_key))
    if src.status_int not in (200, 206):
        ctx.fail(src, key=src_key, bucket=src_bucket)
    reader = swift.IterReader(src.app_iter)
    try:
        resp = ctx.swift('PUT', _segments(ctx),
                         rules.part_name(ctx.key, upload_id, number),
                         body=reader, length=src.content_length)
    finally:
        reader.close()
    swift.close(resp)
    if resp.status_int != 201:
        ctx.fail(resp, key=ctx.key)
    return _xml(rules.copy_part_result(
        resp.headers.get('Etag', '').strip('"'),
        xmlbody.http_date_to_iso(resp.headers.get('Last-Modified'))))


def _rows(ctx, prefix, marker=''):
    """Every row of the segments container under ``prefix`` (JSON
    listing dicts), page after page; [] when the container is missing."""
    while True:
        resp = ctx.swift('GET', _segments(ctx), query={
            'format': 'json', 'prefix': prefix, 'marker': marker,
            'limit': LISTING_PAGE})
        if resp.status_int in (204, 404):
            swift.close(resp)
            return
        if resp.status_int != 200:
            ctx.fail(resp)
        try:
            page = json.loads(swift.read_body(resp) or b'[]')
        except ValueError:
            raise S3Error('InternalError')
        for row in page:
            yield row
        if len(page) < LISTING_PAGE:
            return
        marker = page[-1]['name']


def stored_parts(ctx, upload_id, key=None):
    """{number: Part} of an upload's parts."""
    key = ctx.key if key is None else key
    out = {}
    for row in _rows(ctx, rules.marker_name(key, upload_id) + '/'):
        parsed = rules.parse_row_name(row['name'])
        if parsed is None or parsed[0] != 'part' or parsed[1] != key or \
                parsed[2] != upload_id:
            continue
        out[parsed[3]] = rules.Part(
            parsed[3], row.get('hash', ''), row.get('bytes', 0),
            xmlbody.listing_time(row.get('last_modified')))
    return out


def list_parts(ctx, upload_id):
    marker = rules.bounded_int(ctx.query, 'part-number-marker', 0,
                               rules.MAX_PARTS)
    max_parts = rules.bounded_int(ctx.query, 'max-parts', 1000, 1000)
    encode = _encoding(ctx)
    head_marker(ctx, upload_id)
    parts, truncated = rules.list_parts(
        stored_parts(ctx, upload_id).values(), marker, max_parts)
    return _xml(rules.list_parts_result(
        ctx.bucket, ctx.key, upload_id, ctx.identity.user, parts, marker,
        max_parts, truncated, encode))


def _encoding(ctx):
    encoding = ctx.query.get('encoding-type')
    if encoding not in (None, 'url'):
        raise S3Error('InvalidArgument', 'Invalid Encoding Method '
                      'specified in Request', ArgumentName='encoding-type',
                      ArgumentValue=encoding)
    return encoding == 'url'


def list_uploads(ctx):
    query = ctx.query
    prefix = query.get('prefix', '')
    max_uploads = rules.bounded_int(query, 'max-uploads', rules.MAX_UPLOADS,
                                    rules.MAX_UPLOADS)
    key_marker = query.get('key-marker', '')
    id_marker = query.get('upload-id-marker', '') if key_marker else ''
    encode = _encoding(ctx)
    ctx.head_bucket()
    uploads = []
    for row in _rows(ctx, prefix, marker=key_marker):
        parsed = rules.parse_row_name(row['name'])
        if parsed is not None and parsed[0] == 'marker':
            uploads.append(rules.Upload(parsed[1], parsed[2],
                                        xmlbody.listing_time(
                                            row.get('last_modified'))))
    found, prefixes, truncated = rules.list_uploads(
        uploads, prefix, query.get('delimiter', ''), key_marker, id_marker,
        max_uploads)
    return _xml(rules.list_uploads_result(
        ctx.bucket, ctx.identity.user, found, prefixes, truncated, prefix,
        query.get('delimiter', ''), key_marker, id_marker, max_uploads,
        encode))


# -- complete and abort ---------------------------------------------------

def complete(ctx, upload_id):
    body = ctx.read_request_body()
    wanted = rules.parse_complete(body)
    marker = head_marker(ctx, upload_id)
    stored = stored_parts(ctx, upload_id)
    used = rules.check_parts(wanted, stored, ctx.mw.min_part_size)
    etag = rules.s3_etag([part.etag for part in used])
    headers = swift.object_headers_from_swift(marker.headers)
    headers[rules.ETAG_SYSMETA] = etag
    headers[rules.UPLOAD_SYSMETA] = upload_id
    previous = ctx.swift('HEAD', ctx.bucket, ctx.key)
    swift.close(previous)
    manifest = json.dumps(rules.manifest(ctx.bucket, ctx.key, upload_id,
                                         used)).encode('utf-8')
    resp = ctx.swift('PUT', ctx.bucket, ctx.key, headers=headers,
                     query={'multipart-manifest': 'put'}, body=manifest)
    if resp.status_int == 400:
        # a part changed under us (aborted or overwritten meanwhile)
        log.warning('s3api: manifest of %s/%s refused: %s', ctx.bucket,
                    ctx.key, swift.read_body(resp, 4096)[:300])
        raise S3Error('InvalidPart')
    swift.close(resp)
    if resp.status_int == 404:
        ctx.fail(resp)
    if resp.status_int != 201:
        ctx.fail(resp, key=ctx.key)
    used_numbers = {part.number for part in used}
    for number in stored:
        if number not in used_numbers:
            _delete(ctx, _segments(ctx),
                    rules.part_name(ctx.key, upload_id, number))
    _delete(ctx, _segments(ctx), rules.marker_name(ctx.key, upload_id))
    old = previous.headers.get(rules.UPLOAD_SYSMETA) \
        if previous.status_int == 200 else None
    if old and old != upload_id and rules.is_upload_id(old):
        _delete_upload_parts(ctx, ctx.key, old)
    location = '%s://%s/%s/%s' % (
        ctx.environ.get('wsgi.url_scheme', 'http'),
        ctx.environ.get('HTTP_HOST', 'localhost'), ctx.bucket, ctx.key)
    return _xml(rules.complete_result(location, ctx.bucket, ctx.key, etag))


def _delete(ctx, container, obj):
    resp = ctx.swift('DELETE', container, obj)
    swift.close(resp)
    if not (200 <= resp.status_int < 300 or resp.status_int == 404):
        log.warning('s3api: could not delete %s/%s: %s', container, obj,
                    resp.status)
    return resp.status_int


def _delete_upload_parts(ctx, key, upload_id):
    for number in stored_parts(ctx, upload_id, key):
        _delete(ctx, _segments(ctx), rules.part_name(key, upload_id, number))


def abort(ctx, upload_id):
    head_marker(ctx, upload_id)
    _delete_upload_parts(ctx, ctx.key, upload_id)
    _delete(ctx, _segments(ctx), rules.marker_name(ctx.key, upload_id))
    return _answer(204)


# -- the completed object -------------------------------------------------

def get_part(ctx, number):
    """GET/HEAD ?partNumber=N: that part's bytes of a multipart object
    (the whole object as part 1 of anything else)."""
    head = ctx.swift('HEAD', ctx.bucket, ctx.key)
    swift.close(head)
    if not 200 <= head.status_int < 300:
        ctx.fail(head, key=ctx.key)
    headers = {}
    count = None
    if head.headers.get(rules.ETAG_SYSMETA):
        resp = ctx.swift('GET', ctx.bucket, ctx.key,
                         query={'multipart-manifest': 'get'})
        if resp.status_int != 200:
            ctx.fail(resp, key=ctx.key)
        try:
            entries = json.loads(swift.read_body(resp))
            span = rules.part_span(entries, number)
        except (ValueError, KeyError, TypeError):
            raise S3Error('InternalError')
        if span is None:
            raise S3Error('InvalidRange', 'The requested partnumber is not '
                          'satisfiable', resource=ctx.resource())
        first, last, count = span
        headers['Range'] = 'bytes=%d-%d' % (first, last)
    elif number != 1:
        raise S3Error('InvalidRange', 'The requested partnumber is not '
                      'satisfiable', resource=ctx.resource())
    resp = ctx.swift(ctx.req.method, ctx.bucket, ctx.key, headers=headers)
    if resp.status_int not in (200, 206):
        ctx.fail(resp, key=ctx.key)
    out = swift.s3_object_headers(resp.headers)
    if count is not None:
        out.append(('x-amz-mp-parts-count', str(count)))
        if ctx.req.method == 'HEAD':
            # a HEAD's answer has no Content-Range: say the part's size
            out = [(k, v) for k, v in out if k.lower() != 'content-length']
            out += [('Content-Length', str(last - first + 1)),
                    ('Content-Range', 'bytes %d-%d/%s' % (
                        first, last, head.headers.get('Content-Length')))]
    status = 206 if count is not None else resp.status_int
    if ctx.req.method == 'HEAD':
        swift.close(resp)
        return _answer(status, out, [])
    return _answer(status, out, resp.app_iter)


def is_multipart(headers):
    """Whether a Swift object answer is a completed S3 multipart object."""
    return bool(headers.get(rules.ETAG_SYSMETA))


def delete_object(ctx, bucket, key):
    """Delete an object, and its parts when S3 multipart made it; the
    Swift status (2xx or 404 when done)."""
    head = ctx.swift('HEAD', bucket, key)
    swift.close(head)
    if head.status_int == 200 and is_multipart(head.headers):
        resp = ctx.swift('DELETE', bucket, key,
                         query={'multipart-manifest': 'delete'},
                         headers={'Accept': 'application/json'})
        status = resp.status_int
        body = swift.read_body(resp, 65536)
        if status == 200:
            try:
                result = json.loads(body)
            except ValueError:
                result = {}
            if result.get('Errors'):
                log.warning('s3api: deleting %s/%s left %s', bucket, key,
                            result['Errors'])
            if not result.get('Number Deleted') and \
                    result.get('Number Not Found'):
                return 404
            return 204
        return status
    resp = ctx.swift('DELETE', bucket, key)
    swift.close(resp)
    return resp.status_int


def listing_etag(ctx, bucket, item):
    """The S3 ETag (quoted) of a listing row of a large object: the S3
    one of a multipart object (from its HEAD), else the SLO's."""
    slo = (item.get('slo_etag') or '').strip('"')
    resp = ctx.swift('HEAD', bucket, item['name'])
    swift.close(resp)
    if resp.status_int == 200 and is_multipart(resp.headers):
        return swift.quote_etag(resp.headers[rules.ETAG_SYSMETA])
    return swift.quote_etag(slo or item.get('hash', ''))
