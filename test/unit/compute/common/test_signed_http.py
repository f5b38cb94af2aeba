"""Signed compute requests: body, path and time are bound; over real HTTP."""
import time

import pytest

from compute.common import jsonapi, signed_http, wsgi_server
from objstore.common import signing

SECRET = 's' * 32


def _environ(method, path, headers, body=b'', query=''):
    env = {'REQUEST_METHOD': method, 'PATH_INFO': path,
           'QUERY_STRING': query, 'CONTENT_LENGTH': str(len(body))}
    for name, value in headers.items():
        if name.lower() == 'content-length':
            continue
        env['HTTP_' + name.upper().replace('-', '_')] = value
    return env


def _signed(method='PUT', path='/v1/instances/x', body=b'{"a":1}',
            query=''):
    headers = signed_http.sign_headers(
        SECRET, method, path, body, {'Content-Length': str(len(body))},
        query)
    return headers, body


def test_signed_request_verifies():
    headers, body = _signed()
    env = _environ('PUT', '/v1/instances/x', headers, body)
    assert signed_http.verify_request(SECRET, env, body) is None


@pytest.mark.parametrize('change', ['body', 'path', 'method', 'query',
                                    'secret', 'unsigned'])
def test_any_change_is_refused(change):
    headers, body = _signed(query='length=5')
    method, path, query, secret = 'PUT', '/v1/instances/x', 'length=5', \
        SECRET
    if change == 'body':
        body = b'{"a":2}'
    elif change == 'path':
        path = '/v1/instances/y'
    elif change == 'method':
        method = 'DELETE'
    elif change == 'query':
        query = 'length=6'
    elif change == 'secret':
        secret = 't' * 32
    elif change == 'unsigned':
        headers = {}
    env = _environ(method, path, headers, body, query)
    assert signed_http.verify_request(secret, env, body) is not None


def test_stale_signature_refused(monkeypatch):
    headers, body = _signed()
    env = _environ('PUT', '/v1/instances/x', headers, body)
    later = time.time() + signing.MAX_SKEW + 5
    monkeypatch.setattr(time, 'time', lambda: later)
    assert signed_http.verify_request(SECRET, env, body) == \
        'stale signature'


@pytest.fixture
def echo_server():
    """A real HTTP server that answers whether a request verified."""
    def app(environ, start_response):
        body = jsonapi.read_body(environ)
        reason = signed_http.verify_request(SECRET, environ, body)
        return jsonapi.respond(start_response, 401 if reason else 200,
                               {'reason': reason,
                                'body': body.decode('utf-8'),
                                'query': environ.get('QUERY_STRING')})
    server = wsgi_server.serve_in_thread(app)
    yield 'http://127.0.0.1:%d' % server.server_port
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize('method,body', [('PUT', {'a': 1}), ('GET', None),
                                         ('DELETE', None),
                                         ('POST', {'action': 'stop'})])
def test_client_requests_verify_over_http(echo_server, method, body):
    client = signed_http.SignedClient(echo_server, SECRET)
    status, answer = client.request(method, '/v1/instances/u', body,
                                    query='length=3')
    client.close()
    assert status == 200, answer
    assert answer['query'] == 'length=3'
    assert (answer['body'] != '') == (body is not None)


def test_client_with_wrong_secret_is_refused(echo_server):
    client = signed_http.SignedClient(echo_server, 'w' * 32)
    status, answer = client.request('PUT', '/v1/instances/u', {'a': 1})
    assert status == 401
    assert answer['reason'] == 'bad signature'


def test_unreachable_peer_is_a_clear_error():
    server = wsgi_server.make_server(lambda e, s: [], port=0)
    port = server.server_port
    server.server_close()
    client = signed_http.SignedClient('http://127.0.0.1:%d' % port, SECRET,
                                      timeout=2)
    with pytest.raises(signed_http.SignedClientError) as err:
        client.request('GET', '/v1/host')
    assert 'cannot reach' in str(err.value)
