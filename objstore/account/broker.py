"""An account's SQLite database: one row per container, with its stats.

Container servers report each container's put/delete timestamps, object
count and bytes used; the account keeps the newest of each and triggers
sum the live rows into ``db_info`` (container_count, object_count,
bytes_used) so account HEAD is one row read.
"""
from objstore.common.db import DatabaseBroker, DatabaseNotFound, ItemError
from objstore.common.timestamp import Timestamp

CONTAINER_COLUMNS = ('name', 'put_timestamp', 'delete_timestamp',
                     'object_count', 'bytes_used', 'stats_timestamp',
                     'deleted')


def _count(value, what):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ItemError('bad %s %r' % (what, value))
    return value


class AccountBroker(DatabaseBroker):
    """Rows of the ``container`` table plus the account's ``db_info``."""

    item_table = 'container'
    item_columns = CONTAINER_COLUMNS
    info_columns = 'container_count INTEGER NOT NULL DEFAULT 0'

    def _item_schema(self):
        # stats_timestamp is when the container server took the stats it
        # reported: of two reports the later one wins, whichever arrives
        # last. Rows are replaced, never updated (see ContainerBroker).
        return '''
        CREATE TABLE container (
            ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            put_timestamp TEXT NOT NULL,
            delete_timestamp TEXT NOT NULL,
            object_count INTEGER NOT NULL,
            bytes_used INTEGER NOT NULL,
            stats_timestamp TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX ix_container_deleted_name ON container (deleted, name);
        CREATE TRIGGER container_insert AFTER INSERT ON container
        BEGIN
            UPDATE db_info SET
                container_count = container_count + (1 - new.deleted),
                object_count = object_count
                    + (1 - new.deleted) * new.object_count,
                bytes_used = bytes_used + (1 - new.deleted) * new.bytes_used,
                hash = chexor(hash, new.name, new.put_timestamp,
                              new.delete_timestamp, new.stats_timestamp);
        END;
        CREATE TRIGGER container_delete AFTER DELETE ON container
        BEGIN
            UPDATE db_info SET
                container_count = container_count - (1 - old.deleted),
                object_count = object_count
                    - (1 - old.deleted) * old.object_count,
                bytes_used = bytes_used - (1 - old.deleted) * old.bytes_used,
                hash = chexor(hash, old.name, old.put_timestamp,
                              old.delete_timestamp, old.stats_timestamp);
        END;
        CREATE TRIGGER container_update BEFORE UPDATE ON container
        BEGIN
            SELECT RAISE(FAIL, 'container rows are replaced, not updated');
        END;
        '''

    def _check_item(self, item):
        try:
            name = item['name']
            put = Timestamp(item.get('put_timestamp') or 0).internal
            delete = Timestamp(item.get('delete_timestamp') or 0).internal
            stats = Timestamp(item.get('stats_timestamp') or 0).internal
            count = _count(item.get('object_count', 0), 'object count')
            used = _count(item.get('bytes_used', 0), 'bytes used')
        except (KeyError, TypeError, ValueError) as e:
            raise ItemError('bad container row: %s' % e)
        if not isinstance(name, str) or not name or '\x00' in name:
            raise ItemError('bad container name %r' % (name,))
        return {'name': name, 'put_timestamp': put, 'delete_timestamp': delete,
                'object_count': count, 'bytes_used': used,
                'stats_timestamp': stats,
                'deleted': int(Timestamp(delete) > Timestamp(put))}

    def _merge_row(self, existing, item):
        """Each timestamp moves forward; stats come from the later report."""
        if existing is None:
            return item
        merged = dict(existing)
        for key in ('put_timestamp', 'delete_timestamp'):
            if Timestamp(item[key]) > Timestamp(existing[key]):
                merged[key] = item[key]
        # ties broken by the numbers so every replica picks the same row
        if (Timestamp(item['stats_timestamp']), item['object_count'],
                item['bytes_used']) > \
                (Timestamp(existing['stats_timestamp']),
                 existing['object_count'], existing['bytes_used']):
            for key in ('object_count', 'bytes_used', 'stats_timestamp'):
                merged[key] = item[key]
        merged['deleted'] = int(Timestamp(merged['delete_timestamp']) >
                                Timestamp(merged['put_timestamp']))
        return merged

    def put_container(self, name, put_timestamp, delete_timestamp,
                      object_count, bytes_used, stats_timestamp):
        """Record a container server's report about one container.

        Raises DatabaseNotFound when the account is missing or deleted.
        Returns the merged row.
        """
        item = self._check_item({
            'name': name, 'put_timestamp': put_timestamp,
            'delete_timestamp': delete_timestamp,
            'object_count': object_count, 'bytes_used': bytes_used,
            'stats_timestamp': stats_timestamp})
        with self.transaction() as conn:
            if self.info_is_deleted(self._info(conn)):
                raise DatabaseNotFound(self.db_file)
            self._merge_items(conn, [item])
            row = conn.execute(
                'SELECT %s FROM container WHERE name = ?'
                % ', '.join(CONTAINER_COLUMNS), (name,)).fetchone()
            return dict(row)

    def delete_account(self, timestamp):
        """Mark the account deleted (its containers are reaped later)."""
        return self.delete_db(timestamp)

    def list_containers(self, limit, marker='', end_marker='', prefix='',
                        delimiter='', reverse=False):
        """Listing entries: dicts of the container columns or subdirs."""
        rows = self.list_items(
            ('name', 'object_count', 'bytes_used', 'put_timestamp'), limit,
            marker, end_marker, prefix, delimiter, reverse)
        return [row if isinstance(row, tuple) else dict(row)
                for row in rows]
