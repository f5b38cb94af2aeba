"""Building the proxy's WSGI pipeline from its config file.

The config names the pipeline and one section per element, as operators
know it from paste-deploy configs (without depending on paste):

    [pipeline:main]
    pipeline = healthcheck tempauth proxy-server

    [filter:tempauth]
    use = objstore.middleware.tempauth
    user_test_tester = testing .admin

    [app:proxy-server]
    use = objstore.proxy.server

A filter module provides ``filter_factory(global_conf, local_conf)``
returning a function that wraps the next app; the app module provides
``app_factory(global_conf, local_conf)``. ``global_conf`` is [DEFAULT]
plus ``__file__``; ``local_conf`` is the element's own section (DEFAULT
values included, as in any INI section). The last name is the app; the
others wrap it, the first outermost.
"""
import configparser
import importlib

from objstore.common.config import ConfigError


def _sections(path):
    parser = configparser.ConfigParser(interpolation=None)
    # keep option names as written: tempauth's user_<account>_<user>
    # lines carry case-sensitive account and user names
    parser.optionxform = str
    try:
        with open(path, encoding='utf-8') as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigError('cannot read config %s: %s' % (path, e.strerror))
    except configparser.Error as e:
        raise ConfigError('invalid config %s: %s' % (path, e))
    defaults = dict(parser.defaults())
    return defaults, {name: dict(parser.items(name))
                      for name in parser.sections()}


def _factory(section_name, section, attr):
    module_name = section.get('use', '').strip()
    if not module_name:
        raise ConfigError('[%s] needs "use = <module>"' % section_name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError('[%s] use = %s: %s' % (section_name, module_name,
                                                 e))
    factory = getattr(module, attr, None)
    if factory is None:
        raise ConfigError('[%s] %s has no %s' % (section_name, module_name,
                                                 attr))
    return factory


def pipeline_names(path, name='main'):
    """The element names of a pipeline, outermost first."""
    _, sections = _sections(path)
    section = sections.get('pipeline:%s' % name)
    if section is None or not section.get('pipeline', '').split():
        raise ConfigError('%s: no [pipeline:%s] with a pipeline' % (path,
                                                                    name))
    return section['pipeline'].split()


def load_pipeline(path, name='main', names=None, default_filters=None):
    """The WSGI app the config's pipeline describes.

    ``names`` (outermost first, the app last) replaces the configured
    list, for a caller that adds filters the config left out; those may
    take their section from ``default_filters`` ({name: section}) when
    the config has none.
    """
    defaults, sections = _sections(path)
    if names is None:
        names = pipeline_names(path, name)
    global_conf = dict(defaults, __file__=path)
    app_name = names[-1]
    app_section = sections.get('app:%s' % app_name)
    if app_section is None:
        raise ConfigError('%s: pipeline ends in %r but there is no '
                          '[app:%s]' % (path, app_name, app_name))
    app = _factory('app:' + app_name, app_section, 'app_factory')(
        global_conf, app_section)
    for filter_name in reversed(names[:-1]):
        section = sections.get('filter:%s' % filter_name) or \
            (default_filters or {}).get(filter_name)
        if section is None:
            raise ConfigError('%s: no [filter:%s] for the pipeline'
                              % (path, filter_name))
        wrap = _factory('filter:' + filter_name, section, 'filter_factory')(
            global_conf, section)
        app = wrap(app)
    return app
