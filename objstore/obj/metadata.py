"""An object file's metadata: msgpack in a user xattr, or in the file's tail.

ext4 keeps all xattrs of a file in one block (under 4 KiB), but the API
allows 4 KiB of user metadata plus the system metadata the server keeps
(notes/filesystem.md). So metadata goes into the xattr when it fits; when
the filesystem refuses it, it is appended to the file itself after the
content and the xattr only says where it is. Either way the metadata is
part of the one file that is renamed into place, so it becomes visible
atomically with the data and moves with it (quarantine, replication).

Xattr value: msgpack ``[1, 'i', {metadata}]`` (inline) or
``[1, 't', offset, length, md5hex]`` (in the file's bytes at offset).
"""
import errno
import hashlib
import os

import msgpack
import xattr

XATTR_KEY = 'user.objstore.meta'
FORMAT = 1
# errnos a filesystem gives for an xattr it cannot hold
_TOO_BIG = (errno.ENOSPC, errno.E2BIG, errno.ERANGE)


class MetadataError(Exception):
    """The metadata of a file is missing or unreadable: quarantine it."""


def pack(metadata):
    return msgpack.packb(metadata, use_bin_type=True)


def unpack(data):
    try:
        value = msgpack.unpackb(data, raw=False)
    except Exception as e:
        raise MetadataError('metadata is not valid msgpack: %s' % e)
    if not isinstance(value, dict):
        raise MetadataError('metadata is not a map')
    return value


def write_metadata(fd, metadata, offset=None):
    """Attach ``metadata`` (a dict) to the open file ``fd``.

    ``offset`` is where the tail goes when the xattr cannot hold the
    metadata (the end of the content); default: the current file size.
    Returns the number of tail bytes written (0 when inline).
    """
    body = pack(metadata)
    try:
        xattr.setxattr(fd, XATTR_KEY, pack([FORMAT, 'i', body]))
        return 0
    except OSError as e:
        if e.errno not in _TOO_BIG:
            raise
    if offset is None:
        offset = os.fstat(fd).st_size
    view = memoryview(body)
    written = 0
    while written < len(body):
        written += os.pwrite(fd, view[written:], offset + written)
    os.ftruncate(fd, offset + len(body))
    pointer = [FORMAT, 't', offset, len(body),
               hashlib.md5(body, usedforsecurity=False).hexdigest()]
    xattr.setxattr(fd, XATTR_KEY, pack(pointer))
    return len(body)


def read_metadata(fd):
    """(metadata dict, tail length) of the open file ``fd``.

    Raises MetadataError when the metadata is absent or damaged.
    """
    try:
        raw = xattr.getxattr(fd, XATTR_KEY)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.ENOENT):
            raise MetadataError('no metadata xattr')
        raise
    try:
        head = msgpack.unpackb(raw, raw=False)
    except Exception as e:
        raise MetadataError('metadata xattr is not valid msgpack: %s' % e)
    if not isinstance(head, list) or len(head) < 3 or head[0] != FORMAT:
        raise MetadataError('unknown metadata format')
    if head[1] == 'i' and len(head) == 3 and isinstance(head[2], bytes):
        return unpack(head[2]), 0
    if head[1] == 't' and len(head) == 5:
        _, _, offset, length, digest = head
        if not (isinstance(offset, int) and isinstance(length, int)):
            raise MetadataError('bad metadata pointer')
        body = os.pread(fd, length, offset)
        if len(body) != length or hashlib.md5(
                body, usedforsecurity=False).hexdigest() != digest:
            raise MetadataError('metadata tail is damaged')
        if os.fstat(fd).st_size != offset + length:
            raise MetadataError('file size does not match its metadata')
        return unpack(body), length
    raise MetadataError('unknown metadata format')


def read_metadata_path(path):
    """read_metadata for a path (opens and closes it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_metadata(fd)
    finally:
        os.close(fd)
