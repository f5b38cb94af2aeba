"""Where things live on a storage device, and durable-write helpers.

Objects, containers and accounts share one layout on a device:
``<devices>/<device>/<datadir>/<partition>/<suffix>/<hash>/`` where
``hash`` is the md5 hex of the salted path and ``suffix`` its last three
hex digits (so one partition's directories group into 4096 suffixes, the
unit the replicator compares).
"""
import errno
import os
import uuid

from rings.atomic import write_atomically
from rings.ring import hash_path


def name_hash(prefix, suffix, account, container=None, obj=None):
    """Hex md5 of the salted path: the directory name of a resource."""
    return hash_path(prefix, suffix, account, container, obj).hex()


def storage_dir(devices, device, datadir, partition, hsh):
    """The directory holding one resource's files."""
    return os.path.join(devices, device, datadir, str(partition), hsh[-3:],
                        hsh)


def device_path(devices, device, mount_check):
    """Path of a usable device, or None when missing or not mounted.

    With mount_check the device must be a mount point, so a disk that
    failed to mount never has data written into the root filesystem.
    """
    if not device or '/' in device or device in ('.', '..'):
        return None
    path = os.path.join(devices, device)
    if mount_check:
        return path if os.path.ismount(path) else None
    return path if os.path.isdir(path) else None


def fsync_dir(path):
    """fsync a directory so a rename or create in it is durable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path, made=None):
    """mkdir -p without any fsync: the directories that were missing,
    outermost first (pass them to fsync_parents before relying on them).

    One that another writer makes at the same moment counts too: its
    entry may not be durable yet when this caller answers. Those this
    call made itself are also appended to ``made`` when it is given.
    """
    missing = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    created = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
            if made is not None:
                made.append(directory)
        except FileExistsError:
            pass
        created.append(directory)
    return created


def fsync_parents(created):
    """fsync the parent of each created directory, innermost first, so
    their entries are durable.

    Done after all the mkdirs (and whatever goes into the innermost one),
    never between them: the first fsync then finds all the new entries
    dirty at once (a journal commits them together; ext4 without a journal
    writes a new directory's parents along with it) and the others have
    little left to do.
    """
    for directory in reversed(dict.fromkeys(created)):
        fsync_dir(os.path.dirname(directory))


def makedirs_durable(path):
    """mkdir -p, fsyncing each parent whose entry was created."""
    fsync_parents(make_dirs(path))


def write_durably(path, data, tmp_dir):
    """Write ``data`` (bytes) to ``path`` so it appears whole or not at all.

    The temp file goes in ``tmp_dir`` (on the same device, so the rename
    is atomic, and where startup cleanup finds leftovers of a crash).
    """
    makedirs_durable(tmp_dir)
    for attempt in range(3):
        makedirs_durable(os.path.dirname(path))
        try:
            write_atomically(path, lambda f: f.write(data), mode=0o600,
                             tmp_dir=tmp_dir)
            return
        except FileNotFoundError:
            # an updater removed the (empty) directory between our mkdir
            # and the rename; make it again
            if attempt == 2 or not os.path.isdir(tmp_dir):
                raise


QUARANTINE_DIR = 'quarantined'


def quarantine(device_path, path, kind):
    """Move a damaged file or directory to <device>/quarantined/<kind>/.

    The rename keeps it on the same device for an operator to inspect and
    takes it out of every daemon's way. Returns the new path, or None when
    ``path`` is already gone (another process moved or removed it).
    """
    qdir = os.path.join(device_path, QUARANTINE_DIR, kind)
    makedirs_durable(qdir)
    dest = os.path.join(qdir, os.path.basename(path))
    if os.path.exists(dest):
        dest += '-' + uuid.uuid4().hex
    try:
        os.rename(path, dest)
    except FileNotFoundError:
        return None
    fsync_dir(qdir)
    fsync_dir(os.path.dirname(path))
    return dest
