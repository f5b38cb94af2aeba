"""The image cache's own logic: hits, misses, verification, locking, usage
and expiry, on a real directory.

The store here is `DictStoreForCacheLogic`, a tiny in-test object that
serves bytes from a dict through the two calls the cache makes (show,
open). It exists only to drive the cache's logic; the cache against the
real ImageStore and objstore is in test/functional/test_image_cache.py.
"""
import hashlib
import json
import os
import stat
import threading
import time
import uuid

import pytest

from compute.agent.image_cache import (ImageCache, ImageFetchError,
                                       PART_MAX_AGE)
from compute.image.store import ImageChecksumError, ImageNotFound

DAY = 24 * 3600
T0 = 1_000_000.0


class DictStoreForCacheLogic:
    """Serves images from a dict {id: bytes}; counts open() calls.

    `props` can be changed to say something other than the bytes (to
    simulate damage), `gates[id]` (an Event) makes that image's download
    wait after its first chunk until set, `started` is set once any
    download has passed its first chunk, and
    `raise_at_end` makes the iterator end with ImageChecksumError, as the
    real store's verifying iterator does.
    """

    def __init__(self):
        self.data, self.props = {}, {}
        self.opens = 0
        self.lock = threading.Lock()
        self.gates = {}
        self.started = threading.Event()
        self.raise_at_end = False

    def put(self, image_id, data, disk_format='raw'):
        self.data[image_id] = data
        self.props[image_id] = {'id': image_id, 'size': len(data),
                                'checksum': hashlib.md5(data).hexdigest(),
                                'disk_format': disk_format,
                                'status': 'active'}

    def show(self, image_id):
        if image_id not in self.props:
            raise ImageNotFound('no image %s' % image_id)
        return dict(self.props[image_id])

    def open(self, image_id, verify=True):
        with self.lock:
            self.opens += 1
        return self._chunks(image_id, self.data[image_id])

    def _chunks(self, image_id, data):
        for i in range(0, len(data), 4096):
            yield data[i:i + 4096]
            self.started.set()
            gate = self.gates.get(image_id)
            if gate is not None:
                assert gate.wait(10)
        if self.raise_at_end:
            raise ImageChecksumError('bytes do not match')


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def new_id():
    return str(uuid.uuid4())


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cache(tmp_path, clock):
    return ImageCache(str(tmp_path / 'cache'), max_unused_age=DAY,
                      clock=clock)


@pytest.fixture
def store():
    return DictStoreForCacheLogic()


def listing(cache):
    """The cache directory's files (its fixed `users` directory aside)."""
    return sorted(n for n in os.listdir(cache.directory) if n != 'users')


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def wait_for_flock_waiter(path, timeout=5.0):
    """Wait until some thread is blocked in flock on `path` (seen in
    /proc/locks as a '->' line for the file's inode)."""
    ino = os.stat(path).st_ino
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open('/proc/locks') as f:
            for line in f:
                fields = line.split()
                if '->' in fields and fields[fields.index('->') + 1] == \
                        'FLOCK' and fields[-3].endswith(':%d' % ino):
                    return True
        time.sleep(0.005)
    return False


# --- hit and miss -------------------------------------------------------------

def test_miss_downloads_then_hit_does_not(cache, store):
    image_id = new_id()
    data = os.urandom(10000)
    store.put(image_id, data, disk_format='qcow2')
    assert cache.path(image_id) is None

    path = cache.fetch(image_id, store)
    assert path == os.path.join(cache.directory, image_id)
    assert os.path.isabs(path)
    assert read(path) == data
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert store.opens == 1
    assert cache.path(image_id) == path

    assert cache.fetch(image_id, store) == path
    assert store.opens == 1
    assert sorted(listing(cache)) == sorted(
        [image_id, image_id + '.json', '.%s.lock' % image_id])


def test_record_says_what_was_fetched(cache, store, clock):
    image_id = new_id()
    store.put(image_id, b'kernel bytes', disk_format='aki')
    cache.fetch(image_id, store)
    with open(os.path.join(cache.directory, image_id + '.json')) as f:
        record = json.load(f)
    assert record == {'checksum': hashlib.md5(b'kernel bytes').hexdigest(),
                      'size': 12, 'disk_format': 'aki', 'fetched_at': T0}
    assert cache.last_used(image_id) == T0


def test_hit_touches_last_use(cache, store, clock):
    image_id = new_id()
    store.put(image_id, b'x' * 100)
    cache.fetch(image_id, store)
    clock.now = T0 + 500
    cache.fetch(image_id, store)
    assert cache.last_used(image_id) == T0 + 500
    assert store.opens == 1


def test_checksum_change_in_store_refetches(cache, store):
    image_id = new_id()
    store.put(image_id, b'old' * 1000)
    path = cache.fetch(image_id, store)
    store.put(image_id, b'new' * 1000)
    assert cache.fetch(image_id, store) == path
    assert read(path) == b'new' * 1000
    assert store.opens == 2
    assert not [n for n in listing(cache) if n.endswith('.part')]


def test_changed_image_in_use_is_not_replaced(cache, store):
    image_id = new_id()
    store.put(image_id, b'old' * 1000)
    path = cache.fetch(image_id, store)
    cache.acquire(image_id, new_id())
    store.put(image_id, b'new' * 1000)
    with pytest.raises(ImageFetchError, match='used by 1 instance'):
        cache.fetch(image_id, store)
    assert read(path) == b'old' * 1000
    assert store.opens == 1


def test_missing_record_means_refetch(cache, store):
    """A crash between the image's rename and its record's write."""
    image_id = new_id()
    store.put(image_id, b'abc' * 100)
    path = cache.fetch(image_id, store)
    os.unlink(path + '.json')
    assert cache.path(image_id) is None
    assert cache.fetch(image_id, store) == path
    assert store.opens == 2


def test_truncated_cached_file_is_refetched(cache, store):
    image_id = new_id()
    store.put(image_id, b'abc' * 100)
    path = cache.fetch(image_id, store)
    os.chmod(path, 0o644)
    with open(path, 'r+b') as f:
        f.truncate(10)
    cache.fetch(image_id, store)
    assert read(path) == b'abc' * 100
    assert store.opens == 2


def test_empty_image(cache, store):
    image_id = new_id()
    store.put(image_id, b'')
    assert read(cache.fetch(image_id, store)) == b''


def test_store_factory_used_without_a_store(tmp_path, store):
    image_id = new_id()
    store.put(image_id, b'data')
    cache = ImageCache(str(tmp_path / 'c'), store_factory=lambda: store)
    assert read(cache.fetch(image_id)) == b'data'
    bare = ImageCache(str(tmp_path / 'd'))
    with pytest.raises(ValueError, match='store'):
        bare.fetch(image_id)


# --- failures leave nothing ---------------------------------------------------

def test_wrong_bytes_raise_and_leave_nothing(cache, store):
    image_id = new_id()
    store.put(image_id, b'good' * 1000)
    store.data[image_id] = b'evil' * 1000  # same size, other bytes
    with pytest.raises(ImageFetchError, match='md5') as info:
        cache.fetch(image_id, store)
    assert image_id in str(info.value)
    assert listing(cache) == []
    assert cache.path(image_id) is None


def test_wrong_size_raises_and_leaves_nothing(cache, store):
    image_id = new_id()
    store.put(image_id, b'good' * 1000)
    store.data[image_id] = b'good' * 999
    with pytest.raises(ImageFetchError, match='3996 bytes'):
        cache.fetch(image_id, store)
    assert listing(cache) == []


def test_store_checksum_error_is_the_cause(cache, store):
    image_id = new_id()
    store.put(image_id, b'a' * 9000)
    store.raise_at_end = True
    with pytest.raises(ImageFetchError) as info:
        cache.fetch(image_id, store)
    assert isinstance(info.value.__cause__, ImageChecksumError)
    assert listing(cache) == []


def test_failed_refetch_keeps_the_old_pair_consistent(cache, store):
    """A failed replacement must not leave the new record beside the old
    bytes, nor any temp file."""
    image_id = new_id()
    store.put(image_id, b'old' * 100)
    path = cache.fetch(image_id, store)
    store.put(image_id, b'new' * 100)
    store.data[image_id] = b'bad' * 100
    with pytest.raises(ImageFetchError):
        cache.fetch(image_id, store)
    assert read(path) == b'old' * 100
    assert not [n for n in listing(cache) if n.endswith('.part')]
    store.data[image_id] = b'new' * 100
    assert read(cache.fetch(image_id, store)) == b'new' * 100


def test_unknown_image_raises_fetch_error(cache, store):
    with pytest.raises(ImageFetchError) as info:
        cache.fetch(new_id(), store)
    assert isinstance(info.value.__cause__, ImageNotFound)
    assert listing(cache) == []


def test_image_without_checksum_is_refused(cache, store):
    image_id = new_id()
    store.put(image_id, b'x')
    del store.props[image_id]['checksum']
    store.props[image_id]['status'] = 'saving'
    with pytest.raises(ImageFetchError, match='saving'):
        cache.fetch(image_id, store)
    assert store.opens == 0


# --- concurrency --------------------------------------------------------------

def test_concurrent_fetches_of_one_image_download_once(cache, store):
    image_id = new_id()
    data = os.urandom(20000)
    store.put(image_id, data)
    gate = store.gates[image_id] = threading.Event()
    results, errors = [], []

    def fetch():
        try:
            results.append(cache.fetch(image_id, store))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    first = threading.Thread(target=fetch)
    first.start()
    assert store.started.wait(5)  # the first is downloading, lock held
    second = threading.Thread(target=fetch)
    second.start()
    assert wait_for_flock_waiter(os.path.join(
        cache.directory, '.%s.lock' % image_id))
    gate.set()
    first.join(10)
    second.join(10)
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert read(results[0]) == data
    assert store.opens == 1


def test_fetch_of_another_image_is_not_blocked(cache, store):
    slow, quick = new_id(), new_id()
    slow_data = os.urandom(20000)
    store.put(slow, slow_data)
    store.put(quick, b'quick')
    gate = store.gates[slow] = threading.Event()
    thread = threading.Thread(target=cache.fetch, args=(slow, store))
    thread.start()
    try:
        assert store.started.wait(5)
        assert read(cache.fetch(quick, store)) == b'quick'
        assert thread.is_alive()  # the slow one is still downloading
        assert cache.path(slow) is None
    finally:
        gate.set()
        thread.join(10)
    assert read(cache.path(slow)) == slow_data


def test_concurrent_fetch_across_processes_downloads_once(cache, store,
                                                          tmp_path):
    """The lock is an flock on a file, so it also holds between
    processes: a child that fetches while the parent holds the image's
    lock finds the image cached once it gets the lock."""
    image_id = new_id()
    store.put(image_id, b'shared' * 1000)
    go_r, go_w = os.pipe()
    result_r, result_w = os.pipe()
    # fork before taking the lock: a forked child shares the parent's open
    # lock file, and with it the parent's flock, for as long as it lives
    pid = os.fork()
    if pid == 0:  # child: wait for the go, fetch, report its opens
        try:
            os.read(go_r, 1)
            cache.fetch(image_id, store)
            os.write(result_w, str(store.opens).encode())
        finally:
            os._exit(0)
    os.close(result_w)
    try:
        with cache._locked(image_id):
            os.write(go_w, b'x')
            assert wait_for_flock_waiter(os.path.join(
                cache.directory, '.%s.lock' % image_id))
            cache._download(store, image_id, cache._wanted(store, image_id))
        child_opens = os.read(result_r, 100)
    finally:
        for fd in (go_r, go_w, result_r):
            os.close(fd)
        os.waitpid(pid, 0)
    assert child_opens == b'0'
    assert store.opens == 1


# --- users and expiry ---------------------------------------------------------

def test_acquire_release_and_users(cache, store):
    image_id, a, b = new_id(), new_id(), new_id()
    assert not cache.in_use(image_id)
    cache.acquire(image_id, a)
    cache.acquire(image_id, b)
    cache.acquire(image_id, a)  # idempotent
    assert cache.users(image_id) == sorted([a, b])
    assert cache.in_use(image_id)
    cache.release(image_id, a)
    cache.release(image_id, a)  # idempotent
    assert cache.users(image_id) == [b]
    cache.release(image_id, b)
    assert not cache.in_use(image_id)
    assert not os.path.exists(os.path.join(cache.directory, 'users',
                                           image_id))


def test_expire_keeps_used_and_recent_removes_old(cache, store, clock):
    used, recent, old = new_id(), new_id(), new_id()
    for image_id in (used, recent, old):
        store.put(image_id, image_id.encode())
        cache.fetch(image_id, store)
    cache.acquire(used, new_id())
    clock.now = T0 + DAY
    cache.fetch(recent, store)  # a hit: a use
    clock.now = T0 + DAY + 10

    assert cache.expire() == [old]
    assert cache.path(old) is None
    assert cache.path(used) is not None
    assert cache.path(recent) is not None
    assert not [n for n in listing(cache) if old in n]  # record, lock too

    clock.now = T0 + 3 * DAY
    assert cache.expire() == [recent]
    assert cache.path(used) is not None


def test_release_counts_as_a_use(cache, store, clock):
    image_id, instance = new_id(), new_id()
    store.put(image_id, b'disk')
    cache.acquire(image_id, instance)
    cache.fetch(image_id, store)
    clock.now = T0 + 2 * DAY
    assert cache.expire() == []  # in use, however old
    cache.release(image_id, instance)
    clock.now = T0 + 3 * DAY
    assert cache.expire() == []  # released a day ago, not more
    clock.now = T0 + 3 * DAY + 1
    assert cache.expire() == [image_id]
    assert listing(cache) == []


def test_expire_skips_an_image_whose_lock_is_held(cache, store, clock):
    image_id = new_id()
    store.put(image_id, b'busy')
    cache.fetch(image_id, store)
    clock.now = T0 + 2 * DAY
    with cache._locked(image_id):  # as a fetch in progress would
        assert cache.expire() == []
    assert cache.path(image_id) is not None
    assert cache.expire() == [image_id]


def test_expire_removes_stale_parts_only(cache, store, clock):
    image_id = new_id()
    stale = os.path.join(cache.directory, '.%s.abc.part' % image_id)
    fresh = os.path.join(cache.directory, '.%s.def.part' % image_id)
    for path, age in ((stale, PART_MAX_AGE + 60), (fresh, 60)):
        with open(path, 'wb') as f:
            f.write(b'half')
        os.utime(path, (clock.now - age, clock.now - age))
    assert cache.expire() == []
    assert not os.path.exists(stale)
    assert os.path.exists(fresh)


def test_expire_removes_orphan_records(cache, clock):
    image_id = new_id()
    record = os.path.join(cache.directory, image_id + '.json')
    with open(record, 'w') as f:
        f.write('{}')
    assert cache.expire() == []
    assert listing(cache) == []


def test_expire_ignores_foreign_files(cache):
    other = os.path.join(cache.directory, 'README')
    with open(other, 'w') as f:
        f.write('not ours')
    assert cache.expire() == []
    assert listing(cache) == ['README']


# --- ids ----------------------------------------------------------------------

@pytest.mark.parametrize('bad', ['', 'nope', '../etc/passwd',
                                 '12345678-1234-1234-1234-12345678901',
                                 None, 42, b'\x00' * 16])
def test_bad_image_ids_are_refused(cache, store, bad):
    with pytest.raises(ValueError):
        cache.path(bad)
    with pytest.raises(ValueError):
        cache.fetch(bad, store)
    with pytest.raises(ValueError):
        cache.acquire(bad, new_id())
    with pytest.raises(ValueError):
        cache.acquire(new_id(), bad)
    assert listing(cache) == []


def test_ids_are_used_in_canonical_form(cache, store):
    image_id = new_id()
    store.put(image_id, b'canon')
    path = cache.fetch(image_id.upper(), store)
    assert os.path.basename(path) == image_id
    assert cache.path('{%s}' % image_id.upper()) == path
