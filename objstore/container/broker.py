"""A container's SQLite database: its object rows, stats and metadata.

The object server reports every object PUT and DELETE here; a row per
object name keeps the newest version (deleted ones stay as tombstones so
replicas learn about deletes). Triggers keep ``object_count``,
``bytes_used`` and the content hash in ``db_info`` in step with the live
rows, so stats cost one row read however big the container is.
"""
from objstore.common.db import (DatabaseBroker, DatabaseConflict,
                                DatabaseNotFound, ItemError, name_bounds)
from objstore.common.timestamp import Timestamp

OBJECT_COLUMNS = ('name', 'created_at', 'size', 'content_type', 'etag',
                  'deleted')


# One JSON listing entry, built by SQLite: the keys, order and values of
# listing.container_entry, last_modified from the stored internal
# timestamp ('1700000000.12345', maybe with an '_<offset>') as
# listing.iso_time gives it; NULL for any other form, which sends the
# whole listing down the Python path instead.
_DIGITS = '[0-9]'
_JSON_ENTRY = (
    "json_object('name', name, 'hash', etag, 'bytes', size, "
    "'content_type', content_type, 'last_modified', "
    "CASE WHEN created_at GLOB '%s.%s' OR created_at GLOB '%s.%s_*' THEN "
    "strftime('%%Y-%%m-%%dT%%H:%%M:%%S', "
    "CAST(substr(created_at, 1, 10) AS INTEGER), 'unixepoch') "
    "|| '.' || substr(created_at, 12, 5) || '0' END)" % (
        _DIGITS * 10, _DIGITS * 5, _DIGITS * 10, _DIGITS * 5))


class ContainerNotEmpty(DatabaseConflict):
    """DELETE of a container that still lists objects."""


class ContainerBroker(DatabaseBroker):
    """Rows of the ``object`` table plus the container's ``db_info``."""

    item_table = 'object'
    item_columns = OBJECT_COLUMNS
    # What was last sent to the account server, so a later updater can
    # find containers whose account row is out of date; and where that
    # account server was (from the last container PUT/DELETE).
    info_columns = '''reported_put_timestamp TEXT NOT NULL
                DEFAULT '0000000000.00000',
            reported_delete_timestamp TEXT NOT NULL
                DEFAULT '0000000000.00000',
            reported_object_count INTEGER NOT NULL DEFAULT -1,
            reported_bytes_used INTEGER NOT NULL DEFAULT -1,
            account_target TEXT NOT NULL DEFAULT \'\''''

    def _item_schema(self):
        # Rows are replaced (delete + insert), never updated, so a change
        # always gets a new, larger ROWID for replication to find.
        return '''
        CREATE TABLE object (
            ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            etag TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX ix_object_deleted_name ON object (deleted, name);
        CREATE TRIGGER object_insert AFTER INSERT ON object
        BEGIN
            UPDATE db_info SET
                object_count = object_count + (1 - new.deleted),
                bytes_used = bytes_used + (1 - new.deleted) * new.size,
                hash = chexor(hash, new.name, new.created_at);
        END;
        CREATE TRIGGER object_delete AFTER DELETE ON object
        BEGIN
            UPDATE db_info SET
                object_count = object_count - (1 - old.deleted),
                bytes_used = bytes_used - (1 - old.deleted) * old.size,
                hash = chexor(hash, old.name, old.created_at);
        END;
        CREATE TRIGGER object_update BEFORE UPDATE ON object
        BEGIN
            SELECT RAISE(FAIL, 'object rows are replaced, not updated');
        END;
        '''

    @staticmethod
    def info_is_deleted(info):
        """Deleted: a delete newer than the last put, and no live object.

        A replica may still receive rows for a container deleted
        elsewhere; while it holds objects it is not treated as deleted.
        """
        return info['object_count'] == 0 and \
            DatabaseBroker.info_is_deleted(info)

    def _check_item(self, item):
        try:
            name = item['name']
            created_at = Timestamp(item['created_at']).internal
            deleted = int(item.get('deleted', 0))
            size = item.get('size', 0)
            content_type = item.get('content_type', '')
            etag = item.get('etag', '')
        except (KeyError, TypeError, ValueError) as e:
            raise ItemError('bad object row: %s' % e)
        if not isinstance(name, str) or not name or '\x00' in name:
            raise ItemError('bad object name %r' % (name,))
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ItemError('bad object size %r' % (size,))
        if not isinstance(content_type, str) or not isinstance(etag, str):
            raise ItemError('content_type and etag must be text')
        if deleted not in (0, 1):
            raise ItemError('deleted must be 0 or 1')
        return {'name': name, 'created_at': created_at,
                'size': 0 if deleted else size,
                'content_type': '' if deleted else content_type,
                'etag': '' if deleted else etag, 'deleted': deleted}

    @staticmethod
    def _version(row):
        # the newest timestamp wins; the rest only breaks ties, so that
        # replicas that saw the same rows in any order keep the same one
        return (Timestamp(row['created_at']), row['deleted'], row['etag'],
                row['size'], row['content_type'])

    def _merge_row(self, existing, item):
        if existing is not None and \
                self._version(existing) >= self._version(item):
            return None
        return item

    def put_object(self, name, timestamp, size, content_type, etag,
                   deleted=0):
        """Record an object version from the object server.

        Raises DatabaseNotFound when the container is missing or deleted
        (checked in the same transaction as the write). True when the row
        changed (an older version is ignored).
        """
        return self.put_objects([self.object_row(
            name, timestamp, size, content_type, etag, deleted)])[0]

    def object_row(self, name, timestamp, size, content_type, etag,
                   deleted=0):
        """A checked row for put_objects (ItemError when it is bad)."""
        return self._check_item({
            'name': name, 'created_at': timestamp, 'size': size,
            'content_type': content_type, 'etag': etag, 'deleted': deleted})

    def put_objects(self, rows):
        """Record checked rows in one transaction (a group commit).

        Raises DatabaseNotFound when the container is missing or deleted,
        for every row. Returns, per row in order, True when it changed
        what is stored; rows apply in order, so of two versions of one
        name in a batch the newest still wins.
        """
        with self.transaction() as conn:
            if self.info_is_deleted(self._info(conn)):
                raise DatabaseNotFound(self.db_file)
            return [self._merge_items(conn, [row]) > 0 for row in rows]

    def delete_object(self, name, timestamp):
        """Record a delete: a tombstone row, kept for replication."""
        return self.put_object(name, timestamp, 0, '', '', deleted=1)

    def delete_container(self, timestamp):
        """Mark the container deleted; ContainerNotEmpty while it is not."""
        def check(info):
            if info['object_count'] > 0:
                raise ContainerNotEmpty('container not empty')
        return self.delete_db(timestamp, check)

    def empty(self):
        return self.get_info()['object_count'] == 0

    def list_objects(self, limit, marker='', end_marker='', prefix='',
                     delimiter='', reverse=False):
        """Listing entries: dicts of the object columns or ('subdir', n)."""
        rows = self.list_items(
            ('name', 'created_at', 'size', 'content_type', 'etag'), limit,
            marker, end_marker, prefix, delimiter, reverse)
        return [row if isinstance(row, tuple) else dict(row)
                for row in rows]

    def list_objects_json(self, limit, marker='', end_marker='',
                          prefix='', reverse=False):
        """The JSON body of a listing without a delimiter (bytes), each
        entry made by SQLite: three times faster than rows, dicts and
        json.dumps for a page of 10,000. Names stay UTF-8 rather than
        \\u escapes, the same JSON to any parser. None when a row's
        timestamp is not in the internal form: list_objects then.
        """
        if limit <= 0:
            return b'[]'
        low, low_incl, high = name_bounds(marker, end_marker, prefix, '',
                                          reverse)
        with self.get() as conn:
            entries = [entry for entry, in conn.execute(
                *self.live_rows_query(_JSON_ENTRY, low, low_incl, high,
                                      reverse, limit))]
        if any(entry.endswith('"last_modified":null}')
               for entry in entries):
            return None
        return ('[' + ','.join(entries) + ']').encode('utf-8')

    def set_account_target(self, target):
        """Remember where this container's account row lives (text)."""
        with self.transaction() as conn:
            conn.execute('UPDATE db_info SET account_target = ?', (target,))

    def reported(self, put_timestamp, delete_timestamp, object_count,
                 bytes_used):
        """Record the stats the account server has acknowledged."""
        with self.transaction() as conn:
            conn.execute(
                'UPDATE db_info SET reported_put_timestamp = ?, '
                'reported_delete_timestamp = ?, reported_object_count = ?, '
                'reported_bytes_used = ?',
                (put_timestamp, delete_timestamp, object_count, bytes_used))
