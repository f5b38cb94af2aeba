"""compute.conf: one INI file read by the API, the agents and the CLI.

Each process reads its own section ([api], [agent], [scheduler],
[flavors]); values in [DEFAULT] (the agents' shared secret) reach the
sections that ask for them (``section``) but never lists of named things
(``own``: a flavor section must not read agent_secret as a flavor).
Sections come back as plain dicts of strings so the pure code that
interprets them (flavors, scheduler options) needs no ConfigParser.
"""
import configparser
import os


class ConfigError(Exception):
    """The config file is missing, unreadable or has a bad value."""


def load(path):
    """{section: {key: value}} of each section's own options, and
    [DEFAULT]'s under 'DEFAULT'."""
    # No section is the parser's "default" one, so [DEFAULT] reads as a
    # section of its own and nothing is merged behind our back.
    parser = configparser.ConfigParser(interpolation=None,
                                       default_section='\0')
    try:
        with open(path, encoding='utf-8') as f:
            parser.read_file(f)
    except OSError as exc:
        raise ConfigError('cannot read %s: %s' % (path, exc.strerror))
    except configparser.Error as exc:
        raise ConfigError('%s: %s' % (path, exc))
    conf = {name: dict(parser.items(name)) for name in parser.sections()}
    conf.setdefault('DEFAULT', {})
    return conf


def own(conf, name):
    """A section's own options only (empty when the section is absent)."""
    return dict(conf.get(name) or {})


def section(conf, name):
    """A section with [DEFAULT]'s values beneath its own."""
    merged = dict(conf.get('DEFAULT') or {})
    merged.update(conf.get(name) or {})
    return merged


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
