"""What every controller shares: backend headers, fan-out, account and
container info, and building the answer.

A controller lives for one request. ``account_info`` and
``container_info`` read the databases (newest replica wins) through the
per-worker info cache; writes forget the cached entry.
"""
from objstore.common.http import HTTP_REASONS, HTTPError, Response, \
    header_dict
from objstore.common.timestamp import Timestamp
from objstore.proxy import auth, fanout, quorum
from objstore.proxy.headers import SYSMETA_TRUSTED, backend_headers, \
    client_headers


def status_line(status):
    reason = HTTP_REASONS.get(status)
    if reason is None:
        return status
    return '%d %s' % (status, reason)


def make_response(status, pairs=(), body=b'', app_iter=None):
    """A Response with exactly ``pairs`` as headers (plus Content-Length
    for a bytes body)."""
    pairs = list(pairs)
    if app_iter is None:
        names = {k.lower() for k, _ in pairs}
        if 'content-length' not in names:
            pairs.append(('Content-Length', str(len(body))))
        if 'content-type' not in names:
            pairs.append(('Content-Type', 'text/plain; charset=utf-8'))
        app_iter = [body]
    return Response(status=status_line(status), headerlist=pairs,
                    app_iter=app_iter)


def info_key(account, container=None):
    return ('container', account, container) if container is not None \
        else ('account', account)


def resource_path(account, container=None, obj=None):
    parts = [account] + [p for p in (container, obj) if p is not None]
    return '/' + '/'.join(parts)


class Controller:

    def __init__(self, app, req, account, container=None, obj=None):
        self.app = app
        self.req = req
        self.account = account
        self.container = container
        self.obj = obj
        self.trans_id = req.environ.get('objstore.trans_id', '')

    @property
    def settings(self):
        return self.app.settings

    @property
    def trusted(self):
        """Whether system metadata may cross (see proxy.headers)."""
        return self.req.environ.get(SYSMETA_TRUSTED, False)

    def base_headers(self):
        """The client's headers a node may see, plus our transaction id."""
        headers = backend_headers(header_dict(self.req.environ),
                                  self.trusted)
        headers['X-Trans-Id'] = self.trans_id
        return headers

    def internal_headers(self, **extra):
        headers = {'X-Trans-Id': self.trans_id}
        headers.update(extra)
        return headers

    def fan_out(self, kind, part, method, path, headers_for, query=''):
        slots = self.app.slots(kind, part)
        return fanout.fan_out(self.app.client, slots, method, path,
                              headers_for, query)

    def require_quorum(self, replies, kind):
        return quorum.best_status(fanout.statuses(replies),
                                  self.app.rings[kind].replica_count)

    # -- databases ---------------------------------------------------------

    def read_db(self, kind, account, container=None, method='HEAD',
                query='', headers=None):
        """The newest replica's answer about an account or container.

        HEADs ask every replica at once and take the newest state. A GET
        (a listing) asks one replica at a time (fanout.one_by_one) until
        one answers; a 404 or a failure moves on to the next.

        Raises HTTPError(503) when no replica answered at all; a 4xx other
        than 404 (a bad listing parameter) comes back as it is.
        """
        ring = self.app.rings[kind]
        part = ring.get_part(account, container)
        path = resource_path(account, container)
        headers = headers or self.internal_headers()
        if method == 'GET':
            replies = fanout.one_by_one(self.app.client,
                                        self.app.slots(kind, part), method,
                                        path, headers, query)
        else:
            replies = self.fan_out(kind, part, method, path,
                                   lambda i: headers, query)
        best = quorum.newest(replies)
        answered = [r for r in replies if r is not None and r.status < 500]
        if best is not None and (best.status != 404 or len(answered) >=
                                 quorum.quorum_size(ring.replica_count)):
            return best
        if best is not None:
            # a 404 from a minority: the others may have it
            raise HTTPError(503, 'too few %s servers answered' % kind)
        for reply in replies:
            if reply is not None and reply.status < 500:
                return reply
        raise HTTPError(503, 'no %s server answered' % kind)

    def account_info(self, account=None):
        """{'status', 'headers'} of an existing account, else None."""
        account = account or self.account
        key = info_key(account)
        info = self.app.cache.get(key)
        if info is None:
            reply = self.read_db('account', account)
            if not 200 <= reply.status < 300:
                return None
            info = {'status': reply.status, 'headers': reply.headers}
            self.app.cache.set(key, info)
        return info

    def container_info(self, account=None, container=None):
        """{'status', 'headers', 'read_acl', 'write_acl'} or None."""
        account = account or self.account
        container = container or self.container
        key = info_key(account, container)
        info = self.app.cache.get(key)
        if info is None:
            reply = self.read_db('container', account, container)
            if not 200 <= reply.status < 300:
                return None
            info = {'status': reply.status, 'headers': reply.headers,
                    'read_acl': reply.get('X-Container-Read'),
                    'write_acl': reply.get('X-Container-Write')}
            self.app.cache.set(key, info)
        return info

    def forget(self, account, container=None):
        self.app.cache.invalidate(info_key(account, container))

    def may_autocreate(self):
        return self.settings.account_autocreate and auth.is_owner(self.req)

    def create_account(self, account=None):
        """PUT the account on its replicas (auto-creation); 503 unless a
        quorum stored it."""
        account = account or self.account
        ring = self.app.rings['account']
        part = ring.get_part(account)
        headers = self.internal_headers(
            **{'X-Timestamp': Timestamp.now().internal})
        replies = self.fan_out('account', part, 'PUT', '/' + account,
                               lambda i: headers)
        status = self.require_quorum(replies, 'account')
        if not 200 <= status < 300:
            raise HTTPError(503, 'could not create account %s' % account)
        self.forget(account)

    def ensure_account(self):
        """The account's info, auto-creating it for its owner; 404 when
        it does not exist and may not be created."""
        info = self.account_info()
        if info is not None:
            return info
        if not self.may_autocreate():
            raise HTTPError(404, 'account not found')
        self.create_account()
        return self.account_info() or {'status': 201, 'headers': []}

    # -- answers -----------------------------------------------------------

    def authorize(self, acl=None):
        """Raise the auth filter's denial, if it denies the request."""
        denial = auth.authorize(self.req, acl)
        if denial is not None:
            raise Denied(denial)

    def relay(self, reply, drop=()):
        """A database's answer passed on to the client, minus internal
        headers and those named in ``drop``."""
        pairs = [(k, v) for k, v in client_headers(reply.headers,
                                                   self.trusted)
                 if k.lower() not in drop]
        if 200 <= reply.status < 300:
            pairs.append(('Accept-Ranges', 'bytes'))   # as Swift answers
        data = b'' if reply.status in (204, 304) else reply.body
        return make_response(reply.status, pairs, app_iter=[data])

    @staticmethod
    def write_response(status, pairs=()):
        return make_response(status, pairs)


class Denied(Exception):
    """The auth filter said no; ``response`` is its answer."""

    def __init__(self, response):
        super().__init__('denied')
        self.response = response
