"""Serving a large object: a list of segments streamed as one body.

Both kinds of large object (slo.py, dlo.py) end in the same place: an
ordered list of byte ranges of other objects, a total length and an
ETag. This module turns that into the client's answer -- conditional
requests against the large object's ETag, no Range (200), one range
(206), several (multipart/byteranges) or none satisfiable (416) -- and
streams the pieces one sub-request at a time, chunk by chunk, so no
segment is ever held in memory whole.

Each piece is checked as it arrives: the segment must answer 200/206,
with the ETag and size the manifest recorded, and deliver every byte it
promised. Once the 200 has gone out a bad segment cannot be taken back,
so the body is cut short (the server then closes the connection and the
client sees fewer bytes than Content-Length) and the failure is logged.

The planning (which bytes of which segment serve a client range) is pure
and tested without servers.
"""
import collections
import logging

from objstore.common.http import Response, error_response
from objstore.middleware.subrequest import close_body, subrequest  # noqa: F401
from objstore.obj import conditions, ranges

log = logging.getLogger('objstore.middleware.segments')

# One piece of a large object: bytes [start, stop) of the object at
# ``path`` (a /v1/<account>/<container>/<object> path, unquoted), whose
# whole size and ETag the manifest recorded (None: not checked).
Segment = collections.namedtuple('Segment', 'path start stop etag size')

CONDITIONAL_HEADERS = ('If-Match', 'If-None-Match', 'If-Modified-Since',
                       'If-Unmodified-Since')


def length_of(segments):
    return sum(seg.stop - seg.start for seg in segments)


def clip(segments, start, stop):
    """The pieces of ``segments`` that hold bytes [start, stop) of their
    concatenation, in order (pure)."""
    out = []
    offset = 0
    for seg in segments:
        size = seg.stop - seg.start
        lo, hi = max(start, offset), min(stop, offset + size)
        if lo < hi:
            out.append(seg._replace(start=seg.start + lo - offset,
                                    stop=seg.start + hi - offset))
        offset += size
        if offset >= stop:
            break
    return out


def quote_etag(etag):
    return '"%s"' % etag


def call_app(app, environ):
    """(status, [(name, value)], body) of ``app`` for ``environ``,
    without webob: the cheap way for a filter to look at an answer's
    headers before deciding whether it is any of its business.

    An app that calls start_response only when its body is first
    iterated gets its first chunk pulled here (and put back in front)."""
    answer = []
    written = []

    def start_response(status, headers, exc_info=None):
        answer[:] = [status, headers]
        return written.append
    body = app(environ, start_response)
    if not answer:
        iterator = iter(body)
        first = [chunk for chunk in _first(iterator)]
        body = _Chained(first, iterator, body)
    if written:
        body = _Chained(written, iter(body), body)
    return answer[0], answer[1], body


def _first(iterator):
    for chunk in iterator:
        yield chunk
        return


class _Chained:
    """``first`` then the rest of ``iterator``; close() closes
    ``original`` (WSGI: the server closes what the app returned)."""

    def __init__(self, first, iterator, original):
        self.first, self.iterator, self.original = first, iterator, original

    def __iter__(self):
        yield from self.first
        yield from self.iterator

    def close(self):
        close = getattr(self.original, 'close', None)
        if close is not None:
            close()


def header_value(headers, lname):
    """The value of header ``lname`` (lower-case) in a header list, or
    None."""
    size = len(lname)
    for key, value in headers:
        if len(key) == size and key.lower() == lname:
            return value
    return None


def as_response(status, headers, body):
    """A webob Response of an answer call_app gave (for the slow paths)."""
    return Response(status=status, headerlist=list(headers), app_iter=body)


def close_iter(body):
    close = getattr(body, 'close', None)
    if close is not None:
        close()


def read_body(resp, limit):
    """Up to ``limit`` bytes of a response body; None when it is longer."""
    data = []
    size = 0
    try:
        for chunk in resp.app_iter:
            size += len(chunk)
            if size > limit:
                return None
            data.append(chunk)
    finally:
        close_body(resp)
    return b''.join(data)


def _strip(etag):
    return (etag or '').strip().strip('"').lower()


def check_segment_answer(seg, status, headers):
    """None when a segment's answer fits the manifest, else the reason.

    ``headers``: the answer's (case-insensitive mapping).
    """
    if status not in (200, 206):
        return 'segment %s answered %d' % (seg.path, status)
    if seg.etag is not None and _strip(headers.get('Etag')) != \
            _strip(seg.etag):
        return 'segment %s has ETag %s, the manifest says %s' % (
            seg.path, headers.get('Etag'), seg.etag)
    if status == 200:
        size = headers.get('Content-Length')
    else:
        size = (headers.get('Content-Range') or '').rpartition('/')[2]
    if seg.size is not None and str(seg.size) != (size or '').strip():
        return 'segment %s has %s bytes, the manifest says %d' % (
            seg.path, size, seg.size)
    if seg.size is None and status == 200 and size and \
            int(size) < seg.stop:
        return 'segment %s has only %s bytes' % (seg.path, size)
    return None


class SegmentFailure(Exception):
    """A segment that does not match its manifest: the body stops."""


def stream_segments(app, environ, segments, name, first=None):
    """The bytes of ``segments`` in order; stops (and logs) at the first
    segment that is missing, differs from the manifest or ends short.
    ``first``: the first segment's answer, when already opened."""
    return SegmentBody(app, environ, segments, name, first)


class SegmentBody:
    """The app_iter of a large object: iterates the segments' bytes;
    close() releases whatever segment answer is still open, even when
    the body was never iterated (a client gone before the first byte)."""

    def __init__(self, app, environ, segments, name, first=None):
        self.app, self.environ = app, environ
        self.segments, self.name = segments, name
        self.first = first
        self._gen = None

    def __iter__(self):
        if self._gen is None:
            self._gen = self._chunks()
        return self._gen

    def _chunks(self):
        try:
            for index, seg in enumerate(self.segments):
                first, self.first = (self.first, None) if index == 0 \
                    else (None, None)
                yield from _stream_one(self.app, self.environ, seg, first)
        except SegmentFailure as e:
            log.error('GET %s: %s; response cut short', self.name, e)

    def close(self):
        if self._gen is not None:
            self._gen.close()
        if self.first is not None:
            close_body(self.first)
            self.first = None


def open_segment(app, environ, seg):
    """(answer, problem or None) of the GET of one segment's piece."""
    whole = seg.start == 0 and seg.size is not None and seg.stop == seg.size
    headers = {} if whole else {'Range': 'bytes=%d-%d' % (seg.start,
                                                          seg.stop - 1)}
    resp = subrequest(app, environ, 'GET', seg.path,
                      'multipart-manifest=get', headers)
    problem = check_segment_answer(seg, resp.status_int, resp.headers)
    if problem is None and resp.status_int == 200 and not whole and \
            seg.start != 0:
        problem = 'segment %s ignored the range' % seg.path
    return resp, problem


def _stream_one(app, environ, seg, resp=None):
    if resp is None:
        resp, problem = open_segment(app, environ, seg)
        if problem:
            close_body(resp)
            raise SegmentFailure(problem)
    try:
        want = seg.stop - seg.start
        got = 0
        for chunk in resp.app_iter:
            if got + len(chunk) > want:
                chunk = chunk[:want - got]
            got += len(chunk)
            if chunk:
                yield chunk
            if got >= want:
                break
        if got < want:
            raise SegmentFailure('segment %s ended after %d of %d bytes'
                                 % (seg.path, got, want))
    finally:
        close_body(resp)


def _multipart(app, environ, segments, spans, total, content_type,
               name):
    boundary = ranges.new_boundary()
    parts, trailer, length = ranges.multipart_layout(spans, total,
                                                     content_type, boundary)

    def body():
        for head, start, stop in parts:
            yield head
            yield from stream_segments(app, environ,
                                       clip(segments, start, stop), name)
        yield trailer
    return boundary, length, body()


def respond(req, app, segments, etag, headers, timestamp=None):
    """The answer to a GET/HEAD of a large object.

    ``segments``: its pieces in order; ``etag``: its ETag (unquoted);
    ``headers``: [(name, value)] of the manifest to pass on (without
    Content-Length, ETag, Content-Range); ``timestamp``: its
    X-Timestamp, for If-(Un)Modified-Since.
    """
    total = length_of(segments)
    name = req.path_info
    pairs = list(headers) + [('Etag', quote_etag(etag)),
                             ('Accept-Ranges', 'bytes')]
    verdict = conditions.evaluate(req.headers, etag, timestamp or 0)
    if verdict is not None:
        keep = [(k, v) for k, v in pairs if k.lower() != 'content-type']
        if verdict == 304:
            return Response(status=304, headerlist=keep, app_iter=[])
        return error_response(412, 'precondition failed', dict(keep), req)
    content_type = dict((k.lower(), v) for k, v in pairs).get(
        'content-type', 'application/octet-stream')
    specs = ranges.parse_range(req.headers.get('Range'))
    if req.method == 'HEAD':
        return Response(status=200, headerlist=pairs + [
            ('Content-Length', str(total))], app_iter=[])
    status, extra, pieces = 200, [('Content-Length', str(total))], segments
    if specs is not None:
        spans = ranges.satisfiable(specs, total)
        if not spans:
            return error_response(416, 'requested range not satisfiable',
                                  {'Content-Range': 'bytes */%d' % total},
                                  req)
        if len(spans) > 1:
            boundary, length, body = _multipart(
                app, req.environ, segments, spans, total, content_type, name)
            pairs = [(k, v) for k, v in pairs if k.lower() != 'content-type']
            return Response(status=206, headerlist=pairs + [
                ('Content-Type', 'multipart/byteranges; boundary=%s'
                 % boundary), ('Content-Length', str(length))],
                app_iter=body)
        start, stop = spans[0]
        status, pieces = 206, clip(segments, start, stop)
        extra = [('Content-Length', str(stop - start)),
                 ('Content-Range', ranges.content_range(start, stop, total))]
    # The first segment is asked for before the status goes out, so a
    # large object whose first segment is missing or changed (or that
    # the client may not read: its 401/403) is a 409, not an empty 200.
    first = None
    if pieces:
        first, problem = open_segment(app, req.environ, pieces[0])
        if problem:
            close_body(first)
            log.error('GET %s: %s', name, problem)
            status = first.status_int if first.status_int in (401, 403) \
                else 409
            return error_response(status, problem, request=req)
    return Response(status=status, headerlist=pairs + extra,
                    app_iter=stream_segments(app, req.environ, pieces, name,
                                             first))


def passed_headers(resp, drop=()):
    """The manifest answer's headers a large object's answer keeps."""
    skip = {'content-length', 'etag', 'content-range',
            'accept-ranges'} | {d.lower() for d in drop}
    return [(k, v) for k, v in resp.headerlist if k.lower() not in skip]


def has_conditions(req):
    return any(req.headers.get(h) is not None for h in CONDITIONAL_HEADERS)
