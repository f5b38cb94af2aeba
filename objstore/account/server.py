"""The account server: one SQLite database per account.

``/<device>/<partition>/<account>``: PUT creates (201) or updates (202),
POST sets metadata, DELETE marks the account deleted (its containers are
left for a reaper), HEAD/GET answer stats, metadata and the container
listing. ``.../<account>/<container>``: PUT records a container
server's report (timestamps, object count, bytes used).
"""
import sys

from objstore.common import db_server, listing
from objstore.common.constraints import ACCOUNT_LISTING_LIMIT
from objstore.common.db import DatabaseConflict, DatabaseNotFound
from objstore.common.http import HTTPError
from objstore.common.timestamp import Timestamp
from objstore.common.wsgi import server_main
from objstore.account.broker import AccountBroker

DEFAULT_PORT = 6202


class AccountServer(db_server.DatabaseServer):
    server_type = 'account'
    datadir = 'accounts'
    broker_class = AccountBroker
    listing_limit = ACCOUNT_LISTING_LIMIT
    listing_tags = ('account', 'container')
    listing_entry = staticmethod(listing.account_entry)

    def _parse(self, path):
        """(device, partition, account, container-or-None)."""
        device, partition, account, container = self.split(path, 3, 4)
        self.check_names(account, container)
        return device, partition, account, container

    def PUT(self, req, path):
        device, partition, account, container = self._parse(path)
        if container is not None:
            return self.put_container(req, device, partition, account,
                                      container)
        ts = self.timestamp(req)
        metadata = self.metadata_from_headers(req, ts)
        self.check_device(device)
        broker = self.broker(device, partition, account)
        result = self.db(self.create_or_update, broker, device, ts, metadata)
        return self.status_response(201 if result == 'created' else 202)

    def put_container(self, req, device, partition, account, container):
        """A container server's report about one of our containers."""
        stats_ts = self.timestamp(req)
        put_ts = self._optional_timestamp(req, 'X-Put-Timestamp')
        delete_ts = self._optional_timestamp(req, 'X-Delete-Timestamp')
        counts = []
        for header in ('X-Object-Count', 'X-Bytes-Used'):
            value = req.headers.get(header, '0').strip()
            if not value.isdigit():
                raise HTTPError(400, 'invalid %s' % header)
            counts.append(int(value))
        self.check_device(device)
        broker = self.broker(device, partition, account)
        try:
            row = self.db(broker.put_container, container, put_ts,
                          delete_ts, counts[0], counts[1], stats_ts)
        except DatabaseNotFound:
            return self.not_found_for(req, broker)
        return self.status_response(204 if row['deleted'] else 201)

    def _optional_timestamp(self, req, header):
        if not req.headers.get(header):
            return Timestamp(0).internal
        return self.timestamp(req, header).internal

    def DELETE(self, req, path):
        device, partition, account, container = self._parse(path)
        if container is not None:
            raise HTTPError(405, 'containers are deleted by a PUT with '
                            'X-Delete-Timestamp')
        ts = self.timestamp(req)
        self.check_device(device)
        broker = self.broker(device, partition, account)
        try:
            self.db(broker.delete_account, ts)
        except DatabaseNotFound:
            return self.not_found_for(req, broker)
        except DatabaseConflict as e:
            raise HTTPError(409, 'account was put later (%s)' % e)
        return self.status_response(204)

    def POST(self, req, path):
        device, partition, account, container = self._parse(path)
        if container is not None:
            raise HTTPError(405, 'POST applies to accounts only')
        ts = self.timestamp(req)
        metadata = self.metadata_from_headers(req, ts)
        self.check_device(device)
        broker = self.broker(device, partition, account)
        self.db(self.post_metadata, broker, metadata)
        return self.status_response(204)

    def db_location(self, path):
        device, partition, account, container = self._parse(path)
        if container is not None:
            raise HTTPError(400, 'HEAD and GET apply to accounts only')
        return device, partition, account, None

    @staticmethod
    def stats_headers(info):
        return {'X-Account-Container-Count': str(info['container_count']),
                'X-Account-Object-Count': str(info['object_count']),
                'X-Account-Bytes-Used': str(info['bytes_used'])}

    @staticmethod
    def list_rows(broker, params):
        return broker.list_containers(**params.query())


def app_factory(conf):
    return AccountServer(conf)


main = server_main('account-server', app_factory, DEFAULT_PORT,
                   sched_batch=True)


if __name__ == '__main__':
    sys.exit(main())
