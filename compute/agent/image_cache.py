"""The per-host image cache: each image is fetched from objstore once.

Instances boot from qcow2 overlays (compute/virt/overlay.py) whose backing
file is the cached image, so one cached copy serves every instance of that
image on the host, and it must never change under them.

Files in the cache directory, and why each exists:

* ``<image_id>`` -- the image's bytes, read-only (0444). It only ever
  appears by a rename of a complete, verified download, so a reader never
  sees a half-written image at this path.
* ``<image_id>.json`` -- the record of what was fetched: checksum (md5),
  size, disk_format and fetched_at. Written atomically (temp file, fsync,
  rename) *after* the image is in place and removed *before* an image is
  replaced, so a record always describes the bytes beside it; an image
  without a record is simply fetched again. The record's mtime is the
  image's last use (touched on every hit and release with the cache's
  clock): touching a timestamp is atomic and needs no rewrite.
* ``.<image_id>.<random>.part`` -- a download (or a record) in progress.
  Left behind only by a crash; expire() removes the old ones.
* ``.<image_id>.lock`` -- taken with an exclusive ``fcntl.flock`` around
  everything that reads or changes one image's files, so concurrent
  fetches of one image (threads or processes) download it once, while
  fetches of different images do not wait for each other. flock is
  blocking: the agent calls this class from a worker thread (never from
  the green-thread hub), as it does for all slow disk and network work.
  A process forked while a lock is held shares that lock until it exits
  or execs (subprocess is fine: the descriptor is not inheritable, so exec
  closes it), so nothing here forks.
* ``users/<image_id>/<instance_uuid>`` -- an empty marker per instance
  using the image (acquire/release). One file per user means adding or
  removing a user is a single create or unlink: nothing to parse, nothing
  to corrupt in a crash, and no read-modify-write to race.

Every fetch asks the store for the image's properties, even on a hit: the
answer tells whether the cached bytes are still the image's (its checksum)
and it is also the check that the caller's account may read the image at
all, so a cached copy is never handed to someone the store would refuse.

Ids become file names, so they must be UUIDs; they are used in their
canonical form (lower case, with hyphens).
"""
import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
import uuid

DEFAULT_MAX_UNUSED_AGE = 24 * 3600
# A .part file this old belongs to no running fetch (the fetch would hold the
# image's lock); the lock is checked as well before one is removed.
PART_MAX_AGE = 3600
IMAGE_MODE = 0o444

_UUID = r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
_IMAGE_RE = re.compile(r'^(%s)$' % _UUID)
_RECORD_RE = re.compile(r'^(%s)\.json$' % _UUID)
_PART_RE = re.compile(r'^\.(%s)\..+\.part$' % _UUID)
_LOCK_RE = re.compile(r'^\.(%s)\.lock$' % _UUID)
_NAME_PATTERNS = (_IMAGE_RE, _RECORD_RE, _PART_RE, _LOCK_RE)
USERS_DIR = 'users'


class ImageFetchError(Exception):
    """The image could not be put in the cache; the message is fit for an
    instance's fault and the original error is its __cause__. Nothing of
    the failed fetch remains in the cache."""


def canonical_id(value, what='image id'):
    """The canonical UUID text of `value`; ValueError if it is not one."""
    if not isinstance(value, str):
        raise ValueError('%s must be a UUID string, not %r' % (what, value))
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError('%s %r is not a UUID' % (what, value)) from None


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path):
    """Make renames and unlinks in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _close_iter(chunks):
    """Close a chunk iterator (a generator holding an HTTP response) so an
    abandoned download releases its connection at once."""
    close = getattr(chunks, 'close', None)
    if close is not None:
        close()


class ImageCache:
    """Cached images of one host in `directory`.

    `store_factory`, if given, is called with no arguments to get a store
    when fetch() is not handed one. `clock` gives the current time as
    seconds since the epoch (tests pass a fake one); it stamps fetches and
    last uses, and expire() compares against it.
    """

    def __init__(self, directory, store_factory=None,
                 max_unused_age=DEFAULT_MAX_UNUSED_AGE, clock=time.time):
        self.directory = os.path.abspath(directory)
        self.store_factory = store_factory
        self.max_unused_age = max_unused_age
        self.clock = clock
        os.makedirs(os.path.join(self.directory, USERS_DIR), exist_ok=True)

    # --- paths --------------------------------------------------------------

    def _image_path(self, image_id):
        return os.path.join(self.directory, image_id)

    def _record_path(self, image_id):
        return os.path.join(self.directory, image_id + '.json')

    def _lock_path(self, image_id):
        return os.path.join(self.directory, '.%s.lock' % image_id)

    def _users_dir(self, image_id):
        return os.path.join(self.directory, USERS_DIR, image_id)

    def path(self, image_id):
        """The cached image's path, or None if it is not cached (an image
        without its record counts as not cached: it is fetched again)."""
        image_id = canonical_id(image_id)
        image = self._image_path(image_id)
        if os.path.isfile(image) and os.path.isfile(
                self._record_path(image_id)):
            return image
        return None

    # --- locking ------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, image_id, blocking=True):
        """Hold the image's lock; yields False (holding nothing) if
        `blocking` is off and someone else holds it.

        expire() deletes lock files, so after getting the lock we check the
        file we locked is still the one at the path; if not, we locked a
        deleted file that nobody else will see, and try again.
        """
        path = self._lock_path(image_id)
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                os.close(fd)
                yield False
                return
            except BaseException:
                os.close(fd)
                raise
            if self._same_file(fd, path):
                break
            os.close(fd)
        try:
            yield True
        finally:
            os.close(fd)

    @staticmethod
    def _same_file(fd, path):
        try:
            held, current = os.fstat(fd), os.stat(path)
        except FileNotFoundError:
            return False
        return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)

    # --- fetch --------------------------------------------------------------

    def fetch(self, image_id, store=None):
        """The path of the image's verified local copy, downloading it
        through `store` (an ImageStore) unless the cached copy is current.

        Blocks while another thread or process fetches the same image, and
        then usually finds it cached. Raises ImageFetchError on failure.
        """
        image_id = canonical_id(image_id)
        store = self._store(store)
        with self._locked(image_id):
            try:
                wanted = self._wanted(store, image_id)
                if self._is_current(image_id, wanted):
                    self._touch(image_id)
                    return self._image_path(image_id)
                self._refuse_replacing_in_use(image_id)
                self._download(store, image_id, wanted)
            except ImageFetchError:
                # a failed first fetch leaves not even its lock file
                self._forget_if_gone(image_id)
                raise
            return self._image_path(image_id)

    def _store(self, store):
        if store is not None:
            return store
        if self.store_factory is None:
            raise ValueError('fetch() needs a store: none given and the '
                             'cache has no store_factory')
        return self.store_factory()

    @staticmethod
    def _wanted(store, image_id):
        """What the store says the image's bytes are: checksum, size,
        disk_format. Also the access check (see the module docstring)."""
        try:
            props = store.show(image_id)
        except Exception as exc:
            raise ImageFetchError('image %s: cannot look it up: %s'
                                  % (image_id, exc)) from exc
        checksum, size = props.get('checksum'), props.get('size')
        if not checksum or not isinstance(size, int):
            raise ImageFetchError('image %s has no checksum and size yet '
                                  '(status %s)' % (image_id,
                                                   props.get('status')))
        return {'checksum': checksum.lower(), 'size': size,
                'disk_format': props.get('disk_format')}

    def _read_record(self, image_id):
        """The image's record as a dict, or None if missing or unreadable
        (either way the image is fetched again)."""
        try:
            with open(self._record_path(image_id), 'rb') as f:
                record = json.loads(f.read())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _is_current(self, image_id, wanted):
        """Whether the cached copy is the image the store describes: its
        record matches and the file has the right size (a cheap guard
        against a truncated file; the bytes were verified on download)."""
        record = self._read_record(image_id)
        if record is None:
            return False
        if (record.get('checksum') != wanted['checksum']
                or record.get('size') != wanted['size']):
            return False
        try:
            return os.stat(self._image_path(image_id)).st_size == \
                wanted['size']
        except FileNotFoundError:
            return False

    def _refuse_replacing_in_use(self, image_id):
        """An image's bytes never change in the store (a new upload gets a
        new id), so a changed checksum means the object was replaced or
        damaged. Instances' overlays name the cached file as their backing
        file: replacing it under them would corrupt their disks, so that is
        refused while the image has users."""
        if os.path.exists(self._image_path(image_id)) and \
                self.in_use(image_id):
            raise ImageFetchError(
                'image %s changed in the store but its cached copy is used '
                'by %d instance(s); it is not replaced under them'
                % (image_id, len(self.users(image_id))))

    def _new_part(self, image_id):
        """A new temp file (fd, path) beside the final one, so the rename
        into place stays on one filesystem and is atomic."""
        return tempfile.mkstemp(dir=self.directory,
                                prefix='.%s.' % image_id, suffix='.part')

    def _download(self, store, image_id, wanted):
        """Download, verify, and rename into place; then write the record.
        All or nothing: any failure removes the temp file (and the image,
        if its record could not be written) and raises ImageFetchError."""
        fd, part = self._new_part(image_id)
        final = self._image_path(image_id)
        placed = False
        try:
            with os.fdopen(fd, 'wb') as out:
                md5, size = self._copy(store.open(image_id), out)
                out.flush()
                os.fsync(out.fileno())
            self._verify(image_id, wanted, md5, size)
            os.chmod(part, IMAGE_MODE)
            # the old record goes first: a record must never describe
            # bytes other than those beside it, even after a crash
            _unlink_quietly(self._record_path(image_id))
            os.rename(part, final)
            placed = True
            _fsync_dir(self.directory)
            self._write_record(image_id, dict(wanted,
                                              fetched_at=self.clock()))
        except BaseException as exc:
            _unlink_quietly(part)
            if placed:
                _unlink_quietly(final)
            if isinstance(exc, ImageFetchError) or \
                    not isinstance(exc, Exception):
                raise
            raise ImageFetchError('image %s: download failed: %s'
                                  % (image_id, exc)) from exc

    @staticmethod
    def _copy(chunks, out):
        """Write every chunk to `out`; return (md5 hex, byte count)."""
        md5, size = hashlib.md5(), 0
        try:
            for chunk in chunks:
                md5.update(chunk)
                size += len(chunk)
                out.write(chunk)
        finally:
            _close_iter(chunks)
        return md5.hexdigest(), size

    @staticmethod
    def _verify(image_id, wanted, md5, size):
        """Our own check of what arrived, whatever the store checked."""
        if size != wanted['size'] or md5 != wanted['checksum']:
            raise ImageFetchError(
                'image %s: downloaded %d bytes with md5 %s, the image has '
                '%d bytes with md5 %s' % (image_id, size, md5,
                                          wanted['size'],
                                          wanted['checksum']))

    def _write_record(self, image_id, record):
        """Write the record atomically and stamp its mtime (the last use)
        with its fetched_at."""
        fd, part = self._new_part(image_id)
        path = self._record_path(image_id)
        try:
            with os.fdopen(fd, 'wb') as out:
                out.write(json.dumps(record, sort_keys=True).encode('utf-8'))
                out.flush()
                os.fsync(out.fileno())
            os.chmod(part, 0o644)
            os.rename(part, path)
            os.utime(path, (record['fetched_at'], record['fetched_at']))
            _fsync_dir(self.directory)
        except BaseException:
            _unlink_quietly(part)
            raise

    def _touch(self, image_id):
        """Record a use now. Not fsynced: a use lost in a crash only makes
        the image expire a little sooner."""
        now = self.clock()
        try:
            os.utime(self._record_path(image_id), (now, now))
        except FileNotFoundError:
            pass

    # --- users --------------------------------------------------------------

    def acquire(self, image_id, instance_uuid):
        """Mark `instance_uuid` as using the image, so expire() keeps it.

        The agent should call this before fetch() for a new instance: from
        then on nothing can remove the image from under the instance.
        Idempotent. Takes the image's lock, so it waits for a fetch of the
        same image in progress.
        """
        image_id = canonical_id(image_id)
        instance_uuid = canonical_id(instance_uuid, 'instance uuid')
        users = self._users_dir(image_id)
        with self._locked(image_id):
            os.makedirs(users, exist_ok=True)
            fd = os.open(os.path.join(users, instance_uuid),
                         os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
            _fsync_dir(users)

    def release(self, image_id, instance_uuid):
        """The instance no longer uses the image (its overlay is gone).
        Counts as a use of the image for expiry. Idempotent."""
        image_id = canonical_id(image_id)
        instance_uuid = canonical_id(instance_uuid, 'instance uuid')
        users = self._users_dir(image_id)
        with self._locked(image_id):
            try:
                os.unlink(os.path.join(users, instance_uuid))
                _fsync_dir(users)
            except FileNotFoundError:
                pass
            self._forget_if_gone(image_id)
            self._touch(image_id)

    def users(self, image_id):
        """The uuids of the instances using the image, sorted."""
        image_id = canonical_id(image_id)
        try:
            names = os.listdir(self._users_dir(image_id))
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _IMAGE_RE.match(n))

    def in_use(self, image_id):
        """Whether any instance uses the image."""
        return bool(self.users(image_id))

    def _remove_users_dir_if_empty(self, image_id):
        try:
            os.rmdir(self._users_dir(image_id))
        except OSError:
            pass  # missing, or not empty

    # --- expiry -------------------------------------------------------------

    def expire(self):
        """Remove images unused for longer than max_unused_age; return
        their ids.

        An image with users is kept, and so is one whose lock is held (a
        fetch, acquire or release in progress): expiry never waits. Old
        .part files, records without an image and lock files of images no
        longer cached are removed too.
        """
        now = self.clock()
        removed = []
        for image_id in sorted(self._ids_on_disk()):
            with self._locked(image_id, blocking=False) as held:
                if not held:
                    continue
                if self._expire_one(image_id, now):
                    removed.append(image_id)
                self._remove_old_parts(image_id, now)
                self._forget_if_gone(image_id)
        return removed

    def _ids_on_disk(self):
        """Every image id that has any file in the cache."""
        ids = set()
        for name in os.listdir(self.directory):
            for pattern in _NAME_PATTERNS:
                match = pattern.match(name)
                if match:
                    ids.add(match.group(1))
                    break
        try:
            ids.update(n for n in os.listdir(
                os.path.join(self.directory, USERS_DIR)) if _IMAGE_RE.match(n))
        except FileNotFoundError:
            pass
        return ids

    def last_used(self, image_id):
        """When the image was last fetched, hit or released (seconds since
        the epoch), or None if it is not cached."""
        image_id = canonical_id(image_id)
        try:
            image_mtime = os.stat(self._image_path(image_id)).st_mtime
        except FileNotFoundError:
            return None
        record = self._read_record(image_id)
        try:
            touched = os.stat(self._record_path(image_id)).st_mtime
        except FileNotFoundError:
            return image_mtime  # a crash before the record: file's own age
        fetched = record.get('fetched_at') if record else None
        if isinstance(fetched, (int, float)):
            return max(fetched, touched)
        return touched

    def _expire_one(self, image_id, now):
        """Remove one image if unused and old; True if removed. Called with
        the image's lock held."""
        image = self._image_path(image_id)
        if not os.path.exists(image):
            _unlink_quietly(self._record_path(image_id))  # orphan record
            return False
        if self.in_use(image_id):
            return False
        last = self.last_used(image_id)
        if last is None or now - last <= self.max_unused_age:
            return False
        _unlink_quietly(image)
        _unlink_quietly(self._record_path(image_id))
        _fsync_dir(self.directory)
        return True

    def _remove_old_parts(self, image_id, now):
        prefix = '.%s.' % image_id
        for name in os.listdir(self.directory):
            if not (name.startswith(prefix) and name.endswith('.part')):
                continue
            path = os.path.join(self.directory, name)
            try:
                if now - os.stat(path).st_mtime > PART_MAX_AGE:
                    os.unlink(path)
            except FileNotFoundError:
                pass

    def _forget_if_gone(self, image_id):
        """With the image gone and unused, drop its empty users directory
        and its lock file (we hold the lock; see _locked for why deleting
        it is safe)."""
        self._remove_users_dir_if_empty(image_id)
        if not os.path.exists(self._image_path(image_id)) and \
                not self.in_use(image_id):
            _unlink_quietly(self._lock_path(image_id))
