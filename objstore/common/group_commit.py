"""Group commit: many requests' rows in one database transaction.

Every object PUT or DELETE sends a row to each container replica, and
each row used to be its own SQLite transaction: take the write lock,
write, fsync the WAL, release. Green threads of one worker then queued on
the lock through SQLite's busy handler, which polls with sleeps of up to
100 ms, and every row paid for its own fsync.

Here the rows for one database that arrive while a transaction is being
written wait together; when it ends, one OS thread writes all of them in
the next transaction, and each request is answered only after the
commit that holds its row, so every acknowledged row is as durable as
before. A lone request waits for nobody: its batch starts at once.

Object servers batch their container updates the same way, with the
network request as the commit (obj/updates.py). There a batch can also
wait for the items it knows are coming: a caller announces an item with
``expect`` before the slow work that precedes it (the object's own
fsync'd commit) and ``withdraw``s it as it submits it, or when that
work fails. A batch about to be written first waits until no announced
item is on its way, for at most ``max_wait`` seconds. Each request then
carries more rows; when nothing is announced a lone item still goes at
once.
"""
import time

from objstore.common import concurrency

MAX_BATCH = 512


def call(func, *args):
    """``run`` for a commit that is itself cooperative (network I/O)."""
    return func(*args)


class GroupCommit:
    """Batches items per key; ``commit(context, items)`` writes a batch.

    ``commit`` runs through ``run`` (an OS thread by default; ``call``
    runs it in a green thread, for network I/O) and returns one result
    per item (in order); an exception fails every item of that batch
    alone. The ``context`` of a batch is the one given with its first
    item (for a database, any broker of that file does).
    """

    def __init__(self, commit, max_batch=MAX_BATCH,
                 run=concurrency.run_in_thread, max_wait=0.0):
        self._commit = commit
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._run = run
        self._queues = {}
        self._announced = {}    # key -> number of items on their way
        self._wakers = {}       # key -> Event of a batch waiting on them

    def expect(self, key):
        """Announce an item for ``key``. ``withdraw`` must follow, as
        the item is submitted (with no green switch in between) or when
        it will not come; until then batches of the key wait for it, up
        to ``max_wait``."""
        self._announced[key] = self._announced.get(key, 0) + 1

    def withdraw(self, key):
        """An announced item will not come (or has just come)."""
        left = self._announced.get(key, 0) - 1
        if left > 0:
            self._announced[key] = left
        else:   # the last one: a batch waiting for them may go
            self._announced.pop(key, None)
            self._wake(key)

    def _wake(self, key):
        """Have the batch of ``key`` that waits look again."""
        waker = self._wakers.pop(key, None)
        if waker is not None:
            waker.send()

    def submit(self, key, context, item):
        """Wait until ``item`` is committed; its result, or the error."""
        done = concurrency.Event()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = []
            concurrency.spawn_n(self._drain, key, context, queue)
        queue.append((item, done))
        if len(queue) >= self.max_batch:
            self._wake(key)     # a full batch waits for nothing more
        return done.wait()

    def _drain(self, key, context, queue):
        # Checking for more work and giving up the key happen with no
        # switch in between, so an item is never left behind unqueued.
        try:
            while queue:
                self._await_announced(key, queue)
                batch = queue[:self.max_batch]
                del queue[:self.max_batch]
                self._write(context, batch)
        finally:
            del self._queues[key]

    def _await_announced(self, key, queue):
        """Until no announced item is still on its way, the batch is
        full, or ``max_wait`` has passed since the batch began waiting."""
        deadline = None
        while self._announced.get(key) and len(queue) < self.max_batch:
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.max_wait
            if now >= deadline:
                return
            waker = self._wakers[key] = concurrency.Event()
            waker.wait(deadline - now)
            if self._wakers.get(key) is waker:
                del self._wakers[key]

    def _write(self, context, batch):
        try:
            results = self._run(
                self._commit, context, [item for item, _done in batch])
            if len(results) != len(batch):
                raise RuntimeError('group commit answered %d of %d items'
                                   % (len(results), len(batch)))
        except Exception as e:
            for _item, done in batch:
                done.send_exception(e)
            return
        for (_item, done), result in zip(batch, results):
            done.send(result)
