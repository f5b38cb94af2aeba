"""healthcheck: 200 OK without auth, 503 while the disable file exists."""
import pytest

from objstore.common import info
from objstore.common.http import Request
from objstore.middleware import healthcheck


def downstream(environ, start_response):
    start_response('401 Unauthorized', [('Content-Type', 'text/plain')])
    return [b'auth needed']


@pytest.fixture
def make():
    def build(**settings):
        return healthcheck.filter_factory({}, settings)(downstream)
    yield build
    info.unregister('healthcheck')


def test_ok_without_auth(make):
    resp = Request.blank('/healthcheck').get_response(make())
    assert resp.status_int == 200 and resp.body == b'OK'
    assert resp.content_type == 'text/plain'
    assert 'healthcheck' in info.get_info()


def test_head_has_no_body(make):
    resp = Request.blank('/healthcheck', method='HEAD').get_response(make())
    assert resp.status_int == 200 and resp.body == b''


def test_disabled_by_file(make, tmp_path):
    flag = tmp_path / 'disabled'
    app = make(disable_path=str(flag))
    assert Request.blank('/healthcheck').get_response(app).status_int == 200
    flag.write_text('')
    resp = Request.blank('/healthcheck').get_response(app)
    assert resp.status_int == 503 and resp.body == b'DISABLED BY FILE'
    flag.unlink()
    assert Request.blank('/healthcheck').get_response(app).status_int == 200


def test_other_methods_405(make):
    resp = Request.blank('/healthcheck', method='PUT').get_response(make())
    assert resp.status_int == 405 and resp.headers['Allow'] == 'GET, HEAD'


@pytest.mark.parametrize('path', ['/healthcheck/', '/v1/AUTH_test',
                                  '/healthcheckx', '/'])
def test_other_paths_pass(make, path):
    resp = Request.blank(path).get_response(make())
    assert resp.status_int == 401 and resp.body == b'auth needed'
