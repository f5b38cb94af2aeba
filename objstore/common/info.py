"""What ``GET /info`` tells clients: the limits and the middleware enabled.

Each middleware registers its public settings when its factory runs (so
only what is in the pipeline shows up); the proxy serves the collected
map. Per process, built once at startup.
"""
_registry = {}


def register(name, **settings):
    """Announce ``name`` (e.g. 'tempauth') with its public settings."""
    _registry[name] = dict(settings)


def unregister(name):
    _registry.pop(name, None)


def get_info():
    """A copy of everything registered: {name: {setting: value}}."""
    return {name: dict(settings) for name, settings in _registry.items()}
