"""s3api: the S3 API in front of the Swift pipeline.

An S3 request (anything that is not the Swift API: no X-Auth-Token, not
under /v1/, /auth/, /info, /healthcheck) is authenticated (auth.py:
Signature V4/V2), handed to tempauth as its user
(``environ['objstore.s3.user']``), and translated into Swift requests to
the rest of the pipeline: bucket = container, key = object, in the
account of the user who signed. Every answer is S3's: XML bodies, S3
error codes, quoted ETags; never a Swift-style body.

    [filter:s3api]
    use = objstore.middleware.s3api.middleware
    # virtual-host-style buckets: <bucket>.<storage_domain>
    # storage_domain = localhost, s3.127.0.0.1.nip.io
    # location = us-east-1
    # registry_account = .s3_buckets
    # extra credentials besides tempauth's users:
    # s3_key_<ACCESSKEY> = <secret> <account:user>

Buckets live in the signer's own account; their names are one
cluster-wide namespace kept by the bucket registry (registry.py, in the
reserved account ``registry_account``, default ``.s3_buckets``; set it
empty for names unique per account only): CreateBucket claims the name
first and answers BucketAlreadyExists when another account holds it;
DeleteBucket frees it. A request on a bucket another account owns
answers AccessDenied, not NoSuchBucket (the registry is asked only
when the caller's account has no such bucket). Creating a bucket you
already have answers 200 in us-east-1 and BucketAlreadyOwnedByYou
elsewhere, as S3 does.
Containers made through the Swift API are not registered until their
owner creates them as buckets through S3 (which claims the name if it is
free); until then they work for their owner as before. Anonymous S3
requests are refused (AccessDenied): without a signature there is no
account to look the bucket up in.

Multipart uploads (``?uploads``, ``?uploadId``, ``?partNumber``) are
routed to ``multipart.handle(ctx)``; ``min_part_size`` (bytes, default
5 MiB as S3) is the smallest part but the last a completion accepts.
"""
import hashlib
import json
import logging
import uuid
import zlib
import base64
from http import HTTPStatus

from objstore.common import info
from objstore.common.crc import crc32c
from objstore.common.http import HTTPError, Request, request_path
from objstore.middleware import tempauth
from objstore.middleware.s3api import request as s3request
from objstore.middleware.s3api import multipart, multipart_rules, registry
from objstore.middleware.s3api import swift, xmlbody
from objstore.middleware.s3api.errors import S3Error

log = logging.getLogger('objstore.s3api')

S3_USER = tempauth.AUTHENTICATED_USER   # the user tempauth acts for
IDENTITY = 'objstore.s3.identity'
ACL_SYSMETA = 'X-Container-Sysmeta-S3api-Acl'
LOCATION_SYSMETA = 'X-Container-Sysmeta-S3api-Location'
OWNER_SYSMETA = 'X-Container-Sysmeta-S3api-Owner'
SWIFT_LISTING_LIMIT = 10000
MAX_XML_BODY = xmlbody.MAX_BODY
RESPONSE_OVERRIDES = {
    'response-content-type': 'Content-Type',
    'response-content-language': 'Content-Language',
    'response-expires': 'Expires',
    'response-cache-control': 'Cache-Control',
    'response-content-disposition': 'Content-Disposition',
    'response-content-encoding': 'Content-Encoding',
}
COPY_CONDITIONS = {
    'x-amz-copy-source-if-match': 'If-Match',
    'x-amz-copy-source-if-none-match': 'If-None-Match',
    'x-amz-copy-source-if-modified-since': 'If-Modified-Since',
    'x-amz-copy-source-if-unmodified-since': 'If-Unmodified-Since',
}


class Answer:
    """An S3 answer: status, headers, body (bytes or an iterable)."""

    def __init__(self, status, headers=(), body=b''):
        self.status = status
        self.headers = list(headers)
        self.body = body


def xml_answer(body, status=200, headers=()):
    return Answer(status, [('Content-Type', 'application/xml')] +
                  list(headers), body)


def _status_line(status):
    try:
        return '%d %s' % (status, HTTPStatus(status).phrase)
    except ValueError:
        return '%d Unknown' % status


class Context:
    """One S3 request being served: what was asked (``req``, an
    S3Request), by whom (``identity``), and sub-requests to Swift in
    that user's account. Handlers (here and in multipart.py) get one."""

    def __init__(self, mw, environ, req, identity):
        self.mw = mw
        self.app = mw.app
        self.environ = environ
        self.req = req
        self.identity = identity
        self.account = identity.account
        self.query = req.query
        self.bucket = req.bucket
        self.key = req.key
        self.webob = Request(environ)
        self.headers = self.webob.headers

    @property
    def owner(self):
        return (self.identity.user, self.identity.user)

    def header_items(self):
        """The client's headers as [(name, value)], as sent when the
        server kept them (eventlet's headers_raw)."""
        raw = self.environ.get('headers_raw')
        if raw is not None:
            return list(raw)
        return list(self.headers.items())

    def swift(self, method, container=None, obj=None, headers=None,
              query=None, body=b'', length=None, account=None):
        """A Swift sub-request on the client's behalf (WebOb Response)."""
        path = swift.swift_path(account or self.account, container, obj)
        env = swift.sub_environ(self.environ, method, path, headers, query,
                                body, length)
        return swift.call(self.app, env)

    def read_request_body(self, limit=MAX_XML_BODY):
        """The (small) request body: XML documents. Bodies over ``limit``
        are MalformedXML (S3 caps its XML bodies too)."""
        length = self.environ.get('CONTENT_LENGTH')
        stream = self.environ['wsgi.input']
        try:
            length = int(length) if length not in (None, '') else None
        except ValueError:
            raise S3Error('InvalidArgument', 'Invalid Content-Length',
                          ArgumentName='Content-Length')
        if length is not None and length > limit:
            raise S3Error('MalformedXML', 'Your XML document is too large.')
        data = stream.read(length if length is not None else limit + 1)
        if len(data) > limit:
            raise S3Error('MalformedXML', 'Your XML document is too large.')
        if length is not None and len(data) < length:
            raise S3Error('IncompleteBody')
        return data

    def resource(self, key=None):
        key = self.key if key is None else key
        return '/%s/%s' % (self.bucket, key) if key else '/%s' % self.bucket

    def fail(self, resp, key=None, bucket=None):
        """Raise the S3 error for a Swift error answer ``resp``. On a 404
        for an object, whether the bucket or the key is missing is asked
        with a HEAD of the bucket."""
        bucket = bucket or self.bucket
        status = resp.status_int
        swift.close(resp)
        resource = '/%s/%s' % (bucket, key) if key else '/%s' % bucket
        if status in (401, 403):
            raise S3Error('AccessDenied', resource=resource)
        if status == 404:
            if key is not None and self.bucket_exists(bucket):
                raise S3Error('NoSuchKey', resource=resource, Key=key)
            raise S3Error('NoSuchBucket', resource='/%s' % bucket,
                          BucketName=bucket)
        mapped = {412: 'PreconditionFailed', 416: 'InvalidRange',
                  413: 'EntityTooLarge', 422: 'BadDigest',
                  411: 'MissingContentLength', 503: 'ServiceUnavailable',
                  499: 'RequestTimeout', 408: 'RequestTimeout'}
        if status in mapped:
            raise S3Error(mapped[status], resource=resource)
        if status == 400:
            raise S3Error('InvalidArgument', 'The request was refused: %s'
                          % _first_line(resp), resource=resource)
        log.error('s3api: unexpected %s from Swift for %s %s', resp.status,
                  self.req.method, resource)
        raise S3Error('InternalError', resource=resource)

    def bucket_exists(self, bucket=None):
        resp = self.swift('HEAD', bucket or self.bucket)
        swift.close(resp)
        if resp.status_int in (401, 403):
            raise S3Error('AccessDenied', resource='/%s' % (bucket or
                                                              self.bucket))
        return 200 <= resp.status_int < 300

    def head_bucket(self):
        """The bucket's Swift HEAD answer, or the S3 error."""
        resp = self.swift('HEAD', self.bucket)
        swift.close(resp)
        if not 200 <= resp.status_int < 300:
            self.fail(resp)
        return resp


def _first_line(resp):
    try:
        text = swift.read_body(resp, 1024).decode('utf-8', 'replace')
    except Exception:
        return 'bad request'
    return (text.strip().splitlines() or ['bad request'])[0][:200]


class S3ApiMiddleware:
    def __init__(self, app, conf=None, credentials=None, authenticate=None):
        conf = conf or {}
        self.app = app
        self.storage_domains = tuple(
            d for d in conf.get('storage_domain', '').replace(',', ' ')
            .split() if d)
        self.location = conf.get('location', '').strip() or \
            s3request.DEFAULT_LOCATION
        self.credentials = credentials
        self.min_part_size = _min_part_size(conf)
        self.registry = registry.from_conf(app, conf)
        if authenticate is None:
            from objstore.middleware.s3api import auth
            authenticate = auth.authenticate
        self.authenticate = authenticate

    # -- is it S3? ---------------------------------------------------

    def is_s3(self, environ):
        """Cheap: a Swift token or a Swift path is not S3 (unless the Host
        names a bucket or the request is signed the S3 way)."""
        if 'HTTP_X_AUTH_TOKEN' in environ or \
                'HTTP_X_STORAGE_TOKEN' in environ:
            return False
        if self.storage_domains and s3request.bucket_from_host(
                environ.get('HTTP_HOST'), self.storage_domains):
            return True
        return not s3request.is_swift_path(environ.get('PATH_INFO', '')) \
            or s3request.is_signed_the_s3_way(environ)

    def __call__(self, environ, start_response):
        if not self.is_s3(environ):
            return self.app(environ, start_response)
        return self.handle(environ, start_response)

    # -- one S3 request ---------------------------------------------

    def handle(self, environ, start_response):
        request_id = 'tx' + uuid.uuid4().hex
        method = environ.get('REQUEST_METHOD', 'GET')
        try:
            answer = self.serve(environ)
        except S3Error as err:
            status, headers, body = err.response_parts(
                request_id, head=method == 'HEAD')
            headers.append(('x-amz-id-2', request_id))
            start_response(status, headers)
            return body
        except Exception:
            log.exception('s3api: %s %s failed', method,
                          environ.get('PATH_INFO'))
            err = S3Error('InternalError')
            status, headers, body = err.response_parts(
                request_id, head=method == 'HEAD')
            start_response(status, headers)
            return body
        headers = answer.headers + [('x-amz-request-id', request_id),
                                    ('x-amz-id-2', request_id)]
        body = answer.body
        if isinstance(body, (bytes, bytearray)):
            if not any(k.lower() == 'content-length' for k, _ in headers):
                headers.append(('Content-Length', str(len(body))))
            body = [] if method == 'HEAD' else [bytes(body)]
        start_response(_status_line(answer.status), headers)
        return body

    def serve(self, environ):
        host_bucket = s3request.bucket_from_host(
            environ.get('HTTP_HOST'), self.storage_domains)
        identity = self.authenticate(environ, self.credentials,
                                     location=self.location,
                                     host_bucket=host_bucket)
        if identity is None:
            raise S3Error('AccessDenied', 'Anonymous S3 requests are not '
                          'supported: sign the request.')
        environ[S3_USER] = identity.user
        environ[IDENTITY] = identity
        for key in ('HTTP_X_AUTH_TOKEN', 'HTTP_X_STORAGE_TOKEN'):
            environ.pop(key, None)
        try:
            path = request_path(Request(environ))
        except HTTPError:
            raise S3Error('InvalidURI')
        req = s3request.parse_request(
            environ.get('REQUEST_METHOD', 'GET'), path,
            environ.get('QUERY_STRING', ''), environ.get('HTTP_HOST'),
            self.storage_domains)
        ctx = Context(self, environ, req, identity)
        try:
            return self.route(ctx)
        except S3Error as err:
            if err.code == 'NoSuchBucket':
                raise self.missing_bucket(ctx, err)
            raise

    def missing_bucket(self, ctx, err):
        """The error for a bucket the caller's account lacks: AccessDenied
        when the registry says another account owns the name (as S3
        answers for other people's buckets), else ``err`` as it was.
        Only this not-found path pays for the registry lookup."""
        bucket = err.extra.get('BucketName')
        if self.registry is None or not bucket:
            return err
        if self.registry.owned_by_another(ctx.environ, bucket, ctx.account):
            return S3Error('AccessDenied', resource='/' + bucket)
        return err

    def route(self, ctx):
        req, query = ctx.req, ctx.query
        method = req.method
        if 'uploads' in query or 'uploadId' in query or \
                'partNumber' in query:
            return self.multipart(ctx)
        if req.bucket is None:
            if method in ('GET', 'HEAD'):
                return self.list_buckets(ctx)
            raise S3Error('MethodNotAllowed', resource='/', Method=method,
                          ResourceType='SERVICE')
        if req.key is None:
            handler = self.bucket_handler(method, query)
            kind = 'BUCKET'
        else:
            handler = self.object_handler(ctx, method, query)
            kind = 'OBJECT'
        if handler is None:
            raise S3Error('MethodNotAllowed', resource=ctx.resource(),
                          Method=method, ResourceType=kind)
        return handler(ctx)

    def bucket_handler(self, method, query):
        if method in ('GET', 'HEAD') and 'acl' in query:
            return self.get_bucket_acl
        if method == 'GET':
            for name, handler in (('location', self.get_bucket_location),
                                  ('versioning', self.get_versioning),
                                  ('versions', self.list_objects)):
                if name in query:
                    return handler
            return self.list_objects
        if method == 'PUT':
            if 'acl' in query:
                return self.put_bucket_acl
            if 'versioning' in query:
                return self.put_versioning
            return self.create_bucket
        return {'HEAD': self.head_bucket, 'DELETE': self.delete_bucket,
                'POST': self.delete_objects if 'delete' in query else None
                }.get(method)

    def object_handler(self, ctx, method, query):
        if 'acl' in query:
            return {'GET': self.get_object_acl, 'HEAD': self.get_object_acl,
                    'PUT': self.put_object_acl}.get(method)
        if method == 'PUT' and 'x-amz-copy-source' in ctx.headers:
            return self.copy_object
        return {'GET': self.get_object, 'HEAD': self.get_object,
                'PUT': self.put_object,
                'DELETE': self.delete_object}.get(method)

    def multipart(self, ctx):
        """Multipart uploads: ``multipart.handle(ctx) -> Answer``."""
        return multipart.handle(ctx)

    # -- service -----------------------------------------------------

    def _listing(self, ctx, container=None, query=None):
        """One page of a Swift JSON listing ([] for a missing account)."""
        params = dict(query or {}, format='json')
        resp = ctx.swift('GET', container, query=params)
        if resp.status_int == 404 and container is None:
            swift.close(resp)
            return []
        if resp.status_int == 204:
            swift.close(resp)
            return []
        if resp.status_int != 200:
            ctx.fail(resp)
        try:
            return json.loads(swift.read_body(resp) or b'[]')
        except ValueError:
            log.error('s3api: unreadable listing of %s', container)
            raise S3Error('InternalError')

    def list_buckets(self, ctx):
        buckets = []
        marker = ''
        while True:
            page = self._listing(ctx, query={'marker': marker,
                                             'limit': SWIFT_LISTING_LIMIT})
            for item in page:
                name = item.get('name', '')
                try:
                    s3request.validate_bucket(name)
                except S3Error:
                    continue    # not an S3 bucket (e.g. segments)
                buckets.append((name, xmlbody.listing_time(
                    item.get('last_modified'))))
            if len(page) < SWIFT_LISTING_LIMIT:
                break
            marker = page[-1]['name']
        return xml_answer(xmlbody.list_all_my_buckets(
            ctx.identity.user, ctx.identity.user, buckets))

    # -- buckets -----------------------------------------------------

    def _acl_headers(self, canned):
        read, write = s3request.CANNED_ACLS[canned]
        return {'X-Container-Read': read, 'X-Container-Write': write,
                ACL_SYSMETA: canned}

    def _check_no_grants(self, ctx):
        if any(name.lower().startswith('x-amz-grant-')
               for name in ctx.headers):
            raise S3Error('NotImplemented', 'x-amz-grant-* headers are not '
                          'implemented; use a canned ACL (x-amz-acl).')

    def create_bucket(self, ctx):
        self._check_no_grants(ctx)
        canned = s3request.canned_acl(ctx.headers.get('x-amz-acl'))
        body = ctx.read_request_body()
        location = ''
        if body.strip():
            location = xmlbody.parse_location(body)
        if location and location != self.location:
            raise S3Error('InvalidLocationConstraint',
                          LocationConstraint=location)
        claimed = self.registry is not None and self.registry.claim(
            ctx.environ, ctx.bucket, ctx.account, ctx.identity.user)
        made = []
        try:
            return self._create_container(ctx, canned, location, made)
        finally:
            if claimed and not made:
                self._release(ctx)

    def _release(self, ctx):
        """Free the caller's claim on the bucket's name (best effort: a
        name left claimed stays the caller's, who may create it again)."""
        try:
            self.registry.release(ctx.environ, ctx.bucket, ctx.account)
        except Exception:
            log.exception('s3api: could not release bucket name %s',
                          ctx.bucket)

    def _create_container(self, ctx, canned, location, made):
        """CreateBucket's container; ``made`` gets True once the bucket
        exists (already, or made now)."""
        if ctx.bucket_exists():
            made.append(True)
            if self.location != 'us-east-1':
                raise S3Error('BucketAlreadyOwnedByYou',
                              resource=ctx.resource(),
                              BucketName=ctx.bucket)
            if 'x-amz-acl' in ctx.headers:
                self._post_bucket(ctx, self._acl_headers(canned))
            return Answer(200, [('Location', '/' + ctx.bucket)])
        headers = self._acl_headers(canned)
        headers[LOCATION_SYSMETA] = location or self.location
        headers[OWNER_SYSMETA] = ctx.identity.user
        resp = ctx.swift('PUT', ctx.bucket, headers=headers)
        swift.close(resp)
        if resp.status_int in (201, 202):
            made.append(True)
        if resp.status_int == 202 and self.location != 'us-east-1':
            raise S3Error('BucketAlreadyOwnedByYou', resource=ctx.resource(),
                          BucketName=ctx.bucket)
        if resp.status_int not in (201, 202):
            ctx.fail(resp)
        return Answer(200, [('Location', '/' + ctx.bucket)])

    def _post_bucket(self, ctx, headers):
        resp = ctx.swift('POST', ctx.bucket, headers=headers)
        swift.close(resp)
        if not 200 <= resp.status_int < 300:
            ctx.fail(resp)

    def delete_bucket(self, ctx):
        resp = ctx.swift('DELETE', ctx.bucket)
        swift.close(resp)
        if resp.status_int == 409:
            raise S3Error('BucketNotEmpty', resource=ctx.resource(),
                          BucketName=ctx.bucket)
        if self.registry is not None and (
                200 <= resp.status_int < 300 or resp.status_int == 404):
            # the name is free again (a 404: a claim whose container went
            # away through the Swift API is freed too)
            self._release(ctx)
        if not 200 <= resp.status_int < 300:
            ctx.fail(resp)
        # the multipart segments container, when empty (best effort)
        swift.close(ctx.swift('DELETE', multipart_rules.segments_container(
            ctx.bucket)))
        return Answer(204)

    def head_bucket(self, ctx):
        resp = ctx.head_bucket()
        region = resp.headers.get(LOCATION_SYSMETA) or self.location
        return Answer(200, [('x-amz-bucket-region', region),
                            ('Content-Type', 'application/xml')])

    def get_bucket_location(self, ctx):
        resp = ctx.head_bucket()
        return xml_answer(xmlbody.location_constraint(
            resp.headers.get(LOCATION_SYSMETA) or self.location))

    def get_versioning(self, ctx):
        ctx.head_bucket()
        return xml_answer(xmlbody.versioning_configuration())

    def put_versioning(self, ctx):
        raise S3Error('NotImplemented', 'Bucket versioning is not '
                      'implemented.')

    def _owner_of(self, ctx, resp):
        owner = resp.headers.get(OWNER_SYSMETA) or ctx.identity.user
        return owner, owner

    def get_bucket_acl(self, ctx):
        resp = ctx.head_bucket()
        canned = resp.headers.get(ACL_SYSMETA)
        if canned not in s3request.CANNED_ACLS:
            canned = 'public-read' if '.r:*' in resp.headers.get(
                'X-Container-Read', '') else 'private'
        return xml_answer(xmlbody.access_control_policy(
            *self._owner_of(ctx, resp), canned=canned))

    def _canned_from_request(self, ctx, owner):
        """The canned ACL a PutBucketAcl/PutObjectAcl asks for: x-amz-acl
        or an AccessControlPolicy body that amounts to a canned ACL."""
        self._check_no_grants(ctx)
        body = ctx.read_request_body()
        header = ctx.headers.get('x-amz-acl')
        if header is not None and body.strip():
            raise S3Error('InvalidRequest', 'Specify either x-amz-acl or '
                          'an AccessControlPolicy body, not both.')
        if header is not None:
            return s3request.canned_acl(header)
        if not body.strip():
            raise S3Error('MalformedACLError')
        grants = xmlbody.parse_acl(body)
        groups = set()
        for kind, value, permission in grants:
            if kind == 'CanonicalUser' and value == owner and \
                    permission == 'FULL_CONTROL':
                continue
            if kind == 'Group':
                groups.add((value, permission))
                continue
            raise S3Error('NotImplemented', 'Only the owner and the '
                          'AllUsers/AuthenticatedUsers groups can be '
                          'granted access.')
        for canned in s3request.CANNED_ACLS:
            if set(xmlbody.canned_grants(canned)) == groups:
                return canned
        raise S3Error('NotImplemented', 'That combination of grants is not '
                      'implemented; use a canned ACL.')

    def put_bucket_acl(self, ctx):
        resp = ctx.head_bucket()
        canned = self._canned_from_request(ctx, self._owner_of(ctx,
                                                              resp)[0])
        self._post_bucket(ctx, self._acl_headers(canned))
        return Answer(200)

    # -- listings ------------------------------------------------------

    def list_objects(self, ctx):
        params = s3request.listing_params(ctx.query)
        want = params.max_keys
        query = {'limit': want + 2, 'prefix': params.prefix,
                 'marker': params.marker}
        if params.delimiter:
            query['delimiter'] = params.delimiter
        items = self._listing(ctx, ctx.bucket, query)
        if params.delimiter and params.marker:
            # a marker that is a common prefix was that prefix's last
            # showing: skip it (Swift lists it again after the marker)
            items = [i for i in items if i.get('subdir') != params.marker]
        truncated = len(items) > want
        items = items[:want]
        objects, prefixes = [], []
        for item in items:
            if 'subdir' in item:
                prefixes.append(item['subdir'])
            else:
                entry = _listing_entry(item)
                if 'slo_etag' in item:
                    entry['etag'] = multipart.listing_etag(ctx, ctx.bucket,
                                                           item)
                objects.append(entry)
        last = None
        if items:
            last = items[-1].get('subdir') or items[-1].get('name')
        if params.version == 'versions':
            body = xmlbody.list_versions(ctx.bucket, params, objects,
                                         prefixes, truncated, last,
                                         ctx.owner)
        else:
            token = s3request.encode_token(last) \
                if truncated and params.version == 2 and last else None
            body = xmlbody.list_bucket(ctx.bucket, params, objects,
                                       prefixes, truncated, last,
                                       owner=ctx.owner, next_token=token)
        return xml_answer(body)

    # -- objects -------------------------------------------------------

    def get_object(self, ctx):
        # If-Match/If-None-Match are judged here against the S3 ETag,
        # which is not Swift's for a multipart object
        headers = multipart_rules.date_conditions(ctx.headers)
        if 'Range' in ctx.headers:
            headers['Range'] = ctx.headers['Range']
        if ctx.query.get('versionId') not in (None, 'null'):
            raise S3Error('NoSuchVersion', resource=ctx.resource(),
                          Key=ctx.key, VersionId=ctx.query['versionId'])
        resp = ctx.swift(ctx.req.method, ctx.bucket, ctx.key,
                         headers=headers)
        status = resp.status_int
        if status == 304:
            swift.close(resp)
            return Answer(304, [h for h in swift.s3_object_headers(
                resp.headers) if h[0].lower() in ('etag', 'last-modified')])
        if status not in (200, 206):
            if status == 416:
                swift.close(resp)
                raise S3Error('InvalidRange', resource=ctx.resource(),
                              RangeRequested=ctx.headers.get('Range', ''))
            ctx.fail(resp, key=ctx.key)
        verdict = multipart_rules.evaluate_conditions(
            ctx.headers, swift.s3_etag(resp.headers))
        if verdict is not None:
            swift.close(resp)
            if verdict == 412:
                raise S3Error('PreconditionFailed', resource=ctx.resource(),
                              Condition='If-Match')
            return Answer(304, [h for h in swift.s3_object_headers(
                resp.headers) if h[0].lower() in ('etag', 'last-modified')])
        out = swift.s3_object_headers(resp.headers)
        overrides = {RESPONSE_OVERRIDES[name]: value
                     for name, value in ctx.query.items()
                     if name in RESPONSE_OVERRIDES}
        if overrides:
            lower = {k.lower() for k in overrides}
            out = [(k, v) for k, v in out if k.lower() not in lower]
            out += list(overrides.items())
        if ctx.req.method == 'HEAD':
            swift.close(resp)
            return Answer(status, out, [])
        return Answer(status, out, resp.app_iter)

    def _content_length(self, ctx):
        length = ctx.environ.get('CONTENT_LENGTH')
        if length in (None, ''):
            if 'chunked' in ctx.environ.get('HTTP_TRANSFER_ENCODING',
                                            '').lower():
                return None
            raise S3Error('MissingContentLength')
        try:
            value = int(length)
        except ValueError:
            value = -1
        if value < 0:
            raise S3Error('InvalidArgument', 'Invalid Content-Length',
                          ArgumentName='Content-Length',
                          ArgumentValue=length)
        return value

    def put_object(self, ctx):
        length = self._content_length(ctx)
        headers = swift.object_headers_from_s3(ctx.header_items())
        md5 = ctx.headers.get('Content-MD5')
        if md5 is not None:
            headers['Etag'] = s3request.decode_content_md5(md5)
        if 'x-amz-acl' in ctx.headers:
            if s3request.canned_acl(ctx.headers['x-amz-acl']) != 'private':
                raise S3Error('NotImplemented', 'Object ACLs other than '
                              'private are not implemented.')
        resp = swift.put_verified(ctx, ctx.bucket, ctx.key, headers,
                                  ctx.environ['wsgi.input'], length)
        if resp.status_int == 404:
            ctx.fail(resp)          # the bucket is missing
        if resp.status_int != 201:
            ctx.fail(resp, key=ctx.key)
        return Answer(200, [('ETag', swift.quote_etag(
            resp.headers.get('Etag', '')))])

    def delete_object(self, ctx):
        if ctx.query.get('versionId') not in (None, 'null'):
            raise S3Error('NoSuchVersion', resource=ctx.resource(),
                          Key=ctx.key, VersionId=ctx.query['versionId'])
        status = multipart.delete_object(ctx, ctx.bucket, ctx.key)
        if status == 404:
            if not ctx.bucket_exists():
                raise S3Error('NoSuchBucket', resource='/' + ctx.bucket,
                              BucketName=ctx.bucket)
        elif status in (401, 403):
            raise S3Error('AccessDenied', resource=ctx.resource())
        elif not 200 <= status < 300:
            log.error('s3api: DELETE %s: %s', ctx.resource(), status)
            raise S3Error('InternalError', resource=ctx.resource())
        return Answer(204)

    def get_object_acl(self, ctx):
        resp = ctx.swift('HEAD', ctx.bucket, ctx.key)
        swift.close(resp)
        if not 200 <= resp.status_int < 300:
            ctx.fail(resp, key=ctx.key)
        owner = ctx.identity.user
        return xml_answer(xmlbody.access_control_policy(owner, owner))

    def put_object_acl(self, ctx):
        resp = ctx.swift('HEAD', ctx.bucket, ctx.key)
        swift.close(resp)
        if not 200 <= resp.status_int < 300:
            ctx.fail(resp, key=ctx.key)
        canned = self._canned_from_request(ctx, ctx.identity.user)
        if canned != 'private':
            raise S3Error('NotImplemented', 'Object ACLs other than private '
                          'are not implemented.')
        return Answer(200)

    def delete_objects(self, ctx):
        body = ctx.read_request_body()
        check_body_digest(ctx.headers, body)
        quiet, objects = xmlbody.parse_delete(body)
        ctx.head_bucket()
        deleted, errors = [], []
        for key, version in objects:
            if version not in (None, '', 'null'):
                errors.append((key, 'NoSuchVersion',
                               'The specified version does not exist.'))
                continue
            try:
                s3request.validate_key(key)
            except S3Error as err:
                errors.append((key, err.code, err.message))
                continue
            status = multipart.delete_object(ctx, ctx.bucket, key)
            if 200 <= status < 300 or status == 404:
                deleted.append(key)
            elif status in (401, 403):
                errors.append((key, 'AccessDenied', 'Access Denied'))
            else:
                log.error('s3api: multi-delete of %s/%s: %s', ctx.bucket,
                          key, status)
                errors.append((key, 'InternalError', 'We encountered an '
                               'internal error. Please try again.'))
        return xml_answer(xmlbody.delete_result(deleted, errors, quiet))

    def copy_object(self, ctx):
        src_bucket, src_key, _ = s3request.parse_copy_source(
            ctx.headers['x-amz-copy-source'])
        directive = ctx.headers.get('x-amz-metadata-directive',
                                    'COPY').strip().upper()
        if directive not in ('COPY', 'REPLACE'):
            raise S3Error('InvalidArgument', 'Unknown metadata directive.',
                          ArgumentName='x-amz-metadata-directive',
                          ArgumentValue=directive)
        if (src_bucket, src_key) == (ctx.bucket, ctx.key) and \
                directive == 'COPY':
            raise S3Error('InvalidRequest', 'This copy request is illegal '
                          'because it is trying to copy an object to itself '
                          'without changing the object\'s metadata, storage '
                          'class, website redirect location or encryption '
                          'attributes.')
        conditions = {swift_name: ctx.headers[amz]
                      for amz, swift_name in COPY_CONDITIONS.items()
                      if amz in ctx.headers}
        src = ctx.swift('GET', src_bucket, src_key,
                        headers=multipart_rules.date_conditions(conditions))
        if src.status_int == 200:
            check_copy_conditions(src, conditions, src_bucket, src_key)
        if src.status_int in (304, 412):
            swift.close(src)
            raise S3Error('PreconditionFailed',
                          resource='/%s/%s' % (src_bucket, src_key))
        if src.status_int != 200:
            ctx.fail(src, key=src_key, bucket=src_bucket)
        if directive == 'COPY':
            headers = swift.object_headers_from_swift(src.headers)
        else:
            headers = swift.object_headers_from_s3(ctx.header_items())
        etag = swift.whole_object_md5(src.headers)
        if etag is not None:
            headers['Etag'] = etag      # the copy checks what it read
        reader = swift.IterReader(src.app_iter)
        try:
            resp = ctx.swift('PUT', ctx.bucket, ctx.key, headers=headers,
                             body=reader, length=src.content_length)
        finally:
            reader.close()
        swift.close(resp)
        if resp.status_int == 404:
            ctx.fail(resp)
        if resp.status_int != 201:
            ctx.fail(resp, key=ctx.key)
        return xml_answer(xmlbody.copy_object_result(
            swift.quote_etag(resp.headers.get('Etag', '')),
            xmlbody.http_date_to_iso(resp.headers.get('Last-Modified'))))


def check_copy_conditions(src, conditions, bucket, key):
    """PreconditionFailed (the source answer closed) when a copy's
    x-amz-copy-source-if-(none-)match fails against the source's S3
    ETag; S3 answers 412 for both."""
    if multipart_rules.evaluate_conditions(
            conditions, swift.s3_etag(src.headers)) is not None:
        swift.close(src)
        raise S3Error('PreconditionFailed', resource='/%s/%s' % (bucket, key))


def _listing_entry(item):
    """An S3 listing entry of a Swift JSON listing object."""
    size = item.get('bytes', 0)
    content_type = item.get('content_type', '')
    for param in content_type.split(';')[1:]:
        name, _, value = param.strip().partition('=')
        if name == 'swift_bytes' and value.isdigit():
            size = int(value)
    return {'key': item['name'], 'size': size,
            'etag': swift.quote_etag(item.get('hash', '')),
            'last_modified': xmlbody.listing_time(item.get('last_modified'))}


def check_body_digest(headers, body):
    """DeleteObjects needs Content-MD5 (or an x-amz-checksum-* header,
    which newer SDKs send instead) and it must match the body."""
    md5 = headers.get('Content-MD5')
    if md5 is not None:
        expected = s3request.decode_content_md5(md5)
        if hashlib.md5(body).hexdigest() != expected:
            raise S3Error('BadDigest')
        return
    checks = {
        'x-amz-checksum-crc32': lambda b: zlib.crc32(b).to_bytes(4, 'big'),
        'x-amz-checksum-crc32c': lambda b: crc32c(b).to_bytes(4, 'big'),
        'x-amz-checksum-sha1': lambda b: hashlib.sha1(b).digest(),
        'x-amz-checksum-sha256': lambda b: hashlib.sha256(b).digest(),
    }
    for name, digest in checks.items():
        if name in headers:
            if base64.b64encode(digest(body)).decode('ascii') != \
                    headers[name].strip():
                raise S3Error('BadDigest', 'The %s you specified did not '
                              'match the calculated checksum.' % name)
            return
    if 'x-amz-checksum-crc64nvme' in headers:
        return      # no implementation to check it with
    raise S3Error('InvalidRequest', 'Missing required header for this '
                  'request: Content-MD5')


def _min_part_size(conf):
    """``min_part_size``: the smallest part but the last a completed
    upload may have (S3's 5 MiB by default)."""
    text = str(conf.get('min_part_size', multipart_rules.MIN_PART_SIZE))
    if not multipart_rules.is_digits(text.strip()):
        from objstore.common.config import ConfigError
        raise ConfigError('s3api: min_part_size must be an integer')
    return int(text)


def _load_credentials(global_conf, local_conf):
    from objstore.middleware.s3api import credentials
    return credentials.Credentials.from_conf(global_conf, local_conf)


def filter_factory(global_conf, local_conf):
    conf = dict(local_conf)
    credentials = _load_credentials(global_conf, local_conf)
    middleware_conf = dict(conf)
    probe = S3ApiMiddleware(None, middleware_conf, credentials,
                            authenticate=lambda *a, **k: None)
    info.register('s3api', storage_domain=list(probe.storage_domains),
                  location=probe.location,
                  max_bucket_listing=s3request.MAX_KEYS,
                  max_multi_delete_objects=xmlbody.MAX_DELETE_KEYS)

    def wrap(app):
        return S3ApiMiddleware(app, middleware_conf, credentials)
    return wrap
