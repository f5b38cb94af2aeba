"""Each device's index of objects that carry an X-Delete-At.

Why a per-device index rather than the reference's cluster-wide queue (a
hidden account whose containers list every expiring object): the object
server already writes each replica durably on the node that holds it, so
recording the expiry beside the replica needs no extra network request,
no extra quorum and no extra database, and it works the same for a file
arriving by replication as for a client's PUT or POST. The expirer of
each node then only ever reads its own disks.

An entry is one tiny file, written durably (temp in ``<device>/tmp``,
fsync, rename) *before* the object file it describes is renamed into
place, so a crash leaves at most a stale entry, never a missing one:

    <device>/expiring/<hour>/<delete_at>-<partition>-<hash>-<timestamp>

``hour`` is ``delete_at`` rounded down to the hour and every number is
zero-padded, so plain sorted directory listings come out in time order
and a pass reads only the hours that have begun. The file holds the
object's name (msgpack ``{'name': '/a/c/o'}``): names may be 1 KiB and
any UTF-8, too long and too varied for a file name. ``timestamp`` is the
committed file's, so two writes with the same X-Delete-At leave two
entries; either one expires the object and the other then finds nothing
to do.

An entry says only "look at this object at that time": the expirer
decides from the object itself (expirer.py), so stale, duplicate and
damaged entries are harmless and are simply removed.
"""
import os
from collections import namedtuple

import msgpack

from objstore.common.ondisk import write_durably
from objstore.common.timestamp import Timestamp

EXPIRING_DIR = 'expiring'
TMP_DIR = 'tmp'
BUCKET_SECONDS = 3600
MAX_NAME_BYTES = 8192

Entry = namedtuple('Entry', 'path delete_at partition hash timestamp name '
                            'problem')
Entry.__doc__ = """One index file. ``problem`` is None for a good entry,
else why it cannot be used (the other fields may then be None); the
caller removes such entries."""


def bucket_of(delete_at):
    """The hour directory name of a delete-at time."""
    return '%010d' % (delete_at - delete_at % BUCKET_SECONDS)


def entry_name(delete_at, partition, hsh, timestamp):
    return '%010d-%d-%s-%s' % (delete_at, partition, hsh,
                               Timestamp(timestamp).internal)


def entry_path(device_path, delete_at, partition, hsh, timestamp):
    return os.path.join(device_path, EXPIRING_DIR, bucket_of(delete_at),
                        entry_name(delete_at, partition, hsh, timestamp))


def parse_delete_at(value):
    """X-Delete-At metadata as a non-negative int, or None if unusable."""
    try:
        when = int(value)
    except (TypeError, ValueError):
        return None
    return when if when >= 0 else None


def record(device_path, delete_at, partition, hsh, name, timestamp):
    """Durably note that object ``name`` should go at ``delete_at``.

    Blocking (fsync). Returns the entry's path. The hour directory may be
    removed by an expirer pruning old hours at the same moment (a replica
    can arrive with an X-Delete-At already past): then write again.
    """
    path = entry_path(device_path, int(delete_at), int(partition), hsh,
                      timestamp)
    body = msgpack.packb({'name': name}, use_bin_type=True)
    tmp_dir = os.path.join(device_path, TMP_DIR)
    for attempt in range(3):
        try:
            write_durably(path, body, tmp_dir)
            return path
        except FileNotFoundError:
            if attempt == 2:
                raise


def parse_entry_name(file_name):
    """(delete_at, partition, hash, Timestamp) of an entry's file name;
    ValueError when it is not one."""
    parts = file_name.split('-')
    if len(parts) != 4:
        raise ValueError('not <delete_at>-<partition>-<hash>-<timestamp>')
    delete_at, partition, hsh, timestamp = parts
    if not delete_at.isdigit() or not partition.isdigit():
        raise ValueError('delete_at and partition must be digits')
    if len(hsh) != 32 or any(c not in '0123456789abcdef' for c in hsh):
        raise ValueError('bad hash %r' % hsh)
    return int(delete_at), int(partition), hsh, Timestamp(timestamp)


def read_name(path):
    """The object name stored in an entry; ValueError when damaged."""
    with open(path, 'rb') as f:
        data = f.read(MAX_NAME_BYTES + 1)
    if len(data) > MAX_NAME_BYTES:
        raise ValueError('entry too large')
    try:
        value = msgpack.unpackb(data, raw=False)
    except Exception as e:
        raise ValueError('not msgpack: %s' % e)
    name = value.get('name') if isinstance(value, dict) else None
    if not isinstance(name, str) or name.count('/') < 3 or \
            not name.startswith('/'):
        raise ValueError('no /account/container/object name')
    return name


def load(path):
    """The Entry stored at ``path`` (with ``problem`` set if damaged)."""
    try:
        delete_at, partition, hsh, timestamp = parse_entry_name(
            os.path.basename(path))
    except ValueError as e:
        return Entry(path, None, None, None, None, None,
                     'bad entry name: %s' % e)
    try:
        name = read_name(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return Entry(path, delete_at, partition, hsh, timestamp, None,
                     'bad entry: %s' % e)
    return Entry(path, delete_at, partition, hsh, timestamp, name, None)


def _sorted_names(path):
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def due(device_path, now):
    """Entries whose delete_at <= ``now``, oldest first.

    Hours not yet begun are not even listed. Files that are not entries
    (bad names, damaged contents, stray files where hour directories
    belong) are yielded with ``problem`` set so the caller removes them.
    An entry removed while we look (a concurrent expirer) is skipped.
    """
    root = os.path.join(device_path, EXPIRING_DIR)
    for bucket in _sorted_names(root):
        bucket_path = os.path.join(root, bucket)
        if not bucket.isdigit():
            if os.path.isfile(bucket_path):
                yield Entry(bucket_path, None, None, None, None, None,
                            'stray file %r in %s' % (bucket, root))
            continue
        if int(bucket) > now:
            continue  # an hour that has not begun
        for name in _sorted_names(bucket_path):
            path = os.path.join(bucket_path, name)
            head = name.split('-', 1)[0]
            if head.isdigit() and int(head) > now:
                continue  # a later entry in the hour that has begun
            entry = load(path)
            if entry is not None:
                yield entry


def remove(entry):
    """Delete an entry's file (not fsync'd: a resurrected entry is only
    a stale one)."""
    try:
        os.unlink(entry.path)
    except FileNotFoundError:
        pass


def prune(device_path, now):
    """Remove empty hour directories whose hour has fully passed.

    Returns how many went. rmdir fails harmlessly on a directory that
    gained an entry meanwhile, and record() retries if one goes under it.
    """
    root = os.path.join(device_path, EXPIRING_DIR)
    removed = 0
    for bucket in _sorted_names(root):
        if not bucket.isdigit() or int(bucket) + BUCKET_SECONDS > now:
            continue
        try:
            os.rmdir(os.path.join(root, bucket))
            removed += 1
        except OSError:
            pass
    return removed
