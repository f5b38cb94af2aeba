"""The proxy's tunables, read once from its config section.

One place turns the INI strings into numbers and booleans and refuses a
bad value at startup (ConfigError), so no request ever meets a
half-parsed setting.
"""
from objstore.common.config import ConfigError, config_true

# name: (default, type); see etc/proxy-server.conf for what each means
DEFAULTS = {
    'conn_timeout': (0.5, float),
    'node_timeout': (10.0, float),
    'client_timeout': (60.0, float),
    'commit_timeout': (120.0, float),
    'post_quorum_timeout': (0.5, float),
    'error_suppression_limit': (10, int),
    'error_suppression_interval': (60.0, float),
    'request_node_count': (0, int),
    'max_idle_connections': (64, int),
    'idle_connection_age': (30.0, float),
    'recheck_existence': (10.0, float),
    'account_autocreate': (True, bool),
    'allow_account_management': (False, bool),
    'allow_client_timestamp': (False, bool),
    'expose_info': (True, bool),
    'put_queue_depth': (4, int),
    'trans_id_suffix': ('', str),
}


class Settings:
    """Attribute access to the parsed settings (``settings.node_timeout``).

    ``request_node_count`` 0 means twice the ring's replica count, as
    many nodes as a read or write may try before giving up.
    """

    def __init__(self, **values):
        for name, (default, _kind) in DEFAULTS.items():
            setattr(self, name, values.get(name, default))

    @classmethod
    def from_conf(cls, conf):
        values = {}
        for name, (default, kind) in DEFAULTS.items():
            raw = conf.get(name)
            if raw is None:
                continue
            raw = str(raw).strip()
            if kind is bool:
                values[name] = config_true(raw)
                continue
            if kind is str:
                values[name] = raw
                continue
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError('%s must be a number, got %r' % (name, raw))
            if value < 0:
                raise ConfigError('%s may not be negative' % name)
            values[name] = value
        for name in ('conn_timeout', 'node_timeout', 'client_timeout',
                     'commit_timeout'):
            if values.get(name, 1) <= 0:
                raise ConfigError('%s must be more than 0' % name)
        if values.get('put_queue_depth', 1) < 1:
            raise ConfigError('put_queue_depth must be at least 1')
        return cls(**values)

    def node_count(self, replicas):
        """How many nodes a request may try: primaries plus handoffs."""
        return self.request_node_count or 2 * replicas
