"""The container server: one SQLite database per container.

``/<device>/<partition>/<account>/<container>``: PUT creates (201) or
updates (202), POST sets metadata, DELETE removes an empty container
(409 while it lists objects), HEAD/GET answer stats, metadata and the
listing. ``.../<container>/<object>``: PUT/DELETE record an object version
sent by the object server. Container PUT/DELETE and stat changes are
reported to the account server (account_update.py).
"""
import os
import sys

import msgpack

from objstore.common import config, db_server, listing
from objstore.common.constraints import (CONTAINER_LISTING_LIMIT,
                                         check_object_name)
from objstore.common.db import (DatabaseConflict, DatabaseNotFound,
                                ItemError)
from objstore.common.group_commit import GroupCommit
from objstore.common.http import HTTPError
from objstore.common.wsgi import server_main
from objstore.container.account_update import AccountTarget, Reporter
from objstore.container.broker import ContainerBroker, ContainerNotEmpty

DEFAULT_PORT = 6201
# An UPDATE's rows at most, and the bytes one row may take on the wire
# (a 1024-byte name, content type, etag, timestamp and msgpack framing).
MAX_UPDATE_ROWS = 1000
MAX_ROW_BYTES = 2048


class ContainerServer(db_server.DatabaseServer):
    server_type = 'container'
    datadir = 'containers'
    broker_class = ContainerBroker
    listing_limit = CONTAINER_LISTING_LIMIT
    listing_tags = ('container', 'object')
    listing_entry = staticmethod(listing.container_entry)
    # ACL and sync settings a proxy sets; kept verbatim like metadata
    methods = db_server.DatabaseServer.methods + ('UPDATE',)
    stored_headers = ('x-container-read', 'x-container-write',
                      'x-container-sync-to', 'x-container-sync-key',
                      'x-versions-location', 'x-history-location')

    def __init__(self, conf, secret=None, hash_secret=None):
        super().__init__(conf, secret, hash_secret)
        try:
            timeout = float(conf.get('account_update_timeout', 3.0))
            delay = float(conf.get('account_update_delay', 0.5))
        except ValueError:
            raise config.ConfigError('account_update_timeout and '
                                     'account_update_delay are seconds')
        self.reporter = Reporter(self.secret, timeout, delay)
        self.rows = GroupCommit(self._commit_rows)

    def _parse(self, path):
        """(device, partition, account, container, obj-or-None)."""
        device, partition, account, container, obj = self.split(
            path, 4, 5, rest_with_last=True)
        self.check_names(account, container)
        if obj is not None:
            err = check_object_name(obj)
            if err:
                raise HTTPError(400, err)
        return device, partition, account, container, obj

    @staticmethod
    def _account_target(req):
        try:
            return AccountTarget.from_headers(req.headers)
        except ValueError as e:
            raise HTTPError(400, str(e))

    def _device_root(self, device):
        return os.path.join(self.devices, device)

    def _tell_account(self, broker, device, info, target, is_put=True):
        """Report a container PUT/DELETE; a PUT 404s without the account.

        Undeliverable reports become async pendings (account_update.py).
        Only the account servers' definite 404 fails a PUT, as a container
        cannot be listed under an account that does not exist (the new
        database stays, as in Swift: the proxy checks the account first).
        """
        if target is None:
            return
        hsh = self.name_hash(broker.account, broker.container)
        statuses = self.reporter.report(broker, self._device_root(device),
                                        hsh, info, target)
        if is_put and statuses and all(s == 404 for s in statuses):
            raise HTTPError(404, 'account not found')

    # -- container verbs ----------------------------------------------

    def PUT(self, req, path):
        device, partition, account, container, obj = self._parse(path)
        if obj is not None:
            return self.put_object(req, device, partition, account,
                                   container, obj)
        ts = self.timestamp(req)
        metadata = self.metadata_from_headers(req, ts)
        target = self._account_target(req)
        self.check_device(device)
        broker = self.broker(device, partition, account, container)

        def put():
            result = self.create_or_update(broker, device, ts, metadata)
            if target is not None:
                broker.set_account_target(target.to_text())
            return result, broker.get_info()
        result, info = self.db(put)
        self._tell_account(broker, device, info, target)
        status = 201 if result == 'created' else 202
        return self.status_response(status)

    def DELETE(self, req, path):
        device, partition, account, container, obj = self._parse(path)
        if obj is not None:
            return self.delete_object(req, device, partition, account,
                                      container, obj)
        ts = self.timestamp(req)
        target = self._account_target(req)
        self.check_device(device)
        broker = self.broker(device, partition, account, container)

        def delete():
            broker.delete_container(ts)
            if target is not None:
                broker.set_account_target(target.to_text())
            return broker.get_info()
        try:
            info = self.db(delete)
        except DatabaseNotFound:
            return self.not_found_for(req, broker)
        except ContainerNotEmpty:
            raise HTTPError(409, 'container not empty')
        except DatabaseConflict as e:
            raise HTTPError(409, 'container was put later (%s)' % e)
        self._tell_account(broker, device, info, target, is_put=False)
        return self.status_response(204)

    def POST(self, req, path):
        device, partition, account, container, obj = self._parse(path)
        if obj is not None:
            raise HTTPError(405, 'POST applies to containers only')
        ts = self.timestamp(req)
        metadata = self.metadata_from_headers(req, ts)
        self.check_device(device)
        broker = self.broker(device, partition, account, container)
        self.db(self.post_metadata, broker, metadata)
        return self.status_response(204)

    def db_location(self, path):
        device, partition, account, container, obj = self._parse(path)
        if obj is not None:
            raise HTTPError(400, 'HEAD and GET apply to containers only')
        return device, partition, account, container

    @staticmethod
    def stats_headers(info):
        return {'X-Container-Object-Count': str(info['object_count']),
                'X-Container-Bytes-Used': str(info['bytes_used'])}

    @staticmethod
    def list_rows(broker, params):
        """Rows, or for JSON without a delimiter (what clients page
        through most) the body itself, already rendered by SQLite."""
        if params.content_type == 'application/json' and \
                not params.delimiter:
            body = broker.list_objects_json(
                params.limit, params.marker, params.end_marker,
                params.prefix, params.reverse)
            if body is not None:
                return body
        return broker.list_objects(**params.query())

    def render_listing(self, content_type, name, rows):
        if isinstance(rows, bytes):
            return rows
        return super().render_listing(content_type, name, rows)

    # -- object rows --------------------------------------------------

    def put_object(self, req, device, partition, account, container, obj):
        ts = self.timestamp(req)
        size = req.headers.get('X-Size', '').strip()
        if not size.isdigit():
            raise HTTPError(400, 'missing or invalid X-Size')
        content_type = req.headers.get('X-Content-Type', '')
        etag = req.headers.get('X-Etag', '')
        self.check_device(device)
        broker = self.broker(device, partition, account, container)
        row = self._row(broker, obj, ts.internal, int(size), content_type,
                        etag)
        return self._record(req, broker, device, 201, [row])

    def delete_object(self, req, device, partition, account, container,
                      obj):
        ts = self.timestamp(req)
        self.check_device(device)
        broker = self.broker(device, partition, account, container)
        row = self._row(broker, obj, ts.internal, 0, '', '', deleted=1)
        return self._record(req, broker, device, 204, [row])

    def UPDATE(self, req, path):
        """Many object rows for one container in one request.

        What object servers send (obj/updates.py batches the updates that
        queue up while one is in flight to the same container replica):
        a msgpack list of maps with name, created_at, size,
        content_type, etag and deleted. Every row is checked before any
        is stored (400 otherwise); 202 once all are committed.
        """
        device, partition, account, container, obj = self._parse(path)
        if obj is not None:
            raise HTTPError(400, 'UPDATE applies to containers only')
        self.check_device(device)
        broker = self.broker(device, partition, account, container)
        rows = [self._row(broker, *fields[:5], deleted=fields[5])
                for fields in update_rows(req, MAX_UPDATE_ROWS)]
        return self._record(req, broker, device, 202, rows)

    @staticmethod
    def _row(broker, name, *fields, deleted=0):
        err = check_object_name(name) if isinstance(name, str) else \
            'object name must be text'
        if err:
            raise HTTPError(400, err)
        try:
            return broker.object_row(name, *fields, deleted=deleted)
        except ItemError as e:
            raise HTTPError(400, str(e))

    def _record(self, req, broker, device, status, rows):
        """Store object rows, in a group commit with their neighbours.

        Answered once the transaction holding the rows has committed; a
        change schedules a stats report to the account.
        """
        try:
            changed, info = self.rows.submit(broker.db_file, broker, rows)
        except DatabaseNotFound:
            return self.not_found_for(req, broker)
        if changed and info.get('account_target'):
            self.reporter.schedule(broker, self._device_root(device),
                                   self.name_hash(broker.account,
                                                  broker.container))
        return self.status_response(status)

    @staticmethod
    def _commit_rows(broker, requests):
        """GroupCommit's writer: each request's rows, all in one
        transaction; per request (any row changed, info after)."""
        changed = iter(broker.put_objects(
            [row for rows in requests for row in rows]))
        per_request = [any([next(changed) for _row in rows])
                       for rows in requests]
        info = broker.get_info() if any(per_request) else None
        return [(c, info) for c in per_request]


def update_rows(req, limit):
    """The fields of each row of an UPDATE body, or HTTPError 4xx."""
    length = req.content_length
    if length is None:
        raise HTTPError(411, 'UPDATE needs a Content-Length')
    if length > limit * MAX_ROW_BYTES:
        raise HTTPError(413, 'UPDATE body too large')
    # read the body straight off wsgi.input: req.body would first copy it
    # into a seekable file, a tenth of the request's CPU
    try:
        body = req.environ['wsgi.input'].read(length)
    except (OSError, ValueError) as e:
        raise HTTPError(499, 'client disconnected: %s' % e)
    if len(body) < length:
        raise HTTPError(499, 'client sent %d of %d bytes'
                        % (len(body), length))
    try:
        rows = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception:
        raise HTTPError(400, 'UPDATE body is not msgpack')
    if not isinstance(rows, list) or not rows:
        raise HTTPError(400, 'UPDATE body must be a list of rows')
    if len(rows) > limit:
        raise HTTPError(413, 'more than %d rows in one UPDATE' % limit)
    fields = []
    for row in rows:
        try:
            fields.append((row['name'], row['created_at'], row['size'],
                           row['content_type'], row['etag'],
                           row['deleted']))
        except (KeyError, TypeError):
            raise HTTPError(400, 'an UPDATE row needs name, created_at, '
                            'size, content_type, etag and deleted')
    return fields


def app_factory(conf):
    return ContainerServer(conf)


main = server_main('container-server', app_factory, DEFAULT_PORT,
                   sched_batch=True)


if __name__ == '__main__':
    sys.exit(main())
