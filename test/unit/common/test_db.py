"""The shared SQLite database base, on real files in temp directories.

ContainerBroker is the concrete broker used here; what is specific to
containers and accounts is tested under test/unit/container and
test/unit/account.
"""
import os
import sqlite3
import threading

import pytest

from objstore.common import db
from objstore.common.db import (DatabaseConflict, DatabaseNotFound,
                                ItemError, MetadataError, chexor,
                                merge_metadata, prefix_upper_bound)
from objstore.common.timestamp import Timestamp
from objstore.container.broker import ContainerBroker


def ts(n):
    return Timestamp(1700000000 + n).internal


@pytest.fixture
def paths(tmp_path):
    dev = tmp_path / 'sda'
    hsh = 'a' * 29 + 'fff'
    return {'db': str(dev / 'containers' / '7' / 'fff' / hsh /
                      (hsh + '.db')),
            'tmp': str(dev / 'tmp')}


@pytest.fixture
def broker(paths):
    b = ContainerBroker(paths['db'], account='a', container='c')
    assert b.initialize(ts(1), paths['tmp'])
    return b


def test_chexor_is_order_independent_and_reversible():
    h1 = chexor(chexor(db.EMPTY_HASH, 'a', ts(1)), 'b', ts(2))
    h2 = chexor(chexor(db.EMPTY_HASH, 'b', ts(2)), 'a', ts(1))
    assert h1 == h2 != db.EMPTY_HASH
    assert chexor(h1, 'a', ts(1)) == chexor(db.EMPTY_HASH, 'b', ts(2))
    assert len(h1) == 32


@pytest.mark.parametrize('prefix,bound', [
    ('a', 'b'), ('ab', 'ac'), ('a/', 'a0'), ('', None),
    ('\U0010ffff', None), ('a\U0010ffff', 'b'), ('\ud7ff', '\ue000'),
    ('é', 'ê')])
def test_prefix_upper_bound(prefix, bound):
    assert prefix_upper_bound(prefix) == bound


def test_merge_metadata_newest_wins_per_item():
    old = {'X-A': ['1', ts(5)], 'X-B': ['x', ts(5)]}
    merged, changed = merge_metadata(old, {'X-A': ['2', ts(4)],
                                           'X-B': ['', ts(6)],
                                           'X-C': ['c', ts(1)]})
    assert changed
    assert merged == {'X-A': ['1', ts(5)], 'X-B': ['', ts(6)],
                      'X-C': ['c', ts(1)]}
    assert merge_metadata(merged, {'X-A': ['0', ts(5)]}) == (merged, False)
    # equal timestamps: the same winner whatever the order
    assert merge_metadata({'X-A': ['a', ts(1)]}, {'X-A': ['b', ts(1)]})[0] \
        == merge_metadata({'X-A': ['b', ts(1)]}, {'X-A': ['a', ts(1)]})[0]


def test_initialize_is_atomic_and_leaves_no_temp_files(paths):
    b = ContainerBroker(paths['db'], account='a', container='c')
    assert not b.exists()
    assert b.initialize(ts(1), paths['tmp'], {'X-Container-Meta-A':
                                              ['1', ts(1)]})
    assert os.listdir(paths['tmp']) == []
    assert os.listdir(os.path.dirname(paths['db'])) == \
        [os.path.basename(paths['db'])]
    info = b.get_info()
    assert info['put_timestamp'] == ts(1)
    assert info['delete_timestamp'] == db.ZERO
    assert info['account'] == 'a' and info['container'] == 'c'
    assert info['metadata'] == {'X-Container-Meta-A': ['1', ts(1)]}
    assert len(info['id']) == 36
    conn = sqlite3.connect(paths['db'])
    try:
        assert conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
    finally:
        conn.close()
    # a second create is a no-op
    assert not b.initialize(ts(2), paths['tmp'])
    assert b.get_info()['put_timestamp'] == ts(1)


def test_concurrent_creators_one_wins(paths):
    results = []
    barrier = threading.Barrier(6)

    def create(n):
        b = ContainerBroker(paths['db'], account='a', container='c')
        barrier.wait()
        results.append(b.initialize(ts(n), paths['tmp']))
    threads = [threading.Thread(target=create, args=(n,))
               for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    assert os.listdir(paths['tmp']) == []
    ContainerBroker(paths['db']).get_info()


def test_missing_database_raises_not_found(paths):
    b = ContainerBroker(paths['db'])
    with pytest.raises(DatabaseNotFound):
        b.get_info()
    assert b.is_deleted()
    assert not b.exists()  # and reading did not create it


def test_put_db_raises_put_timestamp_and_merges_metadata(broker):
    assert broker.put_db(ts(3), {'X-Container-Meta-A': ['1', ts(3)]}) == \
        'accepted'
    assert broker.put_db(ts(2), {'X-Container-Meta-A': ['0', ts(2)]}) == \
        'accepted'
    info = broker.get_info()
    assert info['put_timestamp'] == ts(3)
    assert info['metadata'] == {'X-Container-Meta-A': ['1', ts(3)]}


def test_delete_then_revive(broker):
    with pytest.raises(DatabaseConflict):
        broker.delete_db(ts(1))  # not newer than the put
    broker.put_db(ts(2), {'X-Container-Meta-A': ['1', ts(2)]})
    before = broker.get_info()['status_changed_at']
    broker.delete_db(ts(3))
    info = broker.get_info()
    assert broker.is_deleted()
    assert info['delete_timestamp'] == ts(3)
    assert info['status_changed_at'] != before
    assert info['metadata'] == {'X-Container-Meta-A': ['', ts(3)]}
    with pytest.raises(DatabaseNotFound):
        broker.delete_db(ts(4))
    # an older PUT cannot revive it, and changes nothing
    with pytest.raises(DatabaseConflict):
        broker.put_db(ts(2) + '_0000000000000001',
                      {'X-Container-Meta-B': ['b', ts(2)]})
    assert broker.get_info() == info
    assert broker.put_db(ts(5)) == 'created'
    assert not broker.is_deleted()


def test_update_metadata_validates_combined_result(broker):
    def at_most_two(live):
        return 'too many' if len(live) > 2 else None
    broker.update_metadata({'X-A': ['1', ts(2)], 'X-B': ['2', ts(2)]},
                           at_most_two)
    with pytest.raises(MetadataError):
        broker.update_metadata({'X-C': ['3', ts(3)]}, at_most_two)
    assert set(broker.metadata) == {'X-A', 'X-B'}
    # removing one makes room
    broker.update_metadata({'X-A': ['', ts(3)], 'X-C': ['3', ts(3)]},
                           at_most_two)
    assert db.live_metadata(broker.metadata) == {'X-B': '2', 'X-C': '3'}
    with pytest.raises(ItemError):
        broker.update_metadata({'X-D': 'not a pair'})
    with pytest.raises(ItemError):
        broker.update_metadata({'X-D': ['v', 'not a timestamp']})


def test_sync_points(broker):
    assert broker.get_sync('peer') == -1
    broker.merge_syncs([{'remote_id': 'peer', 'sync_point': 5},
                        {'remote_id': 'other', 'sync_point': 9}])
    assert broker.get_sync('peer') == 5
    assert broker.get_sync('peer', incoming=False) == -1
    broker.merge_syncs([{'remote_id': 'peer', 'sync_point': 3}])
    assert broker.get_sync('peer') == 3  # merge_syncs sets as given
    broker.merge_syncs([{'remote_id': 'peer', 'sync_point': 7}],
                       incoming=False)
    assert broker.get_syncs(incoming=False) == [
        {'remote_id': 'peer', 'sync_point': 7}]
    with pytest.raises(ItemError):
        broker.merge_syncs([{'remote_id': 'x'}])
    with pytest.raises(ItemError):
        broker.merge_syncs([{'remote_id': '', 'sync_point': 1}])
    # merge_items advances a peer's incoming point, never moves it back
    rows = [{'ROWID': 12, 'name': 'o', 'created_at': ts(2), 'size': 1,
             'content_type': 't', 'etag': 'e', 'deleted': 0}]
    broker.merge_items(rows, source_id='peer')
    assert broker.get_sync('peer') == 12
    rows[0]['ROWID'] = 4
    broker.merge_items(rows, source_id='peer')
    assert broker.get_sync('peer') == 12


def test_merge_timestamps_only_move_forward(broker):
    created = broker.get_info()['created_at']
    broker.merge_timestamps(ts(0), ts(9), ts(4))
    info = broker.get_info()
    assert info['created_at'] == ts(0) != created
    assert info['put_timestamp'] == ts(9)
    assert info['delete_timestamp'] == ts(4)
    broker.merge_timestamps(ts(5), ts(2), ts(1))
    info2 = broker.get_info()
    assert (info2['created_at'], info2['put_timestamp'],
            info2['delete_timestamp']) == (ts(0), ts(9), ts(4))


def test_rows_are_never_updated_in_place(broker):
    broker.put_object('o', ts(2), 1, 't', 'e')
    with broker.get() as conn:
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute("UPDATE object SET size = 5")


def test_wal_and_full_sync_on_every_connection(broker):
    with broker.get() as conn:
        assert conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
        assert conn.execute('PRAGMA synchronous').fetchone()[0] == 2  # FULL
        assert conn.execute('PRAGMA busy_timeout').fetchone()[0] == \
            int(db.BUSY_TIMEOUT * 1000)


def test_writer_waits_for_a_busy_database(broker):
    """A second writer queues on the busy timeout instead of failing."""
    hold = ContainerBroker(broker.db_file)
    done = []
    with hold.transaction() as conn:
        conn.execute("INSERT INTO object (name, created_at, size, "
                     "content_type, etag) VALUES ('x', ?, 1, '', '')",
                     (ts(2),))
        t = threading.Thread(target=lambda: done.append(
            broker.put_object('y', ts(3), 2, '', '')))
        t.start()
        t.join(0.3)
        assert t.is_alive()  # blocked on our lock
    t.join(10)
    assert done == [True]
    assert broker.get_info()['object_count'] == 2


def test_short_busy_timeout_gives_locked_error(paths, broker):
    impatient = ContainerBroker(paths['db'], timeout=0.05)
    with broker.transaction():
        with pytest.raises(sqlite3.OperationalError, match='locked'):
            impatient.put_object('o', ts(2), 1, '', '')


def test_connections_are_reused_per_file(broker):
    with broker.get() as first:
        pass
    with broker.get() as second:
        assert second is first
        # one operation at a time: a nested one gets its own connection
        with broker.get() as nested:
            assert nested is not second


def test_replaced_file_is_not_served_by_an_old_connection(paths, broker):
    broker.put_object('old', ts(2), 1, 't', 'e')
    with broker.get() as stale:
        pass
    other = ContainerBroker(paths['db'] + '.new', account='a',
                            container='c')
    other.initialize(ts(1), paths['tmp'])
    other.put_object('new', ts(3), 1, 't', 'e')
    db.POOL.clear()  # nothing of the new file is pooled
    with broker.get() as conn:
        pass
    os.rename(other.db_file, broker.db_file)
    with broker.get() as conn:
        assert conn is not stale
    assert [r['name'] for r in broker.list_objects(10)] == ['new']


def test_pool_bounds():
    pool = db.ConnectionPool(per_file=1, max_files=4)
    conns = [sqlite3.connect(':memory:') for _ in range(3)]
    pool.give('f', 1, conns[0])
    pool.give('f', 1, conns[1])  # over per_file: closed
    with pytest.raises(sqlite3.ProgrammingError):
        conns[1].execute('SELECT 1')
    assert pool.take('f', 2) is None  # another file behind that path
    with pytest.raises(sqlite3.ProgrammingError):
        conns[0].execute('SELECT 1')
    conns[2].execute('BEGIN')
    pool.give('g', 1, conns[2])  # mid-transaction: closed, not pooled
    assert pool.take('g', 1) is None
    for i in range(6):
        pool.give('h%d' % i, 1, sqlite3.connect(':memory:'))
    assert len(pool._idle) <= 4 + 1
    pool.clear()
    assert pool._idle == {}
