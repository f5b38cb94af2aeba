"""compute.conf: one INI file read by the API, the agents and the CLI.

Each process reads its own section ([api], [agent], [scheduler],
[flavors]); values in [DEFAULT] (the agents' shared secret) reach every
section. Sections come back as plain dicts of strings so the pure code
that interprets them (flavors, scheduler options) needs no ConfigParser.
"""
import configparser
import os


class ConfigError(Exception):
    """The config file is missing, unreadable or has a bad value."""


def load(path):
    """{section: {key: value}} for every section, [DEFAULT] merged in."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding='utf-8') as f:
            parser.read_file(f)
    except OSError as exc:
        raise ConfigError('cannot read %s: %s' % (path, exc.strerror))
    except configparser.Error as exc:
        raise ConfigError('%s: %s' % (path, exc))
    conf = {name: dict(parser.items(name)) for name in parser.sections()}
    conf['DEFAULT'] = dict(parser.defaults())
    return conf


def section(conf, name):
    """One section; an absent one still carries [DEFAULT]'s values."""
    return conf.get(name) or dict(conf.get('DEFAULT', {}))


def secret(values):
    """The agent secret from a section, refusing a missing or short one:
    without it anyone on the host could drive the hypervisor."""
    value = values.get('agent_secret', '').strip()
    if len(value) < 16:
        raise ConfigError('agent_secret must be set (at least 16 '
                          'characters) in [DEFAULT]')
    return value


def number(values, key, default, kind=float, minimum=0):
    """``values[key]`` as ``kind``, at least ``minimum``; else ConfigError."""
    raw = values.get(key, '')
    if raw is None or not str(raw).strip():
        return default
    try:
        value = kind(str(raw).strip())
    except ValueError:
        raise ConfigError('%s must be a number, not %r' % (key, raw))
    if value != value or value < minimum:    # NaN or too small
        raise ConfigError('%s must be at least %s' % (key, minimum))
    return value


def path(values, key, default, base=None):
    """A directory or file option, made absolute (relative to ``base``)."""
    value = (values.get(key) or '').strip() or default
    if base and not os.path.isabs(value):
        value = os.path.join(base, value)
    return os.path.abspath(value)
