"""objstore-aio: an all-in-one cluster on this machine, for trying objstore.

``objstore-aio setup --var DIR`` lays out a four-node cluster under DIR:

* ``DIR/etc/objstore.conf``: the cluster config with fresh random secrets
  (written once: changing the hash secret later would orphan every object);
* ``DIR/etc/{account,container,object}.builder`` and ``.ring.gz``: rings of
  four nodes on 127.0.0.1, one zone and one device each, three replicas;
* ``DIR/srv/nodeN/dN``: the device directories the storage servers use.

It is idempotent: running it again keeps the secrets, builders and rings
that are there and only fills in what is missing.
"""
import argparse
import os
import secrets
import sys

from rings.builder import RingBuilder, RingBuilderError

NODES = 4
PART_POWER = 10
REPLICAS = 3
MIN_PART_HOURS = 1
# Per node n (1-based): object 6n10, container 6n11, account 6n12.
PORT_BASE = {'object': 6010, 'container': 6011, 'account': 6012}
CONF_TEMPLATE = """\
# All-in-one cluster config written by objstore-aio; see etc/objstore.conf
# in the source tree for what every setting means.
[hash]
path_prefix = {prefix}
path_suffix = {suffix}

[cluster]
backend_secret = {backend}
ring_dir = {ring_dir}
"""


def port_for(kind, node):
    """Port of a server kind on all-in-one node ``node`` (1-based)."""
    return PORT_BASE[kind] + 100 * node


def write_conf(etc):
    path = os.path.join(etc, 'objstore.conf')
    if os.path.exists(path):
        return path, False
    text = CONF_TEMPLATE.format(prefix=secrets.token_hex(16),
                                suffix=secrets.token_hex(16),
                                backend=secrets.token_hex(32), ring_dir=etc)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path, True


def build_ring(etc, kind):
    """Create, rebalance and write one ring unless it already exists."""
    builder_path = os.path.join(etc, kind + '.builder')
    ring_path = os.path.join(etc, kind + '.ring.gz')
    if os.path.exists(builder_path):
        builder = RingBuilder.load(builder_path)
    else:
        builder = RingBuilder(PART_POWER, REPLICAS, MIN_PART_HOURS)
        for node in range(1, NODES + 1):
            builder.add_dev({'region': 1, 'zone': node, 'ip': '127.0.0.1',
                             'port': port_for(kind, node),
                             'device': 'd%d' % node, 'weight': 100.0})
        builder.rebalance(seed=1)
        builder.save(builder_path)
    if not os.path.exists(ring_path):
        builder.get_ring().save(ring_path)
    return builder, ring_path


def setup(var, out=sys.stdout):
    var = os.path.abspath(var)
    etc = os.path.join(var, 'etc')
    os.makedirs(etc, exist_ok=True)
    for node in range(1, NODES + 1):
        os.makedirs(os.path.join(var, 'srv', 'node%d' % node, 'd%d' % node),
                    exist_ok=True)
    conf, created = write_conf(etc)
    out.write('%s cluster config %s\n'
              % ('wrote' if created else 'kept', conf))
    for kind in ('account', 'container', 'object'):
        builder, ring_path = build_ring(etc, kind)
        out.write('%-9s ring %s: %d partitions x %d replicas on %d devices, '
                  'balance %.2f%%\n' % (kind, ring_path, builder.parts,
                                        builder.replicas,
                                        len(list(builder.iter_devs())),
                                        builder.get_balance()))
    out.write('\nInspect a ring:  .venv/bin/objstore-ring-builder %s\n'
              % os.path.join(etc, 'object.builder'))
    out.write('Use this config: export OBJSTORE_CONF=%s\n' % conf)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='objstore-aio',
                                     description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('setup', help='lay out config, rings and devices')
    p.add_argument('--var', default='var/aio',
                   help='directory for the cluster (default: var/aio)')
    args = parser.parse_args(argv)
    try:
        return setup(args.var)
    except (OSError, RingBuilderError) as e:
        sys.stderr.write('objstore-aio: %s\n' % e)
        return 2


if __name__ == '__main__':
    sys.exit(main())
