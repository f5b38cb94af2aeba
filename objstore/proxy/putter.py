"""Streaming one object body to all its replicas at once.

Each replica's object server gets the request head with ``Expect:
100-continue`` first; only nodes that answer 100 receive the body, and a
node that refuses (507, or is down) is replaced by a handoff before a
single byte is read from the client. The client's body is then read in
1 MiB chunks and handed to one green thread per node through a queue
of ``queue_depth`` chunks, so memory stays fixed whatever the object's
size and the upload runs at the pace of the slowest node still
keeping up. A node that fails mid-body is dropped; the upload goes on
while a quorum remains.
"""
import logging
from functools import partial
from time import monotonic

from objstore.common import constraints
from objstore.common.concurrency import GreenPool, Queue, Timeout, kill, \
    spawn
from objstore.common.http import HTTPError
from objstore.proxy.nodeclient import (NODE_ERRORS, RETRYABLE, Reply,
                                       describe, read_body)
from objstore.proxy.quorum import quorum_size

# 1 MiB rather than 64 KiB: per-chunk work (a read, three queue hand-offs
# and sends, the hashing calls) was a large part of the proxy's CPU for
# large uploads; 12 x 64 MiB went from 198-223 to 231-240 MB/s together
# with the object server's reads of the same size.
CHUNK_SIZE = 1024 * 1024
log = logging.getLogger('objstore.proxy')


def client_chunks(wsgi_input, length, timeout, chunk_size=CHUNK_SIZE,
                  limit=constraints.MAX_FILE_SIZE):
    """Yield the client's request body in chunks of at most chunk_size.

    ``length`` is the Content-Length (None for chunked transfer coding).
    Raises HTTPError 408 when the client stalls ``timeout`` seconds, 499
    when it goes away or sends less than it announced, 400 for a malformed
    chunked coding, 413 when a chunked body grows past ``limit``.
    """
    received = 0
    while True:
        want = chunk_size if length is None else \
            min(chunk_size, length - received)
        if want <= 0:
            return
        try:
            with Timeout(timeout):
                chunk = wsgi_input.read(want)
        except Timeout:
            raise HTTPError(408, 'timed out reading the request body')
        except ValueError as e:
            # eventlet's ChunkReadError: the chunked coding itself is bad
            # (the client is still there and sent malformed syntax)
            raise HTTPError(400, 'malformed chunked body: %s' % e)
        except OSError as e:
            raise HTTPError(499, 'client disconnected: %s' % e)
        if not chunk:
            break
        received += len(chunk)
        if received > limit:
            raise HTTPError(413, 'object larger than %d bytes' % limit)
        yield chunk
    if length is not None and received < length:
        raise HTTPError(499, 'client sent %d of %d bytes'
                        % (received, length))


def gather(calls, quorum, post_quorum_timeout, late=None):
    """Run every call (each gives a node's Reply or None) in a green
    thread of its own and return what they give, in the order they end.

    Once ``quorum`` of them have given a 2xx, the others get
    ``post_quorum_timeout`` more seconds; those still running then are
    killed, ``late(index)`` is called for each and they count as None.
    """
    done = Queue()
    waiting = {}
    for index, call in enumerate(calls):
        waiting[index] = spawn(lambda i, c: done.put((i, c())), index, call)
    replies, stored, deadline = [], 0, None
    while waiting:
        try:
            with Timeout(deadline and max(0.0, deadline - monotonic())):
                index, reply = done.get()
        except Timeout:
            break
        waiting.pop(index)
        replies.append(reply)
        if reply is not None and 200 <= reply.status < 300:
            stored += 1
            if stored >= quorum and deadline is None:
                deadline = monotonic() + post_quorum_timeout
    for index, thread in waiting.items():
        kill(thread)
        if late is not None:
            late(index)
        replies.append(None)
    return replies


class Putter:
    """One object server receiving the body, fed by its own green thread.
    """

    def __init__(self, client, node, conn, queue_depth):
        self.client = client
        self.node = node
        self.conn = conn
        self.failed = None
        self.queue = Queue(queue_depth)
        self.thread = spawn(self._write_loop)

    def _write_loop(self):
        while True:
            chunk = self.queue.get()
            try:
                if chunk is None:
                    return
                if self.failed is not None:
                    continue   # keep draining so the reader never blocks
                self.conn.send(chunk)
            except NODE_ERRORS as e:
                self.failed = e
            finally:
                self.queue.task_done()

    def send(self, data):
        """Queue bytes to send as they are (Upload frames chunks and
        writes the end of a chunked body)."""
        self.queue.put(data)

    def check(self, body_left=True):
        """Wait until the queue is written; then a node that has closed
        the connection or answered before the end of the body is failed.

        With nothing left to send (an empty body) an answer already
        waiting is the node's final one, not a sign it gave up.
        """
        self.queue.join()
        if self.failed is None and body_left and self.conn.is_stale():
            self.failed = ConnectionResetError('node gave up mid-body')

    def finish(self):
        """Wait until everything queued is written."""
        self.queue.put(None)
        self.thread.wait()

    def response(self, timeout, path):
        """The node's final answer (a Reply), None if it failed.

        A connection given back to the pool is no longer this putter's:
        ``conn`` is None from then on, so close() never touches a socket
        another request may be using.
        """
        if self.failed is None:
            try:
                self.conn.set_timeout(timeout)
                resp = self.conn.getresponse()
                body = read_body(resp)
                conn, self.conn = self.conn, None
                self.client.release(conn, resp)
                self.client.note_status(self.node, resp.status, 'PUT', path)
                return Reply(self.node, resp.status, resp.getheaders(), body)
            except NODE_ERRORS as e:
                self.failed = e
        self.close()
        self.client.note_failure(self.node, 'PUT', path, self.failed)
        return None

    def close(self):
        """Drop the connection unless it went back to the pool."""
        if self.conn is not None:
            self.conn.close()

    def abort(self):
        kill(self.thread)
        self.close()


class Upload:
    """One object PUT to every replica slot (handoffs standing in).

    ``headers_for(i)``: slot i's request headers; ``length``: the body's
    length, None for chunked.
    """

    def __init__(self, client, slots, path, headers_for, length,
                 queue_depth=4, chunked=False):
        self.client = client
        self.slots = slots
        self.path = path
        self.headers_for = headers_for
        self.length = length
        # chunked: the nodes get a chunked body whatever the client sent
        # (for a trailer); ``length`` is then only announced in a header
        self.chunked = chunked or length is None
        self.queue_depth = queue_depth
        self.putters = []
        self.early = []     # final answers to the request head (no 100)
        self._held = None
        self.quorum = quorum_size(len(slots))

    def _connect_node(self, node, index):
        """A Putter, or the node's final Reply, or None if it failed."""
        client = self.client
        headers = dict(self.headers_for(index), Expect='100-continue')
        target, signed = client.signed_head(
            node, self.slots.part, 'PUT', self.path, headers,
            length=None if self.chunked else self.length)
        for attempt in (0, 1):
            conn = (client.pool.get if attempt == 0 else client.pool.new)(
                node['ip'], node['port'])
            try:
                client.send_head(conn, 'PUT', target, signed)
                status = conn.expect_continue()
                if status == 100:
                    return Putter(client, node, conn, self.queue_depth)
                resp = conn.getresponse()
                body = read_body(resp)
            except RETRYABLE as e:
                conn.close()
                if conn.reused and attempt == 0:
                    continue
                client.note_failure(node, 'PUT', self.path, e)
                return None
            except NODE_ERRORS as e:
                conn.close()
                client.note_failure(node, 'PUT', self.path, e)
                return None
            # the server may drop the connection without saying so after
            # refusing a body it never asked for: never reuse it
            conn.close()
            client.note_status(node, resp.status, 'PUT', self.path)
            return Reply(node, resp.status, resp.getheaders(), body)
        return None

    def connect(self):
        """Get every slot a node ready for the body. Returns the number
        of nodes that are; ``early`` holds the final answers of others."""
        slots = self.slots

        def one(index):
            last = None
            for node in slots.candidates(index):
                result = self._connect_node(node, index)
                if isinstance(result, Putter):
                    return result
                if result is not None:
                    last = result
                    if result.status < 500:
                        return result
            return last

        results = list(GreenPool(len(slots)).imap(one, range(len(slots))))
        self.putters = [r for r in results if isinstance(r, Putter)]
        self.early = [r for r in results if isinstance(r, Reply)]
        return len(self.putters)

    def live(self):
        return [p for p in self.putters if p.failed is None]

    def _send_now(self, chunk):
        live = self.live()
        if len(live) < self.quorum:
            raise HTTPError(503, 'lost too many object servers mid-upload')
        if self.chunked:
            # framed once for all the nodes, not copied once per node
            chunk = b'%x\r\n' % len(chunk) + chunk + b'\r\n'
        for putter in live:
            putter.send(chunk)

    def send(self, chunk):
        """Queue a chunk for every live node; HTTPError 503 when fewer
        than a quorum are left.

        The latest chunk is held back until the next one comes (or
        finish()), so the end of the body is only sent when a quorum is
        known to be still there: otherwise no node commits the object.
        """
        if not chunk:
            return          # framed, an empty chunk would end the body
        if self._held is not None:
            self._send_now(self._held)
        self._held = chunk

    def finish(self, timeout, post_quorum_timeout=0.5, trailer=b''):
        """End the body everywhere and collect the final answers.

        HTTPError 503 (and nothing committed) when fewer than a quorum
        of nodes are still taking the body. Once a quorum has stored the
        object, the others get ``post_quorum_timeout`` more seconds: a
        node cut off from the network (whose socket took the whole body
        into its buffer) must not hold the client for ``timeout``; what
        it misses, replication brings it. A straggler is not an error
        (it is often just waiting on a container update it will save for
        the updater), so it is not error-limited.
        """
        # an empty body is all sent once the nodes said 100-continue
        body_left = self.length != 0
        for putter in self.putters:
            putter.check(body_left)
        if self._held is not None:
            self._send_now(self._held)
            self._held = None
        elif len(self.live()) < self.quorum:
            raise HTTPError(503, 'lost too many object servers mid-upload')
        end = b'0\r\n' + trailer + b'\r\n' if self.chunked else None
        for putter in self.putters:
            if end is not None:
                putter.send(end)
            putter.finish()
        return self._answers(timeout, post_quorum_timeout) + self.early

    def _answers(self, timeout, post_quorum_timeout):
        putters = self.putters

        def late(index):
            putters[index].close()
            log.info('PUT %s: answered at quorum without %s', self.path,
                     describe(putters[index].node))
        return gather([partial(p.response, timeout, self.path)
                       for p in putters], self.quorum, post_quorum_timeout,
                      late)

    def abort(self):
        """Drop every connection: the nodes see a short body and store
        nothing."""
        for putter in self.putters:
            putter.abort()
