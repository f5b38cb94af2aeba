"""The object server: the backend HTTP API over diskfile.

``/<device>/<partition>/<account>/<container>/<object>`` with PUT, GET,
HEAD, POST, DELETE, and ``REPLICATE /<device>/<partition>[/<suffixes>]``
and ``SYNC /<device>/<partition>`` for the replicator. Every request must
be signed with the cluster's backend secret. Bad input gets a 4xx with a
one-line reason before anything on disk changes; device trouble gets 507;
nothing gets a traceback.
"""
import errno
import itertools
import logging
import socket
import sys
import time

import msgpack

from objstore.common import body_checksums, constraints, signing
from objstore.common.concurrency import run_in_thread
from objstore.common.config import (ConfigError, backend_secret, config_true,
                                    hash_secret)
from objstore.common.http import (HTTPError, Request, Response,
                                  error_response, header_dict, header_sent,
                                  request_path, split_path)
from objstore.common.timestamp import parse_x_timestamp
from objstore.common.wsgi import server_main
from objstore.obj import (conditions, diskfile, fileset, hashes, ranges,
                          sync_receiver, updates)
from objstore.obj.diskfile import (DeviceUnavailable, DiskFileConflict,
                                   DiskFileNoSpace, DiskFileNotExist)

SECTION = 'object-server'
DEFAULT_PORT = 6200
# A PUT's body is read (and hashed, and written) at most this much at a
# time: with 64 KiB the per-chunk Python work showed in large uploads.
CHUNK_SIZE = 1024 * 1024
log = logging.getLogger('objstore.obj.server')

# Headers besides X-Object-Meta-* that an object keeps from its PUT.
STORED_HEADERS = (
    'Content-Disposition', 'Content-Encoding', 'X-Delete-At',
    'X-Object-Manifest', 'X-Static-Large-Object', 'Cache-Control',
    'Content-Language', 'Expires', 'X-Robots-Tag')
SYSMETA_PREFIX = 'x-object-sysmeta-'
USER_META_PREFIX = constraints.META_PREFIX['object']


def _check_partition(partition):
    if not partition.isdigit():
        raise HTTPError(400, 'invalid partition %r' % partition)
    return int(partition)


def _is_chunked(req):
    encoding = req.headers.get('Transfer-Encoding')
    if encoding is None:
        return False
    if encoding.strip().lower() != 'chunked':
        raise HTTPError(400, 'unsupported Transfer-Encoding %r' % encoding)
    return True


def _announced_length(req, chunked):
    """The body length a proxy-hashed PUT announces (None if unknown).

    Such a body is chunked, to carry the trailer; the length sizes the
    file as a Content-Length would (fallocate, direct writes)."""
    if not chunked:
        raise HTTPError(400, '%s needs a chunked body'
                        % body_checksums.HEADER)
    value = req.headers.get(body_checksums.LENGTH_HEADER)
    if value is None:
        return None
    length, err = constraints.parse_content_length(value)
    if err:
        raise HTTPError(413 if value.strip().isdigit() else 400, err)
    return length


def _proxy_etag(req, writer, length):
    """The ETag from the body's trailer, once the CRC-32C computed here
    matches the sender's (422 if not: the body changed on the way)."""
    try:
        etag, crc = body_checksums.from_trailers(
            getattr(req.environ['wsgi.input'], 'trailers', None))
    except ValueError as e:
        raise HTTPError(400, str(e))
    if length is not None and writer.upload_size != length:
        raise HTTPError(400, 'body of %d bytes, %s said %d' % (
            writer.upload_size, body_checksums.LENGTH_HEADER, length))
    if crc != writer.crc32c:
        raise HTTPError(422, 'body CRC-32C %s differs from the sender\'s '
                        '%s' % (writer.crc32c, crc))
    return etag


def _delete_at(req, now):
    """X-Delete-At as an int (None when absent); 400 if bad or past."""
    value = req.headers.get('X-Delete-At')
    if value is None:
        return None
    if not value.strip().isdigit():
        raise HTTPError(400, 'non-integer X-Delete-At')
    when = int(value)
    if when <= now:
        raise HTTPError(400, 'X-Delete-At in the past')
    return when


def _lower_set(names):
    return frozenset(name.lower() for name in names)


_STORED_LOWER = _lower_set(STORED_HEADERS)
_POST_LOWER = _lower_set(diskfile.POST_REPLACED | {'content-type'})


def _sent_headers(req):
    """The request's headers as a plain dict, for the checks that look at
    every one of them (http.header_dict: WebOb's view made each name
    again on every walk, a tenth of an object server's PUT)."""
    return header_dict(req.environ)


def _metadata_from(headers, allowed=_STORED_LOWER):
    """Stored metadata from the request's headers (a dict from
    _sent_headers): user metadata, sysmeta and the ``allowed`` names
    (lower case)."""
    meta = {}
    for key, value in headers.items():
        lkey = key.lower()
        if lkey.startswith(USER_META_PREFIX) or \
                lkey.startswith(SYSMETA_PREFIX) or lkey in allowed:
            meta[key.title()] = value
    return meta


class ClosingIter:
    """An app_iter that releases the open file when the server is done."""

    def __init__(self, iterable, close):
        self._it = iter(iterable)
        self._close = close

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def close(self):
        close, self._close = self._close, None
        if close is not None:
            close()


class ObjectServer:
    """The WSGI app. One per process; settings from [object-server]."""

    def __init__(self, conf):
        self.secret = backend_secret()
        prefix, suffix = hash_secret()
        try:
            reclaim_age = float(conf.get('reclaim_age', 7 * 24 * 3600))
            self.update_timeout = float(conf.get(
                'container_update_timeout', 1.0))
            self.mgr = diskfile.DiskFileManager(
                conf.get('devices', '/srv/node'),
                mount_check=config_true(conf.get('mount_check', 'true')),
                hash_prefix=prefix, hash_suffix=suffix,
                fallocate_reserve=conf.get('fallocate_reserve', '0'),
                reclaim_age=reclaim_age)
        except ValueError as e:
            raise ConfigError('[%s] %s' % (SECTION, e))
        self.updates = updates.UpdateBatcher(self.secret,
                                             self.update_timeout)
        self.started = time.time()
        removed = self.mgr.clean_tmp(self.started)
        if removed:
            log.info('removed %d stale temp files', removed)
        self.handlers = {'PUT': self.PUT, 'GET': self.GET, 'HEAD': self.GET,
                         'POST': self.POST, 'DELETE': self.DELETE,
                         'REPLICATE': self.REPLICATE, 'SYNC': self.SYNC}

    def __call__(self, environ, start_response):
        req = Request(environ)
        try:
            resp = self.handle(req)
        except HTTPError as e:
            resp = e.response(req)
        except Exception:
            log.exception('%s %s failed', req.method,
                          environ.get('PATH_INFO'))
            resp = error_response(500, 'internal error', request=req)
        return resp(environ, start_response)

    def handle(self, req):
        why = signing.verify_environ(self.secret, req.environ)
        if why:
            raise HTTPError(401, why)
        handler = self.handlers.get(req.method)
        if handler is None:
            raise HTTPError(405, 'method %s not allowed' % req.method,
                            {'Allow': ', '.join(sorted(self.handlers))})
        try:
            return handler(req)
        except DeviceUnavailable as e:
            raise HTTPError(507, 'device %s is not available' % e)
        except DiskFileNoSpace as e:
            raise HTTPError(507, str(e))
        except DiskFileConflict as e:
            raise HTTPError(409, 'a newer object exists', {
                'X-Backend-Timestamp': e.timestamp.internal})
        except OSError as e:
            # a full disk can surface anywhere (making tmp/ or a hash
            # dir, a .meta, an xattr): the proxy must move on at once
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise HTTPError(507, 'device full: %s' % e.strerror)
            raise

    # -- helpers -------------------------------------------------------------

    def _diskfile(self, req):
        path = request_path(req)
        device, partition, account, container, obj = split_path(
            path, 5, 5, True)
        partition = _check_partition(partition)
        for name, limit, what in (
                (account, constraints.MAX_ACCOUNT_NAME_LENGTH, 'account'),
                (container, constraints.MAX_CONTAINER_NAME_LENGTH,
                 'container')):
            err = constraints.check_name(name, limit, what)
            if err:
                raise HTTPError(400, err)
        err = constraints.check_object_name(obj)
        if err:
            raise HTTPError(400, err)
        return self.mgr.get_diskfile(device, partition, account, container,
                                     obj), (account, container, obj)

    @staticmethod
    def _timestamp(req):
        try:
            return parse_x_timestamp(req.headers.get('X-Timestamp'))
        except ValueError as e:
            raise HTTPError(400, str(e))

    @staticmethod
    def _check_metadata(headers):
        err = constraints.check_metadata(headers, 'object')
        if err:
            raise HTTPError(400, err)

    @staticmethod
    def _update_targets(req):
        try:
            return updates.parse_targets(req.headers)
        except ValueError as e:
            raise HTTPError(400, str(e))

    def _open(self, df):
        """Open df; return the DiskFileNotExist instead of raising it.

        Inline, not in the thread pool: see the diskfile module docstring.
        """
        try:
            df.open()
            return None
        except DiskFileNotExist as e:
            return e

    def _container_update(self, df, names, targets, partition, op,
                          timestamp, headers, announced=None):
        if not targets:
            return
        headers = dict(headers, **{'X-Timestamp': timestamp.internal})
        failed = self.updates.update(targets, partition, op, *names,
                                     headers, announced=announced)
        if failed:
            run_in_thread(updates.save_pending, df.device_path, df.hash,
                          timestamp.internal, failed, partition, op,
                          *names, headers)

    @staticmethod
    def _object_headers(df):
        meta = df.metadata
        headers = {}
        for key, value in meta.items():
            lkey = key.lower()
            if lkey.startswith(USER_META_PREFIX) or \
                    lkey.startswith(SYSMETA_PREFIX) or \
                    key in STORED_HEADERS:
                headers[key] = str(value)
        headers.update({
            'Content-Type': meta.get('Content-Type',
                                     'application/octet-stream'),
            'Content-Length': str(df.content_length),
            'ETag': df.etag,
            'Last-Modified': conditions.http_date(
                conditions.last_modified(df.timestamp)),
            'X-Timestamp': df.timestamp.normal,
            'X-Backend-Timestamp': df.timestamp.internal,
            'X-Backend-Data-Timestamp': df.data_timestamp.internal,
            'Accept-Ranges': 'bytes',
        })
        return headers

    @staticmethod
    def _missing(req, err):
        headers = {}
        if err.timestamp is not None:
            headers['X-Backend-Timestamp'] = err.timestamp.internal
        if conditions.evaluate_missing(req.headers) == 412:
            return error_response(412, 'object does not exist', headers,
                                  req)
        return error_response(404, 'object not found', headers, req)

    # -- verbs ---------------------------------------------------------------

    def PUT(self, req):
        df, names = self._diskfile(req)
        timestamp = self._timestamp(req)
        chunked = _is_chunked(req)
        length = None
        if not chunked:
            value = req.headers.get('Content-Length')
            if value is None:
                raise HTTPError(411, 'Content-Length or chunked transfer '
                                'encoding required')
            length, err = constraints.parse_content_length(value)
            if err:
                raise HTTPError(413 if value.strip().isdigit() else 400, err)
        proxy_hashed = config_true(
            req.headers.get(body_checksums.HEADER, ''))
        if proxy_hashed:
            length = _announced_length(req, chunked)
        content_type = req.headers.get('Content-Type')
        if not content_type:
            raise HTTPError(400, 'no Content-Type')
        sent = _sent_headers(req)
        self._check_metadata(sent)
        _delete_at(req, time.time())
        client_etag = req.headers.get('ETag')
        if client_etag is not None:
            client_etag = body_checksums.normalize_etag(client_etag)
        targets, cpart = self._update_targets(req)
        if_none_match = req.headers.get('If-None-Match')
        current_etag, writer = self._start_put(
            df, timestamp, length, if_none_match is not None,
            md5=not proxy_hashed)
        try:
            if current_etag is not None:
                tags = conditions.parse_etags(if_none_match)
                if '*' in tags or current_etag in tags:
                    raise HTTPError(412, 'object exists')
            self._receive(req, writer, length)
            etag = _proxy_etag(req, writer, length) if proxy_hashed \
                else writer.etag
            if client_etag is not None and client_etag != etag:
                raise HTTPError(422, 'body MD5 %s does not match ETag' % etag)
            metadata = _metadata_from(sent)
            metadata.update({
                'name': df.name, 'X-Timestamp': timestamp.internal,
                'Content-Type': content_type,
                'Content-Length': writer.upload_size, 'ETag': etag})
            with self.updates.announce(targets, cpart,
                                       *names[:2]) as announced:
                run_in_thread(writer.commit, timestamp, metadata)
                self._container_update(
                    df, names, targets, cpart, 'PUT', timestamp,
                    updates.put_update_headers(
                        metadata, writer.upload_size, content_type, etag),
                    announced)
        finally:
            writer.close()
        return Response(status=201, headerlist=[
            ('ETag', etag), ('Content-Length', '0'),
            ('Content-Type', 'text/plain'),
            ('X-Backend-Timestamp', timestamp.internal)])

    @staticmethod
    def _start_put(df, timestamp, length, want_etag, md5=True):
        """(ETag of the current object or None, a writer).

        What a PUT does before its body, all metadata work, so run inline
        (see the diskfile module docstring). The current object is opened
        only for If-None-Match; 409 (as DiskFileConflict) unless
        ``timestamp`` is the newest.
        """
        etag = None
        if want_etag:
            try:
                df.open()
                etag = df.etag
            except DiskFileNotExist:
                pass
            finally:
                df.close()
        df.check_conflict(timestamp, fileset.DATA)
        return etag, df.writer(length, md5=md5)

    @staticmethod
    def _receive(req, writer, length):
        """Stream the body into ``writer`` in fixed-size chunks."""
        stream = req.environ['wsgi.input']
        limit = constraints.MAX_FILE_SIZE
        while True:
            try:
                chunk = stream.read(CHUNK_SIZE)
            except (socket.timeout, TimeoutError):
                raise HTTPError(408, 'timed out reading the body')
            except (OSError, ValueError) as e:
                raise HTTPError(499, 'client disconnected: %s' % e)
            if not chunk:
                break
            if writer.upload_size + len(chunk) > limit:
                raise HTTPError(413, 'object larger than %d bytes' % limit)
            writer.write(chunk)
        if length is not None and writer.upload_size < length:
            raise HTTPError(499, 'client sent %d of %d bytes'
                            % (writer.upload_size, length))

    def GET(self, req):
        df, _ = self._diskfile(req)
        missing = self._open(df)
        if missing is not None:
            return self._missing(req, missing)
        try:
            return self._answer(req, df)
        except BaseException:
            df.close()
            raise

    def _answer(self, req, df):
        headers = self._object_headers(df)
        verdict = conditions.evaluate(req.headers, df.etag, df.timestamp)
        if verdict == 304:
            df.close()
            headers.pop('Content-Length')
            headers.pop('Content-Type')
            return Response(status=304, headerlist=list(headers.items()),
                            app_iter=[])
        if verdict == 412:
            df.close()
            keep = {k: v for k, v in headers.items()
                    if k not in ('Content-Length', 'Content-Type')}
            return error_response(412, 'precondition failed', keep, req)
        if req.method == 'HEAD':
            df.close()
            return Response(status=200, headerlist=list(headers.items()),
                            app_iter=[])
        length = df.content_length
        specs = ranges.parse_range(req.headers.get('Range'))
        if specs is None:
            chunks = df.reader(verify=True)
            try:
                first = list(itertools.islice(chunks, 1))
            except diskfile.DiskFileQuarantined:
                df.close()
                return error_response(404, 'object not found', None, req)
            return self._stream(200, headers, first, chunks, df)
        spans = ranges.satisfiable(specs, length)
        if not spans:
            df.close()
            return error_response(
                416, 'requested range not satisfiable',
                {'Content-Range': 'bytes */%d' % length}, req)
        if len(spans) == 1:
            start, stop = spans[0]
            headers['Content-Range'] = ranges.content_range(start, stop,
                                                            length)
            headers['Content-Length'] = str(stop - start)
            return self._stream(206, headers, [], df.reader(start, stop), df)
        boundary = ranges.new_boundary()
        parts, trailer, total = ranges.multipart_layout(
            spans, length, headers['Content-Type'], boundary)
        headers['Content-Type'] = 'multipart/byteranges; boundary=%s' % \
            boundary
        headers['Content-Length'] = str(total)

        def body():
            for head, start, stop in parts:
                yield head
                yield from df.reader(start, stop)
            yield trailer
        return self._stream(206, headers, [], body(), df)

    @staticmethod
    def _stream(status, headers, first, rest, df):
        def chain():
            yield from first
            yield from rest
        return Response(status=status, headerlist=list(headers.items()),
                        app_iter=ClosingIter(chain(), df.close))

    def POST(self, req):
        df, _ = self._diskfile(req)
        timestamp = self._timestamp(req)
        sent = _sent_headers(req)
        self._check_metadata(sent)
        _delete_at(req, time.time())
        missing = self._open(df)
        if missing is not None:
            return self._missing(req, missing)
        df.close()
        if df.timestamp >= timestamp:
            raise HTTPError(409, 'newer metadata exists', {
                'X-Backend-Timestamp': df.timestamp.internal})
        meta = _metadata_from(sent, _POST_LOWER)
        if not header_sent(req.environ, 'Content-Type'):
            # eventlet invents text/plain for a request without one; a
            # POST that names no type keeps the object's
            meta.pop('Content-Type', None)
        if 'Content-Type' in meta and not meta['Content-Type']:
            raise HTTPError(400, 'empty Content-Type')
        try:
            run_in_thread(df.write_meta, timestamp, meta)
        except DiskFileConflict as e:
            raise HTTPError(409, 'newer metadata exists', {
                'X-Backend-Timestamp': e.timestamp.internal})
        return Response(status=202, headerlist=[
            ('Content-Length', '0'), ('Content-Type', 'text/plain'),
            ('X-Backend-Timestamp', timestamp.internal)])

    def DELETE(self, req):
        df, names = self._diskfile(req)
        timestamp = self._timestamp(req)
        targets, cpart = self._update_targets(req)
        with self.updates.announce(targets, cpart, *names[:2]) as announced:
            missing = run_in_thread(self._delete, df, timestamp)
            self._container_update(df, names, targets, cpart, 'DELETE',
                                   timestamp, {}, announced)
        headers = {'X-Backend-Timestamp': timestamp.internal}
        if missing is None:
            return Response(status=204, headerlist=list(headers.items()))
        return error_response(404, 'object not found', headers, req)

    @staticmethod
    def _delete(df, timestamp):
        """Tombstone the object, in one thread-pool call (blocking).

        Returns the DiskFileNotExist when there was nothing to delete
        (the tombstone is written anyway, so a late older PUT cannot
        resurrect it); DiskFileConflict when something newer is there.
        """
        try:
            df.open()
            missing = None
        except DiskFileNotExist as e:
            missing = e
        finally:
            df.close()
        df.write_tombstone(timestamp)
        return missing

    def REPLICATE(self, req):
        device, partition, suffixes = split_path(request_path(req), 2, 3,
                                                 True)
        partition = _check_partition(partition)
        wanted = suffixes.split('-') if suffixes else []
        for suffix in wanted:
            if not hashes.is_suffix(suffix):
                raise HTTPError(400, 'invalid suffix %r' % suffix)
        result = run_in_thread(self.mgr.get_hashes, device, partition,
                               wanted)
        body = msgpack.packb(result, use_bin_type=True)
        return Response(status=200, body=body,
                        content_type='application/x-msgpack')

    def SYNC(self, req):
        """Replication's check/push of object files (sync_receiver.py)."""
        return sync_receiver.handle(self.mgr, req)


def app_factory(conf):
    return ObjectServer(conf)


main = server_main(SECTION, app_factory, DEFAULT_PORT,
                   sched_batch=True)


if __name__ == '__main__':
    sys.exit(main())
