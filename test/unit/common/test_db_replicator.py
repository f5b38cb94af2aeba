"""The pieces of DB replication that need no server: the database side of
whole-database transfer (snapshot, inspect, install or merge), reclaiming,
removal under the write lock, and the replicator's own decisions.

Real SQLite files in temp directories; the replicator talking to real
servers is in test/functional/test_db_replicator.py.
"""
import os
import sqlite3
import threading
import time

import pytest

from objstore.account.broker import AccountBroker
from objstore.common import db
from objstore.common.config import ConfigError
from objstore.common.db import BadDatabase, DatabaseNotFound
from objstore.common.db_replicator import (STALE_TMP_AGE, fingerprint,
                                           needs_whole_db)
from objstore.common.timestamp import Timestamp
from objstore.container.broker import ContainerBroker
from objstore.container.replicator import ContainerReplicator

HSH = 'b' * 29 + 'abc'


def ts(n):
    return Timestamp(1700000000 + n).internal


def db_path(root, dev='sda', part=3, hsh=HSH, datadir='containers'):
    return os.path.join(str(root), dev, datadir, str(part), hsh[-3:], hsh,
                        hsh + '.db')


def make(root, dev='sda', rows=(), **kw):
    """A container DB on ``dev`` with object rows (name, ts[, deleted])."""
    b = ContainerBroker(db_path(root, dev), account='a', container='c')
    b.initialize(kw.get('put', ts(0)), os.path.join(str(root), dev, 'tmp'))
    for row in rows:
        name, when = row[0], row[1]
        if len(row) > 2 and row[2]:
            b.delete_object(name, when)
        else:
            b.put_object(name, when, 10, 'text/plain', 'etag-' + when)
    return b


def names(broker):
    return [o['name'] for o in broker.list_objects(100)]


@pytest.fixture(autouse=True)
def close_pool():
    yield
    db.POOL.clear()


# -- decisions --------------------------------------------------------

@pytest.mark.parametrize('max_row,point,expected', [
    (10, 9, False), (10, -1, False), (1000, 799, True), (1000, 800, False),
    (5, -1, False), (5, 9, True)])
def test_needs_whole_db_when_further_behind_than_one_pass(max_row, point,
                                                          expected):
    assert needs_whole_db(max_row, point, per_diff=100, max_diffs=2) \
        is expected


def test_fingerprint_changes_with_rows_timestamps_and_metadata(tmp_path):
    b = make(tmp_path, rows=[('o', ts(1))])
    before = fingerprint(b.get_replication_info())
    assert fingerprint(b.get_replication_info()) == before
    b.update_metadata({'X-Container-Meta-A': ['1', ts(2)]})
    after_meta = fingerprint(b.get_replication_info())
    assert after_meta != before
    b.put_object('p', ts(3), 1, 't', 'e')
    assert fingerprint(b.get_replication_info()) != after_meta


def test_replicator_settings_must_be_positive(cluster_conf, tmp_path):
    conf = {'devices': str(tmp_path), 'mount_check': 'false'}
    rep = ContainerReplicator(conf)
    assert (rep.per_diff, rep.max_diffs, rep.concurrency) == (1000, 100, 4)
    assert rep.reclaim_age == 7 * 24 * 3600
    for key in ('per_diff', 'max_diffs', 'concurrency', 'node_timeout',
                'reclaim_age'):
        with pytest.raises(ConfigError):
            ContainerReplicator(dict(conf, **{key: '0'}))
    with pytest.raises(ConfigError):
        ContainerReplicator(dict(conf, per_diff='many'))


def test_reclaimable_needs_an_old_delete_and_no_live_rows(cluster_conf,
                                                          tmp_path):
    rep = ContainerReplicator({'devices': str(tmp_path),
                               'mount_check': 'false', 'reclaim_age': '100'})
    now = time.time()
    info = {'put_timestamp': Timestamp(now - 500).internal,
            'delete_timestamp': Timestamp(now - 200).internal,
            'object_count': 0}
    assert rep.reclaimable(info)
    assert not rep.reclaimable(dict(info, object_count=1))
    assert not rep.reclaimable(dict(
        info, delete_timestamp=Timestamp(now - 50).internal))
    assert not rep.reclaimable(dict(
        info, put_timestamp=Timestamp(now - 100).internal))


def test_unreadable_database_is_quarantined(cluster_conf, tmp_path):
    path = db_path(tmp_path)
    os.makedirs(os.path.dirname(path))
    with open(path, 'wb') as f:
        f.write(b'this is not sqlite at all' * 100)
    rep = ContainerReplicator({'devices': str(tmp_path),
                               'mount_check': 'false'})
    rep.replicate_db(None, str(tmp_path / 'sda'), 3, HSH, path)
    assert not os.path.exists(path)
    moved = tmp_path / 'sda' / 'quarantined' / 'containers' / HSH / \
        (HSH + '.db')
    assert moved.read_bytes().startswith(b'this is not sqlite')
    assert rep._counts['quarantined'] == 1


def test_stale_temp_files_are_removed_fresh_ones_kept(cluster_conf,
                                                      tmp_path):
    tmp = tmp_path / 'sda' / 'tmp'
    tmp.mkdir(parents=True)
    old = time.time() - STALE_TMP_AGE - 10
    for name in ('dbrepl-old.db', 'syncdb-old.db', 'other-old'):
        (tmp / name).write_bytes(b'x')
        os.utime(tmp / name, (old, old))
    (tmp / 'dbrepl-new.db').write_bytes(b'x')
    (tmp / 'removed-abc').mkdir()
    (tmp / 'removed-abc' / 'x.db').write_bytes(b'x')
    rep = ContainerReplicator({'devices': str(tmp_path),
                               'mount_check': 'false'})
    rep.remove_stale_tmp(str(tmp_path / 'sda'))
    assert sorted(os.listdir(tmp)) == ['dbrepl-new.db', 'other-old']


# -- snapshot and inspection -------------------------------------------

def test_snapshot_is_a_full_consistent_copy(tmp_path):
    b = make(tmp_path, rows=[('o%d' % i, ts(i + 1)) for i in range(5)])
    copy = str(tmp_path / 'copy.db')
    info = b.snapshot(copy)
    assert info['max_row'] == 5 and info['id'] == b.get_info()['id']
    checked = ContainerBroker.inspect_copy(copy)
    assert checked['max_row'] == 5 and checked['object_count'] == 5
    assert checked['hash'] == b.get_info()['hash']


def test_inspect_copy_rejects_what_is_not_a_database_of_its_kind(tmp_path):
    def copy_with(data):
        path = str(tmp_path / 'copy.db')
        with open(path, 'wb') as f:
            f.write(data)
        return path
    with pytest.raises(BadDatabase):
        ContainerBroker.inspect_copy(copy_with(b'\x00' * 4096))
    with pytest.raises(BadDatabase):
        ContainerBroker.inspect_copy(copy_with(b'SQLite format 3\x00' +
                                               os.urandom(4000)))
    good = make(tmp_path, rows=[('o%d' % i, ts(i + 1)) for i in range(300)])
    good.snapshot(str(tmp_path / 'good.db'))
    with open(str(tmp_path / 'good.db'), 'rb') as f:
        data = f.read()
    with pytest.raises(BadDatabase):  # cut short
        ContainerBroker.inspect_copy(copy_with(data[:len(data) // 2]))
    # an account database is not a container database, and back
    with pytest.raises(BadDatabase, match='not a ContainerBroker'):
        acct = AccountBroker(str(tmp_path / 'acct' / 'a.db'), account='a')
        acct.initialize(ts(1), str(tmp_path / 'tmp'))
        ContainerBroker.inspect_copy(acct.db_file)
    with pytest.raises(BadDatabase, match='not a AccountBroker'):
        AccountBroker.inspect_copy(str(tmp_path / 'good.db'))
    # right tables, an extra trigger: not ours
    conn = sqlite3.connect(str(tmp_path / 'good.db'))
    conn.execute('CREATE TRIGGER evil AFTER INSERT ON object BEGIN '
                 'DELETE FROM object; END')
    conn.commit()
    conn.close()
    with pytest.raises(BadDatabase, match='not a ContainerBroker'):
        ContainerBroker.inspect_copy(str(tmp_path / 'good.db'))


def test_inspect_copy_rejects_bad_db_info(tmp_path):
    b = make(tmp_path)
    for sql in ("UPDATE db_info SET metadata = 'not json'",
                "UPDATE db_info SET metadata = '{\"k\": 5}'",
                "UPDATE db_info SET put_timestamp = 'soon'",
                "UPDATE db_info SET id = ''",
                "INSERT INTO db_info SELECT * FROM db_info"):
        copy = str(tmp_path / 'copy.db')
        db.remove_db_files(copy)
        b.snapshot(copy)
        conn = sqlite3.connect(copy)
        conn.execute(sql)
        conn.commit()
        conn.close()
        with pytest.raises(BadDatabase):
            ContainerBroker.inspect_copy(copy)


# -- install or merge --------------------------------------------------

def test_copy_is_installed_with_an_id_of_its_own(tmp_path):
    src = make(tmp_path, 'sda', rows=[('o1', ts(1)), ('o2', ts(2))])
    src.update_metadata({'X-Container-Meta-Color': ['blue', ts(3)]})
    copy = str(tmp_path / 'sdb' / 'tmp' / 'copy.db')
    os.makedirs(os.path.dirname(copy))
    info = src.snapshot(copy)
    dest = ContainerBroker(db_path(tmp_path, 'sdb'))
    assert dest.adopt_copy(copy, ContainerBroker.inspect_copy(copy)) == \
        'installed'
    got = dest.get_replication_info()
    assert got['id'] != info['id']
    assert names(dest) == ['o1', 'o2'] and got['object_count'] == 2
    assert got['metadata'] == src.get_info()['metadata']
    # it holds every row of the sender: the sender's next pass sends none
    assert dest.get_sync(info['id']) == info['max_row']
    assert dest.get_syncs(incoming=False) == []
    # installed as a WAL database like one the server created
    conn = sqlite3.connect(dest.db_file)
    assert conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
    conn.close()
    # and it takes writes
    assert dest.put_object('o3', ts(4), 1, 't', 'e')


def test_copy_is_merged_and_newer_rows_here_survive(tmp_path):
    src = make(tmp_path, 'sda', rows=[
        ('o1', ts(1)), ('o2', ts(2)), ('o3', ts(3)), ('gone', ts(4), True)])
    src.update_metadata({'X-Container-Meta-Color': ['blue', ts(5)],
                         'X-Container-Meta-Size': ['big', ts(5)]})
    here = make(tmp_path, 'sdb', rows=[
        ('o2', ts(20)), ('mine', ts(21)), ('gone', ts(1))])
    here.update_metadata({'X-Container-Meta-Color': ['red', ts(30)]})
    here.merge_syncs([{'remote_id': 'third', 'sync_point': 9}])
    src.merge_syncs([{'remote_id': 'third', 'sync_point': 4},
                     {'remote_id': 'fourth', 'sync_point': 7}])
    copy = str(tmp_path / 'sdb' / 'tmp' / 'copy.db')
    info = src.snapshot(copy)
    own_id = here.get_info()['id']
    assert here.adopt_copy(copy, ContainerBroker.inspect_copy(copy)) == \
        'merged'
    assert names(here) == ['mine', 'o1', 'o2', 'o3']
    o2 = [o for o in here.list_objects(10) if o['name'] == 'o2'][0]
    assert o2['created_at'] == ts(20)  # ours was newer
    meta = here.get_info()['metadata']
    assert meta['X-Container-Meta-Color'] == ['red', ts(30)]
    assert meta['X-Container-Meta-Size'] == ['big', ts(5)]
    assert here.get_info()['id'] == own_id
    assert here.get_sync(info['id']) == info['max_row']
    assert here.get_sync('third') == 9  # never lowered
    assert here.get_sync('fourth') == 7


def test_merged_copy_spreads_the_delete(tmp_path):
    src = make(tmp_path, 'sda')
    src.delete_db(ts(40))
    here = make(tmp_path, 'sdb')
    copy = str(tmp_path / 'copy.db')
    src.snapshot(copy)
    here.adopt_copy(copy, ContainerBroker.inspect_copy(copy))
    assert here.is_deleted()
    assert here.get_info()['delete_timestamp'] == ts(40)


# -- reclaim and removal -----------------------------------------------

def test_reclaim_rows_drops_only_old_tombstones(tmp_path):
    b = make(tmp_path, rows=[('live-old', ts(1)), ('dead-old', ts(2), True),
                             ('dead-new', ts(50), True)])
    assert b.reclaim_rows('created_at', ts(10), batch=1) == 1
    assert b.reclaim_rows('created_at', ts(10)) == 0
    left = [r['name'] for r in b.get_items_since(-1, 10)]
    assert left == ['live-old', 'dead-new']
    with pytest.raises(ValueError):
        b.reclaim_rows('name; DROP TABLE object', ts(10))


def test_reclaim_rows_of_an_account(tmp_path):
    b = AccountBroker(str(tmp_path / 'a.db'), account='a')
    b.initialize(ts(0), str(tmp_path / 'tmp'))
    b.put_container('old', ts(1), ts(2), 0, 0, ts(2))
    b.put_container('live', ts(1), 0, 3, 30, ts(3))
    assert b.reclaim_rows('delete_timestamp', ts(10)) == 1
    assert [c['name'] for c in b.list_containers(10)] == ['live']


def test_remove_takes_the_whole_directory(tmp_path):
    b = make(tmp_path, rows=[('o', ts(1))])
    tmp = str(tmp_path / 'sda' / 'tmp')
    part_dir = os.path.dirname(os.path.dirname(os.path.dirname(b.db_file)))
    assert b.remove(tmp)
    assert not os.path.exists(os.path.dirname(b.db_file))
    assert not os.path.exists(part_dir)  # emptied partition dir goes too
    assert os.listdir(tmp) == []
    assert not b.remove(tmp)  # already gone
    with pytest.raises(DatabaseNotFound):
        b.put_object('p', ts(2), 1, 't', 'e')
    # a new database at the same place starts clean (no stale WAL)
    again = make(tmp_path)
    assert names(again) == []


def test_remove_is_vetoed_by_keep(tmp_path):
    b = make(tmp_path, rows=[('o', ts(1))])
    seen = []
    assert not b.remove(str(tmp_path / 'sda' / 'tmp'),
                        keep=lambda info: seen.append(info) or True)
    assert seen[0]['max_row'] == 1
    assert names(b) == ['o']


def test_writer_queued_behind_a_removal_is_refused(tmp_path):
    """A write waiting on the lock the removal holds must not be
    acknowledged into the removed file."""
    b = make(tmp_path, rows=[('o', ts(1))])
    writer = ContainerBroker(b.db_file, account='a', container='c')
    writer.get_info()  # an open connection in the pool, as in a server
    outcome = []

    def write():
        try:
            outcome.append(writer.put_object('late', ts(5), 1, 't', 'e'))
        except DatabaseNotFound:
            outcome.append('not found')

    thread = threading.Thread(target=write)

    def keep(info):
        thread.start()
        time.sleep(0.3)  # the writer now waits on BEGIN IMMEDIATE
        return False

    assert b.remove(str(tmp_path / 'sda' / 'tmp'), keep=keep)
    thread.join(10)
    assert outcome == ['not found']


def test_initialize_remakes_a_directory_removed_under_it(tmp_path,
                                                       monkeypatch):
    b = ContainerBroker(db_path(tmp_path), account='a', container='c')
    real_link = os.link
    calls = []

    def racing_link(src, dst):
        if not calls:  # a replicator empties the place once, mid-create
            calls.append(dst)
            os.rmdir(os.path.dirname(dst))
        return real_link(src, dst)
    monkeypatch.setattr(os, 'link', racing_link)
    assert b.initialize(ts(1), str(tmp_path / 'sda' / 'tmp'))
    assert calls and b.get_info()['put_timestamp'] == ts(1)
