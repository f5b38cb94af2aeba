"""How fast the disk under the clusters takes fsync'd sequential writes.

One of the comparison's targets is relative to the machine itself: a
large-object PUT writes every byte three times (one per replica) and
must fsync it before answering, so no server can store more than about
(the disk's fsync'd sequential MB/s) / replicas. This measures that
figure in the same run and in the directory the clusters keep their data
in: ``size`` bytes written in 1 MiB chunks of random data to a new file,
then one fsync (as an object server does at the end of a PUT), timed
from open to the fsync's return; the file is removed afterwards.
"""
import os
import time

CHUNK = 1 << 20


def fsync_write_mb_per_s(directory, size=256 << 20):
    """MB/s (10**6 bytes) of writing ``size`` bytes + fsync in directory."""
    buf = os.urandom(CHUNK)
    path = os.path.join(directory, '.disk-write-test.%d' % os.getpid())
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        left = size
        while left > 0:
            left -= os.write(fd, buf if left >= CHUNK else buf[:left])
        os.fsync(fd)
        seconds = time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(path)
    return {'bytes': size, 'seconds': round(seconds, 3),
            'mb_per_s': round(size / seconds / 1e6, 1)}


def _busy_ms(device):
    """Milliseconds ``device`` has spent doing I/O (/proc/diskstats)."""
    with open('/proc/diskstats') as f:
        for line in f:
            fields = line.split()
            if fields[2] == device:
                return int(fields[12])
    return None


def device_of(directory):
    """The block device name (as /proc/diskstats has it) under directory,
    or None."""
    st = os.stat(directory)
    try:
        link = os.readlink('/sys/dev/block/%d:%d' % (
            os.major(st.st_dev), os.minor(st.st_dev)))
    except OSError:
        return None
    name = os.path.basename(link)
    return name if _busy_ms(name) is not None else None


def settle(directory, quiet=0.1, window=1.0, timeout=120.0):
    """Flush dirty pages and wait until the disk under ``directory`` is
    busy less than ``quiet`` of a ``window`` (or ``timeout`` passes).

    A benchmark's cleanup (thousands of deletes, gigabytes discarded)
    keeps the disk busy for many seconds after it returns; without this
    the next cluster's run paid for the previous one's. Returns the
    seconds waited."""
    start = time.monotonic()
    os.sync()
    device = device_of(directory)
    if device is None:
        return time.monotonic() - start
    while time.monotonic() - start < timeout:
        before = _busy_ms(device)
        time.sleep(window)
        if _busy_ms(device) - before < quiet * window * 1000:
            break
    return time.monotonic() - start
