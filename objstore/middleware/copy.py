"""copy: server-side copy, ``PUT`` + ``X-Copy-From`` and ``COPY`` +
``Destination``.

    [filter:copy]
    use = objstore.middleware.copy

The source is read with a GET through the rest of the pipeline, as the
client and with its authorisation, so what is copied is what a GET of it
returns: a static or dynamic large object assembled, a symlink's target.
``?multipart-manifest=get`` copies a large object's manifest instead (an
SLO manifest is PUT again as a manifest, its segments shared), and
``?symlink=get`` copies a link as a new link. The copy request's Range
and If-* headers judge the source, as in Swift. The new object is then
PUT through the pipeline with the body streamed from the source's, never
held whole; the metadata rules are in objstore/proxy/copy.py.

Place it after auth and before slo, dlo, versioned_writes and symlink;
the proxy puts one there by itself when its pipeline names none.
"""
from urllib.parse import quote

from objstore.common import info
from objstore.common.config import config_true
from objstore.common.http import (HTTPError, Request, client_path,
                                  header_sent, split_path)
from objstore.middleware import subrequest as subreq
from objstore.proxy import copy as rules
from objstore.proxy.headers import new_trans_id

TRANS_ID = 'objstore.trans_id'

class SourceBody:
    """The source answer's body as the destination PUT's ``wsgi.input``.

    Reads hand out the source's chunks as they come; a source that ends
    before its Content-Length is a 503 (nothing is stored then)."""

    def __init__(self, chunks, length):
        self._chunks = iter(chunks)
        self._left = length
        self._buffer = b''

    def read(self, size=-1):
        if size is None or size < 0:
            size = self._left
        while not self._buffer and self._left > 0:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                raise HTTPError(503, 'reading the source object failed '
                                'with %d bytes missing' % self._left)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        self._left -= len(out)
        return out


def _close(resp):
    close = getattr(resp.app_iter, 'close', None)
    if close is not None:
        close()


def _object_path(environ):
    """(account, container, object) of an object request, else None."""
    try:
        version, account, container, obj = split_path(
            client_path(Request(environ)), 4, 4, rest_with_last=True)
    except HTTPError:
        return None
    if version not in ('v1', 'v1.0') or not (account and container and obj):
        return None
    return account, container, obj


class ServerSideCopy:
    def __init__(self, app):
        self.app = app

    def _call(self, environ):
        return Request(environ).get_response(self.app)

    # -- the two ends of a copy ----------------------------------------

    @staticmethod
    def _path(target):
        return '/v1/%s/%s/%s' % target

    def _source_pairs(self, environ, source, resp, sink_query):
        """The source answer's headers; for a manifest read in the PUT
        form, with the Content-Type the manifest object really has."""
        pairs = list(resp.headerlist)
        if sink_query:
            head = self._call(subreq.sub_environ(environ, 'HEAD',
                                                 self._path(source)))
            _close(head)
            if head.headers.get('Content-Type'):
                pairs = [(k, v) for k, v in pairs
                         if k.lower() != 'content-type']
                pairs.append(('Content-Type', head.headers['Content-Type']))
        return pairs

    def copy(self, environ, source, destination):
        """The answer to a copy of ``source`` to ``destination`` (both
        (account, container, object)) asked for by ``environ``."""
        modes = rules.copy_modes(environ.get('QUERY_STRING'))
        env = subreq.sub_environ(environ, 'GET', self._path(source),
                                 rules.source_query(*modes))
        env.update(rules.source_environ_headers(environ))
        resp = self._call(env)
        try:
            if resp.status_int == 404:
                raise HTTPError(404, 'source object not found')
            if resp.status_int >= 300:
                return resp
            length = rules.source_length(resp.headers.get('Content-Length'))
            sink_query, extra = rules.sink_plan(
                resp.status_int, resp.headerlist, *modes)
            headers = rules.copied_headers(
                self._source_pairs(environ, source, resp, sink_query),
                rules.request_pairs(environ),
                config_true(environ.get('HTTP_X_FRESH_METADATA', '')),
                header_sent(environ, 'Content-Type'))
            headers.update(extra)
            answer = self._call(subreq.sub_environ(
                environ, 'PUT', self._path(destination), sink_query,
                headers, SourceBody(resp.app_iter, length), length))
        finally:
            _close(resp)
        if 200 <= answer.status_int < 300:
            account, container, obj = source
            answer.headers['X-Copied-From'] = rules.copied_from(container,
                                                                obj)
            answer.headers['X-Copied-From-Last-Modified'] = \
                resp.headers.get('Last-Modified', '')
            if account != destination[0]:
                answer.headers['X-Copied-From-Account'] = quote(account)
        return answer

    # -- the two spellings ---------------------------------------------

    def put(self, environ, path):
        """PUT <destination> with X-Copy-From: <container>/<object>."""
        container, obj = rules.parse_target(environ['HTTP_X_COPY_FROM'],
                                            'X-Copy-From')
        account = path[0]
        if environ.get('HTTP_X_COPY_FROM_ACCOUNT'):
            account = rules.parse_account(
                environ['HTTP_X_COPY_FROM_ACCOUNT'], 'X-Copy-From-Account')
        if environ.get('HTTP_TRANSFER_ENCODING') or \
                environ.get('CONTENT_LENGTH', '0') not in ('', '0'):
            raise HTTPError(400, 'Copy requests require a zero byte body')
        return self.copy(environ, (account, container, obj), path)

    def copy_verb(self, environ, path):
        """COPY <source> with Destination: <container>/<object>."""
        destination = environ.get('HTTP_DESTINATION')
        if not destination:
            raise HTTPError(412, 'Destination header required')
        container, obj = rules.parse_target(destination, 'Destination')
        account = path[0]
        if environ.get('HTTP_DESTINATION_ACCOUNT'):
            account = rules.parse_account(environ['HTTP_DESTINATION_ACCOUNT'],
                                          'Destination-Account')
        return self.copy(environ, path, (account, container, obj))

    def __call__(self, environ, start_response):
        method = environ.get('REQUEST_METHOD')
        copying = method == 'COPY' or (
            method == 'PUT' and environ.get('HTTP_X_COPY_FROM') is not None)
        path = _object_path(environ) if copying else None
        if path is None:
            return self.app(environ, start_response)
        # one transaction id for the copy and its sub-requests, also on
        # the answers given here
        trans_id = environ.setdefault(TRANS_ID, new_trans_id())
        req = Request(environ)
        try:
            if environ.get('HTTP_X_SYMLINK_TARGET'):
                raise HTTPError(400, 'Symlink requests cannot copy an '
                                'object')
            if method == 'PUT':
                resp = self.put(environ, path)
            else:
                resp = self.copy_verb(environ, path)
        except HTTPError as e:
            resp = e.response(req)
            resp.headers['X-Trans-Id'] = trans_id
            resp.headers['X-Openstack-Request-Id'] = trans_id
        return resp(environ, start_response)


def filter_factory(global_conf, local_conf):
    info.register('copy')
    return ServerSideCopy
