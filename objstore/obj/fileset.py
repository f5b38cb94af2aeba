"""Which files in an object's hash directory count: newest timestamp wins.

A hash directory holds ``<timestamp>.data`` (content), ``<timestamp>.ts``
(tombstone) and ``<timestamp>.meta`` (metadata from a POST). The newest
``.data`` or ``.ts`` decides whether the object exists; a ``.meta`` newer
than that ``.data`` applies on top of it. Everything else is obsolete and
is removed by cleanup, as is a tombstone older than the reclaim age (by
then replication has spread it). Pure logic in resolve(); cleanup_dir()
applies it to a real directory.
"""
import os
import time
from collections import namedtuple

from objstore.common.timestamp import Timestamp

DATA, TOMBSTONE, META = '.data', '.ts', '.meta'
EXTENSIONS = (DATA, TOMBSTONE, META)
DEFAULT_RECLAIM_AGE = 7 * 24 * 3600

FileSet = namedtuple('FileSet', 'data meta tombstone obsolete')
FileSet.__doc__ = """data/meta/tombstone: the file names that count (or
None); obsolete: names to remove."""


def parse_name(name):
    """(Timestamp, extension) of an object file name, or None."""
    stem, dot, ext = name.rpartition('.')
    if not dot or '.' + ext not in EXTENSIONS:
        return None
    try:
        return Timestamp(stem), '.' + ext
    except ValueError:
        return None


def file_name(timestamp, ext):
    return Timestamp(timestamp).internal + ext


def resolve(names, now=None, reclaim_age=DEFAULT_RECLAIM_AGE):
    """Decide which of ``names`` count; unknown names are left alone."""
    now = time.time() if now is None else now
    parsed = []
    for name in names:
        info = parse_name(name)
        if info is not None:
            parsed.append((info[0], info[1], name))
    # newest first; on a tie a tombstone beats data, data beats meta
    rank = {TOMBSTONE: 2, DATA: 1, META: 0}
    parsed.sort(key=lambda p: (p[0], rank[p[1]]), reverse=True)
    data = meta = tombstone = None
    obsolete = []
    base_seen = False
    for ts, ext, name in parsed:
        if ext == META:
            if base_seen or meta is not None:
                obsolete.append(name)
            else:
                meta = name
        elif base_seen:
            obsolete.append(name)
        else:
            base_seen = True
            if ext == DATA:
                data = name
            elif float(ts) + reclaim_age < now:
                obsolete.append(name)  # reclaimed tombstone
            else:
                tombstone = name
    if tombstone is not None and meta is not None:
        obsolete.append(meta)
        meta = None
    if data is None and tombstone is None and meta is not None and \
            float(parse_name(meta)[0]) + reclaim_age < now:
        obsolete.append(meta)  # a lone .meta whose data never came
        meta = None
    return FileSet(data, meta, tombstone, obsolete)


def list_dir(path):
    """Names in ``path``, or [] when it does not exist."""
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def cleanup_dir(path, reclaim_age=DEFAULT_RECLAIM_AGE, now=None):
    """Remove obsolete files from a hash dir (and the dir when empty).

    Returns the resolved FileSet of what remains. Safe against writers
    racing in: only files already superseded by a listed file are removed,
    and rmdir fails harmlessly on a directory that gained a file.
    """
    names = list_dir(path)
    fileset = resolve(names, now=now, reclaim_age=reclaim_age)
    for name in fileset.obsolete:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
    if len(fileset.obsolete) == len(names):
        try:
            os.rmdir(path)
        except OSError:
            pass
    return fileset
