"""The one rule for what a middleware's sub-request takes from its
client's request."""
import io

from objstore.common.http import Request
from objstore.middleware import subrequest
from objstore.middleware.tempauth import TempAuth, User


def _client(path='/v1/AUTH_a/c/o', **extra):
    env = Request.blank(path, method='PUT', body=b'client body', headers={
        'Range': 'bytes=1-2', 'If-Match': 'x', 'X-Object-Meta-A': 'b',
        'X-Auth-Token': 'tok', 'Referer': 'http://r'}).environ
    env.update({'QUERY_STRING': 'multipart-manifest=put',
                'swift.authorize': len, 'objstore.authorize': len,
                'swift.authorize_override': True,
                'objstore.trans_id': 'tx1', 'objstore.sysmeta_trusted': True,
                'objstore.acl': '.r:*', 'objstore.cached_info_ok': True,
                'swift_owner': True, 'objstore.account_owner': True,
                'REMOTE_USER': 'a,a:u', 'reseller_request': True,
                'webob.adhoc_attrs': {'acl': '.r:*'}})
    env.update(extra)
    return env


def test_keeps_identity_and_auth_state_not_the_request():
    sub = subrequest.sub_environ(_client(), 'GET', '/v1/AUTH_a/c2/seg \u00fc',
                                 'q=1', {'X-Newest': 'true'})
    assert sub['REQUEST_METHOD'] == 'GET'
    assert sub['RAW_PATH_INFO'] == '/v1/AUTH_a/c2/seg%20%C3%BC'
    assert sub['PATH_INFO'] == '/v1/AUTH_a/c2/seg \u00fc'.encode(
        'utf-8').decode('latin-1')
    assert sub['QUERY_STRING'] == 'q=1'
    assert sub['HTTP_X_NEWEST'] == 'true'
    for key in ('swift.authorize', 'objstore.authorize',
                'swift.authorize_override', 'objstore.trans_id',
                'objstore.sysmeta_trusted', 'REMOTE_USER',
                'reseller_request', 'HTTP_X_AUTH_TOKEN', 'HTTP_REFERER'):
        assert sub[key] == _client()[key], key
    for key in ('HTTP_RANGE', 'HTTP_IF_MATCH', 'HTTP_X_OBJECT_META_A',
                'objstore.acl', 'objstore.cached_info_ok',
                'webob.adhoc_attrs'):
        assert key not in sub, key
    assert sub['CONTENT_LENGTH'] == '0' and sub['wsgi.input'].read() == b''
    assert Request(sub).path_qs == '/v1/AUTH_a/c2/seg%20%C3%BC?q=1'


def test_owner_flags_only_in_the_same_account():
    same = subrequest.sub_environ(_client(), 'HEAD', '/v1/AUTH_a/c/other')
    assert same['swift_owner'] is True
    assert same['objstore.account_owner'] is True
    other = subrequest.sub_environ(_client(), 'HEAD', '/v1/AUTH_b/c/o')
    assert 'swift_owner' not in other
    assert 'objstore.account_owner' not in other
    # an account that only starts like the client's is another one
    near = subrequest.sub_environ(_client(), 'HEAD', '/v1/AUTH_ab/c/o')
    assert 'swift_owner' not in near
    # a client path we cannot read grants nothing
    odd = _client(RAW_PATH_INFO='/v1/AUTH_a/%FF')
    assert 'swift_owner' not in subrequest.sub_environ(
        odd, 'HEAD', '/v1/AUTH_a/c/o')


def test_tempauth_judges_the_new_path_again():
    """tempauth's authorize recomputes the flags for the path it is asked
    about, so even a flag that did cross would not grant anything."""
    auth = TempAuth(None, {'token_secret': 's'})
    user = User('a', 'u', 'k', ['.admin'], '', 'AUTH_a')
    env = _client()
    env['swift.authorize'] = auth.authorizer(user, False)
    sub = subrequest.sub_environ(env, 'GET', '/v1/AUTH_b/c/o')
    sub['swift_owner'] = sub['objstore.account_owner'] = True   # forged
    assert sub['swift.authorize'](Request(sub)) is not None
    assert 'swift_owner' not in sub


def test_bodies_and_headers():
    sub = subrequest.sub_environ(_client(), 'PUT', '/v1/AUTH_a/c/o',
                                 headers={'Content-Type': 'text/x',
                                          'X-Object-Meta-B': 'c'},
                                 body=b'abc')
    assert sub['CONTENT_TYPE'] == 'text/x'
    assert sub['HTTP_X_OBJECT_META_B'] == 'c'
    assert sub['CONTENT_LENGTH'] == '3' and sub['wsgi.input'].read() == b'abc'
    stream = io.BytesIO(b'streamed')
    sized = subrequest.sub_environ(_client(), 'PUT', '/v1/AUTH_a/c/o',
                                   body=stream, length=8)
    assert sized['wsgi.input'] is stream and sized['CONTENT_LENGTH'] == '8'
    assert 'HTTP_TRANSFER_ENCODING' not in sized
    chunked = subrequest.sub_environ(_client(), 'PUT', '/v1/AUTH_a/c/o',
                                     body=stream)
    assert chunked['HTTP_TRANSFER_ENCODING'] == 'chunked'
    assert 'CONTENT_LENGTH' not in chunked


def test_subrequest_reaches_the_app_with_that_environ():
    seen = []

    def app(environ, start_response):
        seen.append(environ)
        start_response('200 OK', [('Content-Length', '2')])
        return [b'ok']
    resp = subrequest.subrequest(app, _client(), 'GET', '/v1/AUTH_a/c/s',
                                 'multipart-manifest=get')
    assert resp.status_int == 200 and resp.body == b'ok'
    assert seen[0]['QUERY_STRING'] == 'multipart-manifest=get'
    assert 'HTTP_RANGE' not in seen[0]
