"""versioned_writes: Swift's legacy object versioning, both modes.

    [filter:versioned_writes]
    use = objstore.middleware.versioned_writes
    # allow_versioned_writes = true

A container PUT/POST with ``X-Versions-Location: <archive>`` (stack
mode) or ``X-History-Location: <archive>`` (history mode) turns
versioning on; an empty value or ``X-Remove-Versions-Location`` /
``X-Remove-History-Location`` turns it off; both at once is a 400. The
setting lives in container system metadata and is shown to clients
under the header it was set with (the rules: versioning_rules.py).

In a versioned container an object PUT first copies the current object
to ``<archive>/<len as 3 hex><name>/<timestamp>``; a DELETE either
brings the newest archived version back (stack) or archives the object
and leaves a delete marker (history). Every sub-request goes to the rest
of the pipeline with the client's own identity, so the auth filter
judges each path: versioning needs write access to the archive too (and
read access for a stack DELETE, which reads the version it restores).
Archiving copies the object as stored -- a large object's manifest, a
symlink as a link -- never the assembled bytes, so place this after slo
and dlo and before symlink, as in Swift. When archiving or restoring
fails, the client's request is refused (412 for a missing archive, the
denial for a 401/403, 503 otherwise) and nothing it would have changed
is changed.

With ``allow_versioned_writes = false`` the headers are refused with 412
(as Swift does) and existing settings are ignored.
"""
import json
import time
from urllib.parse import quote

from objstore.common import info
from objstore.common.config import ConfigError, config_true
from objstore.common.http import (HTTPError, Request, client_path,
                                  split_path)
from objstore.common.timestamp import Timestamp
from objstore.middleware import segments as seglib
from objstore.middleware import subrequest as subreq
from objstore.middleware import versioning_rules as rules

LISTING_LIMIT = 1000
# how an object is read to be archived or restored: as stored
RAW_QUERY = 'multipart-manifest=get&symlink=get'
VERSIONING_HEADERS = tuple(
    'HTTP_' + h.upper().replace('-', '_') for h in (
        'X-Versions-Location', 'X-History-Location',
        'X-Remove-Versions-Location', 'X-Remove-History-Location'))


class _Refused(Exception):
    """Answer the client ``resp`` and change nothing more."""

    def __init__(self, resp):
        super().__init__('refused')
        self.resp = resp


class _BodyReader:
    """A file-like ``read`` over a response's app_iter, so an archived
    object streams from its GET into its PUT in fixed memory."""

    def __init__(self, resp):
        self._iter = iter(resp.app_iter)
        self._resp = resp
        self._buffer = b''

    def read(self, size=-1):
        while size < 0 or len(self._buffer) < size:
            try:
                chunk = next(self._iter)
            except StopIteration:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b''
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def readline(self, size=-1):
        return self.read(size)

    def close(self):
        seglib.close_body(self._resp)


class VersionedWrites:
    # Every object write needs its container's versioning: an answer is
    # reused this long, in this worker (a change made through it is seen
    # at once), on top of the proxy's own cached container info.
    INFO_TTL = 1.0
    MAX_INFOS = 1000

    def __init__(self, app, allow=True, clock=time.monotonic):
        self.app = app
        self.allow = allow
        self.clock = clock
        self._infos = {}    # (account path, container) -> (expiry, answer)

    # -- sub-requests --------------------------------------------------

    def _sub(self, environ, method, path, query='', headers=None):
        return seglib.subrequest(self.app, environ, method, path, query,
                                 headers)

    def _refuse(self, environ, resp, what):
        """Raise _Refused for a failed sub-request ``resp``."""
        seglib.close_body(resp)
        status = rules.failure_status(resp.status_int)
        if status in (401, 403):
            raise _Refused(resp)
        raise _Refused(HTTPError(status, '%s failed: %s' % (
            what, resp.status)).response(Request(environ)))

    def _container_info(self, environ, account_path, container):
        """The container's answer headers, read with no ACL check (the
        request itself is judged later by the proxy); {} if missing.
        Every object write asks: the proxy's cached container info will
        do (a change made through another worker shows within its ttl).
        """
        return subreq.head_headers(
            self.app, environ, '%s/%s' % (account_path, container),
            cached=True)

    def _versioning(self, environ, account_path, container):
        """(location, mode) of the container (container_versioning), as
        its info said at most INFO_TTL ago. Only an answer from an
        existing container is kept (its HEAD always carries headers, its
        counts; a failed one gives none): after a failed look, the next
        write looks again."""
        key = (account_path, container)
        now = self.clock()
        kept = self._infos.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        headers = self._container_info(environ, account_path, container)
        answer = rules.container_versioning(headers)
        if headers:
            if len(self._infos) >= self.MAX_INFOS:
                self._infos.clear()
            self._infos[key] = (now + self.INFO_TTL, answer)
        return answer

    def _copy(self, environ, source_resp, dest_path, what):
        """PUT the stored object ``source_resp`` answered at dest_path."""
        headers = rules.archived_headers(source_resp.headers.items())
        env = subreq.sub_environ(
            environ, 'PUT', dest_path, '', headers, _BodyReader(source_resp),
            source_resp.headers.get('Content-Length'))
        try:
            resp = Request(env).get_response(self.app)
        finally:
            seglib.close_body(source_resp)
        if not 200 <= resp.status_int < 300:
            self._refuse(environ, resp, what)
        seglib.close_body(resp)

    # -- archiving -----------------------------------------------------

    def archive_current(self, environ, account_path, container, obj,
                        location):
        """Copy the object as it is now into the archive; nothing to do
        when there is none."""
        current = self._sub(environ, 'GET', '%s/%s/%s' % (
            account_path, container, obj), RAW_QUERY)
        if current.status_int == 404:
            seglib.close_body(current)
            return
        if current.status_int != 200:
            self._refuse(environ, current, 'reading the current version')
        stamp = rules.object_timestamp(current.headers) or Timestamp.now()
        dest = '%s/%s/%s' % (account_path, location,
                             rules.version_name(obj, stamp))
        self._copy(environ, current, dest, 'archiving the current version')

    def put_delete_marker(self, environ, account_path, obj, location):
        dest = '%s/%s/%s' % (account_path, location,
                             rules.version_name(obj, Timestamp.now()))
        resp = self._sub(environ, 'PUT', dest, headers={
            'Content-Type': rules.DELETE_MARKER_TYPE})
        if not 200 <= resp.status_int < 300:
            self._refuse(environ, resp, 'writing the delete marker')
        seglib.close_body(resp)

    # -- stack-mode DELETE ---------------------------------------------

    def _versions(self, environ, account_path, obj, location):
        """Archive rows of ``obj``, newest first (a generator; pages of
        the listing are read as they are needed)."""
        prefix = rules.version_prefix(obj)
        marker = ''
        while True:
            query = 'format=json&reverse=on&limit=%d&prefix=%s%s' % (
                LISTING_LIMIT, quote(prefix, safe=''),
                '&marker=' + quote(marker, safe='') if marker else '')
            resp = self._sub(environ, 'GET', '%s/%s' % (account_path,
                                                        location), query)
            if resp.status_int in (204, 404):
                seglib.close_body(resp)
                return
            if resp.status_int != 200:
                self._refuse(environ, resp, 'listing the versions')
            body = seglib.read_body(resp, 64 * 1024 * 1024)
            try:
                page = json.loads(body or b'[]')
            except ValueError:
                page = None
            if not isinstance(page, list):
                raise HTTPError(503, 'versions listing unreadable')
            page = [row for row in page
                    if isinstance(row, dict) and 'name' in row]
            if not page:
                return
            yield from page
            if len(page) < LISTING_LIMIT:
                return
            marker = page[-1]['name']

    def _exists(self, environ, path):
        resp = self._sub(environ, 'HEAD', path, RAW_QUERY)
        seglib.close_body(resp)
        if resp.status_int == 404:
            return False
        if not 200 <= resp.status_int < 300:
            self._refuse(environ, resp, 'reading the current version')
        return True

    def _restore(self, environ, account_path, location, row, path):
        """Copy archived ``row`` over the object; False when it is gone."""
        version_path = '%s/%s/%s' % (account_path, location, row['name'])
        source = self._sub(environ, 'GET', version_path, RAW_QUERY)
        if source.status_int == 404:
            seglib.close_body(source)
            return None
        if source.status_int != 200:
            self._refuse(environ, source, 'reading the version to restore')
        self._copy(environ, source, path, 'restoring the previous version')
        return version_path

    def _delete_version(self, environ, version_path):
        resp = self._sub(environ, 'DELETE', version_path)
        if resp.status_int != 404 and not 200 <= resp.status_int < 300:
            self._refuse(environ, resp, 'removing the restored version')
        return resp

    def delete_stack(self, environ, start_response, account_path,
                     container, obj, location):
        path = '%s/%s/%s' % (account_path, container, obj)
        restore, marker = rules.delete_plan(
            self._versions(environ, account_path, obj, location),
            lambda: self._exists(environ, path))
        answer = None
        for row in restore:
            version_path = self._restore(environ, account_path, location,
                                         row, path)
            if version_path is not None:
                answer = self._delete_version(environ, version_path)
                break
        if marker is not None:
            if answer is not None:
                seglib.close_body(answer)
            answer = self._delete_version(
                environ, '%s/%s/%s' % (account_path, location,
                                       marker['name']))
        if answer is None or answer.status_int == 404:
            # nothing archived (or it had gone): a plain delete
            if answer is not None:
                seglib.close_body(answer)
            return self.app(environ, start_response)
        return answer(environ, start_response)

    # -- dispatch ------------------------------------------------------

    def container_request(self, environ, start_response, method):
        req = Request(environ)
        if method in ('PUT', 'POST'):
            present = [k for k in VERSIONING_HEADERS if k in environ]
            if present and not self.allow:
                raise HTTPError(412, 'Versioned Writes is disabled')
            try:
                update = rules.container_update(req.headers)
            except rules.RuleError as e:
                raise HTTPError(e.status, e.reason)
            for key in present:
                del environ[key]
            if update is not None:
                for name, value in update.items():
                    environ['HTTP_' + name.upper().replace('-', '_')] = value
            return self.app(environ, start_response)
        if method not in ('GET', 'HEAD') or not self.allow:
            return self.app(environ, start_response)
        resp = req.get_response(self.app)
        if 200 <= resp.status_int < 300:
            for name in rules.CLIENT_HEADERS.values():
                resp.headers.pop(name, None)
            resp.headers.update(rules.client_view(resp.headers))
        return resp(environ, start_response)

    def object_request(self, environ, start_response, method,
                       account_path, container, obj):
        location, mode = self._versioning(environ, account_path, container)
        if location is None:
            return self.app(environ, start_response)
        if method == 'PUT':
            if environ.get('HTTP_IF_NONE_MATCH', '').strip() == '*':
                # written only where there is no object: nothing to keep
                return self.app(environ, start_response)
            self.archive_current(environ, account_path, container, obj,
                                 location)
            return self.app(environ, start_response)
        if mode == rules.HISTORY:
            self.archive_current(environ, account_path, container, obj,
                                 location)
            self.put_delete_marker(environ, account_path, obj, location)
            return self.app(environ, start_response)
        return self.delete_stack(environ, start_response, account_path,
                                 container, obj, location)

    def __call__(self, environ, start_response):
        parts = environ.get('PATH_INFO', '').split('/', 4)
        if len(parts) == 5 and parts[4] and \
                environ.get('REQUEST_METHOD') not in ('PUT', 'DELETE'):
            # an object GET/HEAD/POST: none of our business, and on
            # every request; so without parsing anything
            return self.app(environ, start_response)
        req = Request(environ)
        try:
            path = client_path(req)
            version, account, container, obj = split_path(
                path, 1, 4, rest_with_last=True)
        except HTTPError:
            return self.app(environ, start_response)
        if version not in ('v1', 'v1.0') or not account or not container:
            return self.app(environ, start_response)
        method = environ.get('REQUEST_METHOD')
        try:
            if not obj:
                if method not in ('GET', 'HEAD'):
                    self._infos.pop(('/%s/%s' % (version, account),
                                     container), None)
                return self.container_request(environ, start_response,
                                              method)
            if method not in ('PUT', 'DELETE') or not self.allow:
                return self.app(environ, start_response)
            return self.object_request(environ, start_response, method,
                                       '/%s/%s' % (version, account),
                                       container, obj)
        except HTTPError as e:
            return e.response(req)(environ, start_response)
        except _Refused as e:
            return e.resp(environ, start_response)


def filter_factory(global_conf, local_conf):
    value = local_conf.get('allow_versioned_writes', 'true')
    if value.strip().lower() not in ('true', 'false', 'yes', 'no', 'on',
                                     'off', '1', '0'):
        raise ConfigError('versioned_writes: allow_versioned_writes must '
                          'be true or false')
    allow = config_true(value)
    if allow:
        info.register('versioned_writes',
                      allowed_flags=['x-versions-location',
                                     'x-history-location'])
    else:
        info.unregister('versioned_writes')

    def wrap(app):
        return VersionedWrites(app, allow)
    return wrap
