"""symlink: objects that point at other objects.

    [filter:symlink]
    use = objstore.middleware.symlink
    # symloop_max = 2

``PUT`` with ``X-Symlink-Target: <container>/<object>`` (optionally
``X-Symlink-Target-Account``) and an empty body makes a link; ``GET`` and
``HEAD`` follow it (the target is read with the caller's own
authorisation, and ``Content-Location`` names it), through at most
``symloop_max`` further links (409 beyond); ``?symlink=get`` shows the
link itself with its ``X-Symlink-*`` headers. A static link
(``X-Symlink-Target-Etag``) is checked against its target on PUT and on
every read (409 when the target changed). ``POST`` applies to the link
and answers 307 with the target in ``Location``. Container listings show
``symlink_path`` for links. How a link is stored (system metadata):
symlink_meta.py.

Cost on requests that are not about links (it sits on every request):
a plain object PUT/DELETE is a few dict look-ups (no webob, no query
parsing); a GET/HEAD is the app called through a start_response that
scans the answer's headers once for the link's system metadata, and
passes the answer on untouched when there is none; a container GET
that is not a JSON/XML listing passes the same way (a listing is read
whole, and parsed only when a row has ``symlink_`` parameters). Only a
link's own GET/HEAD, ``?symlink=get``, a link PUT and any POST (a HEAD
tells whether the object is a link) take the slow path.

Place it last before the proxy app (after auth, large objects and
versioning), as in Swift.
"""

from objstore.common import info
from objstore.common.http import (
    HTTPError, Request, client_path, error_response, split_path,
    unquote_etag)
from objstore.middleware import segments as seglib
from objstore.middleware import subrequest as subreq
from objstore.middleware import symlink_meta as meta

DEFAULT_SYMLOOP_MAX = 2
# the client request headers a link's own HEAD must not carry: they
# would judge the 0-byte link instead of its target
CONDITIONAL = ('HTTP_RANGE', 'HTTP_IF_MATCH', 'HTTP_IF_NONE_MATCH',
               'HTTP_IF_MODIFIED_SINCE', 'HTTP_IF_UNMODIFIED_SINCE')
SYMLINK_HEADERS = ('HTTP_X_SYMLINK_TARGET', 'HTTP_X_SYMLINK_TARGET_ACCOUNT',
                   'HTTP_X_SYMLINK_TARGET_ETAG')


_LISTING_TYPES = ('application/json', 'application/xml', 'text/xml')


def _query_params(environ):
    from urllib.parse import parse_qs
    return parse_qs(environ.get('QUERY_STRING', ''), keep_blank_values=True)


def _close(resp):
    close = getattr(resp.app_iter, 'close', None)
    if close is not None:
        close()


def _set_content_type(environ, value):
    """Make ``value`` the request's Content-Type, also in the raw header
    list the proxy reads to tell whether the client sent one."""
    environ['CONTENT_TYPE'] = value
    raw = environ.get('headers_raw')
    if raw is not None:
        environ['headers_raw'] = tuple(
            [(k, v) for k, v in raw if k.lower() != 'content-type'] +
            [('Content-Type', value)])
    environ.pop('HTTP_X_DETECT_CONTENT_TYPE', None)


def _http_headers(environ):
    return {k: v for k, v in environ.items()
            if k.startswith('HTTP_') or k == 'CONTENT_TYPE'}


class Symlink:
    def __init__(self, app, symloop_max=DEFAULT_SYMLOOP_MAX):
        self.app = app
        self.symloop_max = symloop_max

    # -- sub-requests --------------------------------------------------

    def _call(self, environ):
        return Request(environ).get_response(self.app)

    def _object_environ(self, environ, method, account, container, obj,
                        headers):
        """``headers``: the sub-request's HTTP_* and CONTENT_* keys."""
        env = subreq.sub_environ(environ, method, '/v1/%s/%s/%s' % (
            account, container, obj))
        env.update(headers or {})
        return env

    def _head_raw(self, environ, account, container, obj):
        """HEAD of an object itself (links not followed, no conditions)."""
        headers = {k: v for k, v in _http_headers(environ).items()
                   if k not in CONDITIONAL and k != 'CONTENT_TYPE'}
        return self._call(self._object_environ(environ, 'HEAD', account,
                                               container, obj, headers))

    # -- PUT -----------------------------------------------------------

    def _link_from_headers(self, environ, account, container, obj):
        req = Request(environ)
        link_container, link_obj = meta.parse_target(
            req.headers['X-Symlink-Target'])
        link_account = None
        if req.headers.get('X-Symlink-Target-Account') is not None:
            link_account = meta.parse_account(
                req.headers['X-Symlink-Target-Account'])
        if (link_account or account, link_container, link_obj) == \
                (account, container, obj):
            raise HTTPError(400, 'Symlink cannot target itself')
        link = meta.Link(link_container, link_obj, link_account)
        etag = req.headers.get('X-Symlink-Target-Etag')
        if etag is not None:
            self._check_static(environ, account, link,
                               unquote_etag(etag))
        return link

    def _check_static(self, environ, account, link, etag):
        """Fill in a static link's etag and size from its target as it is
        now; 409 when the target is missing or has another etag."""
        target_account = link.account or account
        resp = self._follow(environ, 'HEAD', target_account, link.container,
                            link.obj, headers={
                                k: v for k, v in _http_headers(environ).items()
                                if k not in CONDITIONAL and
                                k not in SYMLINK_HEADERS and
                                k != 'CONTENT_TYPE'})
        _close(resp)
        if resp.status_int in (401, 403):
            raise _Answer(resp)
        if not 200 <= resp.status_int < 300:
            raise HTTPError(409, 'X-Symlink-Target does not exist')
        actual = unquote_etag(resp.headers.get('Etag', ''))
        if actual != etag:
            raise HTTPError(409, 'Object Etag %r does not match '
                            'X-Symlink-Target-Etag header %r'
                            % (actual, etag))
        link.etag = etag
        link.size = int(resp.headers.get('Content-Length') or 0)

    def put(self, environ, start_response, account, container, obj):
        if not environ.get('HTTP_X_SYMLINK_TARGET'):
            for key in SYMLINK_HEADERS[1:]:
                if environ.get(key):
                    raise HTTPError(400, 'X-Symlink-Target is required '
                                    'with %s' % key[5:].replace('_', '-')
                                    .title())
            return self.app(environ, start_response)
        if environ.get('HTTP_TRANSFER_ENCODING') or \
                environ.get('CONTENT_LENGTH', '0') not in ('', '0'):
            raise HTTPError(400, 'Symlink requests require a zero byte body')
        if environ.get('HTTP_X_COPY_FROM'):
            raise HTTPError(400, 'Symlink requests cannot copy an object')
        link = self._link_from_headers(environ, account, container, obj)
        for key in SYMLINK_HEADERS:
            environ.pop(key, None)
        content_type = meta.link_content_type(environ.get('CONTENT_TYPE'))
        _set_content_type(environ, content_type)
        environ.update(meta.link_environ(link, content_type))
        environ['CONTENT_LENGTH'] = '0'
        resp = self._call(environ)
        if 200 <= resp.status_int < 300 and link.etag:
            resp.headers['X-Symlink-Target-Etag'] = link.etag
            resp.headers['X-Symlink-Target-Bytes'] = str(link.size)
        return resp(environ, start_response)

    # -- POST ----------------------------------------------------------

    def post(self, environ, start_response, account, container, obj):
        if any(environ.get(key) for key in SYMLINK_HEADERS):
            raise HTTPError(400, 'A PUT request is required to set a '
                            'symlink target')
        head = self._head_raw(environ, account, container, obj)
        _close(head)
        link = meta.link_from_headers(head.headers) \
            if 200 <= head.status_int < 300 else None
        resp = self._call(environ)
        if link is None or not 200 <= resp.status_int < 300:
            return resp(environ, start_response)
        _close(resp)
        location = link.path(account)
        body = ('The requested POST was applied to a symlink. POST '
                'directly to the target to apply requested metadata.\n')
        answer = error_response(307, body.strip(), {'Location': location},
                                Request(environ))
        answer.status = '307 Temporary Redirect'
        return answer(environ, start_response)

    # -- GET and HEAD --------------------------------------------------

    def _follow(self, environ, method, account, container, obj, headers,
                budget=None):
        """The answer for an object, following links (at most ``budget``,
        by default symloop_max; 409 beyond); the final target's path is
        in the answer's Content-Location when a link was followed."""
        budget = self.symloop_max if budget is None else budget
        followed = 0
        query = environ.get('QUERY_STRING', '')
        while True:
            env = self._object_environ(environ, method, account, container,
                                       obj, headers)
            env['QUERY_STRING'] = query
            resp = self._call(env)
            link = self._link_of(env, resp, account, container, obj)
            if link is None:
                if followed:
                    resp.headers['Content-Location'] = meta.Link(
                        container, obj, account).path(account)
                return resp
            _close(resp)
            if followed >= budget:
                raise HTTPError(409, 'Too many levels of symbolic links, '
                                'maximum allowed is %d' % self.symloop_max)
            followed += 1
            account = link.account or account
            container, obj = link.container, link.obj
            if link.etag:
                return self._read_static(environ, method, link, account,
                                         headers, budget - followed)

    def _read_static(self, environ, method, link, account, headers, budget):
        """A static link's target, which must still have the link's etag
        (it may itself be a link, within the loop limit)."""
        resp = self._follow(environ, method, account, link.container,
                            link.obj, headers, budget)
        if 200 <= resp.status_int < 300:
            actual = unquote_etag(resp.headers.get('Etag', ''))
            if actual != link.etag:
                _close(resp)
                raise HTTPError(409, 'Object Etag %r does not match '
                                'X-Symlink-Target-Etag header %r'
                                % (actual, link.etag))
        if 'Content-Location' not in resp.headers:
            resp.headers['Content-Location'] = link.path(account)
        return resp

    def _link_of(self, env, resp, account, container, obj):
        """The Link ``resp`` (an object's answer) is, or None.

        A 304/412/416 judged the conditions against what may be a
        0-byte link: a plain HEAD tells."""
        status = resp.status_int
        if 200 <= status < 300:
            return meta.link_from_headers(resp.headers)
        if status in (304, 412, 416):
            head = self._head_raw(env, account, container, obj)
            _close(head)
            if 200 <= head.status_int < 300:
                return meta.link_from_headers(head.headers)
        return None

    def get_head(self, environ, start_response, account, container, obj):
        if _query_params(environ).get('symlink', [''])[0].lower() == 'get':
            resp = self._call(environ)
            link = meta.link_from_headers(resp.headers) \
                if 200 <= resp.status_int < 300 else None
            if link is not None:
                resp.headers['Content-Type'] = meta.clean_content_type(
                    resp.headers['Content-Type'])
                resp.headers.update(link.headers())
            return resp(environ, start_response)
        resp = self._follow(environ, environ['REQUEST_METHOD'], account,
                            container, obj, _http_headers(environ))
        return resp(environ, start_response)

    # -- container listings --------------------------------------------

    def _listing(self, environ, start_response):
        """A container GET: only a JSON/XML listing is read."""
        status, headers, body = seglib.call_app(self.app, environ)
        content_type = (seglib.header_value(headers, 'content-type') or
                        '').split(';')[0].strip()
        if status[:3] != '200' or content_type not in _LISTING_TYPES:
            start_response(status, headers)
            return body
        try:
            version, account, _ = split_path(client_path(Request(environ)),
                                             3, 3)
        except HTTPError:
            version = account = None
        if version not in ('v1', 'v1.0') or not account:
            start_response(status, headers)
            return body
        return self.listing(environ, start_response, account,
                            (status, headers, body, content_type))

    def listing(self, environ, start_response, account, first=None):
        if first is None:
            status, headers, body = seglib.call_app(self.app, environ)
            content_type = (seglib.header_value(headers, 'content-type') or
                            '').split(';')[0].strip()
            if status[:3] != '200' or content_type not in _LISTING_TYPES:
                start_response(status, headers)
                return body
        else:
            status, headers, body, content_type = first
        try:
            data = b''.join(body)
        finally:
            seglib.close_iter(body)
        if b'symlink_' in data:
            try:
                if content_type == 'application/json':
                    data = meta.rewrite_json_listing(data, account)
                else:
                    data = meta.rewrite_xml_listing(data, account)
            except (ValueError, SyntaxError):
                pass    # not a listing we understand: pass it on as it is
        headers = [(k, v) for k, v in headers
                   if k.lower() != 'content-length']
        start_response(status, headers + [('Content-Length',
                                           str(len(data)))])
        return [data]

    # -- dispatch ------------------------------------------------------

    def _slow(self, environ, start_response):
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
        if not obj:
            if method == 'GET':
                return self.listing(environ, start_response, account)
            return self.app(environ, start_response)
        handler = {'PUT': self.put, 'POST': self.post, 'GET': self.get_head,
                   'HEAD': self.get_head}.get(method)
        if handler is None:
            return self.app(environ, start_response)
        try:
            return handler(environ, start_response, account, container, obj)
        except HTTPError as e:
            return e.response(req)(environ, start_response)
        except _Answer as e:
            return e.resp(environ, start_response)

    def _get_head(self, environ, start_response):
        """A GET/HEAD of an object: the answer passes untouched unless
        its headers say it is a link (or it is a 304/412/416 that may
        have judged a link's own conditions); then the slow path asks
        again and follows."""
        status, headers, body = seglib.call_app(self.app, environ)
        code = status[:3]
        if not meta.is_link_answer(headers) and \
                code not in ('304', '412', '416'):
            start_response(status, headers)
            return body
        seglib.close_iter(body)
        return self._slow(environ, start_response)

    def __call__(self, environ, start_response):
        content_type = environ.get('CONTENT_TYPE')
        if content_type and meta.has_own_params(content_type):
            # our parameters come from this middleware only
            _set_content_type(environ, meta.clean_content_type(
                content_type))
        method = environ.get('REQUEST_METHOD')
        parts = environ.get('PATH_INFO', '').split('/', 4)
        is_object = len(parts) == 5 and parts[4] != ''
        if method == 'GET' or method == 'HEAD':
            if not is_object:
                if method == 'GET' and len(parts) == 4 and parts[3]:
                    return self._listing(environ, start_response)
                return self.app(environ, start_response)
            if 'symlink=' in environ.get('QUERY_STRING', ''):
                return self._slow(environ, start_response)
            return self._get_head(environ, start_response)
        if not is_object:
            return self.app(environ, start_response)
        if method == 'PUT':
            if 'HTTP_X_SYMLINK_TARGET' in environ or \
                    'HTTP_X_SYMLINK_TARGET_ACCOUNT' in environ or \
                    'HTTP_X_SYMLINK_TARGET_ETAG' in environ:
                return self._slow(environ, start_response)
            return self.app(environ, start_response)
        if method == 'POST':
            return self._slow(environ, start_response)
        return self.app(environ, start_response)


class _Answer(Exception):
    """Answer ``resp`` (a sub-request's denial) as it is."""

    def __init__(self, resp):
        super().__init__('answer')
        self.resp = resp


def filter_factory(global_conf, local_conf):
    try:
        symloop_max = int(local_conf.get('symloop_max', DEFAULT_SYMLOOP_MAX))
    except ValueError:
        symloop_max = 0
    if symloop_max < 1:
        from objstore.common.config import ConfigError
        raise ConfigError('symlink: symloop_max must be a positive integer')
    info.register('symlink', symloop_max=symloop_max, static_links=True)

    def wrap(app):
        return Symlink(app, symloop_max)
    return wrap
