"""Background daemons: what every replicator, auditor, updater, expirer and
reaper shares.

A daemon is a plain (blocking, no eventlet) program that makes *passes*
over the devices of one storage node: ``--once`` runs one pass and exits,
otherwise passes repeat forever, ``interval`` seconds apart (start to
start). Each pass returns a dict of counts that is logged, and with
``--once`` also printed as one JSON line, so operators and probe tests can
see what it did.

Configuration comes from the node's server config, as operators of the
reference know it: ``objstore-object-replicator /etc/objstore/object-server.conf``
reads ``[DEFAULT]`` (bind_ip, bind_port), then the server section
(``[object-server]``: devices, mount_check, reclaim_age ...), then its own
section (``[object-replicator]``) on top; the own section may be absent.

Daemons must be safe to kill at any moment and to run twice at once:
every change they make on disk is a durable rename or an idempotent
request, so SIGTERM/SIGINT just end the process.
"""
import argparse
import json
import logging
import os
import signal
import sys
import time

from objstore.common import ondisk
from objstore.common.config import ConfigError, config_true, read_conf, \
    ring_dir

log = logging.getLogger('objstore.daemon')


def load_daemon_conf(path, section, server_section):
    """[DEFAULT] < [server_section] < [section] as one dict."""
    conf = read_conf(path)
    merged = {}
    for name in (server_section, section):
        merged.update(conf.get(name, {}))
    merged['__file__'] = path
    return merged


def conf_float(conf, key, default):
    try:
        return float(conf.get(key, default))
    except (TypeError, ValueError):
        raise ConfigError('%s must be a number, got %r' % (key, conf[key]))


def conf_int(conf, key, default):
    try:
        return int(conf.get(key, default))
    except (TypeError, ValueError):
        raise ConfigError('%s must be an integer, got %r' % (key, conf[key]))


def conf_positive_int(conf, key, default):
    """An integer setting that must be at least 1 (a concurrency)."""
    value = conf_int(conf, key, default)
    if value < 1:
        raise ConfigError('%s must be at least 1' % key)
    return value


def load_ring(kind, conf=None):
    """The ``kind`` ('object', 'container', 'account') ring of the cluster.

    ``ring_dir`` in the daemon's own config wins over the cluster
    config's.
    """
    from rings.ring import Ring
    directory = (conf or {}).get('ring_dir') or ring_dir()
    return Ring(os.path.join(directory, '%s.ring.gz' % kind))


def is_local(dev, bind_ip, bind_port):
    """Does ring device ``dev`` belong to the server bound at ip:port?"""
    if dev is None or int(dev['port']) != int(bind_port):
        return False
    return bind_ip in ('0.0.0.0', '::', '') or dev['ip'] == bind_ip


def iter_partitions(device_path, datadir):
    """(partition int, partition dir) under <device>/<datadir>, in a
    shuffled order so concurrent daemons on many nodes do not all start on
    the same partitions."""
    import random
    root = os.path.join(device_path, datadir)
    try:
        names = [n for n in os.listdir(root) if n.isdigit()]
    except OSError:
        return
    random.shuffle(names)
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            yield int(name), path


def iter_hash_dirs(partition_dir):
    """(suffix, hash, hash dir) of every resource in a partition dir."""
    try:
        suffixes = sorted(os.listdir(partition_dir))
    except OSError:
        return
    for suffix in suffixes:
        if len(suffix) != 3:
            continue
        suffix_dir = os.path.join(partition_dir, suffix)
        try:
            hashes = sorted(os.listdir(suffix_dir))
        except (NotADirectoryError, FileNotFoundError):
            continue
        for hsh in hashes:
            if len(hsh) == 32 and hsh.endswith(suffix):
                yield suffix, hsh, os.path.join(suffix_dir, hsh)


def iter_databases(device_path, datadir):
    """(partition, hash, db file) of every database on a device."""
    for partition, part_dir in iter_partitions(device_path, datadir):
        for _suffix, hsh, hash_dir in iter_hash_dirs(part_dir):
            db_file = os.path.join(hash_dir, hsh + '.db')
            if os.path.exists(db_file):
                yield partition, hsh, db_file


class Daemon:
    """Base of every background daemon; subclasses define run_once().

    ``kind`` is the ring the daemon works on, ``section`` its config
    section, ``server_section`` the storage server whose settings it
    shares.
    """

    section = None
    server_section = None
    kind = None
    default_interval = 30.0

    def __init__(self, conf):
        self.conf = conf
        self.log = logging.getLogger('objstore.%s' % self.section)
        self.devices = conf.get('devices', '/srv/node')
        self.mount_check = config_true(conf.get('mount_check', 'true'))
        self.bind_ip = conf.get('bind_ip', '127.0.0.1')
        self.bind_port = conf_int(conf, 'bind_port', 0)
        self.interval = conf_float(conf, 'interval', self.default_interval)
        self._ring = None

    @property
    def ring(self):
        if self._ring is None:
            self._ring = load_ring(self.kind, self.conf)
        return self._ring

    def device_path(self, device):
        """The device's directory, None when missing or unmounted."""
        return ondisk.device_path(self.devices, device, self.mount_check)

    def local_devices(self):
        """[(ring dev, device path)] of this server's mounted devices.

        A device is ours when the ring names it at our bind address and
        its directory is there; devices the ring no longer names are
        included too (as dev None) so data left on them is moved off.
        """
        found = {}
        for dev in self.ring.devs:
            if is_local(dev, self.bind_ip, self.bind_port):
                found[dev['device']] = dev
        try:
            names = sorted(os.listdir(self.devices))
        except OSError:
            names = []
        out = []
        for name in names:
            path = self.device_path(name)
            if path is not None:
                out.append((found.get(name), path))
        return out

    def run_once(self):
        """One pass; returns a dict of counts."""
        raise NotImplementedError

    def run_forever(self):
        while True:
            started = time.monotonic()
            self._logged_pass()
            elapsed = time.monotonic() - started
            time.sleep(max(0.0, self.interval - elapsed))

    def _logged_pass(self):
        started = time.monotonic()
        try:
            stats = self.run_once() or {}
        except Exception:
            self.log.exception('%s pass failed', self.section)
            return {'error': 1}
        stats['elapsed'] = round(time.monotonic() - started, 3)
        self.log.info('%s pass done: %s', self.section,
                      ' '.join('%s=%s' % kv for kv in sorted(stats.items())))
        return stats


def daemon_main(daemon_class):
    """The console-script ``main(argv=None)`` of a daemon class."""
    def main(argv=None):
        parser = argparse.ArgumentParser(
            prog='objstore-%s' % daemon_class.section,
            description=(daemon_class.__doc__ or '').split('\n')[0])
        parser.add_argument('conf', help='the node\'s %s config file'
                            % daemon_class.server_section)
        parser.add_argument('--once', action='store_true',
                            help='run one pass and exit (prints its counts '
                                 'as JSON)')
        parser.add_argument('-v', '--verbose', action='store_true',
                            help='log every action, not only each pass')
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            stream=sys.stderr,
            format='%(asctime)s ' + daemon_class.section + ' %(message)s')
        try:
            conf = load_daemon_conf(args.conf, daemon_class.section,
                                    daemon_class.server_section)
            daemon = daemon_class(conf)
        except ConfigError as e:
            sys.stderr.write('objstore-%s: %s\n' % (daemon_class.section, e))
            return 2
        # safe to kill at any moment: the default action is what we want,
        # but say so for SIGINT too (no KeyboardInterrupt traceback)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if args.once:
            stats = daemon._logged_pass()
            sys.stdout.write(json.dumps(stats, sort_keys=True) + '\n')
            return 1 if stats.get('error') else 0
        daemon.run_forever()
        return 0
    main.__doc__ = 'Run the %s (one pass with --once).' % \
        daemon_class.section
    return main
