"""ContainerBroker on real SQLite files: rows, stats, listings, merging."""
import itertools
import json
import threading

import pytest
from hypothesis import given, settings, strategies as st

from objstore.common import db, listing
from objstore.common.db import DatabaseNotFound, ItemError
from objstore.common.timestamp import Timestamp
from objstore.container.broker import ContainerBroker, ContainerNotEmpty


def ts(n):
    return Timestamp(1700000000 + n).internal


def make(tmp_path, name='c', n=1):
    hsh = '%032x' % abs(hash((str(tmp_path), name)))
    b = ContainerBroker(str(tmp_path / 'containers' / hsh / (hsh + '.db')),
                        account='a', container=name)
    b.initialize(ts(n), str(tmp_path / 'tmp'))
    return b


@pytest.fixture
def broker(tmp_path):
    return make(tmp_path)


def names(entries):
    return [e[1] if isinstance(e, tuple) else e['name'] for e in entries]


def test_put_and_delete_rows_keep_stats(broker):
    broker.put_object('o1', ts(2), 10, 'text/plain', 'e1')
    broker.put_object('o2', ts(2), 5, 'text/plain', 'e2')
    info = broker.get_info()
    assert (info['object_count'], info['bytes_used']) == (2, 15)
    broker.put_object('o1', ts(3), 7, 'image/png', 'e3')
    info = broker.get_info()
    assert (info['object_count'], info['bytes_used']) == (2, 12)
    broker.delete_object('o2', ts(4))
    info = broker.get_info()
    assert (info['object_count'], info['bytes_used']) == (1, 7)
    assert names(broker.list_objects(100)) == ['o1']
    [row] = broker.list_objects(100)
    assert row == {'name': 'o1', 'created_at': ts(3), 'size': 7,
                   'content_type': 'image/png', 'etag': 'e3'}
    # the tombstone stays for replication
    rows = broker.get_items_since(-1, 10)
    assert [(r['name'], r['deleted']) for r in rows] == \
        [('o1', 0), ('o2', 1)]


def test_newest_timestamp_wins_in_any_order(tmp_path):
    versions = [('o', ts(5), 5, 'new', 'e5', 0),
                ('o', ts(3), 3, 'old', 'e3', 0),
                ('o', ts(4), 0, '', '', 1)]
    results = set()
    for n, order in enumerate(itertools.permutations(versions)):
        b = make(tmp_path, 'c%d' % n)
        for name, t, size, ctype, etag, deleted in order:
            b.put_object(name, t, size, ctype, etag, deleted)
        info = b.get_info()
        results.add((info['hash'], info['object_count'], info['bytes_used'],
                     tuple(tuple(r.items()) for r in b.list_objects(10))))
    assert len(results) == 1
    [(_h, count, used, listed)] = results
    assert (count, used) == (1, 5)
    assert dict(listed[0])['content_type'] == 'new'


def test_older_version_is_ignored(broker):
    assert broker.put_object('o', ts(5), 1, 't', 'e')
    assert not broker.put_object('o', ts(4), 2, 't', 'e')
    # equal timestamps (which the object server never sends) still pick
    # one winner in any order: the tombstone
    assert broker.delete_object('o', ts(5))
    assert not broker.put_object('o', ts(5), 1, 't', 'e')
    assert broker.delete_object('o', ts(6))
    assert broker.get_info()['object_count'] == 0


def test_rows_need_a_live_container(broker):
    broker.delete_container(ts(2))
    with pytest.raises(DatabaseNotFound):
        broker.put_object('o', ts(3), 1, 't', 'e')
    assert broker.get_items_since(-1, 10) == []


def test_delete_refused_while_not_empty(broker):
    broker.put_object('o', ts(2), 1, 't', 'e')
    with pytest.raises(ContainerNotEmpty):
        broker.delete_container(ts(3))
    assert not broker.is_deleted()
    broker.delete_object('o', ts(3))
    assert broker.empty()
    broker.delete_container(ts(4))
    assert broker.is_deleted()


def test_container_holding_rows_is_not_deleted(broker):
    """Rows merged from a peer revive a container deleted here."""
    broker.delete_container(ts(2))
    assert broker.is_deleted()
    broker.merge_items([{'name': 'o', 'created_at': ts(3), 'size': 4,
                         'content_type': 't', 'etag': 'e', 'deleted': 0}])
    assert not broker.is_deleted()


@pytest.mark.parametrize('row', [
    {'created_at': ts(1)},
    {'name': '', 'created_at': ts(1)},
    {'name': 'a\x00b', 'created_at': ts(1)},
    {'name': 'o', 'created_at': 'yesterday'},
    {'name': 'o', 'created_at': ts(1), 'size': -1},
    {'name': 'o', 'created_at': ts(1), 'size': '12'},
    {'name': 'o', 'created_at': ts(1), 'deleted': 2},
    {'name': 'o', 'created_at': ts(1), 'etag': 5},
    {'name': 7, 'created_at': ts(1)},
    'not a row',
])
def test_bad_rows_are_refused_whole(broker, row):
    good = {'name': 'good', 'created_at': ts(1), 'size': 1,
            'content_type': 't', 'etag': 'e'}
    with pytest.raises(ItemError):
        broker.merge_items([good, row])
    assert broker.get_items_since(-1, 10) == []


def test_replication_converges(tmp_path):
    """Rows shipped by ROWID from sync points make two replicas equal."""
    one, two = make(tmp_path, 'one'), make(tmp_path, 'two')
    for i in range(30):
        one.put_object('o%02d' % i, ts(i + 2), i, 't', 'e%d' % i)
    for i in range(0, 30, 3):
        two.put_object('o%02d' % i, ts(i + 40), 100, 't', 'x')
    two.delete_object('o01', ts(50))
    for src, dst in ((one, two), (two, one)):
        src_id = src.get_info()['id']
        point = dst.get_sync(src_id)
        while True:
            rows = src.get_items_since(point, 7)
            if not rows:
                break
            dst.merge_items(rows, source_id=src_id)
            point = rows[-1]['ROWID']
        assert dst.get_sync(src_id) == src.get_replication_info()['max_row']
    i1, i2 = one.get_info(), two.get_info()
    assert i1['hash'] == i2['hash'] != db.EMPTY_HASH
    assert (i1['object_count'], i1['bytes_used']) == \
        (i2['object_count'], i2['bytes_used']) == (29, 10 * 100 + sum(
            i for i in range(30) if i % 3 and i != 1))
    assert one.list_objects(100) == two.list_objects(100)


def test_concurrent_writers(broker):
    errors = []

    def writer(n):
        b = ContainerBroker(broker.db_file)
        try:
            for i in range(25):
                b.put_object('w%d-%02d' % (n, i), ts(i + 2), n + 1, 't', 'e')
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    info = broker.get_info()
    assert info['object_count'] == 100
    assert info['bytes_used'] == 25 * (1 + 2 + 3 + 4)
    assert len(broker.list_objects(1000)) == 100
    rowids = [r['ROWID'] for r in broker.get_items_since(-1, 1000)]
    assert rowids == sorted(rowids) and len(set(rowids)) == 100


def test_reported_and_account_target(broker):
    info = broker.get_info()
    assert info['reported_object_count'] == -1
    assert info['reported_put_timestamp'] == db.ZERO
    broker.reported(ts(1), db.ZERO, 3, 9)
    broker.set_account_target('{"x": 1}')
    info = broker.get_info()
    assert (info['reported_object_count'], info['reported_bytes_used'],
            info['reported_put_timestamp']) == (3, 9, ts(1))
    assert info['account_target'] == '{"x": 1}'


# -- listings -----------------------------------------------------------

NAMES = ['a', 'a-b', 'a/', 'a/b', 'a/b/c', 'a/c', 'a0', 'b', 'b/x', 'b/y/z',
         'c-d-e', 'c/', 'é', 'é/ü', 'z', 'zz/top']
DELETED = ['a/d', 'b/w', 'y']


def model(limit, marker='', end_marker='', prefix='', delimiter='',
          reverse=False):
    """What a listing must return, from first principles."""
    out = []
    for name in sorted(NAMES, reverse=reverse):
        lo, hi = (end_marker, marker) if reverse else (marker, end_marker)
        if (lo and name <= lo) or (hi and name >= hi) or \
                not name.startswith(prefix):
            continue
        if delimiter:
            cut = name.find(delimiter, len(prefix))
            if cut >= 0:
                sub = name[:cut + 1]
                if (not reverse and sub == marker) or \
                        (out and out[-1] == ('subdir', sub)):
                    continue
                out.append(('subdir', sub))
                continue
        out.append(name)
    return out[:limit]


def flat(entries):
    return [e if isinstance(e, tuple) else e['name'] for e in entries]


@pytest.fixture(scope='module')
def listing_broker(tmp_path_factory):
    b = make(tmp_path_factory.mktemp('listing'))
    rows = [{'name': n, 'created_at': ts(2), 'size': len(n),
             'content_type': 'text/plain', 'etag': 'e'} for n in NAMES]
    rows += [{'name': n, 'created_at': ts(2), 'deleted': 1}
             for n in DELETED]
    b.merge_items(rows)
    return b


def test_listing_every_parameter_combination(listing_broker):
    count = 0
    for prefix, delimiter, marker, end_marker, reverse, limit in \
            itertools.product(['', 'a', 'a/', 'b/', 'é', 'q'],
                              ['', '/', '-'],
                              ['', 'a/', 'a/b', 'b', 'é/'],
                              ['', 'a/c', 'b/y', 'z'],
                              [False, True], [1, 3, 100]):
        args = dict(limit=limit, marker=marker, end_marker=end_marker,
                    prefix=prefix, delimiter=delimiter, reverse=reverse)
        assert flat(listing_broker.list_objects(**args)) == model(**args), \
            args
        count += 1
    assert count == 6 * 3 * 5 * 4 * 2 * 3


def test_listing_examples(listing_broker):
    lst = listing_broker.list_objects
    assert flat(lst(100, delimiter='/')) == [
        'a', 'a-b', ('subdir', 'a/'), 'a0', 'b', ('subdir', 'b/'), 'c-d-e',
        ('subdir', 'c/'), 'z', ('subdir', 'zz/'), 'é', ('subdir', 'é/')]
    assert flat(lst(100, prefix='a/', delimiter='/')) == [
        'a/', 'a/b', ('subdir', 'a/b/'), 'a/c']
    assert flat(lst(100, prefix='a/', delimiter='/')) == \
        model(100, prefix='a/', delimiter='/')
    # paging a delimiter listing with the last entry as marker moves on
    assert flat(lst(2, delimiter='/', marker='a/')) == ['a0', 'b']
    assert flat(lst(3, delimiter='/', reverse=True, marker='d')) == [
        ('subdir', 'c/'), 'c-d-e', ('subdir', 'b/')]
    assert flat(lst(0)) == []
    assert flat(lst(100, prefix='a', end_marker='a/b', delimiter='/')) == \
        ['a', 'a-b', ('subdir', 'a/')]


def test_listing_crosses_batches(tmp_path, monkeypatch):
    b = make(tmp_path)
    rows = [{'name': 'd%d/%04d' % (i % 3, i), 'created_at': ts(2),
             'size': 1, 'content_type': 't', 'etag': 'e'}
            for i in range(2500)]
    b.merge_items(rows)
    all_names = sorted(r['name'] for r in rows)
    assert names(b.list_objects(10000)) == all_names
    assert names(b.list_objects(10000, reverse=True)) == all_names[::-1]
    assert names(b.list_objects(1500, marker='d1/0100')) == \
        [n for n in all_names if n > 'd1/0100'][:1500]
    assert flat(b.list_objects(10, delimiter='/')) == [
        ('subdir', 'd0/'), ('subdir', 'd1/'), ('subdir', 'd2/')]
    monkeypatch.setattr(db, 'LIST_BATCH', 7)
    assert names(b.list_objects(100, prefix='d2/')) == \
        [n for n in all_names if n.startswith('d2/')][:100]


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(['', 'a', 'a/', 'b', 'c', 'é', 'zz']),
       delimiter=st.sampled_from(['', '/', '-', 'b', 'é']),
       marker=st.text(alphabet='ab/-cé0z', max_size=4),
       end_marker=st.text(alphabet='ab/-cé0z', max_size=4),
       reverse=st.booleans(), limit=st.integers(0, 20))
def test_listing_matches_model(listing_broker, prefix, delimiter, marker,
                               end_marker, reverse, limit):
    args = dict(limit=limit, marker=marker, end_marker=end_marker,
                prefix=prefix, delimiter=delimiter, reverse=reverse)
    assert flat(listing_broker.list_objects(**args)) == model(**args)


# -- JSON listings rendered by SQLite -----------------------------------

def python_json_listing(broker, **query):
    """What the Python path renders for the same listing, parsed."""
    return [listing.container_entry(row)
            for row in broker.list_objects(delimiter='', **query)]


ODD_NAMES = ['a', 'a/b', 'a/c', 'b"quote', 'back\\slash', 'caf\u00e9',
         '\u65e5\u672c', 'tab\there', 'ctl\x01x', 'emoji\U0001f600',
         'z' * 300, 'pre-1', 'pre-2', 'pre\U0010ffff']


def test_json_listing_matches_the_python_rendering(broker):
    for n, name in enumerate(ODD_NAMES):
        stamp = Timestamp(1700000000.5 + n * 0.00001, offset=n % 2)
        broker.put_object(name, stamp.internal, n * 7, 'text/x-%d' % n,
                          '%032x' % n)
    broker.put_object('gone', ts(3), 1, 'a/b', 'e' * 32)
    broker.delete_object('gone', ts(4))
    queries = [{}, {'reverse': True}, {'prefix': 'pre'},
               {'prefix': 'a/', 'reverse': True}, {'marker': 'a/b'},
               {'end_marker': 'caf\u00e9'},
               {'marker': 'b', 'end_marker': 'z', 'reverse': True},
               {'prefix': '\U0010ffff'}, {'prefix': 'nothing'}]
    for query in queries:
        for limit in (0, 1, 3, 10000):
            body = broker.list_objects_json(limit, **query)
            assert isinstance(body, bytes)
            assert json.loads(body) == \
                python_json_listing(broker, limit=limit, **query), \
                (query, limit)


def test_json_listing_of_an_empty_container(broker):
    assert broker.list_objects_json(10000) == b'[]'


def test_json_listing_with_an_odd_timestamp_falls_back(broker):
    # every write path stores the internal form; a row written some
    # other way still lists, through the Python path
    with broker.get() as conn:
        conn.execute("INSERT INTO object (name, created_at, size, "
                     "content_type, etag, deleted) VALUES "
                     "('o', '17000.5', 0, 'a/b', 'e', 0)")
        conn.commit()
    assert broker.list_objects_json(10) is None
    assert python_json_listing(broker, limit=10)[0]['last_modified'] == \
        '1970-01-01T04:43:20.500000'


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=('Cs',),
                                      blacklist_characters='\x00'),
                        min_size=1, max_size=20),
                min_size=1, max_size=15, unique=True),
       st.text(max_size=3), st.booleans())
def test_json_listing_any_names(tmp_path_factory, names, prefix, reverse):
    broker = make(tmp_path_factory.mktemp('j'))
    for n, name in enumerate(names):
        broker.put_object(name, ts(n + 2), n, 'x/y', 'e' * 32)
    body = broker.list_objects_json(10000, prefix=prefix, reverse=reverse)
    assert json.loads(body) == python_json_listing(
        broker, limit=10000, prefix=prefix, reverse=reverse)
