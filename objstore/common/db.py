"""The SQLite database that container and account brokers share.

One database file per container or account, kept in the same
partition/suffix/hash layout as objects. What both kinds have in common
lives here:

* atomic creation: a database is built in a temp file under
  ``<device>/tmp``, checkpointed, fsynced and hard-linked into place, so a
  half-created database is never visible and two concurrent creators
  cannot clobber each other (the loser sees the winner's file);
* one ``db_info`` row: created/put/delete timestamps, counters kept by
  triggers, a content hash and per-item metadata;
* an item table (objects or containers) whose rows are never updated in
  place: a newer version deletes the old row and inserts a new one, so
  the ROWID order is the order of change and a replicator can ship
  "everything since row N" (``get_items_since``) and remember per peer
  how far it got (sync points);
* listings with prefix, delimiter, marker, end_marker, limit, reverse;
* what replication needs besides rows: a consistent snapshot of the whole
  file, the checks a received copy must pass before it is installed or
  merged, reclaiming old tombstone rows, and removing a database under
  its write lock (a writer queued behind the removal gets
  DatabaseNotFound, never a silent commit into the removed file).

Durability: ``PRAGMA synchronous = FULL`` in WAL mode, so every committed
transaction's WAL frames are fsynced before the commit returns. A server
answers 201 only after the commit, exactly as the object write path
answers only after fsync; NORMAL would be faster but a power cut could
silently drop acknowledged rows (an object missing from its listing
forever, since nothing re-sends a container update that succeeded).

Every method takes a connection for itself alone and gives it back to a
small pool when done (ConnectionPool), so a broker call can run whole in
any OS thread (servers run them through concurrency.run_in_thread) and a
connection is never used by two threads at once.
Write transactions use BEGIN IMMEDIATE so concurrent writers queue on the
busy timeout instead of failing on a lock upgrade.
"""
import contextlib
import errno
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from urllib.parse import quote

from objstore.common import process
from objstore.common.ondisk import fsync_dir, makedirs_durable
from objstore.common.timestamp import Timestamp

BUSY_TIMEOUT = 10.0
ZERO = Timestamp(0).internal
EMPTY_HASH = '0' * 32
# How many rows one listing query fetches at a time.
LIST_BATCH = 1000
# schema_of() a fresh database, per broker class (reference_schema)
_REFERENCE_SCHEMAS = {}


class DatabaseError(Exception):
    """Base of the broker errors a server maps to a status."""


class DatabaseNotFound(DatabaseError):
    """The database file does not exist (or was deleted)."""


class DatabaseConflict(DatabaseError):
    """The change contradicts the stored state (e.g. deleting later)."""


class ItemError(DatabaseError, ValueError):
    """A row handed to merge_items is malformed."""


class MetadataError(DatabaseError, ValueError):
    """Metadata after the change would break the documented limits."""


class BadDatabase(DatabaseError, ValueError):
    """A file offered as a whole database is not one of the right kind."""


def chexor(old_hex, *parts):
    """XOR ``old_hex`` with the md5 of ``parts``: a hash of a set of rows.

    XOR makes the hash independent of the order rows arrived in, and
    applying it twice removes a row again, so triggers can keep the hash of
    the live table current on every insert and delete.
    """
    digest = hashlib.md5('\x00'.join(str(p) for p in parts).encode(
        'utf-8', 'surrogatepass'), usedforsecurity=False).hexdigest()
    return '%032x' % (int(old_hex, 16) ^ int(digest, 16))


def connect(path, timeout=BUSY_TIMEOUT, create=False):
    """An autocommit connection with our pragmas and functions.

    Without ``create`` a missing file is an error rather than a new empty
    database, so a reader racing a removal never leaves a stray file.
    """
    uri = 'file:%s?mode=%s' % (quote(path), 'rwc' if create else 'rw')
    conn = sqlite3.connect(uri, timeout=timeout, isolation_level=None,
                           check_same_thread=False, uri=True)
    conn.row_factory = sqlite3.Row
    conn.execute('PRAGMA synchronous = FULL')
    conn.execute('PRAGMA busy_timeout = %d' % int(timeout * 1000))
    conn.create_function('chexor', -1, chexor, deterministic=True)
    return conn


def _file_ident(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


class ConnectionPool:
    """Idle connections per database file, reused by later operations.

    Closing the last connection to a WAL database checkpoints it (copies
    the WAL into the file and fsyncs): done on every operation that would
    cost more than the work itself. Keeping a few connections open lets
    SQLite checkpoint only when the WAL grows. A connection is used by
    one operation at a time (taken out, then given back), in whatever OS
    thread runs it; one whose file was replaced is dropped. Operations
    only use dict/list methods that are atomic under the GIL, so no lock
    is needed (and none that eventlet might turn green).
    """

    def __init__(self, per_file=4, max_files=64):
        self.per_file = per_file
        self.max_files = max_files
        self._idle = {}
        self._generation = process.generation()

    def take(self, path, ident):
        if self._generation != process.generation():
            # forked: the parent's are not ours
            self._idle, self._generation = {}, process.generation()
        stack = self._idle.get(path)
        while stack:
            try:
                conn, conn_ident = stack.pop()
            except IndexError:
                break
            if conn_ident == ident:
                return conn
            conn.close()
        return None

    def give(self, path, ident, conn):
        if conn.in_transaction or \
                self._generation != process.generation():
            conn.close()
            return
        stack = self._idle.setdefault(path, [])
        if len(stack) >= self.per_file:
            conn.close()
            return
        stack.append((conn, ident))
        if len(self._idle) > self.max_files:
            for key in list(self._idle)[:self.max_files // 4]:
                for old, _ident in self._idle.pop(key, ()):
                    old.close()

    def clear(self):
        """Close every idle connection (tests, shutdown)."""
        idle, self._idle = self._idle, {}
        for stack in idle.values():
            for conn, _ident in stack:
                conn.close()


POOL = ConnectionPool()


def prefix_upper_bound(prefix):
    """The smallest string greater than every string starting with prefix.

    SQLite compares TEXT as UTF-8 bytes, which orders like Python's code
    points, so ``name >= prefix AND name < bound`` selects the prefix. None
    when no bound exists (a prefix of only U+10FFFF).
    """
    while prefix and prefix[-1] == '\U0010ffff':
        prefix = prefix[:-1]
    if not prefix:
        return None
    nxt = ord(prefix[-1]) + 1
    if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be stored as UTF-8
        nxt = 0xE000
    return prefix[:-1] + chr(nxt)


def name_bounds(marker, end_marker, prefix, delimiter, reverse):
    """(low, low_incl, high): a listing's names are > low (>= when
    low_incl) and < high, '' meaning no bound (see list_items)."""
    low, high = (end_marker, marker) if reverse else (marker, end_marker)
    low_incl = False
    if delimiter and not reverse and low.startswith(prefix):
        cut = low.find(delimiter, len(prefix))
        if cut >= 0 and cut + len(delimiter) == len(low):
            low, low_incl = prefix_upper_bound(low) or low, True
    if prefix:
        if not low or low < prefix:
            low, low_incl = prefix, True
        bound = prefix_upper_bound(prefix)
        if bound is not None and (not high or bound < high):
            high = bound
    return low, low_incl, high


def merge_metadata(old, new):
    """Merge {key: [value, timestamp]} maps: newest timestamp per key wins.

    On equal timestamps the larger value wins, so replicas that saw the
    same updates in different orders still agree.
    """
    merged = dict(old)
    changed = False
    for key, item in new.items():
        value, ts = item[0], Timestamp(item[1]).internal
        cur = merged.get(key)
        if cur is not None:
            cur_ts = Timestamp(cur[1])
            if cur_ts > Timestamp(ts) or (cur_ts == Timestamp(ts) and
                                          cur[0] >= value):
                continue
        merged[key] = [value, ts]
        changed = True
    return merged, changed


def check_metadata_items(metadata):
    """ItemError unless ``metadata`` is {key: [value, timestamp]}."""
    if not isinstance(metadata, dict):
        raise ItemError('metadata must be a map')
    for key, item in metadata.items():
        if not isinstance(key, str) or not isinstance(
                item, (list, tuple)) or len(item) != 2 or \
                not isinstance(item[0], str):
            raise ItemError('metadata items are {key: [value, ts]}')
        try:
            Timestamp(item[1])
        except (TypeError, ValueError) as e:
            raise ItemError(str(e))


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_db_files(path):
    """Unlink a database file and its -wal/-shm companions if present."""
    for name in (path, path + '-wal', path + '-shm'):
        try:
            os.unlink(name)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise


def schema_of(conn):
    """The set of (type, name, table, sql) objects a database defines,
    SQLite's own internal ones left out."""
    return {tuple(row) for row in conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}


def live_metadata(metadata):
    """{key: value} without the empty values that mark removed items."""
    return {k: v[0] for k, v in metadata.items() if v[0] != ''}


class DatabaseBroker:
    """One container or account database; subclasses name the details.

    Subclasses set ``item_table`` (the rows being listed and replicated),
    ``item_columns`` (its columns besides ROWID, in merge/transfer order),
    ``info_columns`` (extra ``db_info`` columns as SQL) and implement
    ``_item_schema`` (tables, indexes, triggers), ``_check_item`` and
    ``_merge_row``.
    """

    item_table = None
    item_columns = ()
    info_columns = ''

    def __init__(self, db_file, account=None, container=None,
                 timeout=BUSY_TIMEOUT):
        self.db_file = db_file
        self.account = account
        self.container = container
        self.timeout = timeout

    # -- connections --------------------------------------------------

    def exists(self):
        return os.path.exists(self.db_file)

    @contextlib.contextmanager
    def _connection(self):
        """(connection, file identity) for one operation; see get()."""
        try:
            ident = _file_ident(self.db_file)
        except FileNotFoundError:
            raise DatabaseNotFound(self.db_file)
        conn = POOL.take(self.db_file, ident)
        if conn is None:
            try:
                conn = connect(self.db_file, self.timeout)
            except sqlite3.OperationalError as e:
                if not self.exists():
                    raise DatabaseNotFound(self.db_file)
                raise e
        else:
            conn.execute('PRAGMA busy_timeout = %d'
                         % int(self.timeout * 1000))
        try:
            yield conn, ident
        finally:
            POOL.give(self.db_file, ident, conn)

    @contextlib.contextmanager
    def get(self):
        """A connection to the existing database, for one operation.

        Taken from the idle pool when one is open on this very file, and
        put back afterwards (see ConnectionPool for why).
        """
        with self._connection() as (conn, _ident):
            yield conn

    @contextlib.contextmanager
    def transaction(self):
        """A write transaction (BEGIN IMMEDIATE): commit, or roll back.

        Once the write lock is held the file must still be the one the
        connection opened: a replicator removes a database (a handoff
        moved home, a reclaimed delete) while holding that same lock, and
        a writer that queued behind it must fail with DatabaseNotFound
        rather than commit rows into a file nobody will read again.
        """
        with self._connection() as (conn, ident):
            conn.execute('BEGIN IMMEDIATE')
            try:
                try:
                    moved = _file_ident(self.db_file) != ident
                except FileNotFoundError:
                    moved = True
                if moved:
                    raise DatabaseNotFound(self.db_file)
                yield conn
            except BaseException:
                conn.execute('ROLLBACK')
                raise
            conn.execute('COMMIT')

    # -- creation -----------------------------------------------------

    def _schema(self):
        """SQL creating every table; db_info first, then the item table."""
        return '''
        CREATE TABLE db_info (
            account TEXT,
            container TEXT,
            created_at TEXT NOT NULL,
            put_timestamp TEXT NOT NULL,
            delete_timestamp TEXT NOT NULL,
            status_changed_at TEXT NOT NULL,
            object_count INTEGER NOT NULL DEFAULT 0,
            bytes_used INTEGER NOT NULL DEFAULT 0,
            hash TEXT NOT NULL DEFAULT '%s',
            id TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}'%s
        );
        CREATE TABLE incoming_sync (
            remote_id TEXT PRIMARY KEY,
            sync_point INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE outgoing_sync (
            remote_id TEXT PRIMARY KEY,
            sync_point INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );
        ''' % (EMPTY_HASH, (',\n' + self.info_columns)
               if self.info_columns else '') + self._item_schema()

    def _item_schema(self):
        raise NotImplementedError

    def initialize(self, put_timestamp, tmp_dir, metadata=None):
        """Create the database unless it exists; True when this call did.

        Built in a temp file in ``tmp_dir`` (same device), switched to WAL
        and closed (which checkpoints it into the one file), fsynced, then
        hard-linked into place and the directory fsynced. ``link`` fails
        when another creator won the race, and the caller then updates the
        winner's database instead.
        """
        if self.exists():
            return False
        put = Timestamp(put_timestamp).internal
        makedirs_durable(tmp_dir)
        fd, tmp_path = tempfile.mkstemp(suffix='.db', dir=tmp_dir)
        os.close(fd)
        try:
            conn = connect(tmp_path, self.timeout, create=True)
            try:
                conn.executescript(self._schema())
                conn.execute(
                    'INSERT INTO db_info (account, container, created_at, '
                    'put_timestamp, delete_timestamp, status_changed_at, id, '
                    'metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                    (self.account, self.container, Timestamp.now().internal,
                     put, ZERO, put, str(uuid.uuid4()),
                     json.dumps(metadata or {})))
                mode = conn.execute('PRAGMA journal_mode = WAL').fetchone()
                if mode[0].lower() != 'wal':
                    raise DatabaseError('cannot switch %s to WAL' % tmp_path)
            finally:
                conn.close()
            fsync_file(tmp_path)
            return self._link_into_place(tmp_path)
        finally:
            remove_db_files(tmp_path)

    def _link_into_place(self, tmp_path):
        """Hard-link a finished file at db_file: False if one is there.

        A replicator may remove an emptied directory between our mkdir and
        the link; then the directory is made again.
        """
        db_dir = os.path.dirname(self.db_file)
        for attempt in range(3):
            makedirs_durable(db_dir)
            try:
                os.link(tmp_path, self.db_file)
            except FileExistsError:
                return False
            except FileNotFoundError:
                if attempt == 2:
                    raise
                continue
            fsync_dir(db_dir)
            return True

    # -- info and state -----------------------------------------------

    def _info(self, conn):
        row = conn.execute('SELECT * FROM db_info').fetchone()
        info = dict(row)
        info['metadata'] = json.loads(info['metadata'])
        return info

    def get_info(self):
        """The db_info row as a dict; metadata as {key: [value, ts]}."""
        with self.get() as conn:
            return self._info(conn)

    def _replication_info(self, conn):
        info = self._info(conn)
        row = conn.execute('SELECT MAX(ROWID) FROM %s'
                           % self.item_table).fetchone()
        info['max_row'] = -1 if row[0] is None else row[0]
        return info

    def get_replication_info(self):
        """get_info plus max_row: what a replicator compares with a peer."""
        with self.get() as conn:
            return self._replication_info(conn)

    @staticmethod
    def info_is_deleted(info):
        """True when a delete is newer than the last put."""
        return Timestamp(info['delete_timestamp']) > \
            Timestamp(info['put_timestamp'])

    def is_deleted(self):
        """True for a deleted database; a missing one counts as deleted."""
        try:
            return self.info_is_deleted(self.get_info())
        except DatabaseNotFound:
            return True

    def _set_timestamps(self, conn, info, put=None, delete=None):
        """Raise put/delete timestamps; record when deleted-ness flips."""
        new_put = max(Timestamp(info['put_timestamp']),
                      Timestamp(put or ZERO)).internal
        new_delete = max(Timestamp(info['delete_timestamp']),
                         Timestamp(delete or ZERO)).internal
        after = dict(info, put_timestamp=new_put, delete_timestamp=new_delete)
        if (new_put, new_delete) == (info['put_timestamp'],
                                     info['delete_timestamp']):
            return after
        status_changed = info['status_changed_at']
        if self.info_is_deleted(after) != self.info_is_deleted(info):
            status_changed = Timestamp.now().internal
        conn.execute('UPDATE db_info SET put_timestamp = ?, '
                     'delete_timestamp = ?, status_changed_at = ?',
                     (new_put, new_delete, status_changed))
        after['status_changed_at'] = status_changed
        return after

    def put_db(self, put_timestamp, metadata=None, validate=None):
        """A PUT of an existing database: raise put_timestamp, merge meta.

        Returns 'created' when it revives a deleted database, else
        'accepted'. Raises DatabaseConflict (and changes nothing) when the
        database would stay deleted, MetadataError when ``validate`` (a
        function of the live metadata returning a reason or None) refuses.
        """
        with self.transaction() as conn:
            info = self._info(conn)
            was_deleted = self.info_is_deleted(info)
            after = dict(info, put_timestamp=max(
                Timestamp(info['put_timestamp']),
                Timestamp(put_timestamp)).internal)
            if self.info_is_deleted(after):
                raise DatabaseConflict('deleted at %s'
                                       % info['delete_timestamp'])
            self._merge_metadata(conn, info, metadata or {}, validate)
            self._set_timestamps(conn, info, put=put_timestamp)
            return 'created' if was_deleted else 'accepted'

    def delete_db(self, timestamp, check=None):
        """Mark deleted at ``timestamp``; metadata values are cleared.

        ``check(info)`` may raise to refuse (inside the transaction, so
        nothing can change between the check and the delete). Raises
        DatabaseNotFound when already deleted and DatabaseConflict when
        ``timestamp`` is not newer than the last put.
        """
        ts = Timestamp(timestamp)
        with self.transaction() as conn:
            info = self._info(conn)
            if self.info_is_deleted(info):
                raise DatabaseNotFound(self.db_file)
            if check is not None:
                check(info)
            if ts <= Timestamp(info['put_timestamp']):
                raise DatabaseConflict('%s is not newer than the put at %s'
                                       % (ts, info['put_timestamp']))
            cleared = {key: ['', ts.internal]
                       for key in info['metadata']}
            self._merge_metadata(conn, info, cleared, None)
            return self._set_timestamps(conn, info, delete=ts.internal)

    def merge_timestamps(self, created_at, put_timestamp, delete_timestamp):
        """Take a peer's timestamps: put and delete only move forward,
        created_at keeps the earliest creation any replica saw."""
        with self.transaction() as conn:
            info = self._info(conn)
            if Timestamp(created_at) < Timestamp(info['created_at']):
                conn.execute('UPDATE db_info SET created_at = ?',
                             (Timestamp(created_at).internal,))
            self._set_timestamps(conn, info, put=put_timestamp,
                                 delete=delete_timestamp)

    # -- metadata -----------------------------------------------------

    @property
    def metadata(self):
        """{key: [value, timestamp]}, removed items included as ''."""
        return self.get_info()['metadata']

    def _merge_metadata(self, conn, info, new, validate):
        merged, changed = merge_metadata(info['metadata'], new)
        if not changed:
            return False
        if validate is not None:
            reason = validate(live_metadata(merged))
            if reason:
                raise MetadataError(reason)
        conn.execute('UPDATE db_info SET metadata = ?',
                     (json.dumps(merged),))
        info['metadata'] = merged
        return True

    def update_metadata(self, new, validate=None, require_live=False):
        """Merge {key: [value, ts]} (newest wins per key); True if changed.

        With ``require_live`` a deleted database raises DatabaseNotFound.
        """
        check_metadata_items(new)
        with self.transaction() as conn:
            info = self._info(conn)
            if require_live and self.info_is_deleted(info):
                raise DatabaseNotFound(self.db_file)
            return self._merge_metadata(conn, info, new, validate)

    # -- rows and replication -----------------------------------------

    def get_items_since(self, start, count):
        """Up to ``count`` rows with ROWID > start, in ROWID order.

        Each row is a dict of item_columns plus 'ROWID'; tombstones
        included, since a replica must learn about deletes too.
        """
        cols = ', '.join(('ROWID',) + self.item_columns)
        with self.get() as conn:
            rows = conn.execute(
                'SELECT %s FROM %s WHERE ROWID > ? ORDER BY ROWID LIMIT ?'
                % (cols, self.item_table), (int(start), int(count)))
            return [dict(row) for row in rows]

    def _check_item(self, item):
        """A normalised copy of ``item`` or ItemError."""
        raise NotImplementedError

    def _merge_row(self, existing, item):
        """The row to store for ``item`` given ``existing`` (or None)."""
        raise NotImplementedError

    def _merge_items(self, conn, items):
        """Merge rows inside a transaction; returns how many changed."""
        cols = self.item_columns
        changed = 0
        select = 'SELECT %s FROM %s WHERE name = ?' % (', '.join(cols),
                                                       self.item_table)
        insert = 'INSERT INTO %s (%s) VALUES (%s)' % (
            self.item_table, ', '.join(cols), ', '.join('?' * len(cols)))
        for item in items:
            row = conn.execute(select, (item['name'],)).fetchone()
            existing = dict(row) if row is not None else None
            merged = self._merge_row(existing, item)
            if merged is None or merged == existing:
                continue
            if existing is not None:
                conn.execute('DELETE FROM %s WHERE name = ?'
                             % self.item_table, (item['name'],))
            conn.execute(insert, tuple(merged[c] for c in cols))
            changed += 1
        return changed

    def merge_items(self, items, source_id=None):
        """Merge rows from a peer or an update; newest timestamp wins.

        All rows are checked before anything is written. With
        ``source_id`` the incoming sync point for that peer advances to
        the largest 'ROWID' among the items.
        """
        checked = [self._check_item(item) for item in items]
        with self.transaction() as conn:
            changed = self._merge_items(conn, checked)
            if source_id is not None:
                points = [item['ROWID'] for item in items
                          if isinstance(item.get('ROWID'), int)]
                if points:
                    self._advance_sync(conn, 'incoming_sync', source_id,
                                       max(points))
            return changed

    def _advance_sync(self, conn, table, remote_id, point):
        conn.execute(
            'INSERT INTO %s (remote_id, sync_point, updated_at) '
            'VALUES (?, ?, ?) ON CONFLICT(remote_id) DO UPDATE SET '
            'sync_point = MAX(sync_point, excluded.sync_point), '
            'updated_at = excluded.updated_at' % table,
            (remote_id, point, Timestamp.now().internal))

    @staticmethod
    def _sync_table(incoming):
        return 'incoming_sync' if incoming else 'outgoing_sync'

    def get_sync(self, remote_id, incoming=True):
        """The last ROWID of ``remote_id`` merged here (or sent), or -1."""
        with self.get() as conn:
            row = conn.execute(
                'SELECT sync_point FROM %s WHERE remote_id = ?'
                % self._sync_table(incoming), (remote_id,)).fetchone()
            return -1 if row is None else row[0]

    def get_syncs(self, incoming=True):
        """[{'remote_id', 'sync_point'}] for every known peer."""
        with self.get() as conn:
            rows = conn.execute('SELECT remote_id, sync_point FROM %s'
                                % self._sync_table(incoming))
            return [dict(row) for row in rows]

    def merge_syncs(self, syncs, incoming=True):
        """Set sync points [{'remote_id', 'sync_point'}] as given.

        Unlike merge_items (which only advances), this records what the
        caller says, so a replicator can reset a point it knows is wrong.
        """
        clean = []
        for sync in syncs:
            try:
                remote_id, point = sync['remote_id'], sync['sync_point']
            except (KeyError, TypeError):
                raise ItemError('a sync needs remote_id and sync_point')
            if not isinstance(remote_id, str) or not remote_id or \
                    not isinstance(point, int) or isinstance(point, bool):
                raise ItemError('bad sync %r' % (sync,))
            clean.append((remote_id, point))
        now = Timestamp.now().internal
        with self.transaction() as conn:
            for remote_id, point in clean:
                conn.execute(
                    'INSERT INTO %s (remote_id, sync_point, updated_at) '
                    'VALUES (?, ?, ?) ON CONFLICT(remote_id) DO UPDATE SET '
                    'sync_point = excluded.sync_point, '
                    'updated_at = excluded.updated_at'
                    % self._sync_table(incoming), (remote_id, point, now))

    def advance_syncs(self, syncs):
        """Raise incoming sync points [{'remote_id', 'sync_point'}] (never
        lowers one); our own id is skipped."""
        with self.transaction() as conn:
            own_id = self._info(conn)['id']
            for sync in syncs:
                if sync['remote_id'] != own_id:
                    self._advance_sync(conn, 'incoming_sync',
                                       sync['remote_id'], sync['sync_point'])

    # -- whole-database transfer --------------------------------------
    # A replicator sends a peer that lacks the database, or is far behind,
    # a copy of the whole file instead of rows (db_replicator.py). The
    # sender takes a consistent snapshot; the receiver checks the copy and
    # either installs it or merges it into the database it has.

    def snapshot(self, dest_path):
        """Copy the database to ``dest_path``; the copy's replication info.

        SQLite's online backup reads every page in one read transaction,
        so the copy is the database at one moment even while writers go
        on (in WAL mode they are not blocked).
        """
        with self.get() as conn:
            dest = connect(dest_path, self.timeout, create=True)
            try:
                conn.backup(dest)
                return self._replication_info(dest)
            finally:
                dest.close()

    @classmethod
    def reference_schema(cls):
        """schema_of() a database this class creates."""
        schema = _REFERENCE_SCHEMAS.get(cls)
        if schema is None:
            conn = sqlite3.connect(':memory:')
            try:
                conn.executescript(cls(':memory:')._schema())
                schema = schema_of(conn)
            finally:
                conn.close()
            _REFERENCE_SCHEMAS[cls] = schema
        return schema

    @classmethod
    def inspect_copy(cls, path, timeout=BUSY_TIMEOUT):
        """The replication info of a received copy, or BadDatabase.

        The copy must pass SQLite's quick_check, define exactly the
        tables, indexes and triggers this class creates (so it is the
        right kind and its counters stay right), and hold one db_info row
        with valid timestamps, id and metadata. Whether its names belong
        where it was sent is for the caller to check.
        """
        try:
            conn = connect(path, timeout)
        except sqlite3.Error as e:
            raise BadDatabase('cannot open the database: %s' % e)
        try:
            problems = [row[0] for row in conn.execute('PRAGMA quick_check')]
            if problems != ['ok']:
                raise BadDatabase('damaged database: %s'
                                  % '; '.join(problems[:3]))
            if schema_of(conn) != cls.reference_schema():
                raise BadDatabase('not a %s database' % cls.__name__)
            if conn.execute('SELECT COUNT(*) FROM db_info').fetchone()[0] \
                    != 1:
                raise BadDatabase('db_info must hold exactly one row')
            info = cls(path)._replication_info(conn)
        except sqlite3.Error as e:
            raise BadDatabase('unusable database: %s' % e)
        except ValueError as e:  # metadata that is not JSON
            raise BadDatabase('bad db_info: %s' % e)
        finally:
            conn.close()
        try:
            for key in ('created_at', 'put_timestamp', 'delete_timestamp'):
                Timestamp(info[key])
            check_metadata_items(info['metadata'])
        except (TypeError, ValueError) as e:
            raise BadDatabase('bad db_info: %s' % e)
        if not isinstance(info['id'], str) or not info['id']:
            raise BadDatabase('db_info has no id')
        return info

    def adopt_copy(self, copy_path, info):
        """Make a checked copy (``info`` from inspect_copy) part of ours.

        Without a database here the copy becomes it ('installed'): it gets
        an id of its own (two files sharing one would mix up their sync
        points), remembers that it holds the sender's rows up to
        info['max_row'] and is linked into place like a new database.
        Otherwise, or when a creator wins the race, rows, timestamps,
        metadata and sync points are merged in ('merged'), a batch at a
        time, newest wins: nothing newer here is ever replaced. The copy
        file is changed; the caller removes it afterwards.
        """
        if not self.exists() and self._install_copy(copy_path, info):
            return 'installed'
        self._merge_copy(copy_path, info)
        return 'merged'

    def _install_copy(self, copy_path, info):
        conn = connect(copy_path, self.timeout)
        try:
            conn.execute('BEGIN IMMEDIATE')
            conn.execute('UPDATE db_info SET id = ?', (str(uuid.uuid4()),))
            # what the sender sent to others says nothing about this file
            conn.execute('DELETE FROM outgoing_sync')
            self._advance_sync(conn, 'incoming_sync', info['id'],
                               info['max_row'])
            conn.execute('COMMIT')
            mode = conn.execute('PRAGMA journal_mode = WAL').fetchone()
            if mode[0].lower() != 'wal':
                raise DatabaseError('cannot switch %s to WAL' % copy_path)
        finally:
            conn.close()
        fsync_file(copy_path)
        return self._link_into_place(copy_path)

    def _merge_copy(self, copy_path, info, batch=LIST_BATCH):
        source = info['id']
        cols = ', '.join(('ROWID',) + self.item_columns)
        conn = connect(copy_path, self.timeout)
        try:
            point = -1
            while True:
                rows = [dict(row) for row in conn.execute(
                    'SELECT %s FROM %s WHERE ROWID > ? ORDER BY ROWID '
                    'LIMIT ?' % (cols, self.item_table), (point, batch))]
                if not rows:
                    break
                self.merge_items(rows)
                point = rows[-1]['ROWID']
            copy_info = self._info(conn)
            # the copy holds every row the sender had merged from others
            syncs = [dict(row) for row in conn.execute(
                'SELECT remote_id, sync_point FROM incoming_sync')]
        finally:
            conn.close()
        self.merge_timestamps(copy_info['created_at'],
                              copy_info['put_timestamp'],
                              copy_info['delete_timestamp'])
        if copy_info['metadata']:
            self.update_metadata(copy_info['metadata'])
        syncs.append({'remote_id': source, 'sync_point': info['max_row']})
        self.advance_syncs(syncs)

    # -- reclaiming and removal ---------------------------------------

    def reclaim_rows(self, column, cutoff, batch=LIST_BATCH):
        """Drop tombstone rows whose ``column`` is older than ``cutoff``.

        Once every replica has had reclaim_age to learn of a delete, the
        tombstone row has done its job. Returns how many rows went.
        """
        if column not in self.item_columns:
            raise ValueError('no column %r' % (column,))
        cutoff = Timestamp(cutoff).internal
        where = 'deleted = 1 AND %s < ?' % column
        with self.get() as conn:
            if conn.execute('SELECT 1 FROM %s WHERE %s LIMIT 1' % (
                    self.item_table, where), (cutoff,)).fetchone() is None:
                return 0
        total = 0
        while True:
            with self.transaction() as conn:
                gone = conn.execute(
                    'DELETE FROM %s WHERE ROWID IN (SELECT ROWID FROM %s '
                    'WHERE %s LIMIT ?)' % (self.item_table, self.item_table,
                                          where), (cutoff, batch)).rowcount
            total += gone
            if gone < batch:
                return total

    def remove(self, tmp_dir, keep=None):
        """Take the database off this device; True when it was removed.

        Under the write lock ``keep(replication_info)`` may still say no
        (a write arrived since the caller looked). The database's
        directory is renamed into ``tmp_dir`` (one atomic rename takes the
        file and its -wal/-shm together, so no stale WAL can be left to
        be replayed onto a later database at this path), then deleted.
        A writer queued on the lock then finds the file gone (see
        transaction()) instead of committing into the removed copy.
        """
        makedirs_durable(tmp_dir)
        db_dir = os.path.dirname(self.db_file)
        doomed = os.path.join(tmp_dir, 'removed-%s' % uuid.uuid4().hex)
        try:
            with self.transaction() as conn:
                if keep is not None and keep(self._replication_info(conn)):
                    return False
                os.rename(db_dir, doomed)
        except DatabaseNotFound:
            return False
        fsync_dir(os.path.dirname(db_dir))
        shutil.rmtree(doomed, ignore_errors=True)
        # empty suffix and partition directories go too (a creator that
        # races this makes them again, see _link_into_place)
        for parent in (os.path.dirname(db_dir),
                       os.path.dirname(os.path.dirname(db_dir))):
            try:
                os.rmdir(parent)
            except OSError:
                break
            fsync_dir(os.path.dirname(parent))
        return True

    # -- listings -----------------------------------------------------

    def live_rows_query(self, select, low, low_incl, high, reverse,
                        limit):
        """(sql, args) selecting ``select`` of up to ``limit`` live rows
        in name order with names in the bounds name_bounds gives."""
        where, args = ['deleted = 0'], []
        if low:
            where.append('name >= ?' if low_incl else 'name > ?')
            args.append(low)
        if high:
            where.append('name < ?')
            args.append(high)
        return ('SELECT %s FROM %s WHERE %s ORDER BY name %s LIMIT ?' % (
            select, self.item_table, ' AND '.join(where),
            'DESC' if reverse else 'ASC'), args + [limit])

    def list_items(self, columns, limit, marker='', end_marker='',
                   prefix='', delimiter='', reverse=False):
        """Live rows in name order, with delimiter roll-up.

        Returns a list of sqlite3.Row (``columns`` selected, name first)
        and, with a delimiter, ('subdir', name) tuples standing for every
        name that starts with ``prefix`` + some text + ``delimiter``.
        ``marker`` excludes names up to and including it, ``end_marker``
        names from it on; with ``reverse`` the order is descending and the
        two swap roles, as clients expect from Swift. A marker that is
        itself a subdir skips that subdir's names, so paging through a
        delimiter listing with the last entry as marker moves on.
        """
        if limit <= 0:
            return []
        low, low_incl, high = name_bounds(marker, end_marker, prefix,
                                          delimiter, reverse)
        results = []
        with self.get() as conn:
            while len(results) < limit:
                batch = min(LIST_BATCH, limit - len(results))
                rows = conn.execute(*self.live_rows_query(
                    ', '.join(columns), low, low_incl, high, reverse,
                    batch)).fetchall()
                subdir = None
                for row in rows:
                    cut = row[0].find(delimiter, len(prefix)) \
                        if delimiter else -1
                    if cut >= 0:
                        subdir = row[0][:cut + len(delimiter)]
                        results.append(('subdir', subdir))
                        break
                    results.append(row)
                    if len(results) >= limit:
                        return results
                if subdir is not None:
                    # go on past every name under this subdir
                    if reverse:
                        high = subdir
                    else:
                        low, low_incl = prefix_upper_bound(subdir), True
                        if low is None:
                            break
                    continue
                if len(rows) < batch:
                    break
                if reverse:
                    high = rows[-1][0]
                else:
                    low, low_incl = rows[-1][0], False
        return results
