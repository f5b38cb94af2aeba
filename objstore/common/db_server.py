"""What the container and account servers share around their brokers.

Every request goes through the same preamble, in this order: signature
(401), path and names (400), device (507); handlers then parse their
headers before touching the database, so a rejected request never
changes what is stored. Broker calls run in an OS thread
(concurrency.run_in_thread): SQLite may wait up to its busy timeout for
another writer or fsync on commit, and neither may stall the hub that
serves every other request of the worker.

REPLICATE (``/<device>/<partition>/<db hash>``, msgpack body) is what a
DB replicator talks to: ``info`` and ``sync`` answer the database's
replication info (``sync`` first merges the caller's timestamps and
metadata and adds the caller's incoming sync point), ``merge_items`` and
``merge_syncs`` apply rows and sync points.

SYNCDB (``/<device>/<partition>/<db hash>``, the body a whole database
file, Content-Length required) is how a replicator hands over a database
a peer lacks or is far behind on. The body streams in fixed-size chunks
to a temp file under ``<device>/tmp``; the copy must be a sound database
of this server's kind whose account/container names hash to the path
(400 otherwise, and nothing stored changes). It is then installed when
there is no database here (201) or merged into the one there is (202):
rows, timestamps and metadata merge newest-wins, so a receiver's newer
rows are never replaced by an older copy.
"""
import errno
import logging
import os
import re
import socket
import sqlite3
import tempfile

import msgpack

from objstore.common import (concurrency, config, listing, ondisk,
                             signing)
from objstore.common.constraints import (MAX_ACCOUNT_NAME_LENGTH,
                                         MAX_CONTAINER_NAME_LENGTH,
                                         check_metadata, check_name)
from objstore.common.db import (BUSY_TIMEOUT, BadDatabase,
                                DatabaseConflict, DatabaseNotFound,
                                ItemError, MetadataError, remove_db_files)
from objstore.common.http import (HTTPError, Request, Response,
                                  error_response, request_path, split_path)
from objstore.common.timestamp import Timestamp, parse_x_timestamp

HASH_RE = re.compile(r'^[0-9a-f]{32}$')
MAX_REPLICATE_BODY = 64 * 1024 * 1024
REPLICATE_OPS = ('info', 'sync', 'merge_items', 'merge_syncs')
# SYNCDB bodies are read and written this many bytes at a time.
SYNCDB_CHUNK = 64 * 1024


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=True)


class DatabaseServer:
    """Base WSGI app; subclasses set the names and the verb handlers.

    ``server_type`` is 'container' or 'account' (it picks the metadata
    prefixes), ``datadir`` the directory under a device, ``broker_class``
    the broker, ``stored_headers`` the non-meta headers kept verbatim.
    Handlers are methods named after the HTTP verb.
    """

    server_type = None
    datadir = None
    broker_class = None
    stored_headers = ()
    methods = ('PUT', 'POST', 'DELETE', 'HEAD', 'GET', 'REPLICATE',
               'SYNCDB')

    def __init__(self, conf, secret=None, hash_secret=None):
        self.devices = conf.get('devices', '/srv/node')
        self.mount_check = config.config_true(conf.get('mount_check',
                                                       'true'))
        self.secret = secret if secret is not None else \
            config.backend_secret()
        self.hash_prefix, self.hash_suffix = hash_secret or \
            config.hash_secret()
        try:
            self.db_timeout = float(conf.get('db_timeout', BUSY_TIMEOUT))
        except ValueError:
            raise config.ConfigError('db_timeout must be a number')
        self.log = logging.getLogger('objstore.%s' % self.server_type)
        self.meta_prefix = 'x-%s-meta-' % self.server_type
        self.sysmeta_prefix = 'x-%s-sysmeta-' % self.server_type

    # -- WSGI entry ---------------------------------------------------

    def __call__(self, environ, start_response):
        req = Request(environ)
        try:
            resp = self.dispatch(req)
        except HTTPError as e:
            resp = e.response(req)
        except sqlite3.OperationalError as e:
            if 'locked' in str(e) or 'busy' in str(e):
                resp = error_response(503, 'database busy, try again',
                                      request=req)
            elif 'disk is full' in str(e):
                resp = self.device_full(req)
            else:
                resp = self.internal_error(req)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                resp = self.device_full(req)
            else:
                resp = self.internal_error(req)
        except Exception:
            resp = self.internal_error(req)
        return resp(environ, start_response)

    def device_full(self, req):
        """507: the proxy (or updater) goes on at another device at once,
        and the write lands in an async pending or on a handoff."""
        self.log.warning('%s %s: device full', req.method,
                         req.environ.get('PATH_INFO'))
        return error_response(507, 'device full', request=req)

    def internal_error(self, req):
        """Log the traceback; the client gets one line, never the trace."""
        self.log.exception('%s %s failed', req.method,
                           req.environ.get('PATH_INFO'))
        return error_response(500, 'internal error', request=req)

    def dispatch(self, req):
        why = signing.verify_environ(self.secret, req.environ)
        if why:
            raise HTTPError(401, why)
        if req.method not in self.methods:
            raise HTTPError(405, '%s not allowed' % req.method,
                            {'Allow': ', '.join(self.methods)})
        path = request_path(req)
        return getattr(self, req.method)(req, path)

    # -- helpers for handlers -----------------------------------------

    @staticmethod
    def status_response(status):
        """A bodiless success answer."""
        return Response(status=status, body=b'', content_type='text/plain',
                        charset='utf-8')

    @staticmethod
    def db(func, *args, **kwargs):
        """Run a broker call in an OS thread (see the module docstring)."""
        return concurrency.run_in_thread(func, *args, **kwargs)

    def split(self, path, minsegs, maxsegs, rest_with_last=False):
        """(device, partition, *names) of a backend path, or HTTPError."""
        segs = split_path(path, minsegs, maxsegs, rest_with_last)
        if not segs[1].isdigit():
            raise HTTPError(400, 'invalid partition %r' % segs[1])
        segs[1] = int(segs[1])
        return segs

    @staticmethod
    def check_names(account, container=None):
        err = check_name(account, MAX_ACCOUNT_NAME_LENGTH, 'account')
        if err is None and container is not None:
            err = check_name(container, MAX_CONTAINER_NAME_LENGTH,
                             'container')
        if err:
            raise HTTPError(400, err)

    def check_device(self, device):
        """Raise 507 unless the device is present (and mounted)."""
        if ondisk.device_path(self.devices, device, self.mount_check) is None:
            raise HTTPError(507, 'device %s is not available' % device)

    def db_path(self, device, partition, hsh):
        return os.path.join(ondisk.storage_dir(
            self.devices, device, self.datadir, partition, hsh), hsh + '.db')

    def tmp_dir(self, device):
        return os.path.join(self.devices, device, 'tmp')

    def name_hash(self, account, container=None):
        return ondisk.name_hash(self.hash_prefix, self.hash_suffix, account,
                                container)

    def broker(self, device, partition, account, container=None):
        hsh = self.name_hash(account, container)
        return self.broker_class(self.db_path(device, partition, hsh),
                                 account=account, container=container,
                                 timeout=self.db_timeout)

    @staticmethod
    def timestamp(req, header='X-Timestamp'):
        try:
            return parse_x_timestamp(req.headers.get(header))
        except ValueError:
            raise HTTPError(400, 'missing or invalid %s' % header)

    def metadata_from_headers(self, req, timestamp):
        """{key: [value, ts]} of the headers this server stores.

        User metadata, system metadata and ``stored_headers`` are kept as
        sent; an empty value (or X-Remove-<header>) removes an item. The
        request's own user metadata must be within the limits (400).
        """
        err = check_metadata(req.headers, self.server_type)
        if err:
            raise HTTPError(400, err)
        ts = timestamp.internal
        meta = {}
        for key, value in req.headers.items():
            lkey = key.lower()
            if lkey.startswith('x-remove-'):
                key, lkey, value = 'X-' + key[9:], 'x-' + lkey[9:], ''
            if lkey in (self.meta_prefix, self.sysmeta_prefix):
                raise HTTPError(400, 'metadata name is empty')
            if lkey.startswith(self.meta_prefix) or \
                    lkey.startswith(self.sysmeta_prefix) or \
                    lkey in self.stored_headers:
                meta[key] = [value, ts]
        return meta

    def validate_metadata(self, live):
        """The combined metadata after a change must fit the limits too."""
        return check_metadata(live, self.server_type)

    @staticmethod
    def info_headers(info):
        """X-Backend-* headers telling a proxy when the DB changed state."""
        return {'X-Backend-Timestamp': info['created_at'],
                'X-Backend-Put-Timestamp': info['put_timestamp'],
                'X-Backend-Delete-Timestamp': info['delete_timestamp'],
                'X-Backend-Status-Changed-At': info['status_changed_at']}

    def not_found(self, req, info=None):
        """404; for a deleted DB with the X-Backend-* timestamps."""
        headers = self.info_headers(info) if info else {}
        if info:
            headers['X-Backend-Deleted'] = 'true'
        return error_response(404, '%s not found' % self.server_type,
                              headers, req)

    def not_found_for(self, req, broker):
        """The 404 for a DB a write found missing or deleted."""
        return self.not_found(req, self.db(self.get_live_info, broker)[0])

    def get_live_info(self, broker):
        """(info, None) for a live DB, else (None or info, 404-reason)."""
        try:
            info = broker.get_info()
        except DatabaseNotFound:
            return None, 'missing'
        if broker.info_is_deleted(info):
            return info, 'deleted'
        return info, None

    def create_or_update(self, broker, device, timestamp, metadata):
        """PUT of the DB itself: 'created', 'accepted' or HTTPError 409.

        Runs in an OS thread. A new DB starts with the request's metadata;
        an existing one merges it (newest timestamp per item wins).
        """
        try:
            if broker.initialize(timestamp, self.tmp_dir(device), metadata):
                return 'created'
            return broker.put_db(timestamp, metadata,
                                 self.validate_metadata)
        except DatabaseConflict as e:
            raise HTTPError(409, '%s was deleted later (%s)'
                            % (self.server_type, e))
        except MetadataError as e:
            raise HTTPError(400, str(e))

    def post_metadata(self, broker, metadata):
        """POST: merge metadata into a live DB; HTTPError 404 or 400."""
        try:
            broker.update_metadata(metadata, self.validate_metadata,
                                   require_live=True)
        except DatabaseNotFound:
            raise HTTPError(404, '%s not found' % self.server_type)
        except MetadataError as e:
            raise HTTPError(400, str(e))

    @staticmethod
    def live_meta_headers(info):
        return {key: value for key, (value, _ts) in info['metadata'].items()
                if value != ''}

    # -- HEAD and GET -------------------------------------------------
    # Subclasses provide db_location(path) -> (device, partition, account,
    # container or None), stats_headers(info), list_rows(broker, params),
    # listing_entry(row), listing_limit and listing_tags (root, item).

    def _read(self, req, path, params):
        """(listing name, rows, response with headers) or (None, None, 404).
        """
        device, partition, account, container = self.db_location(path)
        self.check_device(device)
        broker = self.broker(device, partition, account, container)

        def read():
            info, why = self.get_live_info(broker)
            rows = None
            if why is None and params is not None:
                rows = self.list_rows(broker, params)
            return info, why, rows
        info, why, rows = self.db(read)
        if why:
            return None, None, self.not_found(req, info)
        resp = Response(status=204)
        resp.headers.update(self.live_meta_headers(info))
        resp.headers.update(self.info_headers(info))
        resp.headers.update(self.stats_headers(info))
        resp.headers.update({
            'X-Timestamp': Timestamp(info['created_at']).normal,
            'X-PUT-Timestamp': Timestamp(info['put_timestamp']).normal})
        return container or account, rows, resp

    def HEAD(self, req, path):
        """Stats and metadata; 204, in the type a listing would have."""
        query = listing.parse_query(req.environ.get('QUERY_STRING', ''))
        content_type = listing.listing_content_type(req, query)
        _name, _rows, resp = self._read(req, path, None)
        if resp.status_int == 204:
            resp.content_type = content_type
            resp.charset = 'utf-8'
        return resp

    def GET(self, req, path):
        """HEAD plus the listing; an empty plain-text listing is a 204."""
        params = listing.listing_params(req, self.listing_limit)
        name, rows, resp = self._read(req, path, params)
        if name is None:
            return resp
        body = self.db(self.render_listing, params.content_type, name, rows)
        if params.content_type != 'text/plain' or body:
            resp.status = 200
            resp.body = body
        resp.content_type = params.content_type
        resp.charset = 'utf-8'
        return resp

    def render_listing(self, content_type, name, rows):
        """The body; run in a thread, as 10000 rows take a while."""
        root, item = self.listing_tags
        return listing.render(content_type,
                              [self.listing_entry(row) for row in rows],
                              root, name, item)

    # -- REPLICATE ----------------------------------------------------

    def REPLICATE(self, req, path):
        device, partition, hsh = self.split(path, 3, 3)
        if not HASH_RE.match(hsh):
            raise HTTPError(400, 'invalid database hash %r' % hsh)
        self.check_device(device)
        length = req.content_length or 0
        if length > MAX_REPLICATE_BODY:
            raise HTTPError(413, 'REPLICATE body too large')
        args = {}
        body = req.body if length else b''
        if body:
            try:
                args = unpack(body)
            except Exception:
                raise HTTPError(400, 'REPLICATE body is not msgpack')
            if not isinstance(args, dict):
                raise HTTPError(400, 'REPLICATE body must be a map')
        op = args.get('op', 'info')
        if op not in REPLICATE_OPS:
            raise HTTPError(400, 'unknown REPLICATE op %r' % (op,))
        broker = self.broker_class(self.db_path(device, partition, hsh),
                                   timeout=self.db_timeout)
        try:
            result = self.db(self._replicate, broker, op, args)
        except DatabaseNotFound:
            raise HTTPError(404, 'no database %s' % hsh)
        except (ItemError, KeyError, TypeError, ValueError) as e:
            raise HTTPError(400, 'bad REPLICATE %s: %s' % (op, e))
        if result is None:
            return self.status_response(202)
        return Response(status=200, body=pack(result),
                        content_type='application/x-msgpack')

    @staticmethod
    def _replicate(broker, op, args):
        if op == 'merge_items':
            broker.merge_items(args['items'], args.get('source_id'))
            return None
        if op == 'merge_syncs':
            broker.merge_syncs(args['syncs'], args.get('incoming', True))
            return None
        if op == 'sync':
            broker.merge_timestamps(args['created_at'],
                                    args['put_timestamp'],
                                    args['delete_timestamp'])
            metadata = args.get('metadata') or {}
            if not isinstance(metadata, dict):
                raise ValueError('metadata must be a map')
            broker.update_metadata(metadata)
        info = broker.get_replication_info()
        if args.get('remote_id'):
            info['sync_point'] = broker.get_sync(args['remote_id'])
        return info

    # -- SYNCDB -------------------------------------------------------

    def SYNCDB(self, req, path):
        device, partition, hsh = self.split(path, 3, 3)
        if not HASH_RE.match(hsh):
            raise HTTPError(400, 'invalid database hash %r' % hsh)
        length = self._syncdb_length(req)
        self.check_device(device)
        try:
            copy_path = self.db(self._new_copy_file, self.tmp_dir(device))
            try:
                self._receive_copy(req, copy_path, length)
                info = self._checked_copy(copy_path, hsh)
                broker = self.broker_class(
                    self.db_path(device, partition, hsh),
                    account=info['account'], container=info['container'],
                    timeout=self.db_timeout)
                try:
                    result = self.db(broker.adopt_copy, copy_path, info)
                except ItemError as e:
                    raise HTTPError(400, 'bad rows in the database: %s' % e)
            finally:
                self.db(remove_db_files, copy_path)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise HTTPError(507, 'no space for the database on %s'
                                % device)
            raise
        return self.status_response(201 if result == 'installed' else 202)

    @staticmethod
    def _syncdb_length(req):
        if req.headers.get('Transfer-Encoding'):
            raise HTTPError(411, 'SYNCDB needs a Content-Length body')
        value = req.headers.get('Content-Length')
        if value is None:
            raise HTTPError(411, 'SYNCDB needs a Content-Length body')
        if not value.strip().isdigit():
            raise HTTPError(400, 'invalid Content-Length')
        length = int(value)
        if length == 0:
            raise HTTPError(400, 'SYNCDB body is empty')
        return length

    @staticmethod
    def _new_copy_file(tmp_dir):
        ondisk.makedirs_durable(tmp_dir)
        fd, copy_path = tempfile.mkstemp(prefix='syncdb-', suffix='.db',
                                         dir=tmp_dir)
        os.close(fd)
        return copy_path

    @staticmethod
    def _receive_copy(req, copy_path, length):
        """Stream exactly ``length`` body bytes into ``copy_path``."""
        stream = req.environ['wsgi.input']
        received = 0
        with open(copy_path, 'wb') as f:
            while received < length:
                try:
                    chunk = stream.read(min(SYNCDB_CHUNK, length - received))
                except (socket.timeout, TimeoutError):
                    raise HTTPError(408, 'timed out reading the database')
                except (OSError, ValueError) as e:
                    raise HTTPError(400, 'body ended early: %s' % e)
                if not chunk:
                    raise HTTPError(400, 'body ended after %d of %d bytes'
                                    % (received, length))
                f.write(chunk)
                received += len(chunk)

    def _checked_copy(self, copy_path, hsh):
        """inspect_copy's info for a copy that belongs at ``hsh``."""
        try:
            info = self.db(self.broker_class.inspect_copy, copy_path,
                           self.db_timeout)
        except BadDatabase as e:
            raise HTTPError(400, str(e))
        account, container = info['account'], info['container']
        expected = str if self.server_type == 'container' else type(None)
        if not isinstance(account, str) or \
                not isinstance(container, expected):
            raise HTTPError(400, 'the database does not name a %s'
                            % self.server_type)
        self.check_names(account, container)
        if self.name_hash(account, container) != hsh:
            raise HTTPError(400, 'the database is for %s, not %s' % (
                self.name_hash(account, container), hsh))
        return info
