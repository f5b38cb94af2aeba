"""The object server's side of SYNC: answer checks, take pushed files.

A replicator on another node asks which of its files this device lacks
(``op=check``) and then streams them (``op=push``); the messages are in
sync_protocol.py. Nothing reaches the disk unchecked: each pushed file's
metadata name must hash to the frame's hash and fall in the request's
partition, its file name must carry the metadata's X-Timestamp, and a
``.data``'s bytes must match its ETag and Content-Length — so a replica
corrupted on its sender is refused, never spread. Files are written
through DiskFileWriter (temp file, fsync, rename, dir fsync) with their
original timestamp and metadata, so a replicated object is bit-for-bit
the object its PUT/POST/DELETE made, and a newer file already here simply
wins (DiskFileConflict). A protocol violation answers 400 and writes
nothing of the offending file; files committed before it stay (each was
checked on its own).
"""
import os
import socket
import time

from objstore.common.concurrency import run_in_thread
from objstore.common.http import HTTPError, Response, request_path, \
    split_path
from objstore.obj import fileset
from objstore.obj import sync_protocol as proto
from objstore.obj.diskfile import (DeviceUnavailable, DiskFile,
                                   DiskFileConflict, DiskFileWriter)

CHUNK_SIZE = proto.CHUNK_SIZE


def handle(mgr, req):
    """SYNC /<device>/<partition>?op=check|push&part_power=N."""
    device, partition = split_path(request_path(req), 2, 2)
    if not partition.isdigit():
        raise HTTPError(400, 'invalid partition %r' % partition)
    partition = int(partition)
    query = req.GET
    try:
        part_power = proto.parse_part_power(query.get('part_power'))
    except proto.ProtocolError as e:
        raise HTTPError(400, str(e))
    if partition >= 2 ** part_power:
        raise HTTPError(400, 'partition %d out of range' % partition)
    op = query.get('op')
    if op not in ('check', 'push'):
        raise HTTPError(400, 'op must be check or push')
    device_path = mgr.device_path(device)
    if device_path is None:
        raise DeviceUnavailable(device)
    if op == 'check':
        return _check(mgr, req, device_path, partition, part_power)
    return _push(mgr, req, device_path, partition, part_power)


# -- check --------------------------------------------------------------------

def _read_body(req, limit):
    stream = req.environ['wsgi.input']
    length = req.headers.get('Content-Length')
    if length is not None:
        if not length.strip().isdigit():
            raise HTTPError(400, 'bad Content-Length')
        if int(length) > limit:
            raise HTTPError(413, 'body larger than %d bytes' % limit)
    elif req.headers.get('Transfer-Encoding', '').lower() != 'chunked':
        raise HTTPError(411, 'Content-Length required')
    parts, size = [], 0
    while True:
        chunk = _read(stream, CHUNK_SIZE)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, 'body larger than %d bytes' % limit)
        parts.append(chunk)
    return b''.join(parts)


def _read(stream, size):
    try:
        return stream.read(size)
    except (socket.timeout, TimeoutError):
        raise HTTPError(408, 'timed out reading the body')
    except (OSError, ValueError) as e:
        raise HTTPError(499, 'client disconnected: %s' % e)


def _check(mgr, req, device_path, partition, part_power):
    body = _read_body(req, proto.MAX_CHECK_BODY)
    try:
        offers = proto.decode_offers(body, partition, part_power)
    except proto.ProtocolError as e:
        raise HTTPError(400, str(e))
    part_dir = mgr.partition_dir(device_path, partition)

    def decide():
        now = time.time()
        wanted = {}
        for hsh, names in offers.items():
            have = fileset.list_dir(os.path.join(part_dir, hsh[-3:], hsh))
            want = proto.wanted_files(have, names, now, mgr.reclaim_age)
            if want:
                wanted[hsh] = want
        return wanted

    wanted = run_in_thread(decide)
    return Response(status=200, body=proto.encode_wanted(wanted),
                    content_type='application/x-msgpack')


# -- push ---------------------------------------------------------------------

class _Incoming:
    """One pushed file on its way to the disk."""

    def __init__(self, mgr, device_path, partition, part_power, header):
        account, container, obj = proto.split_name(header.metadata['name'])
        df = DiskFile(mgr, device_path, partition, account, container, obj)
        if df.hash != header.hash:
            raise proto.ProtocolError('name %r does not hash to %s'
                                      % (header.metadata['name'][:200],
                                         header.hash))
        if proto.partition_of(header.hash, part_power) != partition:
            raise proto.ProtocolError('%s is not in partition %d'
                                      % (header.hash, partition))
        self.header = header
        self.df = df
        self.writer = None
        self.status = None
        self.reason = ''
        try:
            run_in_thread(df.check_conflict, header.timestamp, header.ext)
        except DiskFileConflict:
            self.status = 'newer'   # drain its bytes, write nothing
            return
        if header.ext == fileset.DATA:
            self.writer = run_in_thread(df.writer, header.size)
        else:
            self.writer = DiskFileWriter(df, None, check_space=False)

    def write(self, data):
        if self.writer is not None and self.status is None:
            self.writer.write(data)

    def finish(self):
        """Commit if everything matches; returns (status, reason)."""
        if self.status is not None:
            return self.status, self.reason
        header, writer = self.header, self.writer
        if header.ext == fileset.DATA and (
                writer.upload_size != header.size or
                writer.etag != header.metadata['ETag']):
            return 'refused', 'content MD5 %s does not match ETag %s' % (
                writer.etag, header.metadata['ETag'])
        try:
            run_in_thread(writer.commit, header.timestamp, header.metadata,
                          header.ext)
        except DiskFileConflict:
            return 'newer', ''
        return 'ok', ''

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _push(mgr, req, device_path, partition, part_power):
    stream = req.environ['wsgi.input']
    decoder = proto.FrameDecoder()
    limits = proto.PushLimits()
    results = []
    incoming = None
    try:
        while True:
            try:
                event = decoder.next_event()
            except proto.ProtocolError as e:
                raise HTTPError(400, str(e))
            if event is proto.NEED_DATA:
                chunk = _read(stream, CHUNK_SIZE)
                try:
                    if chunk:
                        decoder.feed(chunk)
                    else:
                        decoder.feed_eof()
                        break
                except proto.ProtocolError as e:
                    raise HTTPError(400, str(e))
            elif isinstance(event, proto.Header):
                try:
                    header = proto.check_header(event.fields)
                except proto.ProtocolError as e:
                    raise HTTPError(400, str(e))
                if not limits.fits(header.size):
                    raise HTTPError(413, 'more than one push request may '
                                    'carry (%d files, %d bytes)'
                                    % (limits.max_files, limits.max_bytes))
                limits.add(header.size)
                try:
                    incoming = _Incoming(mgr, device_path, partition,
                                         part_power, header)
                except proto.ProtocolError as e:
                    raise HTTPError(400, str(e))
            elif isinstance(event, proto.Body):
                incoming.write(event.data)
            elif isinstance(event, proto.BodyEnd):
                status, reason = incoming.finish()
                incoming.close()
                results.append([incoming.header.hash, incoming.header.file,
                                status, reason])
                incoming = None
            elif isinstance(event, proto.End):
                continue  # the decoder refuses anything after it
    finally:
        if incoming is not None:
            incoming.close()
    return Response(status=200, body=proto.encode_summary(
        results, limits.files, limits.bytes),
        content_type='application/x-msgpack')
