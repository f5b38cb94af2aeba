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
network request as the commit (obj/updates.py).
"""
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
                 run=concurrency.run_in_thread):
        self._commit = commit
        self.max_batch = max_batch
        self._run = run
        self._queues = {}

    def submit(self, key, context, item):
        """Wait until ``item`` is committed; its result, or the error."""
        done = concurrency.Event()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = []
            concurrency.spawn_n(self._drain, key, context, queue)
        queue.append((item, done))
        return done.wait()

    def _drain(self, key, context, queue):
        # Checking for more work and giving up the key happen with no
        # switch in between, so an item is never left behind unqueued.
        try:
            while queue:
                batch = queue[:self.max_batch]
                del queue[:self.max_batch]
                self._write(context, batch)
        finally:
            del self._queues[key]

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
