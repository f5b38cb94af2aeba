"""Reading objstore's INI configuration files.

One place decides where the cluster-wide config lives and how the hash
secret is read, so every server and tool maps a path to the same partition.
"""
import configparser
import os

DEFAULT_CONF = '/etc/objstore/objstore.conf'
CONF_ENV = 'OBJSTORE_CONF'


class ConfigError(Exception):
    """A config file is missing, unreadable or holds an invalid value."""


def cluster_conf_path():
    """Where the cluster-wide config is: $OBJSTORE_CONF, else the default."""
    return os.environ.get(CONF_ENV) or DEFAULT_CONF


def read_conf(path):
    """Parse an INI file into {section: {key: value}}; raise ConfigError."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding='utf-8') as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigError('cannot read config %s: %s' % (path, e.strerror))
    except configparser.Error as e:
        raise ConfigError('invalid config %s: %s' % (path, e))
    return {name: dict(parser.items(name)) for name in parser.sections()}


def hash_secret(path=None):
    """Return (prefix, suffix) as bytes from the [hash] section.

    Refuses a config where both are empty: a secret-less cluster lets a
    client aim every object at one partition.
    """
    path = path or cluster_conf_path()
    section = read_conf(path).get('hash', {})
    prefix = section.get('path_prefix', '').strip()
    suffix = section.get('path_suffix', '').strip()
    if not prefix and not suffix:
        raise ConfigError('%s: [hash] needs path_prefix or path_suffix set'
                          % path)
    return prefix.encode('utf-8'), suffix.encode('utf-8')


def backend_secret(path=None):
    """The [cluster] backend_secret that signs internal requests."""
    path = path or cluster_conf_path()
    secret = read_conf(path).get('cluster', {}).get('backend_secret', '')
    secret = secret.strip()
    if not secret:
        raise ConfigError('%s: [cluster] backend_secret is not set' % path)
    return secret.encode('utf-8')


def config_true(value):
    """The truthy spellings operators use in INI files."""
    return str(value).strip().lower() in ('1', 'true', 'yes', 'on', 'y', 't')


def ring_dir(path=None):
    """The [cluster] ring_dir holding account/container/object.ring.gz."""
    path = path or cluster_conf_path()
    value = read_conf(path).get('cluster', {}).get('ring_dir', '').strip()
    return value or '/etc/objstore'
