"""The container controller: ``/v1/<account>/<container>``.

GET lists objects (every listing parameter and format passed on), HEAD
gives stats and metadata, both from the newest replica. PUT creates the
container (and the account, for its owner, when it does not exist yet),
POST sets metadata, DELETE removes an empty container; each write names
the account replica of its own index (X-Account-Host/-Partition/-Device)
so the account's listing learns of it.
"""
from objstore.common import constraints
from objstore.common.http import HTTPError, header_dict
from objstore.common.timestamp import Timestamp
from objstore.proxy import auth, listings, quorum
from objstore.proxy.base import Controller
from objstore.proxy.headers import CACHED_INFO_OK

ACL_HEADERS = ('x-container-read', 'x-container-write')


class _CachedReply:
    """A container HEAD answered from the proxy's info cache: what the
    newest replica said within the last recheck_existence seconds."""

    def __init__(self, info):
        self.status = info['status']
        self.headers = info['headers']
        self.body = b''


class ContainerController(Controller):
    methods = ('GET', 'HEAD', 'PUT', 'POST', 'DELETE')

    def _read(self, method):
        query = ''
        if method == 'GET':
            query = listings.backend_query(
                self.req, constraints.CONTAINER_LISTING_LIMIT)
        reply = self.read_db('container', self.account, self.container,
                             method=method, query=query,
                             headers=self.base_headers())
        ok = 200 <= reply.status < 300
        self.authorize(reply.get('X-Container-Read') if ok else None)
        drop = () if auth.is_owner(self.req) else ACL_HEADERS
        return self.relay(reply, drop=drop)

    def GET(self):
        return self._read('GET')

    def HEAD(self):
        if self.req.environ.get(CACHED_INFO_OK):
            info = self.container_info()
            if info is not None:
                self.authorize(info['read_acl'])
                drop = () if auth.is_owner(self.req) else ACL_HEADERS
                return self.relay(_CachedReply(info), drop=drop)
        return self._read('HEAD')

    def _check_metadata(self):
        err = constraints.check_metadata(
            header_dict(self.req.environ), 'container')
        if err:
            raise HTTPError(400, err)

    def _write_headers(self):
        """The client's headers for a container write, ACLs in the auth
        filter's canonical form (400 for an ACL it cannot read)."""
        headers = self.base_headers()
        clean = self.req.environ.get('swift.clean_acl')
        if clean is not None:
            for name in ('X-Container-Read', 'X-Container-Write'):
                value = headers.get(name)
                if value is None:
                    continue
                try:
                    headers[name] = clean(name, value)
                except ValueError as e:
                    raise HTTPError(400, 'bad %s: %s' % (name, e))
        return headers

    def _write(self, method, headers):
        """Send the write to every replica; the quorum's status."""
        ring = self.app.rings['container']
        part = ring.get_part(self.account, self.container)
        headers = dict(headers, **{'X-Timestamp': Timestamp.now().internal})
        targets = [[] for _ in range(ring.replica_count)]
        apart = None
        if method in ('PUT', 'DELETE'):
            apart, anodes = self.app.rings['account'].get_nodes(self.account)
            targets = quorum.pair_updates(ring.replica_count, anodes)

        def headers_for(index):
            return dict(headers, **quorum.update_headers(
                'account', targets[index], apart))
        replies = self.fan_out('container', part, method,
                               '/%s/%s' % (self.account, self.container),
                               headers_for)
        self.forget(self.account, self.container)
        self.forget(self.account)
        return self.require_quorum(replies, 'container')

    def PUT(self):
        self._check_metadata()
        headers = self._write_headers()
        self.authorize()
        self.ensure_account()
        status = self._write('PUT', headers)
        if status == 404 and self.may_autocreate():
            # the account vanished since we looked (or the cache lied)
            self.create_account()
            status = self._write('PUT', headers)
        return self.write_response(status)

    def POST(self):
        self._check_metadata()
        headers = self._write_headers()
        self.authorize()
        return self.write_response(self._write('POST', headers))

    def DELETE(self):
        self.authorize()
        return self.write_response(self._write('DELETE',
                                               self.base_headers()))
