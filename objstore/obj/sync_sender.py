"""The replicator's side of object sync: one peer device, one partition.

SyncClient speaks to the object server holding a peer device: REPLICATE
for its suffix hashes, SYNC ``op=check`` to learn which local files it
lacks and SYNC ``op=push`` to stream them (sync_protocol.py has the
messages). Plain blocking http.client, signed like every internal
request; a push is a chunked body read from disk in 64 KiB pieces, so a
5 GiB object moves in fixed memory, and pushes are cut into requests of
bounded size (PushLimits) so one failure costs little.

Each pushed ``.data`` is MD5-summed as it is read; a local file whose
bytes or metadata do not add up is reported in ``PushOutcome.corrupt``
(the receiver refuses it too) so the caller can quarantine it.
"""
import hashlib
import http.client
import os
from collections import namedtuple

import msgpack

from objstore.common import backend, signing
from objstore.common.backend import BackendError
from objstore.obj import fileset
from objstore.obj import metadata as md
from objstore.obj import sync_protocol as proto

# suffixes named in one REPLICATE path (4 characters each)
SUFFIXES_PER_REQUEST = 256

LocalFile = namedtuple('LocalFile', 'hash name path')
LocalFile.__doc__ = 'An object file offered to a peer: hash dir + name.'


class SyncError(Exception):
    """The peer answered with an error, or with nonsense."""


class NodeUnavailable(SyncError):
    """The peer is unreachable or its device unusable (507): use another."""


class PushOutcome:
    """What pushing a list of files did."""

    def __init__(self):
        self.results = []   # [hash, name, status, reason] from receivers
        self.files = 0      # files sent
        self.bytes = 0      # content bytes sent
        self.corrupt = []   # (LocalFile, reason): bad on our own disk
        self.skipped = 0    # gone before we could send them

    def status_of(self):
        """{(hash, name): status} of every file a receiver answered for."""
        return {(h, n): s for h, n, s, _ in self.results}


class SyncClient:
    """Talks to one peer device about one partition."""

    def __init__(self, secret, node, partition, part_power, timeout=10.0):
        self.secret = secret
        self.ip = node.get('replication_ip') or node['ip']
        self.port = int(node.get('replication_port') or node['port'])
        self.device = node['device']
        self.partition = partition
        self.part_power = part_power
        self.timeout = timeout
        self.base_path = '/%s/%d' % (self.device, partition)
        self.query = 'part_power=%d' % part_power

    def __repr__(self):
        return '%s:%s/%s' % (self.ip, self.port, self.device)

    def _request(self, method, path, body=b'', query=''):
        try:
            status, _, data = backend.request(
                self.secret, self.ip, self.port, method, path, body=body,
                query=query, timeout=self.timeout)
        except BackendError as e:
            raise NodeUnavailable(str(e))
        _raise_for(status, data, self)
        return data

    def get_hashes(self, recalculate=()):
        """{suffix: hash} of the peer's partition, recomputing the named
        suffixes first."""
        suffixes = sorted(recalculate)
        if not suffixes:
            return self._hashes('')
        found = {}
        for start in range(0, len(suffixes), SUFFIXES_PER_REQUEST):
            found.update(self._hashes(
                '/' + '-'.join(suffixes[start:start + SUFFIXES_PER_REQUEST])))
        return found

    def _hashes(self, tail):
        data = self._request('REPLICATE', self.base_path + tail)
        try:
            found = msgpack.unpackb(data, raw=False)
        except Exception:
            raise SyncError('%r: REPLICATE answer is not msgpack' % self)
        if not isinstance(found, dict):
            raise SyncError('%r: REPLICATE answer is not a map' % self)
        return found

    def check(self, offers):
        """{hash: [names]} offered -> {hash: [names]} the peer wants."""
        wanted = {}
        hashes = sorted(offers)
        step = proto.MAX_CHECK_HASHES
        for start in range(0, len(hashes), step):
            batch = {h: offers[h] for h in hashes[start:start + step]}
            data = self._request('SYNC', self.base_path,
                                 body=proto.encode_offers(batch),
                                 query='op=check&' + self.query)
            try:
                wanted.update(proto.decode_wanted(data, batch))
            except proto.ProtocolError as e:
                raise SyncError('%r: %s' % (self, e))
        return wanted

    def push(self, files):
        """Stream ``files`` (LocalFile list) to the peer; a PushOutcome."""
        outcome = PushOutcome()
        batch, limits = [], proto.PushLimits()
        for item in files:
            size = _size_estimate(item)
            if not limits.fits(size):
                self._push_batch(batch, outcome)
                batch, limits = [], proto.PushLimits()
            limits.add(size)
            batch.append(item)
        if batch:
            self._push_batch(batch, outcome)
        return outcome

    def _push_batch(self, batch, outcome):
        wire = backend.quote_path(self.base_path)
        query = 'op=push&' + self.query
        headers = signing.sign(self.secret, 'SYNC', wire, {
            'Transfer-Encoding': 'chunked',
            'Content-Type': 'application/x-objstore-sync'}, query=query)
        conn = http.client.HTTPConnection(self.ip, self.port,
                                          timeout=self.timeout)
        try:
            conn.putrequest('SYNC', wire + '?' + query,
                            skip_accept_encoding=True)
            for key, value in headers.items():
                conn.putheader(key, value)
            conn.endheaders()
            try:
                for piece in frames(batch, outcome):
                    conn.send(b'%x\r\n%s\r\n' % (len(piece), piece))
                conn.send(b'0\r\n\r\n')
            except OSError:
                pass  # the peer hung up early: its answer says why
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise NodeUnavailable('%r: push failed: %s' % (self, e))
        finally:
            conn.close()
        _raise_for(resp.status, data, self)
        try:
            summary = proto.decode_summary(data)
        except proto.ProtocolError as e:
            raise SyncError('%r: %s' % (self, e))
        outcome.results.extend(summary['results'])


def _raise_for(status, data, peer):
    if status == 507:
        raise NodeUnavailable('%r: device unavailable (507)' % (peer,))
    if status != 200:
        raise SyncError('%r: %d %s' % (peer, status,
                                       data[:200].decode('utf-8', 'replace')))


def _size_estimate(item):
    """Bytes a file adds to a push: at least its content length."""
    if not item.name.endswith(fileset.DATA):
        return 0
    try:
        return os.stat(item.path).st_size
    except OSError:
        return 0


def _open_local(item):
    """(fd, metadata, size) of a local file ready to send.

    None when it is gone; raises md.MetadataError when its metadata is
    unreadable or does not describe it (a corrupt file).
    """
    try:
        fd = os.open(item.path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        metadata, tail = md.read_metadata(fd)
        size = 0
        if item.name.endswith(fileset.DATA):
            try:
                size = int(metadata.get('Content-Length'))
            except (TypeError, ValueError):
                raise md.MetadataError('bad Content-Length')
            if os.fstat(fd).st_size != size + tail:
                raise md.MetadataError('file size does not match metadata')
        try:
            proto.check_header({'hash': item.hash, 'file': item.name,
                                'metadata': metadata, 'size': size})
        except proto.ProtocolError as e:
            raise md.MetadataError(str(e))
        return fd, metadata, size
    except BaseException:
        os.close(fd)
        raise


def frames(batch, outcome):
    """The push body: a header and the content of each file, then END."""
    for item in batch:
        try:
            opened = _open_local(item)
        except md.MetadataError as e:
            outcome.corrupt.append((item, str(e)))
            continue
        if opened is None:
            outcome.skipped += 1
            continue
        fd, metadata, size = opened
        try:
            try:
                header = proto.encode_header(item.hash, item.name, metadata,
                                             size)
            except proto.ProtocolError:
                outcome.skipped += 1
                continue
            yield header
            md5 = hashlib.md5(usedforsecurity=False)
            pos = 0
            while pos < size:
                want = min(proto.CHUNK_SIZE, size - pos)
                chunk = os.pread(fd, want, pos)
                if not chunk:
                    # truncated under us: keep the framing whole, the
                    # receiver refuses the bad content
                    chunk = b'\0' * want
                md5.update(chunk)
                pos += len(chunk)
                yield chunk
        finally:
            os.close(fd)
        outcome.files += 1
        outcome.bytes += size
        if item.name.endswith(fileset.DATA) and \
                md5.hexdigest() != metadata['ETag']:
            outcome.corrupt.append((item, 'content does not match ETag'))
    yield proto.END_FRAME
