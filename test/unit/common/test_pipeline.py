"""Building a WSGI pipeline from [pipeline:main], [filter:*], [app:*]."""
import sys

import pytest

from objstore.common import info
from objstore.common.config import ConfigError
from objstore.common.pipeline import load_pipeline, pipeline_names

MODULE = '''
from objstore.common import info

def app_factory(global_conf, local_conf):
    def app(environ, start_response):
        start_response('200 OK', [])
        return [('%s|%s|%s' % (local_conf['greeting'],
                               ','.join(environ.get('seen', [])),
                               global_conf['__file__'])).encode()]
    return app

def filter_factory(global_conf, local_conf):
    info.register(local_conf['label'], depth=local_conf.get('shared'))
    def wrap(app):
        def middleware(environ, start_response):
            environ.setdefault('seen', []).append(local_conf['label'])
            return app(environ, start_response)
        return middleware
    return wrap
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / 'pipeplug.py').write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield 'pipeplug'
    sys.modules.pop('pipeplug', None)
    for name in ('outer', 'inner'):
        info.unregister(name)


def call(app):
    out = {}

    def start_response(status, headers):
        out['status'] = status
    body = b''.join(app({}, start_response)).decode()
    return out['status'], body


def write(tmp_path, text):
    path = tmp_path / 'proxy.conf'
    path.write_text(text)
    return str(path)


def test_filters_wrap_the_app_outermost_first(tmp_path, plugin):
    path = write(tmp_path, '''
[DEFAULT]
shared = 7
[pipeline:main]
pipeline = outer inner app
[filter:outer]
use = pipeplug
label = outer
[filter:inner]
use = pipeplug
label = inner
[app:app]
use = pipeplug
greeting = hello
''')
    assert pipeline_names(path) == ['outer', 'inner', 'app']
    status, body = call(load_pipeline(path))
    assert status == '200 OK'
    assert body == 'hello|outer,inner|%s' % path
    # each enabled filter announced itself, with DEFAULT values visible
    assert info.get_info()['outer'] == {'depth': '7'}
    assert 'inner' in info.get_info()


@pytest.mark.parametrize('text,words', [
    ('[app:x]\nuse = pipeplug\n', 'no [pipeline:main]'),
    ('[pipeline:main]\npipeline =\n', 'no [pipeline:main]'),
    ('[pipeline:main]\npipeline = nope\n', 'no [app:nope]'),
    ('[pipeline:main]\npipeline = f app\n[app:app]\nuse = pipeplug\n'
     'greeting = x\n', 'no [filter:f]'),
    ('[pipeline:main]\npipeline = app\n[app:app]\nx = 1\n', 'needs "use'),
    ('[pipeline:main]\npipeline = app\n[app:app]\nuse = no.such.mod\n',
     'no.such.mod'),
    ('[pipeline:main]\npipeline = app\n[app:app]\nuse = json\n',
     'has no app_factory'),
    ('not an ini file', 'invalid config'),
])
def test_bad_pipelines_raise_one_clear_config_error(tmp_path, plugin, text,
                                                    words):
    with pytest.raises(ConfigError) as e:
        load_pipeline(write(tmp_path, text))
    assert words in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match='cannot read'):
        load_pipeline(str(tmp_path / 'absent.conf'))


def test_info_registry_copies():
    info.register('thing', a=1)
    try:
        got = info.get_info()
        got['thing']['a'] = 2
        assert info.get_info()['thing'] == {'a': 1}
    finally:
        info.unregister('thing')
    assert 'thing' not in info.get_info()


def test_option_names_keep_their_case(tmp_path, plugin):
    path = write(tmp_path, '''
[pipeline:main]
pipeline = app
[app:app]
use = pipeplug
greeting = hi
user_Test_Tester = testing
''')
    from objstore.common import pipeline
    _, sections = pipeline._sections(path)
    assert 'user_Test_Tester' in sections['app:app']
