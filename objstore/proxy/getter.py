"""Reading an object: the first node with an answer, failover mid-stream.

Nodes are asked one after the other (primaries in ring order, then
handoffs); a node that is down, slow or answers 5xx or 404 makes way for
the next, as a replica written while a primary was down lives on a
handoff. Once a body is flowing, a node that dies or stalls
``node_timeout`` seconds is replaced by the next one, asked for just the
remaining bytes of the same version (``Range`` plus ``If-Match`` on the
ETag), so the client sees one uninterrupted body. With ``X-Newest``
every primary is asked at once and the newest version wins.
"""
import logging
import re

from objstore.common.concurrency import GreenPool
from objstore.common.crc import crc32c
from objstore.proxy.nodeclient import (NODE_ERRORS, Reply, describe,
                                       read_body, read_chunk)
from objstore.proxy.quorum import newest, object_state_time, quorum_size

# Bodies pass through in chunks of up to this many bytes, read as they
# come (read1): the object server sends 1 MiB at a time
# (diskfile.READ_CHUNK_SIZE), and at 64 KiB the proxy spent more on the
# Python work per chunk than on the bytes. Memory stays fixed: one
# chunk per request in flight.
CHUNK_SIZE = 1024 * 1024
CONTENT_RANGE = re.compile(r'^bytes (\d+)-(\d+)/(\d+)$')
# what a resumed request must not carry from the client's
RESUME_DROPPED = ('range', 'if-match', 'if-none-match', 'if-modified-since',
                  'if-unmodified-since', 'if-range')
MISSING = 'missing'     # a node's 404, as _decide reports it
log = logging.getLogger('objstore.proxy')


def span_of(status, headers):
    """(first byte, last byte) a 200/206 body covers, None if unknown or
    multipart (a multipart body is not resumed)."""
    if status == 200:
        length = headers.get('content-length')
        if length is None or not length.isdigit():
            return None
        return 0, int(length) - 1
    match = CONTENT_RANGE.match(headers.get('content-range') or '')
    if status == 206 and match:
        return int(match.group(1)), int(match.group(2))
    return None


class Answer:
    """What the proxy answers: status, header pairs and a body iterable."""

    __slots__ = ('status', 'headers', 'body')

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body


class _Body:
    """The body iterator handed to the WSGI server: its close() releases
    the node's connection even when no chunk was ever asked for."""

    def __init__(self, chunks, conn):
        self._chunks = chunks
        self._conn = conn

    def __iter__(self):
        return self

    def __next__(self):
        self._conn = None   # from now on the generator owns it
        return next(self._chunks)

    def close(self):
        if self._conn is not None:
            self._conn.close()
        self._chunks.close()


class ObjectReader:

    def __init__(self, client, slots, method, path, headers,
                 chunk_size=CHUNK_SIZE):
        self.client = client
        self.slots = slots
        self.part = slots.part
        self.method = method
        self.path = path
        self.headers = headers
        self.chunk_size = chunk_size
        self.nodes = slots.in_order()

    # -- the first answer --------------------------------------------------

    def _open(self, node, headers=None):
        return self.client.open(node, self.part, self.method, self.path,
                                headers or self.headers)

    def _read_whole(self, node, conn, resp):
        try:
            body = read_body(resp)
        except NODE_ERRORS as e:
            conn.close()
            self.client.note_failure(node, self.method, self.path, e)
            return None
        self.client.release(conn, resp)
        return Reply(node, resp.status, resp.getheaders(), body)

    def _decide(self, node, conn, resp, missing):
        """An Answer when this node's answer is the one; MISSING for a
        404 (kept in ``missing``); None when the node failed."""
        status = resp.status
        if 200 <= status < 300 and self.method == 'GET':
            return Answer(status, resp.getheaders(),
                          _Body(self._body(node, conn, resp), conn))
        reply = self._read_whole(node, conn, resp)
        if reply is None or status >= 500 or status == 401:
            return None   # a failure; 401 means this node has other secrets
        if status == 404:
            missing.append(reply)
            return MISSING
        return Answer(status, reply.headers, [reply.body])

    def answer(self, newest_wins=False):
        """The Answer to give the client (404 or 503 when no node has one).
        """
        missing = []
        if newest_wins:
            found = self._answer_newest(missing)
            if found is not None:
                return found
        failed = 0
        for node in self.nodes:
            opened = self._open(node)
            found = None if opened is None else \
                self._decide(node, *opened, missing)
            if found is None:
                failed += 1
            elif found is not MISSING:
                return found
        # "not found" needs a quorum of nodes saying so (or nobody failing):
        # a node that did not answer may be the one holding the object
        if missing and (not failed or len(missing) >= quorum_size(
                len(self.slots))):
            return Answer(404, missing[0].headers, [missing[0].body])
        return Answer(503, [], [b'no object server answered\n'])

    def _answer_newest(self, missing):
        """Ask every primary at once and take the newest answer; the
        others are dropped."""
        primaries = [n for n in self.slots.primaries
                     if not self.client.limiter.is_limited(n)]
        if not primaries:
            return None
        opened = list(GreenPool(len(primaries)).imap(self._open, primaries))
        heads = []
        for node, pair in zip(primaries, opened):
            if pair is not None:
                heads.append(Reply(node, pair[1].status,
                                   pair[1].getheaders()))
        best = newest(heads, object_state_time)
        found = None
        for node, pair in zip(primaries, opened):
            if pair is None:
                continue
            if best is not None and node is best.node:
                found = self._decide(node, pair[0], pair[1], missing)
            else:
                pair[0].close()
        # the other primaries were asked already: reads go on at handoffs
        self.nodes = (n for n in self.nodes if n not in primaries)
        if found is MISSING:
            # the newest word is a delete: older copies elsewhere are stale
            return Answer(404, missing[-1].headers, [missing[-1].body])
        return found

    # -- the body ------------------------------------------------------------

    def _resume(self, offset, last, etag):
        """(node, conn, resp) going on at byte ``offset``, or None."""
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in RESUME_DROPPED}
        headers['Range'] = 'bytes=%d-%d' % (offset, last)
        headers['If-Match'] = etag
        for node in self.nodes:
            opened = self._open(node, headers)
            if opened is None:
                continue
            conn, resp = opened
            span = span_of(resp.status, {k.lower(): v for k, v in
                                         resp.getheaders()})
            if resp.status == 206 and span == (offset, last):
                return node, conn, resp
            self._read_whole(node, conn, resp)
        return None

    def _prefix_crc(self, node, first, last, etag):
        """CRC-32C of bytes first..last of ``node``'s copy, None if it
        cannot give them."""
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in RESUME_DROPPED}
        headers['Range'] = 'bytes=%d-%d' % (first, last)
        headers['If-Match'] = etag
        opened = self._open(node, headers)
        if opened is None:
            return None
        conn, resp = opened
        if resp.status != 206:
            self._read_whole(node, conn, resp)
            return None
        crc, size = 0, 0
        try:
            while True:
                chunk = read_chunk(resp, self.chunk_size)
                if not chunk:
                    break
                crc = crc32c(chunk, crc)
                size += len(chunk)
        except NODE_ERRORS:
            conn.close()
            return None
        self.client.release(conn, resp)
        return crc if size == last - first + 1 else None

    def _body(self, node, conn, resp):
        """The body's chunks, continued on another node after a failure.

        A node that finds its copy damaged (MD5 mismatch) stops before
        its last chunk, so the client never gets a complete bad object
        from it; but the bytes it did send may be the damaged ones. So
        before going on at another node, the bytes already sent are
        compared (CRC-32C, kept as they pass, cheap next to MD5) with the
        same range of the new node's copy: if they differ, the response
        is cut short rather than completed with the damage inside.
        """
        head = {k.lower(): v for k, v in resp.getheaders()}
        span = span_of(resp.status, head)
        etag = head.get('etag')
        offset = span[0] if span else 0
        sent_crc = 0
        try:
            while True:
                try:
                    chunk = read_chunk(resp, self.chunk_size)
                    if not chunk and resp.length:
                        # eventlet's http.client ends a cut body quietly
                        raise ConnectionResetError(
                            'body ended %d bytes short' % resp.length)
                except NODE_ERRORS as e:
                    chunk, error = None, e
                if chunk:
                    offset += len(chunk)
                    sent_crc = crc32c(chunk, sent_crc)
                    yield chunk
                    continue
                if chunk is not None:   # b'': all of it
                    self.client.release(conn, resp)
                    conn = None
                    return
                conn.close()
                conn = None
                self.client.note_failure(node, 'GET', self.path, error)
                if span is None or etag is None:
                    log.warning('GET %s: %s failed mid-body and cannot be '
                                'resumed', self.path, describe(node))
                    return
                resumed = self._resume(offset, span[1], etag)
                if resumed is None:
                    log.warning('GET %s: no node could go on at byte %d',
                                self.path, offset)
                    return
                node, conn, resp = resumed
                if offset > span[0] and self._prefix_crc(
                        node, span[0], offset - 1, etag) != sent_crc:
                    log.error('GET %s: the %d bytes sent differ from %s\'s '
                              'copy; cutting the response short', self.path,
                              offset - span[0], describe(node))
                    return
        finally:
            if conn is not None:
                conn.close()
