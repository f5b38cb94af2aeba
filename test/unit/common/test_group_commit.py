"""GroupCommit: items that wait together are written in one batch."""
import threading

import pytest

from objstore.common import concurrency
from objstore.common.group_commit import GroupCommit


class Recorder:
    """A commit that remembers its batches and can be held or fail."""

    def __init__(self):
        self.batches = []
        self.release = threading.Event()
        self.release.set()
        self.fail_on = None

    def __call__(self, context, items):
        self.release.wait(10)
        self.batches.append((context, list(items)))
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError('bad batch %r' % (items,))
        return ['done %s' % item for item in items]


def submit_all(group, key, items, context='ctx'):
    """Submit every item from its own green thread; their outcomes."""
    outcomes = {}

    def one(item):
        try:
            outcomes[item] = group.submit(key, context, item)
        except ValueError as e:
            outcomes[item] = e
    pool = concurrency.GreenPool(len(items))
    for item in items:
        pool.spawn(one, item)
        concurrency.sleep(0)
    return pool, outcomes


def test_a_lone_item_is_written_at_once():
    commit = Recorder()
    group = GroupCommit(commit)
    assert group.submit('db', 'ctx', 'a') == 'done a'
    assert commit.batches == [('ctx', ['a'])]
    assert group._queues == {}


def test_items_waiting_on_a_transaction_share_the_next_one():
    commit = Recorder()
    commit.release.clear()  # the first batch holds the "transaction"
    group = GroupCommit(commit)
    pool, outcomes = submit_all(group, 'db', ['a', 'b', 'c', 'd'])
    commit.release.set()
    pool.waitall()
    # 'a' started a batch alone; the rest queued behind it and went in one
    assert [items for _c, items in commit.batches] == [['a'], ['b', 'c',
                                                              'd']]
    assert outcomes == {i: 'done %s' % i for i in 'abcd'}
    assert group._queues == {}


def test_batches_are_bounded():
    commit = Recorder()
    commit.release.clear()
    group = GroupCommit(commit, max_batch=2)
    pool, outcomes = submit_all(group, 'db', list('abcde'))
    commit.release.set()
    pool.waitall()
    assert [items for _c, items in commit.batches] == [
        ['a'], ['b', 'c'], ['d', 'e']]
    assert sorted(outcomes.values()) == ['done %s' % i for i in 'abcde']


def test_a_failed_batch_fails_only_its_own_items():
    commit = Recorder()
    commit.release.clear()
    commit.fail_on = 'a'
    group = GroupCommit(commit)
    pool, outcomes = submit_all(group, 'db', ['a', 'b', 'c'])
    commit.release.set()
    pool.waitall()
    assert isinstance(outcomes['a'], ValueError)
    assert outcomes['b'] == 'done b' and outcomes['c'] == 'done c'
    # and the group goes on working for that key
    assert group.submit('db', 'ctx', 'e') == 'done e'


def test_keys_are_batched_apart_with_their_first_context():
    commit = Recorder()
    commit.release.clear()
    group = GroupCommit(commit)
    pool1, out1 = submit_all(group, 'db1', ['a', 'b'], context='one')
    pool2, out2 = submit_all(group, 'db2', ['x'], context='two')
    commit.release.set()
    pool1.waitall()
    pool2.waitall()
    assert sorted(commit.batches) == [('one', ['a']), ('one', ['b']),
                                      ('two', ['x'])]
    assert out1 == {'a': 'done a', 'b': 'done b'} and out2 == {
        'x': 'done x'}


def test_a_commit_that_answers_short_fails_loudly():
    group = GroupCommit(lambda context, items: [])
    with pytest.raises(RuntimeError):
        group.submit('db', 'ctx', 'a')
    assert group._queues == {}


# -- announced items: a batch waits for what it knows is coming ----------
#
# max_wait is 30 s where a batch must go at once: each such wait runs
# under PROMPT, so a batch left waiting fails the test instead of
# going after 30 s as if nothing were wrong.

PROMPT = 2.0

def held_by_an_announcement(group):
    """Submit 'a' for 'db' while another item is announced for it."""
    group.expect('db')
    pool, outcomes = submit_all(group, 'db', ['a'])
    concurrency.sleep(0.01)
    return pool, outcomes


def test_a_batch_waits_for_an_announced_item():
    commit = Recorder()
    group = GroupCommit(commit, max_wait=30)
    pool, outcomes = held_by_an_announcement(group)
    assert commit.batches == []     # 'a' waits for the announced item

    def arrives():
        group.withdraw('db')        # as the item is submitted
        return group.submit('db', 'ctx', 'b')
    with concurrency.Timeout(PROMPT):
        assert concurrency.spawn(arrives).wait() == 'done b'
        pool.waitall()
    assert [items for _c, items in commit.batches] == [['a', 'b']]
    assert outcomes == {'a': 'done a'}
    assert group._announced == {} and group._wakers == {}


def test_a_withdrawn_announcement_lets_the_batch_go():
    commit = Recorder()
    group = GroupCommit(commit, max_wait=30)
    pool, outcomes = held_by_an_announcement(group)
    assert commit.batches == []
    group.withdraw('db')            # the announced write failed
    with concurrency.Timeout(PROMPT):
        pool.waitall()
    assert [items for _c, items in commit.batches] == [['a']]
    assert outcomes == {'a': 'done a'}


def test_an_announcement_that_never_comes_holds_a_batch_max_wait_at_most():
    commit = Recorder()
    group = GroupCommit(commit, max_wait=0.05)
    group.expect('db')
    assert group.submit('db', 'ctx', 'a') == 'done a'
    assert [items for _c, items in commit.batches] == [['a']]
    assert group._wakers == {}


def test_announcements_hold_only_their_own_key():
    commit = Recorder()
    group = GroupCommit(commit, max_wait=30)
    group.expect('db1')
    with concurrency.Timeout(PROMPT):
        assert group.submit('db2', 'ctx', 'x') == 'done x'
    assert commit.batches == [('ctx', ['x'])]


def test_a_full_batch_does_not_wait_for_announced_items():
    commit = Recorder()
    group = GroupCommit(commit, max_batch=2, max_wait=30)
    group.expect('db')
    pool, outcomes = submit_all(group, 'db', ['a', 'b'])
    with concurrency.Timeout(PROMPT):
        pool.waitall()
    assert [items for _c, items in commit.batches] == [['a', 'b']]
    assert outcomes == {'a': 'done a', 'b': 'done b'}
