"""Large object bodies written and read around the page cache (O_DIRECT).

Why: copying a body into or out of the page cache was most of a large
PUT's CPU on the project's machines. A page-cache page that takes new
data costs the guest a host-side fault: 1 GiB written through the cache
took 2.0-2.7 s of kernel CPU and 0.08 s written direct; read cold, 2.1 s
through the cache and 0.1 s direct (measured,
../shared/notes/filesystem.md). On any machine a large object that goes
through the cache also evicts what small objects and the container
databases keep there.

Durability is unchanged: direct writes reach the device, and the commit
still fsyncs the file, which flushes the device's own cache and the
file's allocation.

O_DIRECT wants the buffer, the file offset and the length aligned to the
device's logical block. The body is gathered in a page-aligned buffer of
BLOCK bytes and written a whole buffer at a time, at offsets that are
multiples of BLOCK; the tail shorter than a buffer goes through the page
cache when the body ends. Reads ask for whole aligned blocks around the
range wanted. A filesystem that refuses O_DIRECT (tmpfs, some network
filesystems) gets every byte through the cache, as before.
"""
import errno
import fcntl
import mmap
import os

BLOCK = 1 << 20
# Offsets and lengths of direct reads are multiples of this; a page, as
# large as any device's logical block.
ALIGN = mmap.PAGESIZE
# Bodies smaller than this are written through the page cache: a buffer
# and a thread-pool call per MiB are not worth it for a few blocks.
MIN_SIZE = 4 * BLOCK


def set_direct(fd, on):
    """Turn O_DIRECT on or off for an open file; False if refused."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    want = flags | os.O_DIRECT if on else flags & ~os.O_DIRECT
    if want == flags:
        return on
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, want)
    except OSError as e:
        if on and e.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise
    return on


def pwrite_all(fd, data, offset):
    """os.pwrite until every byte of ``data`` is at ``offset``."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        offset += written
        view = view[written:]


class DirectAppender:
    """Appends a body to ``fd`` from offset 0, whole buffers direct.

    ``run(func, *args)`` runs each buffer's write (a blocking call that
    waits for the device) off the hub. ``finish()`` writes what is left
    and leaves ``fd`` without O_DIRECT, for the metadata written after
    the body; ``close()`` frees the buffer. The caller keeps the count
    of bytes appended.
    """

    def __init__(self, fd, run):
        self.fd = fd
        self.run = run
        self.direct = set_direct(fd, True)
        self.buf = mmap.mmap(-1, BLOCK)
        self.fill = 0       # bytes of buf not yet written
        self.offset = 0     # where buf[0] goes in the file

    def write(self, data):
        view = memoryview(data)
        while view:
            n = min(len(view), BLOCK - self.fill)
            self.buf[self.fill:self.fill + n] = view[:n]
            self.fill += n
            view = view[n:]
            if self.fill == BLOCK:
                self.run(self._write_buffer, BLOCK)

    def _write_buffer(self, length):
        """Write buf[:length] at self.offset; whole buffers go direct."""
        data = memoryview(self.buf)[:length]
        try:
            if self.direct and length == BLOCK:
                written = os.pwrite(self.fd, data, self.offset)
                if written < length:
                    # a short direct write leaves an unaligned remainder
                    self.direct = set_direct(self.fd, False)
                    pwrite_all(self.fd, data[written:],
                               self.offset + written)
            else:
                pwrite_all(self.fd, data, self.offset)
        except OSError as e:
            if e.errno != errno.EINVAL or not self.direct:
                raise
            # the device wants a coarser alignment than a page: buffered
            self.direct = set_direct(self.fd, False)
            pwrite_all(self.fd, data, self.offset)
        finally:
            data.release()
        self.offset += length
        self.fill = 0

    def finish(self):
        """Write the tail through the page cache (blocking)."""
        self.direct = set_direct(self.fd, False)
        if self.fill:
            self._write_buffer(self.fill)

    def close(self):
        if not self.buf.closed:
            self.buf.close()


class DirectReader:
    """Reads ranges of an open file (of at least MIN_SIZE) direct.

    ``fill(pos, size, digest)`` is the blocking part (run it off the
    hub): it reads the blocks around [pos, pos + size) into the buffer,
    adds the bytes of the range to ``digest`` if given and returns where
    they are in the buffer. ``take`` copies them out; it runs on the
    caller's thread, so the copy's memory never comes from a pool
    thread's malloc arena. ``size`` is at most BLOCK.
    """

    def __init__(self, fd):
        self.fd = fd
        self.direct = set_direct(fd, True)
        self.buf = mmap.mmap(-1, BLOCK + 2 * ALIGN)

    def fill(self, pos, size, digest=None):
        if size > BLOCK:
            raise ValueError('read of %d bytes, more than %d' % (size, BLOCK))
        start = pos - pos % ALIGN
        end = -(-(pos + size) // ALIGN) * ALIGN
        with memoryview(self.buf) as view:
            if self.direct:
                try:
                    got = os.preadv(self.fd, [view[:end - start]], start)
                except OSError as e:
                    if e.errno != errno.EINVAL:
                        raise
                    self.direct = set_direct(self.fd, False)
            if not self.direct:
                got = os.preadv(self.fd, [view[:end - start]], start)
            first = pos - start
            length = max(0, min(got - first, size))
            if digest is not None:
                digest.update(view[first:first + length])
        return first, length

    def take(self, first, length):
        with memoryview(self.buf) as view:
            return bytes(view[first:first + length])

    def close(self):
        if not self.buf.closed:
            self.buf.close()
