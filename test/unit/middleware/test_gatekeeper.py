"""gatekeeper: clients neither set nor see system metadata."""
from objstore.middleware import gatekeeper
from objstore.proxy.headers import SYSMETA_TRUSTED


def _call(environ, answer_headers):
    seen = {}

    def app(env, start_response):
        seen['environ'] = dict(env)
        start_response('200 OK', answer_headers)
        return [b'ok']

    def start_response(status, headers, exc_info=None):
        seen['headers'] = headers

    body = gatekeeper.filter_factory({}, {})(app)(environ, start_response)
    assert b''.join(body) == b'ok'
    return seen


def test_client_system_metadata_and_backend_headers_are_dropped():
    seen = _call({'REQUEST_METHOD': 'PUT', 'PATH_INFO': '/v1/a/c/o',
                  'HTTP_X_OBJECT_SYSMETA_SLO_SIZE': '1',
                  'HTTP_X_REMOVE_OBJECT_SYSMETA_SLO_SIZE': '1',
                  'HTTP_X_CONTAINER_SYSMETA_S3_ACL': 'x',
                  'HTTP_X_ACCOUNT_SYSMETA_Q': 'x',
                  'HTTP_X_BACKEND_REPLICATION': 'true',
                  'HTTP_X_OBJECT_META_KEPT': 'yes'}, [])
    env = seen['environ']
    assert env['HTTP_X_OBJECT_META_KEPT'] == 'yes'
    assert not [k for k in env if 'SYSMETA' in k or 'BACKEND' in k]
    assert env[SYSMETA_TRUSTED] is True


def test_answers_lose_system_metadata():
    seen = _call({'REQUEST_METHOD': 'GET', 'PATH_INFO': '/v1/a/c/o'},
                 [('Content-Length', '2'), ('X-Object-Sysmeta-A', '1'),
                  ('x-container-sysmeta-b', '2'), ('X-Object-Meta-C', '3')])
    assert seen['headers'] == [('Content-Length', '2'),
                               ('X-Object-Meta-C', '3')]
