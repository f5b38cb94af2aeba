"""Who holds which S3 secret: access key -> (secret, user, account).

Two sources, both in the proxy's config file:

* tempauth's users: access key ``<account>:<user>``, secret = the user's
  key, so a Swift user signs S3 requests with what it already has;
* ``s3_key_<ACCESSKEY> = <secret> <account>:<user>`` lines in the
  ``[filter:s3api]`` section: keys of the usual AWS shape for a
  tempauth user (these win over a tempauth entry of the same name).

INI readers lower-case option names; AWS access keys are upper-case, so
the s3api section is read again from the file with case kept.
"""
import configparser

from objstore.common.config import ConfigError, read_conf
from objstore.middleware import tempauth

KEY_PREFIX = 's3_key_'


def _section_using(sections, module, default_name):
    """The section that configures ``module`` (by its ``use``), else
    the one called ``default_name``; None when neither exists."""
    for name, options in sections.items():
        use = options.get('use', '').strip()
        if use.endswith(module) and name.startswith('filter:'):
            return name
    return default_name if default_name in sections else None


def _reseller_prefix(conf):
    prefix = conf.get('reseller_prefix',
                      tempauth.DEFAULT_RESELLER_PREFIX).strip()
    if prefix and not prefix.endswith('_'):
        prefix += '_'
    return prefix


def _s3_key_lines(path, local_conf):
    """{access key: value} of the s3_key_ options, names' case kept
    when the file can be read again."""
    options = local_conf
    if path:
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str
        try:
            with open(path, encoding='utf-8') as f:
                parser.read_file(f)
        except (OSError, configparser.Error) as e:
            raise ConfigError('s3api: cannot read %s: %s' % (path, e))
        sections = {n: dict(parser.items(n)) for n in parser.sections()}
        name = _section_using(sections, 'objstore.middleware.s3api',
                              'filter:s3api')
        if name is not None:
            options = sections[name]
    return {option[len(KEY_PREFIX):]: value
            for option, value in options.items()
            if option.lower().startswith(KEY_PREFIX)}


class Credentials:
    """The access keys a proxy knows."""

    def __init__(self, entries=None):
        # access key -> (secret, user, account_id)
        self.entries = dict(entries or {})

    def lookup(self, access_key):
        """(secret, user, account_id), or None for an unknown key."""
        return self.entries.get(access_key)

    @classmethod
    def from_conf(cls, global_conf, local_conf):
        path = global_conf.get('__file__')
        users, prefix = {}, _reseller_prefix(global_conf)
        if path:
            sections = read_conf(path)
            name = _section_using(sections, 'objstore.middleware.tempauth',
                                  'filter:tempauth')
            if name is not None:
                conf = dict(global_conf)
                conf.update(sections[name])
                prefix = _reseller_prefix(conf)
                users = tempauth.parse_users(conf, prefix)
        entries = {name: (user.key, name, user.account_id)
                   for name, user in users.items()}
        for access_key, value in _s3_key_lines(path, local_conf).items():
            parts = value.split()
            if not access_key or len(parts) != 2 or ':' not in parts[1]:
                raise ConfigError('s3api: %s%s: want "<secret> '
                                  '<account>:<user>"'
                                  % (KEY_PREFIX, access_key))
            secret, user = parts
            if users and user not in users:
                raise ConfigError('s3api: %s%s names %s, which is not a '
                                  'tempauth user' % (KEY_PREFIX,
                                                     access_key, user))
            account_id = users[user].account_id if user in users else \
                prefix + user.split(':', 1)[0]
            entries[access_key] = (secret, user, account_id)
        return cls(entries)
