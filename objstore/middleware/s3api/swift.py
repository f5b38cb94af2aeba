"""Talking to the rest of the pipeline: Swift sub-requests for an S3 one.

A sub-request carries the client's identity (the ``objstore.*`` and
``swift.*`` environ keys: the S3 user tempauth acts for, the gatekeeper's
system-metadata flag) and nothing else of the client's request: its
headers are the ones the S3 layer chose. Also the header mappings both
ways (x-amz-meta-* <-> X-Object-Meta-*), pure.
"""
import io
from urllib.parse import quote, urlencode

from objstore.common.http import Request
from objstore.middleware.s3api.errors import S3Error

_KEPT = ('wsgi.errors', 'wsgi.multithread', 'wsgi.multiprocess',
         'wsgi.run_once', 'wsgi.url_scheme', 'wsgi.version',
         'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'SCRIPT_NAME',
         'REMOTE_ADDR', 'REMOTE_PORT', 'HTTP_HOST', 'HTTP_USER_AGENT',
         'reseller_request')
_KEPT_PREFIXES = ('objstore.', 'swift.', 'swift_', 'eventlet.')

# Object headers S3 and Swift share (both ways), besides user metadata.
OBJECT_HEADERS = ('Content-Type', 'Content-Encoding', 'Content-Disposition',
                  'Content-Language', 'Cache-Control', 'Expires')
# Answer headers an S3 GET/HEAD object passes on as they are.
ANSWER_HEADERS = frozenset(h.lower() for h in OBJECT_HEADERS + (
    'Content-Length', 'Content-Range', 'Last-Modified', 'Accept-Ranges'))
SWIFT_META = 'x-object-meta-'
# a multipart object's S3 ETag (multipart.py), which S3 shows as its ETag
S3_ETAG = 'X-Object-Sysmeta-S3api-Etag'
AMZ_META = 'x-amz-meta-'


def swift_path(account, container=None, obj=None):
    path = '/v1/' + account
    if container is not None:
        path += '/' + container
        if obj is not None:
            path += '/' + obj
    return path


def sub_environ(environ, method, path, headers=None, query=None,
                body=b'', length=None):
    """The environ of a Swift request made on the client's behalf.

    ``body``: bytes or a readable stream; ``length``: its size (None and
    a stream: read to the end, sent chunked).
    """
    env = {k: v for k, v in environ.items()
           if k in _KEPT or k.startswith(_KEPT_PREFIXES)}
    if isinstance(body, (bytes, bytearray)):
        length = len(body)
        body = io.BytesIO(body)
    env.update({
        'REQUEST_METHOD': method,
        'RAW_PATH_INFO': quote(path),
        'PATH_INFO': path.encode('utf-8').decode('latin-1'),
        'QUERY_STRING': urlencode(query or {}, quote_via=quote),
        'wsgi.input': body})
    raw = []
    if length is not None:
        env['CONTENT_LENGTH'] = str(length)
        raw.append(('Content-Length', str(length)))
    else:
        env['HTTP_TRANSFER_ENCODING'] = 'chunked'
        raw.append(('Transfer-Encoding', 'chunked'))
    for name, value in (headers or {}).items():
        key = name.upper().replace('-', '_')
        if key not in ('CONTENT_TYPE', 'CONTENT_LENGTH'):
            key = 'HTTP_' + key
        env[key] = value
        raw.append((name, value))
    env['headers_raw'] = tuple(raw)
    return env


def call(app, env):
    """The pipeline's answer (a WebOb Response, body not yet read)."""
    return Request(env).get_response(app)


def close(resp):
    closer = getattr(resp.app_iter, 'close', None)
    if closer is not None:
        closer()


def read_body(resp, limit=16 * 1024 * 1024):
    """A sub-request answer's body (bounded), closed afterwards."""
    out = []
    size = 0
    try:
        for chunk in resp.app_iter:
            out.append(chunk)
            size += len(chunk)
            if size > limit:
                break
    finally:
        close(resp)
    return b''.join(out)


def user_metadata(headers):
    """{'X-Object-Meta-<name>': value} for the x-amz-meta-* request
    headers (a list of (name, value))."""
    out = {}
    for name, value in headers:
        if name.lower().startswith(AMZ_META) and len(name) > len(AMZ_META):
            out['X-Object-Meta-' + name[len(AMZ_META):]] = value
    return out


def object_headers_from_s3(headers):
    """The Swift headers of an object PUT from an S3 request's headers
    [(name, value)]: user metadata and the shared HTTP headers (the
    ``aws-chunked`` content coding is the transfer's, not the object's)."""
    out = user_metadata(headers)
    wanted = {h.lower(): h for h in OBJECT_HEADERS}
    for name, value in headers:
        canonical = wanted.get(name.lower())
        if canonical is None:
            continue
        if canonical == 'Content-Encoding':
            codings = [c.strip() for c in value.split(',')
                       if c.strip() and c.strip().lower() != 'aws-chunked']
            if not codings:
                continue
            value = ', '.join(codings)
        out[canonical] = value
    return out


def object_headers_from_swift(headers):
    """What an object copy keeps of its source (a Swift answer's
    headers): user metadata and the shared HTTP headers."""
    out = {}
    wanted = {h.lower(): h for h in OBJECT_HEADERS}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(SWIFT_META):
            out['X-Object-Meta-' + name[len(SWIFT_META):]] = value
        elif lower in wanted:
            out[wanted[lower]] = value
    return out


def quote_etag(etag):
    etag = (etag or '').strip()
    if etag.startswith('W/'):
        etag = etag[2:]
    return '"%s"' % etag.strip('"')


def s3_object_headers(headers):
    """The S3 answer headers of a Swift object answer's headers: user
    metadata as x-amz-meta-* (lower-case names, as S3 shows them), the
    shared headers, the ETag quoted."""
    out = []
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(SWIFT_META):
            out.append((AMZ_META + lower[len(SWIFT_META):], value))
        elif lower in ANSWER_HEADERS:
            out.append((name, value))
        elif lower == 'etag':
            if S3_ETAG not in headers:
                out.append(('ETag', quote_etag(value)))
        elif lower == S3_ETAG.lower():
            out.append(('ETag', quote_etag(value)))
    return out


def whole_object_md5(headers):
    """The MD5 of a Swift object answer's body, when its ETag is that (a
    plain object), else None: a large object's ETag (SLO or DLO) is not
    its body's MD5, so a copy must not be held to it."""
    if 'X-Static-Large-Object' in headers or 'X-Object-Manifest' in headers:
        return None
    etag = (headers.get('Etag') or '').strip().strip('"')
    return etag if len(etag) == 32 else None


def s3_etag(headers):
    """The ETag S3 shows for a Swift object answer (unquoted): a
    multipart object's own (system metadata), else Swift's."""
    return (headers.get(S3_ETAG) or headers.get('Etag') or '').strip('"')


class VerifiedBody:
    """A request body whose reader (auth.py's Sha256Input or
    ChunkedInput) raises S3Error when what was sent does not match what
    was signed. The proxy knows only ValueError/OSError from a body: a
    ValueError makes it refuse the PUT (400) and store nothing; the
    S3Error is kept for the S3 answer."""

    def __init__(self, raw):
        self.raw = raw
        self.error = None

    def read(self, *args):
        return self._call(self.raw.read, *args)

    def readline(self, *args):
        return self._call(self.raw.readline, *args)

    def _call(self, reader, *args):
        if self.error is not None:
            raise ValueError(str(self.error))
        try:
            return reader(*args)
        except S3Error as err:
            self.error = err
            raise ValueError(str(err))


def put_verified(ctx, container, obj, headers, body, length):
    """PUT a client's body as an object; the body's own S3Error (a bad
    signature or checksum) wins over whatever Swift answered. The
    answer is closed."""
    guarded = VerifiedBody(body)
    resp = ctx.swift('PUT', container, obj, headers=headers, body=guarded,
                     length=length)
    close(resp)
    error = guarded.error or getattr(body, 'error', None)
    if error is not None:
        raise error
    return resp


class IterReader:
    """A file-like ``read`` over a body iterator (a copy streams its
    source's GET answer into the destination's PUT)."""

    def __init__(self, iterable):
        self._iter = iter(iterable)
        self._source = iterable
        self._buf = b''
        self._done = False

    def read(self, size=-1):
        while not self._done and (size is None or size < 0 or
                                  len(self._buf) < size):
            try:
                self._buf += next(self._iter)
            except StopIteration:
                self._done = True
                self.close()
        if size is None or size < 0:
            data, self._buf = self._buf, b''
        else:
            data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def readline(self, size=-1):
        return self.read(size)

    def close(self):
        closer = getattr(self._source, 'close', None)
        if closer is not None:
            closer()
