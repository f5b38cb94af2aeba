"""AccountBroker on real SQLite files: container rows, stats, listings."""
import itertools
import threading

import pytest

from objstore.account.broker import AccountBroker
from objstore.common import db
from objstore.common.db import DatabaseConflict, DatabaseNotFound, ItemError
from objstore.common.timestamp import Timestamp

Z = db.ZERO


def ts(n):
    return Timestamp(1700000000 + n).internal


def make(tmp_path, name='a'):
    hsh = '%032x' % abs(hash((str(tmp_path), name)))
    b = AccountBroker(str(tmp_path / 'accounts' / hsh / (hsh + '.db')),
                      account=name)
    assert b.initialize(ts(1), str(tmp_path / 'tmp'))
    return b


@pytest.fixture
def broker(tmp_path):
    return make(tmp_path)


def stats(b):
    info = b.get_info()
    return info['container_count'], info['object_count'], info['bytes_used']


def test_container_reports_sum_into_account_stats(broker):
    broker.put_container('c1', ts(2), Z, 3, 30, ts(2))
    broker.put_container('c2', ts(2), Z, 1, 5, ts(2))
    assert stats(broker) == (2, 4, 35)
    broker.put_container('c1', ts(2), Z, 4, 40, ts(3))   # newer stats
    assert stats(broker) == (2, 5, 45)
    broker.put_container('c1', ts(2), Z, 9, 99, ts(1))   # older: ignored
    assert stats(broker) == (2, 5, 45)
    row = broker.put_container('c2', ts(2), ts(4), 0, 0, ts(4))
    assert row['deleted'] == 1
    assert stats(broker) == (1, 4, 40)
    listed = broker.list_containers(10)
    assert listed == [{'name': 'c1', 'object_count': 4, 'bytes_used': 40,
                       'put_timestamp': ts(2)}]


def test_merge_is_order_independent(tmp_path):
    reports = [('c', ts(2), Z, 1, 10, ts(2)),
               ('c', ts(2), Z, 2, 20, ts(3)),
               ('c', ts(2), ts(5), 0, 0, ts(5)),
               ('c', ts(6), Z, 1, 1, ts(6)),
               ('c', ts(2), Z, 3, 30, ts(4))]
    outcomes = set()
    # every 5th of the 120 orders: each report comes first and last
    orders = list(itertools.permutations(reports))[::5]
    for n, order in enumerate(orders):
        b = make(tmp_path, 'a%d' % n)
        for report in order:
            b.put_container(*report)
        [row] = b.get_items_since(-1, 10)
        del row['ROWID']
        outcomes.add((tuple(sorted(row.items())), b.get_info()['hash'],
                      stats(b)))
    assert len(outcomes) == 1
    [(row, _hash, st)] = outcomes
    row = dict(row)
    # put and delete timestamps each move forward; stats of the latest
    assert (row['put_timestamp'], row['delete_timestamp']) == (ts(6), ts(5))
    assert (row['object_count'], row['stats_timestamp'], row['deleted']) \
        == (1, ts(6), 0)
    assert st == (1, 1, 1)


def test_reports_need_a_live_account(broker):
    broker.delete_account(ts(2))
    assert broker.is_deleted()
    with pytest.raises(DatabaseNotFound):
        broker.put_container('c', ts(3), Z, 0, 0, ts(3))


def test_delete_account_rules(broker):
    broker.put_container('c', ts(2), Z, 1, 1, ts(2))
    with pytest.raises(DatabaseConflict):
        broker.delete_account(ts(1))
    broker.delete_account(ts(3))  # not empty is fine: a reaper cleans up
    with pytest.raises(DatabaseNotFound):
        broker.delete_account(ts(4))
    assert broker.put_db(ts(5)) == 'created'
    assert stats(broker) == (1, 1, 1)


@pytest.mark.parametrize('row', [
    {'put_timestamp': ts(1)},
    {'name': '', 'put_timestamp': ts(1)},
    {'name': 'c', 'put_timestamp': 'soon'},
    {'name': 'c', 'object_count': -1},
    {'name': 'c', 'bytes_used': '5'},
    {'name': 'c', 'object_count': True},
])
def test_bad_rows_are_refused_whole(broker, row):
    with pytest.raises(ItemError):
        broker.merge_items([{'name': 'ok', 'put_timestamp': ts(1)}, row])
    assert broker.get_items_since(-1, 10) == []


def test_replication_converges(tmp_path):
    one, two = make(tmp_path, 'one'), make(tmp_path, 'two')
    for i in range(12):
        one.put_container('c%02d' % i, ts(2), Z, i, i * 10, ts(2))
    two.put_container('c03', ts(2), ts(7), 0, 0, ts(7))
    two.put_container('c05', ts(2), Z, 50, 500, ts(8))
    two.put_container('x', ts(3), Z, 1, 1, ts(3))
    for src, dst in ((one, two), (two, one)):
        src_id = src.get_info()['id']
        dst.merge_items(src.get_items_since(dst.get_sync(src_id), 1000),
                        source_id=src_id)
    assert one.get_info()['hash'] == two.get_info()['hash']
    assert stats(one) == stats(two) == (
        12, sum(range(12)) - 3 - 5 + 50 + 1,
        10 * (sum(range(12)) - 3 - 5) + 500 + 1)
    assert one.list_containers(100) == two.list_containers(100)


def test_listing_parameters(broker):
    for name in ['a', 'a-1', 'a-2', 'b', 'b-1-x', 'c']:
        broker.put_container(name, ts(2), Z, 1, 1, ts(2))
    broker.put_container('a-3', ts(2), ts(3), 0, 0, ts(3))

    def lst(**kw):
        return [e if isinstance(e, tuple) else e['name']
                for e in broker.list_containers(kw.pop('limit', 100), **kw)]
    assert lst() == ['a', 'a-1', 'a-2', 'b', 'b-1-x', 'c']
    assert lst(delimiter='-') == ['a', ('subdir', 'a-'), 'b',
                                  ('subdir', 'b-'), 'c']
    assert lst(prefix='a-') == ['a-1', 'a-2']
    assert lst(marker='a-1', end_marker='b-1-x') == ['a-2', 'b']
    assert lst(reverse=True, limit=2) == ['c', 'b-1-x']
    assert lst(reverse=True, marker='b', end_marker='a') == ['a-2', 'a-1']
    assert lst(prefix='b-', delimiter='-') == [('subdir', 'b-1-')]
    assert lst(delimiter='-', marker='a-', limit=2) == ['b', ('subdir',
                                                              'b-')]


def test_concurrent_reports(broker):
    def report(n):
        b = AccountBroker(broker.db_file)
        for i in range(20):
            b.put_container('c%d' % (i % 5), ts(2), Z, n, n, ts(10 * i + n))
    threads = [threading.Thread(target=report, args=(n,))
               for n in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the last stats of each container came from writer 3 (largest ts)
    assert stats(broker) == (5, 15, 15)
