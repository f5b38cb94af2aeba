"""objstore-container-replicator: keeps every container's databases alike.

The work is shared with the account replicator and lives in
objstore.common.db_replicator (settings and counts are documented there);
this module only says where container databases are and how they look.
Reads ``[DEFAULT]``, ``[container-server]`` and ``[container-replicator]``
of the node's container server config.
"""
import sys

from objstore.common.daemon import daemon_main
from objstore.common.db_replicator import DatabaseReplicator
from objstore.container.broker import ContainerBroker


class ContainerReplicator(DatabaseReplicator):
    """Replicate container databases and move them off handoff devices."""

    section = 'container-replicator'
    server_section = 'container-server'
    kind = 'container'
    datadir = 'containers'
    broker_class = ContainerBroker
    # an object row's created_at is the time of its delete for tombstones
    tombstone_column = 'created_at'


main = daemon_main(ContainerReplicator)


if __name__ == '__main__':
    sys.exit(main())
