"""objstore-account-replicator: keeps every account's databases alike.

The work is shared with the container replicator and lives in
objstore.common.db_replicator (settings and counts are documented there);
this module only says where account databases are and how they look.
Reads ``[DEFAULT]``, ``[account-server]`` and ``[account-replicator]`` of
the node's account server config.
"""
import sys

from objstore.account.broker import AccountBroker
from objstore.common.daemon import daemon_main
from objstore.common.db_replicator import DatabaseReplicator


class AccountReplicator(DatabaseReplicator):
    """Replicate account databases and move them off handoff devices."""

    section = 'account-replicator'
    server_section = 'account-server'
    kind = 'account'
    datadir = 'accounts'
    broker_class = AccountBroker
    # a deleted container row is deleted as of its delete_timestamp
    tombstone_column = 'delete_timestamp'


main = daemon_main(AccountReplicator)


if __name__ == '__main__':
    sys.exit(main())
