"""The proxy app: routing, /info, errors, settings, the console script.

Object reads go to the in-process object servers of conftest.py; the
account and container rings name ports nothing listens on, which is
how a request that needs them meets dead databases.
"""
import json
import importlib
import os
import shutil
import socket

import pytest

from objstore.common import info
from objstore.common.config import ConfigError, read_conf
from objstore.common.http import HTTPError, Request
from objstore.common.pipeline import pipeline_names
from objstore.common.timestamp import Timestamp
from objstore.proxy import server
from objstore.proxy.settings import DEFAULTS, Settings
from rings.builder import RingBuilder


def dead_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def ring_dir(tmp_path, backends):
    path = tmp_path / 'rings'
    path.mkdir()
    shutil.copy(backends.ring_path, path / 'object.ring.gz')
    for kind in ('account', 'container'):
        builder = RingBuilder(4, 3, 1)
        for i in range(3):
            builder.add_dev({'region': 1, 'zone': i + 1, 'ip': '127.0.0.1',
                             'port': dead_port(), 'device': 'd%d' % i,
                             'weight': 100})
        builder.rebalance(seed=1)
        builder.get_ring().save(str(path / ('%s.ring.gz' % kind)))
    return str(path)


@pytest.fixture
def app(ring_dir):
    return server.app_factory({'__file__': 'x.conf'},
                              {'ring_dir': ring_dir, 'node_timeout': '2'})


def call(app, method, path, headers=None, body=b''):
    req = Request.blank(path, method=method, headers=headers or {})
    if body:
        req.body = body
    return req.get_response(app)


def test_parse_path():
    assert server.parse_path('/v1/a') == ('a', None, None)
    assert server.parse_path('/v1/a/') == ('a', None, None)
    assert server.parse_path('/v1.0/a/c/') == ('a', 'c', None)
    assert server.parse_path('/v1/a/c/d/o/') == ('a', 'c', 'd/o/')
    for bad, status in (('/', 404), ('/v1', 404), ('/v2/a', 404),
                        ('/v1/a//o', 400), ('/x/a/c', 404)):
        with pytest.raises(HTTPError) as err:
            server.parse_path(bad)
        assert err.value.status == status, bad


def test_every_answer_has_a_transaction_id(app):
    for method, path in (('GET', '/'), ('GET', '/info'),
                         ('PATCH', '/v1/a/c'), ('PUT', '/v1/a/' + 'c' * 300)):
        resp = call(app, method, path)
        trans = resp.headers['X-Trans-Id']
        assert trans.startswith('tx')
        assert resp.headers['X-Openstack-Request-Id'] == trans


def test_bad_names_and_methods_before_any_node(app):
    resp = call(app, 'PUT', '/v1/a/c/' + 'o' * 1025, body=b'x')
    assert resp.status_int == 400 and b'longer than 1024' in resp.body
    resp = call(app, 'GET', '/v1/a/c/%00')
    assert resp.status_int == 412  # as Swift answers a NUL or bad UTF-8
    resp = call(app, 'GET', '/v1/a/c/%FF')
    assert resp.status_int == 412
    resp = call(app, 'COPY', '/v1/a/c')
    assert resp.status_int == 405 and 'GET' in resp.headers['Allow']
    resp = call(app, 'PUT', '/v1/a/c/o', headers={
        'Content-Length': str(5 * 1024 ** 3 + 1)})
    assert resp.status_int == 413
    resp = call(app, 'PUT', '/v1/a/c/o', headers={
        'Transfer-Encoding': 'gzip'})
    assert resp.status_int == 400
    resp = call(app, 'PUT', '/v1/a/c/o', headers={'X-Delete-After': '0'},
                body=b'x')
    assert resp.status_int == 400


def test_info(app):
    info.register('testware', answer=42)
    try:
        resp = call(app, 'GET', '/info')
    finally:
        info.unregister('testware')
    body = json.loads(resp.body)
    assert resp.content_type == 'application/json'
    assert body['testware'] == {'answer': 42}
    assert body['swift']['max_file_size'] == 5 * 1024 ** 3
    assert body['swift']['account_autocreate'] is True
    assert call(app, 'HEAD', '/info').body == b''
    assert call(app, 'DELETE', '/info').status_int == 405


def test_info_can_be_hidden(ring_dir):
    app = server.app_factory({}, {'ring_dir': ring_dir,
                                  'expose_info': 'false'})
    assert call(app, 'GET', '/info').status_int == 403


def test_object_get_through_the_app(app, backends):
    part, nodes = backends.ring.get_nodes('AUTH_a', 'c', 'o')
    for node in nodes:
        backends.client.request(node, part, 'PUT', '/AUTH_a/c/o', {
            'X-Timestamp': Timestamp.now().internal,
            'Content-Type': 'text/x-hello'}, body=b'hello')
    resp = call(app, 'GET', '/v1/AUTH_a/c/o')
    assert (resp.status_int, resp.body) == (200, b'hello')
    assert resp.headers['Content-Type'] == 'text/x-hello'
    assert not [h for h in resp.headers if h.lower().startswith('x-backend')]
    resp = call(app, 'GET', '/v1/AUTH_a/c/o', headers={'Range': 'bytes=1-2'})
    assert (resp.status_int, resp.body) == (206, b'el')
    assert call(app, 'GET', '/v1/AUTH_a/c/nothing').status_int == 404


def test_dead_databases_are_503_not_500(app):
    assert call(app, 'PUT', '/v1/AUTH_a/c/o', body=b'x').status_int == 503
    assert call(app, 'GET', '/v1/AUTH_a/c').status_int == 503
    assert call(app, 'HEAD', '/v1/AUTH_a').status_int == 503


def test_the_auth_filters_denial_is_the_answer(app):
    asked = []

    def deny(req):
        asked.append((req.path, req.acl))
        return server.make_response(403, body=b'no\n')
    req = Request.blank('/v1/AUTH_a')
    req.environ['objstore.authorize'] = deny
    resp = req.get_response(app)
    assert (resp.status_int, resp.body) == (403, b'no\n')
    assert resp.headers['X-Trans-Id'].startswith('tx')
    assert asked == [('/v1/AUTH_a', None)]
    # an object read asks for the container's ACL; with the container
    # servers down there is none, so only the owner would get in
    asked[:] = []
    req = Request.blank('/v1/AUTH_a/c/o')
    req.environ['objstore.authorize'] = deny
    assert req.get_response(app).status_int == 403
    assert asked == [('/v1/AUTH_a/c/o', None)]


def test_missing_rings_and_bad_settings_are_config_errors(tmp_path,
                                                          cluster_conf):
    with pytest.raises(ConfigError, match='ring'):
        server.app_factory({}, {'ring_dir': str(tmp_path)})


def test_bad_settings(ring_dir):
    with pytest.raises(ConfigError):
        server.app_factory({}, {'ring_dir': ring_dir, 'node_timeout': 'x'})


def test_main_usage(capsys):
    assert server.main([]) == 2
    assert 'usage: objstore-proxy-server CONF' in capsys.readouterr().err


def test_sample_config_parses():
    path = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'etc',
                        'proxy-server.conf')
    conf = read_conf(path)
    assert pipeline_names(path) == ['gatekeeper', 'healthcheck', 'bulk',
                                    'tempurl', 's3api', 'tempauth', 'copy', 'slo', 'dlo',
                                    'versioned_writes', 'symlink',
                                    'proxy-server']
    # every filter it names exists
    for name in pipeline_names(path)[:-1]:
        module = importlib.import_module(conf['filter:' + name]['use'])
        assert callable(module.filter_factory)
    section = conf['app:proxy-server']
    assert section['use'] == 'objstore.proxy.server'
    assert set(DEFAULTS) <= set(section)      # every setting documented
    assert section['bind_port'] == '8080'
    assert Settings.from_conf(section).node_timeout == 10
    assert conf['filter:tempauth']['user_test_tester'] == 'testing .admin'


def test_copy_is_the_middlewares_not_the_apps(app):
    resp = call(app, 'COPY', '/v1/a/c/o', headers={'Destination': 'c/o2'})
    assert resp.status_int == 405 and 'COPY' not in resp.headers['Allow']
    # without the copy filter a copy must not store the empty body
    resp = call(app, 'PUT', '/v1/a/c/o', headers={'X-Copy-From': 'c/o2',
                                                  'Content-Length': '0'})
    assert resp.status_int == 400 and b'copy middleware' in resp.body


def test_copy_position():
    at = server.copy_position
    assert at(['gatekeeper', 'healthcheck', 'bulk', 'tempauth', 'slo',
               'dlo', 'symlink', 'proxy-server']) == 4
    assert at(['tempauth', 'symlink', 'proxy-server']) == 1
    assert at(['gatekeeper', 'tempauth', 'proxy-server']) == 2
    assert at(['proxy-server']) == 0
    assert at(['slo', 'dlo', 'proxy-server']) == 0
    # never before auth, whose authorisation the copy carries
    assert at(['slo', 'tempauth', 'proxy-server']) == 2


def test_load_puts_copy_before_the_filters_that_shape_objects(
        tmp_path, ring_dir):
    from objstore.middleware.copy import ServerSideCopy
    from objstore.middleware.gatekeeper import GateKeeper
    from objstore.middleware.healthcheck import HealthCheck
    from objstore.middleware.slo import StaticLargeObject
    conf = tmp_path / 'proxy.conf'
    conf.write_text(
        '[pipeline:main]\npipeline = healthcheck slo proxy-server\n'
        '[filter:healthcheck]\nuse = objstore.middleware.healthcheck\n'
        '[filter:slo]\nuse = objstore.middleware.slo\n'
        '[app:proxy-server]\nuse = objstore.proxy.server\n'
        'ring_dir = %s\n' % ring_dir)
    app = server._load({'__file__': str(conf)})
    chain = []
    while app is not None:
        chain.append(type(app))
        app = getattr(app, 'app', None)
    assert chain == [GateKeeper, HealthCheck, ServerSideCopy,
                     StaticLargeObject, server.ProxyApp]
    assert 'copy' in info.get_info()


def test_container_head_from_the_info_cache_when_middleware_allows(app):
    """Container servers here are dead ports: only the cache can answer."""
    from objstore.proxy.base import info_key
    from objstore.proxy.headers import CACHED_INFO_OK
    app.cache.set(info_key('AUTH_a', 'c'), {
        'status': 204, 'read_acl': None, 'write_acl': None,
        'headers': [('X-Container-Object-Count', '3'),
                    ('X-Container-Sysmeta-Versions-Location', 'arc'),
                    ('X-Backend-Timestamp', '1')]})
    req = Request.blank('/v1/AUTH_a/c', method='HEAD')
    req.environ[CACHED_INFO_OK] = True
    resp = req.get_response(app)
    assert resp.status_int == 204
    assert resp.headers['X-Container-Object-Count'] == '3'
    assert 'X-Backend-Timestamp' not in resp.headers
    # without the flag the replicas are asked (and none answers)
    assert call(app, 'HEAD', '/v1/AUTH_a/c').status_int == 503
