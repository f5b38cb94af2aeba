"""Per-instance copy-on-write disks, made and inspected with qemu-img.

Every guest boots from its own qcow2 overlay whose backing file is the
cached image: the guest's writes land in the overlay, the cached image is
shared by all instances of that image and never changes (see ImagePaths in
driver.py). These helpers only run qemu-img; the agent decides where the
files live and removes them.

Safety rules, each for a reason:
- The backing file's format is always given (-F), never probed: a raw image
  a user uploaded may start with the bytes of a qcow2 header naming any
  file on the host as *its* backing file, and probing would follow it.
- Paths are made absolute: qemu-img resolves a relative backing file
  against the overlay's directory, not our working directory, and a path
  beginning with "/" can never be read as a protocol ("nbd:", "json:").
- An existing overlay is never overwritten: qemu-img create would silently
  replace an instance's disk, so the file is claimed with O_EXCL first.
"""
import json
import os
import subprocess

from compute.virt.driver import DriverError

QEMU_IMG = 'qemu-img'
# Formats a cached base image may have; the same ones the domain XML
# builder accepts for a disk.
BASE_FORMATS = ('raw', 'qcow2')
DEFAULT_TIMEOUT = 60


class OverlayError(DriverError):
    """qemu-img failed; the message carries its stderr for the fault."""


def _run(argv, timeout):
    """Run qemu-img and return its stdout; turn every failure into
    OverlayError so callers handle one exception type."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=timeout, check=False)
    except FileNotFoundError:
        raise OverlayError('%s not found (install the qemu-utils package)'
                           % argv[0]) from None
    except subprocess.TimeoutExpired:
        raise OverlayError('%s timed out after %s s' % (' '.join(argv[:2]),
                                                        timeout)) from None
    if result.returncode != 0:
        raise OverlayError('%s failed (exit %d): %s' % (
            ' '.join(argv[:2]), result.returncode,
            result.stderr.strip() or '(no message)'))
    return result.stdout


def _claim(path):
    """Create `path` empty, failing if it exists, so no disk is replaced."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise OverlayError('overlay %s already exists' % path) from None
    except OSError as err:
        raise OverlayError('cannot create overlay %s: %s' % (path, err)) \
            from None
    os.close(fd)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def create_overlay(base_path, overlay_path, base_format,
                   timeout=DEFAULT_TIMEOUT):
    """Create a qcow2 overlay at overlay_path backed by base_path.

    The overlay has the base's virtual size. All or nothing: on any failure
    the overlay file is removed again and OverlayError says why. Raises
    ValueError for a format outside BASE_FORMATS.
    """
    if base_format not in BASE_FORMATS:
        raise ValueError('base_format must be one of %s'
                         % ', '.join(BASE_FORMATS))
    base_path = os.path.abspath(base_path)
    overlay_path = os.path.abspath(overlay_path)
    if not os.path.isfile(base_path):
        raise OverlayError('base image %s does not exist' % base_path)
    _claim(overlay_path)
    argv = [QEMU_IMG, 'create', '-q', '-f', 'qcow2', '-b', base_path,
            '-F', base_format, overlay_path]
    try:
        _run(argv, timeout)
    except BaseException:
        _remove_quietly(overlay_path)
        raise


def image_info(path, fmt=None, timeout=DEFAULT_TIMEOUT):
    """Return qemu-img's JSON description of one image as a dict.

    Keys include 'format', 'virtual-size' (bytes) and, for an overlay,
    'backing-filename' and 'backing-filename-format'. Pass `fmt` when the
    format is known, so an untrusted image is not probed. The backing chain
    is not opened, and -U (force share) lets this read the disk of a
    running guest, which QEMU keeps locked.
    """
    argv = [QEMU_IMG, 'info', '-U', '--output=json']
    if fmt is not None:
        argv += ['-f', fmt]
    argv.append(os.path.abspath(path))
    output = _run(argv, timeout)
    try:
        info = json.loads(output)
    except ValueError:
        raise OverlayError('qemu-img info printed no JSON for %s' % path) \
            from None
    if not isinstance(info, dict):
        raise OverlayError('qemu-img info printed no JSON object for %s'
                           % path)
    return info
