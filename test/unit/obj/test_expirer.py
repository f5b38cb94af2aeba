"""The object expirer's decisions, on real devices, rings and files.

No servers run: the container primaries the rings name are free ports,
so every container update fails and must be saved as an async pending
(what the updater retries); functional/test_expirer_reaper.py covers
the updates that succeed.
"""
import os
import time

import msgpack
import pytest

from objstore.cli import aio
from objstore.common.timestamp import Timestamp
from objstore.obj import async_pending, diskfile, expiry, fileset
from objstore.obj.expirer import ObjectExpirer


@pytest.fixture
def node(tmp_path, cluster_conf, free_aio_ports):
    """Node 1 of a 4-node ring set; its device d1 holds the objects."""
    base, _proxy = free_aio_ports
    etc = tmp_path / 'etc'
    etc.mkdir()
    for kind in aio.KINDS:
        aio.build_ring(str(etc), kind, base)
    devices = tmp_path / 'srv'
    (devices / 'd1').mkdir(parents=True)
    conf = {'devices': str(devices), 'mount_check': 'false',
            'bind_ip': '127.0.0.1',
            'bind_port': str(aio.port_for('object', 1, base)),
            'ring_dir': str(etc), 'container_update_timeout': '1'}
    mgr = diskfile.DiskFileManager(
        str(devices), mount_check=False, hash_prefix=cluster_conf['prefix'],
        hash_suffix=cluster_conf['suffix'])
    return {'conf': conf, 'mgr': mgr, 'dev': str(devices / 'd1')}


def put(node, name, timestamp, delete_at=None):
    df = node['mgr'].get_diskfile('d1', 5, 'a', 'c', name)
    writer = df.writer(4)
    try:
        writer.write(b'data')
        meta = {'name': df.name, 'X-Timestamp': Timestamp(timestamp).internal,
                'Content-Type': 'a/b', 'Content-Length': 4,
                'ETag': writer.etag}
        if delete_at is not None:
            meta['X-Delete-At'] = str(delete_at)
        writer.commit(timestamp, meta)
    finally:
        writer.close()
    return df


def entries(node, now=2 ** 33):
    return list(expiry.due(node['dev'], now))


def pendings(node):
    out = []
    for path in async_pending.iter_pending(node['dev']):
        out.append(async_pending.load(path))
    return out


def run(node, **settings):
    return ObjectExpirer(dict(node['conf'], **settings)).run_once()


def test_a_passed_object_is_tombstoned_at_its_delete_at(node):
    delete_at = int(time.time()) - 5
    df = put(node, 'gone', Timestamp(delete_at - 60), delete_at)
    assert len(entries(node)) == 1
    stats = run(node)
    assert stats == {'expired': 1, 'skipped': 0, 'failures': 0}
    current = df.current()
    assert current.data is None
    assert current.tombstone == \
        Timestamp(delete_at).internal + fileset.TOMBSTONE
    assert entries(node) == []
    # the container primaries were unreachable: one update saved for each,
    # a DELETE stamped with the expiry time
    saved = pendings(node)
    assert len(saved) == 3
    assert {p['op'] for p in saved} == {'DELETE'}
    assert {(p['account'], p['container'], p['obj']) for p in saved} == \
        {('a', 'c', 'gone')}
    assert {p['headers']['X-Timestamp'] for p in saved} == \
        {Timestamp(delete_at).internal}
    assert len({p['container_device'] for p in saved}) == 3
    # and the next pass has nothing left to do
    assert run(node) == {'expired': 0, 'skipped': 0, 'failures': 0}


def test_objects_not_yet_due_are_left_alone(node):
    delete_at = int(time.time()) + 3600
    df = put(node, 'later', Timestamp.now(), delete_at)
    assert run(node) == {'expired': 0, 'skipped': 0, 'failures': 0}
    assert df.current().data is not None
    assert len(entries(node)) == 1


def test_a_reput_without_x_delete_at_is_kept(node):
    delete_at = int(time.time()) - 5
    df = put(node, 'reput', Timestamp(delete_at - 60), delete_at)
    put(node, 'reput', Timestamp(delete_at - 30))
    stats = run(node)
    assert stats == {'expired': 0, 'skipped': 1, 'failures': 0}
    df.open()
    df.close()
    assert entries(node) == [] and pendings(node) == []


def test_a_post_that_moved_x_delete_at_later_wins(node):
    now = int(time.time())
    df = put(node, 'moved', Timestamp(now - 60), now - 5)
    df.write_meta(Timestamp(now - 30), {'X-Delete-At': str(now + 3600)})
    assert run(node) == {'expired': 0, 'skipped': 1, 'failures': 0}
    assert df.current().data is not None
    # the later entry stays until its time has come
    assert [e.delete_at for e in entries(node)] == [now + 3600]
    expirer = ObjectExpirer(node['conf'])
    [entry] = entries(node)
    assert expirer.expire_entry('d1', node['dev'], entry, now + 3600) == \
        'expired'
    assert df.current().tombstone == \
        Timestamp(now + 3600).internal + fileset.TOMBSTONE


def test_a_post_removing_x_delete_at_wins(node):
    now = int(time.time())
    df = put(node, 'kept', Timestamp(now - 60), now - 5)
    df.write_meta(Timestamp(now - 30), {'X-Object-Meta-A': 'b'})
    assert run(node)['skipped'] == 1
    assert df.current().data is not None and entries(node) == []


def test_deleted_objects_just_lose_their_entry(node):
    now = int(time.time())
    df = put(node, 'deleted', Timestamp(now - 60), now - 5)
    df.write_tombstone(Timestamp(now - 30))
    assert run(node) == {'expired': 0, 'skipped': 1, 'failures': 0}
    assert entries(node) == [] and pendings(node) == []
    assert df.current().tombstone == \
        Timestamp(now - 30).internal + fileset.TOMBSTONE


def test_own_tombstone_left_by_a_kill_still_updates_the_container(node):
    # killed after the tombstone, before the container update: the entry
    # is still there and the next pass finishes the job
    delete_at = int(time.time()) - 5
    df = put(node, 'half', Timestamp(delete_at - 60), delete_at)
    df.write_tombstone(Timestamp(delete_at))
    assert run(node) == {'expired': 1, 'skipped': 0, 'failures': 0}
    assert len(pendings(node)) == 3 and entries(node) == []


def test_garbled_entries_are_skipped_and_removed(node):
    delete_at = int(time.time()) - 5
    df = put(node, 'real', Timestamp(delete_at - 60), delete_at)
    [good] = entries(node)
    hour = os.path.dirname(good.path)
    junk = {'junk': b'?',
            '0000000001-5-%s-1.00000' % df.hash: b'\xc1',
            # a name that does not hash to the entry's hash
            '0000000002-5-%s-1.00000' % df.hash: msgpack.packb(
                {'name': '/a/c/other'}),
            # an object that was never there
            '0000000003-5-%s-1.00000' % ('0' * 32): msgpack.packb(
                {'name': '/a/c/never'})}
    for name, body in junk.items():
        with open(os.path.join(hour, name), 'wb') as f:
            f.write(body)
    stats = run(node, concurrency='3')
    assert stats == {'expired': 1, 'skipped': 4, 'failures': 0}
    assert entries(node) == []
    assert df.current().data is None


def test_many_entries_with_concurrency(node):
    delete_at = int(time.time()) - 5
    dfs = [put(node, 'o%03d' % i, Timestamp(delete_at - 60), delete_at)
           for i in range(30)]
    stats = run(node, concurrency='8', container_update_timeout='0.5')
    assert stats == {'expired': 30, 'skipped': 0, 'failures': 0}
    assert all(df.current().data is None for df in dfs)
    assert entries(node) == []


def test_an_unavailable_device_keeps_its_entries(node):
    delete_at = int(time.time()) - 5
    put(node, 'o', Timestamp(delete_at - 60), delete_at)
    [entry] = entries(node)
    expirer = ObjectExpirer(node['conf'])
    assert expirer.expire_entry('missing', node['dev'], entry,
                                time.time()) == 'failures'
    assert len(entries(node)) == 1
