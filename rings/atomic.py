"""Replace a file so that readers see the old or the new one, never a mix.

Ring and builder files are polled by running servers and written by
operators' tools; a crash or a full disk mid-write must leave the old file
in place.
"""
import os
import tempfile


def write_atomically(path, write, mode=0o644, tmp_dir=None):
    """Call ``write(fileobj)`` on a temp file, then rename it to ``path``.

    The temp file goes beside ``path`` unless ``tmp_dir`` names another
    directory (it must be on the same filesystem). It is fsync'd before
    the rename and the directory after it, so the new file survives a
    crash once this returns.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or directory,
                               prefix='.%s.' % os.path.basename(path))
    try:
        with os.fdopen(fd, 'wb') as raw:
            write(raw)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
