"""The account controller: ``/v1/<account>``.

GET lists containers, HEAD gives stats and metadata (the newest replica
answers), POST sets metadata. An account that does not exist yet looks
empty to its owner and is created on its first write (account
auto-creation). PUT and DELETE of accounts are for reseller admins and
only when ``allow_account_management`` is on.
"""
from objstore.common import constraints
from objstore.common.http import HTTPError, header_dict
from objstore.common.timestamp import Timestamp
from objstore.proxy import listings
from objstore.proxy.base import Controller, make_response


class AccountController(Controller):
    methods = ('GET', 'HEAD', 'PUT', 'POST', 'DELETE')

    def _read(self, method):
        self.authorize()
        query = ''
        if method == 'GET':
            query = listings.backend_query(
                self.req, constraints.ACCOUNT_LISTING_LIMIT)
        reply = self.read_db('account', self.account, method=method,
                             query=query, headers=self.base_headers())
        if reply.status == 404 and self.may_autocreate():
            status, pairs, body = listings.empty_account(
                self.req, self.account, method == 'GET')
            return make_response(status, pairs, app_iter=[body])
        return self.relay(reply)

    def GET(self):
        return self._read('GET')

    def HEAD(self):
        return self._read('HEAD')

    def _check_metadata(self):
        err = constraints.check_metadata(
            header_dict(self.req.environ), 'account')
        if err:
            raise HTTPError(400, err)

    def _managed(self):
        if not self.settings.allow_account_management:
            raise HTTPError(405, 'account management is not allowed', {
                'Allow': 'GET, HEAD, POST'})

    def _write(self, method):
        headers = dict(self.base_headers(),
                       **{'X-Timestamp': Timestamp.now().internal})
        part = self.app.rings['account'].get_part(self.account)
        replies = self.fan_out('account', part, method, '/' + self.account,
                               lambda i: headers)
        self.forget(self.account)
        return self.require_quorum(replies, 'account')

    def PUT(self):
        self._managed()
        self._check_metadata()
        self.authorize()
        return self.write_response(self._write('PUT'))

    def POST(self):
        self._check_metadata()
        self.authorize()
        status = self._write('POST')
        if status == 404 and self.may_autocreate():
            self.create_account()
            status = self._write('POST')
        return self.write_response(status)

    def DELETE(self):
        self._managed()
        if self.req.environ.get('QUERY_STRING'):
            raise HTTPError(400, 'an account DELETE takes no query string')
        self.authorize()
        return self.write_response(self._write('DELETE'))
