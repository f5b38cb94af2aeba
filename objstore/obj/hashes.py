"""Per-partition suffix hashes: what the replicator compares between nodes.

Each suffix directory of a partition gets an md5 over the names of the
files that count in it (after cleanup). The hashes are cached in
``<partition>/hashes.msgpack`` (suffix -> hex hash, or None when it must be
recomputed). Every write appends its suffix to ``hashes.invalid`` — a cheap
append under the partition lock instead of rewriting the cache on every
PUT — and get_hashes() folds those in, recomputes what is stale and saves
the cache again. A missing or damaged cache means: rescan everything; so
while a partition has no cache (a new one has none until the replicator
first asks) a write marks nothing and makes no ``hashes.invalid``.

The partition lock is an flock on the partition dir itself: no lock file
to make in every new partition. (Partitions made before this keep a
``.lock`` file nobody uses any more; removing an empty partition removes
it too.)
"""
import fcntl
import hashlib
import os
from contextlib import contextmanager

import msgpack

from objstore.obj import fileset

HASHES_FILE = 'hashes.msgpack'
INVALID_FILE = 'hashes.invalid'
# what earlier versions locked; still removed with an empty partition
LEGACY_LOCK_FILE = '.lock'


@contextmanager
def partition_lock(partition_dir):
    """An exclusive flock on the partition dir (blocks; call from a thread).

    The holder may remove the partition dir (the replicator emptying a
    handoff partition); a waiter that then wakes up holding the removed
    dir tries again, so the dir exists and the lock is real while held.
    """
    while True:
        try:
            fd = os.open(partition_dir,
                         os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            # no partition dir (yet, or any more): make it and try again
            os.makedirs(partition_dir, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                current = os.stat(partition_dir)
                if (current.st_dev, current.st_ino) == \
                        (st.st_dev, st.st_ino):
                    break
            except FileNotFoundError:
                pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)


def is_suffix(name):
    return len(name) == 3 and all(c in '0123456789abcdef' for c in name)


@contextmanager
def changing(partition_dir, suffix):
    """Hold the partition lock while ``suffix`` changes, marked stale
    first (blocking: call from a thread).

    The change (a rename into the suffix) goes inside the block: a
    get_hashes() cannot then fold in the mark and rehash the suffix in
    between, which would leave the cache without the change and without
    a mark. A crash between mark and change costs a needless rehash."""
    with partition_lock(partition_dir):
        _mark(partition_dir, suffix)
        yield


def invalidate(partition_dir, suffix):
    """Mark ``suffix`` of the partition as changed, after the change."""
    with changing(partition_dir, suffix):
        pass


def _mark(partition_dir, suffix):
    """One O_APPEND write of the line, with no file object around it
    (that costs three more system calls); nothing at all while the
    partition has no cache, which means a full rescan anyway. Under the
    partition lock."""
    path = os.path.join(partition_dir, INVALID_FILE)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if not os.path.exists(os.path.join(partition_dir, HASHES_FILE)):
            return
        fd = os.open(path, flags | os.O_CREAT, 0o644)
    try:
        os.write(fd, (suffix + '\n').encode('ascii'))
    finally:
        os.close(fd)


def hash_suffix(suffix_dir, reclaim_age=fileset.DEFAULT_RECLAIM_AGE):
    """md5 hex over the hash dirs and their current files; None if empty.

    Cleans each hash dir first so obsolete files never count; removes
    the suffix dir when nothing is left in it.
    """
    md5 = hashlib.md5(usedforsecurity=False)
    found = False
    for hsh in sorted(fileset.list_dir(suffix_dir)):
        path = os.path.join(suffix_dir, hsh)
        if not os.path.isdir(path):
            continue
        fileset.cleanup_dir(path, reclaim_age)
        names = sorted(fileset.list_dir(path))
        for name in names:
            md5.update(('%s/%s\n' % (hsh, name)).encode('utf-8'))
            found = True
    if not found:
        try:
            os.rmdir(suffix_dir)
        except OSError:
            pass
        return None
    return md5.hexdigest()


def _load(partition_dir):
    try:
        with open(os.path.join(partition_dir, HASHES_FILE), 'rb') as f:
            value = msgpack.unpackb(f.read(), raw=False)
        if isinstance(value, dict):
            return value
    except (OSError, ValueError, msgpack.UnpackException):
        pass
    return None


def _save(partition_dir, hashes):
    path = os.path.join(partition_dir, HASHES_FILE)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(msgpack.packb(hashes, use_bin_type=True))
    os.replace(tmp, path)


def get_hashes(partition_dir, recalculate=(),
               reclaim_age=fileset.DEFAULT_RECLAIM_AGE):
    """{suffix: hex hash} for the partition, recomputing what is stale.

    ``recalculate``: suffixes to recompute even when cached (the
    replicator names those it just pushed to). Blocks on the partition
    lock and on disk: call it from a thread.
    """
    if not os.path.isdir(partition_dir):
        return {}
    with partition_lock(partition_dir):
        hashes = _load(partition_dir)
        if hashes is None:
            hashes = {name: None for name in os.listdir(partition_dir)
                      if is_suffix(name)}
        invalid_path = os.path.join(partition_dir, INVALID_FILE)
        try:
            with open(invalid_path) as f:
                stale = f.read().split()
        except FileNotFoundError:
            stale = []
        for suffix in list(stale) + list(recalculate):
            if is_suffix(suffix):
                hashes[suffix] = None
        for suffix in [s for s, h in hashes.items() if h is None]:
            value = hash_suffix(os.path.join(partition_dir, suffix),
                                reclaim_age)
            if value is None:
                del hashes[suffix]
            else:
                hashes[suffix] = value
        _save(partition_dir, hashes)
        if stale:
            with open(invalid_path, 'w'):
                pass
    return hashes
