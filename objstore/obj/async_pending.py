"""Container updates that failed, kept on disk for the updater to retry.

When the object server cannot tell the container server about a PUT or
DELETE, the update is saved as a msgpack file
``<device>/async_pending/<suffix>/<hash>-<timestamp>`` (written durably:
temp in ``<device>/tmp``, fsync, rename), so a listing eventually shows
every acknowledged write even if a container server was down.
"""
import os

import msgpack

from objstore.common.ondisk import write_durably

ASYNC_DIR = 'async_pending'
TMP_DIR = 'tmp'


def pending_path(device_path, hsh, timestamp):
    return os.path.join(device_path, ASYNC_DIR, hsh[-3:],
                        '%s-%s' % (hsh, timestamp))


def save(device_path, hsh, timestamp, update):
    """Write one update dict; returns the file's path.

    ``update`` holds op ('PUT'/'DELETE'), account, container, obj,
    headers (to send) and the container host/partition/device.
    """
    path = pending_path(device_path, hsh, timestamp)
    write_durably(path, msgpack.packb(update, use_bin_type=True),
                  os.path.join(device_path, TMP_DIR))
    return path


def load(path):
    """The update dict saved at ``path`` (ValueError when damaged)."""
    with open(path, 'rb') as f:
        try:
            value = msgpack.unpackb(f.read(), raw=False)
        except Exception as e:
            raise ValueError('damaged async pending %s: %s' % (path, e))
    if not isinstance(value, dict):
        raise ValueError('damaged async pending %s' % path)
    return value


def iter_pending(device_path, directory=ASYNC_DIR):
    """Paths of all saved updates on a device, oldest suffix first.

    ``directory``: the container server keeps its account updates in the
    same layout under another name (account_update.ASYNC_DIR).
    """
    root = os.path.join(device_path, directory)
    try:
        suffixes = sorted(os.listdir(root))
    except FileNotFoundError:
        return
    for suffix in suffixes:
        try:
            names = sorted(os.listdir(os.path.join(root, suffix)))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            yield os.path.join(root, suffix, name)


def remove(path):
    """Delete a delivered update, and its suffix dir once empty.

    Missing is fine (another updater got there first); so is a suffix
    dir that is not empty or already gone. A writer racing the rmdir
    makes the dir again (ondisk.write_durably).
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass
