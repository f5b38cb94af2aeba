"""Tests for compute.virt.overlay with the real qemu-img on tiny images."""
import json
import os
import shutil
import subprocess

import pytest

from compute.virt import overlay
from compute.virt.driver import DriverError

pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None,
                                reason='qemu-img (qemu-utils) not installed')

BASE_SIZE = 1024 * 1024


def _make_raw(path, fill=b'\x5a'):
    """A 1 MiB raw image with a recognisable pattern."""
    path.write_bytes(fill * BASE_SIZE)
    return path


def _chain(path):
    """qemu-img's view of the whole backing chain, top image first."""
    out = subprocess.run(['qemu-img', 'info', '-U', '--backing-chain',
                          '--output=json', str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _read_raw(image, tmp_path):
    """What a guest would see: the image flattened to raw bytes."""
    out = tmp_path / 'flat.raw'
    subprocess.run(['qemu-img', 'convert', '-U', '-O', 'raw', str(image),
                    str(out)], check=True, capture_output=True)
    return out.read_bytes()


def test_overlay_is_qcow2_backed_by_base(tmp_path):
    base = _make_raw(tmp_path / 'base.raw')
    top = tmp_path / 'disk.qcow2'
    overlay.create_overlay(str(base), str(top), 'raw')
    chain = _chain(top)
    assert [c['format'] for c in chain] == ['qcow2', 'raw']
    assert chain[0]['backing-filename'] == str(base)
    assert chain[0]['backing-filename-format'] == 'raw'
    assert chain[0]['virtual-size'] == BASE_SIZE
    assert _read_raw(top, tmp_path) == base.read_bytes()


def test_overlay_over_qcow2_base(tmp_path):
    raw = _make_raw(tmp_path / 'src.raw')
    base = tmp_path / 'base.qcow2'
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2',
                    str(raw), str(base)], check=True)
    top = tmp_path / 'disk.qcow2'
    overlay.create_overlay(str(base), str(top), 'qcow2')
    info = overlay.image_info(str(top))
    assert info['backing-filename-format'] == 'qcow2'
    assert _read_raw(top, tmp_path) == raw.read_bytes()


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    """A relative -b would be resolved against the overlay's directory."""
    _make_raw(tmp_path / 'base.raw')
    (tmp_path / 'sub').mkdir()
    monkeypatch.chdir(tmp_path)
    overlay.create_overlay('base.raw', 'sub/disk.qcow2', 'raw')
    info = overlay.image_info(str(tmp_path / 'sub' / 'disk.qcow2'))
    assert info['backing-filename'] == str(tmp_path / 'base.raw')


@pytest.mark.skipif(shutil.which('qemu-io') is None,
                    reason='qemu-io not installed')
def test_writes_go_to_overlay_and_leave_base_unchanged(tmp_path):
    base = _make_raw(tmp_path / 'base.raw')
    before = base.read_bytes()
    mtime = base.stat().st_mtime_ns
    top = tmp_path / 'disk.qcow2'
    overlay.create_overlay(str(base), str(top), 'raw')
    subprocess.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0xab 0 4k',
                    str(top)], check=True, capture_output=True)
    seen = _read_raw(top, tmp_path)
    assert seen[:4096] == b'\xab' * 4096
    assert seen[4096:] == before[4096:]
    assert base.read_bytes() == before
    assert base.stat().st_mtime_ns == mtime


def test_existing_overlay_is_not_replaced(tmp_path):
    base = _make_raw(tmp_path / 'base.raw')
    top = tmp_path / 'disk.qcow2'
    top.write_bytes(b'precious instance data')
    with pytest.raises(overlay.OverlayError, match='already exists'):
        overlay.create_overlay(str(base), str(top), 'raw')
    assert top.read_bytes() == b'precious instance data'


def test_missing_base_leaves_nothing(tmp_path):
    top = tmp_path / 'disk.qcow2'
    with pytest.raises(overlay.OverlayError, match='does not exist'):
        overlay.create_overlay(str(tmp_path / 'nope.raw'), str(top), 'raw')
    assert not top.exists()


def test_qemu_img_failure_removes_overlay_and_reports_stderr(tmp_path):
    """A raw file that is no qcow2 named as qcow2: qemu-img refuses."""
    base = _make_raw(tmp_path / 'base.raw')
    top = tmp_path / 'disk.qcow2'
    with pytest.raises(overlay.OverlayError) as caught:
        overlay.create_overlay(str(base), str(top), 'qcow2')
    assert 'qemu-img create failed' in str(caught.value)
    assert 'not in qcow2 format' in str(caught.value)  # qemu-img's stderr
    assert isinstance(caught.value, DriverError)
    assert not top.exists()
    assert os.listdir(tmp_path) == ['base.raw']


def test_unknown_format_is_refused_before_touching_disk(tmp_path):
    base = _make_raw(tmp_path / 'base.raw')
    top = tmp_path / 'disk.qcow2'
    with pytest.raises(ValueError, match='base_format'):
        overlay.create_overlay(str(base), str(top), 'vmdk')
    assert not top.exists()


def test_missing_qemu_img_is_a_clear_error(tmp_path, monkeypatch):
    base = _make_raw(tmp_path / 'base.raw')
    top = tmp_path / 'disk.qcow2'
    monkeypatch.setattr(overlay, 'QEMU_IMG', str(tmp_path / 'no-qemu-img'))
    with pytest.raises(overlay.OverlayError, match='qemu-utils'):
        overlay.create_overlay(str(base), str(top), 'raw')
    assert not top.exists()


def test_timeout_removes_overlay(tmp_path, monkeypatch):
    """A hung qemu-img (here: a script that sleeps) is killed."""
    fake = tmp_path / 'slow-qemu-img'
    fake.write_text('#!/bin/sh\nexec sleep 30\n')
    fake.chmod(0o755)
    base = _make_raw(tmp_path / 'base.raw')
    top = tmp_path / 'disk.qcow2'
    monkeypatch.setattr(overlay, 'QEMU_IMG', str(fake))
    with pytest.raises(overlay.OverlayError, match='timed out'):
        overlay.create_overlay(str(base), str(top), 'raw', timeout=0.2)
    assert not top.exists()


def test_image_info_of_raw_image(tmp_path):
    base = _make_raw(tmp_path / 'base.raw')
    info = overlay.image_info(str(base), fmt='raw')
    assert info['format'] == 'raw'
    assert info['virtual-size'] == BASE_SIZE
    assert 'backing-filename' not in info


def test_image_info_does_not_probe_when_format_given(tmp_path):
    """A raw image holding a qcow2 header stays raw when told so."""
    qcow = tmp_path / 'inner.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(qcow),
                    '1M'], check=True)
    assert overlay.image_info(str(qcow))['format'] == 'qcow2'
    info = overlay.image_info(str(qcow), fmt='raw')
    assert info['format'] == 'raw'
    assert info['virtual-size'] != 1024 * 1024  # the qcow2's own size
    assert info['virtual-size'] >= qcow.stat().st_size


def test_image_info_of_missing_file(tmp_path):
    with pytest.raises(overlay.OverlayError, match='qemu-img info failed'):
        overlay.image_info(str(tmp_path / 'missing.img'))
