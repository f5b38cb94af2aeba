"""The object auditor on real object files: real xattrs, real renames.

Damage is done the way disks do it (a flipped byte, a torn xattr, a
short file) and the auditor must quarantine exactly the damaged objects.
The pacing is checked on its logic with a fake clock, never by timing.
"""
import json
import hashlib
import os
import time

import pytest
import xattr

from objstore.common.timestamp import Timestamp
from objstore.obj import auditor, diskfile, fileset, hashes
from objstore.obj import metadata as md
from objstore.obj.auditor import ObjectAuditor, RateLimiter, next_slot

MIB = 1024 * 1024


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self, start=1000.0):
        self.now = start
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def node(tmp_path, cluster_conf):
    devices = tmp_path / 'srv'
    (devices / 'sda').mkdir(parents=True)
    (devices / 'sdb').mkdir()
    mgr = diskfile.DiskFileManager(
        str(devices), mount_check=False, hash_prefix=cluster_conf['prefix'],
        hash_suffix=cluster_conf['suffix'], run=lambda f, *a: f(*a))
    return mgr


def make_auditor(mgr, **settings):
    conf = {'devices': mgr.devices, 'mount_check': 'false',
            'bytes_per_second': '0', 'files_per_second': '0'}
    conf.update(settings)
    return ObjectAuditor(conf)


def put(mgr, obj, body, device='sda', partition=3, extra=None):
    df = mgr.get_diskfile(device, partition, 'a', 'c', obj)
    writer = df.writer(len(body))
    t = Timestamp.now()
    try:
        writer.write(body)
        meta = {'name': df.name, 'X-Timestamp': t.internal,
                'Content-Type': 'a/b', 'Content-Length': writer.upload_size,
                'ETag': writer.etag}
        meta.update(extra or {})
        writer.commit(t, meta)
    finally:
        writer.close()
    return df, os.path.join(df.hash_dir, t.internal + '.data')


def read_back(mgr, obj, device='sda', partition=3):
    df = mgr.get_diskfile(device, partition, 'a', 'c', obj).open()
    try:
        return b''.join(df.reader(verify=True))
    finally:
        df.close()


def quarantined(mgr, device='sda'):
    qdir = os.path.join(mgr.devices, device, 'quarantined', 'objects')
    return sorted(os.listdir(qdir)) if os.path.isdir(qdir) else []


def invalid_suffixes(df):
    path = os.path.join(df.partition_dir, hashes.INVALID_FILE)
    with open(path) as f:
        return f.read().split()


def flip_byte(path, offset):
    with open(path, 'r+b') as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


# -- pacing --------------------------------------------------------------

def test_next_slot_paces_to_the_rate():
    # 10 units at 5/s: paid for 2 s after the start
    allowed, delay = next_slot(100.0, 100.0, 10, 5.0)
    assert (allowed, delay) == (102.0, 2.0)
    # taken again right after waiting: another 2 s
    assert next_slot(allowed, 102.0, 10, 5.0) == (104.0, 2.0)
    # unlimited
    assert next_slot(100.0, 100.0, 10 ** 9, 0) == (100.0, 0.0)


def test_next_slot_caps_idle_credit_at_the_burst():
    # idle for an hour: only `burst` seconds of credit remain
    allowed, delay = next_slot(100.0, 3700.0, 5, 1.0, burst=1.0)
    assert allowed == 3699.0 + 5
    assert delay == 4.0
    # within the burst, no wait at all
    assert next_slot(100.0, 3700.0, 1, 2.0, burst=1.0) == (3699.5, 0.0)


def test_rate_limiter_averages_the_rate_on_a_fake_clock():
    clock = FakeClock()
    limiter = RateLimiter(1 * MIB, burst=1.0, clock=clock, sleep=clock.sleep)
    start = clock()
    for _ in range(160):          # 10 MiB in 64 KiB chunks
        limiter.take(64 * 1024)
    assert clock() - start == pytest.approx(10.0)
    # a slow reader (time passing by itself) is not slowed down further
    clock.now += 20
    slept = len(clock.slept)
    limiter.take(MIB // 2)
    assert len(clock.slept) == slept


def test_unlimited_limiter_never_sleeps():
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.take(MIB)
    assert clock.slept == []


def test_auditor_honours_bytes_and_files_per_second(node):
    for i in range(4):
        put(node, 'o%d' % i, b'x' * MIB)
    clock = FakeClock()
    daemon = make_auditor(node, bytes_per_second=str(MIB),
                          files_per_second='1')
    daemon.clock, daemon.sleep = clock, clock.sleep
    stats = daemon.run_once()
    assert stats['objects'] == 4 and stats['bytes'] == 4 * MIB
    # 4 MiB at 1 MiB/s; the 4 files at 1/s overlap with that
    assert clock.now - 1000.0 == pytest.approx(4.0)


def test_files_per_second_paces_small_objects(node):
    for i in range(5):
        put(node, 'small%d' % i, b'')
    clock = FakeClock()
    daemon = make_auditor(node, files_per_second='2')
    daemon.clock, daemon.sleep = clock, clock.sleep
    assert daemon.run_once()['objects'] == 5
    # a new limiter starts with no credit: 5 files at 2/s take 2.5 s
    assert clock.now - 1000.0 == pytest.approx(5 / 2)


# -- auditing ------------------------------------------------------------

def test_good_objects_are_left_alone_pass_after_pass(node):
    bodies = {'o1': os.urandom(200000), 'o2': b'', 'o3': b'abc'}
    paths = {}
    for name, body in bodies.items():
        paths[name] = put(node, name, body)[1]
    put(node, 'other-dev', b'on sdb', device='sdb', partition=9)
    daemon = make_auditor(node)
    for _ in range(2):
        stats = daemon.run_once()
        assert stats == {'objects': 4, 'bytes': 200000 + 3 + 6,
                         'quarantined': 0, 'errors': 0}
    for name, body in bodies.items():
        assert os.path.exists(paths[name])
        assert read_back(node, name) == body
    assert quarantined(node) == []


def test_auditor_checks_the_md5_not_only_the_crc32(node):
    """Reads by clients check the CRC-32 kept at write time; the
    auditor holds the content to its ETag, so content that agrees with
    its CRC but not its MD5 is still quarantined."""
    good, good_path = put(node, 'good', b'x' * 5000)
    bad, bad_path = put(node, 'bad', b'y' * 5000,
                        extra={'ETag': hashlib.md5(b'z').hexdigest()})
    assert read_back(node, 'bad') == b'y' * 5000   # the CRC agrees
    stats = make_auditor(node).run_once()
    assert (stats['quarantined'], stats['objects']) == (1, 1)
    assert quarantined(node) == [bad.hash]
    assert os.path.exists(good_path)


def test_flipped_byte_is_quarantined_and_suffix_invalidated(node):
    good, good_path = put(node, 'good', os.urandom(100000))
    bad, bad_path = put(node, 'bad', os.urandom(300000))
    with open(os.path.join(bad.partition_dir, hashes.INVALID_FILE), 'w'):
        pass  # as after a replication pass: nothing stale
    flip_byte(bad_path, 150000)
    daemon = make_auditor(node)
    stats = daemon.run_once()
    assert stats['quarantined'] == 1 and stats['objects'] == 1
    assert stats['errors'] == 0
    assert not os.path.exists(bad.hash_dir)
    assert quarantined(node) == [bad.hash]
    moved = os.path.join(node.devices, 'sda', 'quarantined', 'objects',
                         bad.hash, os.path.basename(bad_path))
    assert os.path.getsize(moved) == 300000
    # the replicator will see the suffix changed and restore the object
    assert bad.suffix in invalid_suffixes(bad)
    assert os.path.exists(good_path)
    # the next pass has nothing left to quarantine
    assert daemon.run_once()['quarantined'] == 0


@pytest.mark.parametrize('damage', ['garbage', 'missing', 'no-etag'])
def test_damaged_metadata_is_quarantined(node, damage):
    bad, bad_path = put(node, 'bad', b'hello')
    good, good_path = put(node, 'good', b'world')
    if damage == 'garbage':
        xattr.setxattr(bad_path, md.XATTR_KEY, b'\xc1\x00garbage')
    elif damage == 'missing':
        xattr.removexattr(bad_path, md.XATTR_KEY)
    else:
        meta, _ = md.read_metadata_path(bad_path)
        del meta['ETag']
        fd = os.open(bad_path, os.O_RDWR)
        try:
            md.write_metadata(fd, meta)
        finally:
            os.close(fd)
    hashes.get_hashes(bad.partition_dir)    # a cache, to be invalidated
    stats = make_auditor(node).run_once()
    assert (stats['quarantined'], stats['objects']) == (1, 1)
    assert quarantined(node) == [bad.hash]
    assert bad.suffix in invalid_suffixes(bad)
    assert read_back(node, 'good') == b'world'


def test_truncated_object_is_quarantined(node):
    bad, bad_path = put(node, 'bad', b'x' * 1000)
    os.truncate(bad_path, 500)
    assert make_auditor(node).run_once()['quarantined'] == 1
    assert quarantined(node) == [bad.hash]


def test_damaged_post_metadata_is_quarantined(node):
    df, _ = put(node, 'o', b'data')
    meta_path = os.path.join(df.hash_dir,
                             Timestamp.now().internal + fileset.META)
    with open(meta_path, 'wb') as f:
        f.write(b'not an object file')
    assert make_auditor(node).run_once()['quarantined'] == 1
    assert quarantined(node) == [df.hash]


def test_tombstones_and_strays_are_not_audited(node):
    df = node.get_diskfile('sda', 3, 'a', 'c', 'gone')
    df.write_tombstone(Timestamp.now())
    stray = os.path.join(node.devices, 'sda', 'objects', '3', 'abc',
                         'not-a-hash')
    os.makedirs(stray)
    stats = make_auditor(node).run_once()
    assert stats == {'objects': 0, 'bytes': 0, 'quarantined': 0,
                     'errors': 0}
    assert os.listdir(df.hash_dir) and os.path.isdir(stray)


def test_expired_object_is_still_audited(node):
    bad, bad_path = put(node, 'old', b'abcdef',
                        extra={'X-Delete-At': str(int(time.time()) - 10)})
    flip_byte(bad_path, 2)
    assert make_auditor(node).run_once()['quarantined'] == 1


def test_object_in_the_wrong_directory_is_reported_not_quarantined(node):
    df, path = put(node, 'o', b'data')
    # the same file under a hash its name does not have (for instance a
    # node configured with the wrong hash secret)
    wrong = 'f' * 29 + df.hash[-3:]
    wrong_dir = os.path.join(df.partition_dir, df.suffix, wrong)
    os.rename(df.hash_dir, wrong_dir)
    stats = make_auditor(node).run_once()
    assert (stats['errors'], stats['quarantined']) == (1, 0)
    assert os.listdir(wrong_dir)


def test_main_runs_one_pass_and_prints_counts(node, tmp_path, capsys):
    put(node, 'o', b'abc')
    conf = tmp_path / 'object-server.conf'
    conf.write_text('[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = 6010\n'
                    '[object-server]\ndevices = %s\nmount_check = false\n'
                    '[object-auditor]\nbytes_per_second = 0\n'
                    % node.devices)
    assert auditor.main([str(conf), '--once']) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats['objects'], stats['bytes']) == (1, 3)


def test_bad_rate_setting_is_a_config_error(node, tmp_path, capsys):
    conf = tmp_path / 'object-server.conf'
    conf.write_text('[object-server]\ndevices = %s\n'
                    '[object-auditor]\nbytes_per_second = fast\n'
                    % node.devices)
    assert auditor.main([str(conf), '--once']) == 2
    assert 'bytes_per_second' in capsys.readouterr().err
