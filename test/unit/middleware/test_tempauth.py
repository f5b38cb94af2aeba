"""tempauth's decisions, seen through a downstream app that records the
environ it got (standing in for the proxy, which calls swift.authorize
with req.acl set once it knows the container's ACLs)."""
import json
import time

import pytest

from objstore.common import info
from objstore.common.config import ConfigError
from objstore.common.http import Request
from objstore.common.pipeline import load_pipeline
from objstore.middleware import acl, tempauth

USERS = {
    'user_admin_admin': 'admin .admin .reseller_admin',
    'user_test_tester': 'testing .admin',
    'user_test_tester3': 'testing3',
    'user_test2_tester2': 'testing2 .admin',
    'user_test5_tester5': 'testing5 service',
    'user_test6_tester6': 'testing6 .admin $HOST/v1/AUTH_six',
    'user_test7_tester7': 'testing7 https://store.example.com/v1/AUTH_7',
}


class Downstream:
    """The next app: records each environ, answers 200."""

    def __init__(self):
        self.calls = []

    def __call__(self, environ, start_response):
        self.calls.append(environ)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'downstream']

    @property
    def environ(self):
        return self.calls[-1] if self.calls else None


@pytest.fixture
def make(cluster_conf):
    """make(**settings) -> (middleware, downstream)."""
    def build(**settings):
        local = dict(USERS)
        local.update(settings)
        app = Downstream()
        return tempauth.filter_factory({}, local)(app), app
    yield build
    info.unregister('tempauth')


@pytest.fixture
def mw(make):
    return make()[0]


def call(middleware, path, method='GET', headers=None, environ=None):
    req = Request.blank(path, method=method, headers=headers or {},
                        environ=environ or {})
    app = middleware.app
    before = len(app.calls)
    resp = req.get_response(middleware)
    seen = app.calls[-1] if len(app.calls) > before else None
    return resp, seen


def get_token(middleware, user='test:tester', key='testing', **kw):
    resp, _ = call(middleware, '/auth/v1.0',
                   headers={'X-Auth-User': user, 'X-Auth-Key': key}, **kw)
    assert resp.status_int == 200, resp.body
    return resp.headers['X-Auth-Token']


def authorize(seen, path=None, method=None, acl_value=None, headers=None):
    """What the proxy does: ask swift.authorize with req.acl set."""
    env = dict(seen)
    env.pop('webob.adhoc_attrs', None)
    if path is not None:
        env['PATH_INFO'] = path
        env.pop('RAW_PATH_INFO', None)
    if method is not None:
        env['REQUEST_METHOD'] = method
    req = Request(env)
    for k, v in (headers or {}).items():
        req.headers[k] = v
    req.acl = acl_value
    resp = seen['swift.authorize'](req)
    return (None if resp is None else resp.status_int), req.environ


# -- auth v1.0 ----------------------------------------------------------

def test_auth_get_answers_token_and_storage_url(mw):
    resp, seen = call(mw, '/auth/v1.0', headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing',
        'Host': 'proxy.example.com:8080'})
    assert seen is None
    assert resp.status_int == 200
    url = 'http://proxy.example.com:8080/v1/AUTH_test'
    assert resp.headers['X-Storage-Url'] == url
    token = resp.headers['X-Auth-Token']
    assert token.startswith('AUTH_tk') and len(token) < 400
    assert resp.headers['X-Storage-Token'] == token
    assert 86390 <= int(resp.headers['X-Auth-Token-Expires']) <= 86400
    assert json.loads(resp.body) == {
        'storage': {'default': 'local', 'local': url}}


@pytest.mark.parametrize('path,headers', [
    ('/auth/v1.0', {'X-Storage-User': 'test:tester',
                    'X-Storage-Pass': 'testing'}),
    ('/auth/auth', {'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'}),
    ('/auth/v1.0/', {'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'}),
    ('/auth/v1/test/auth', {'X-Storage-User': 'tester',
                            'X-Storage-Pass': 'testing'}),
    ('/auth/v1/test/auth', {'X-Auth-User': 'test:tester',
                            'X-Auth-Key': 'testing'}),
])
def test_auth_aliases(mw, path, headers):
    resp, _ = call(mw, path, headers=headers)
    assert resp.status_int == 200
    assert resp.headers['X-Storage-Url'].endswith('/v1/AUTH_test')


@pytest.mark.parametrize('path,headers,status', [
    ('/auth/v1.0', {}, 401),
    ('/auth/v1.0', {'X-Auth-User': 'test:tester'}, 401),
    ('/auth/v1.0', {'X-Auth-Key': 'testing'}, 401),
    ('/auth/v1.0', {'X-Auth-User': 'tester', 'X-Auth-Key': 'testing'}, 401),
    ('/auth/v1.0', {'X-Auth-User': 'test:tester', 'X-Auth-Key': 'wrong'},
     401),
    ('/auth/v1.0', {'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing3'},
     401),
    ('/auth/v1.0', {'X-Auth-User': 'test:nobody', 'X-Auth-Key': 'testing'},
     401),
    ('/auth/v1.0', {'X-Auth-User': ':', 'X-Auth-Key': 'x'}, 401),
    ('/auth/v1.0', {'X-Auth-User': 't\xe9st:\xff\xfe',
                    'X-Auth-Key': '\xff'}, 401),
    ('/auth/v1/test2/auth', {'X-Auth-User': 'test:tester',
                             'X-Auth-Key': 'testing'}, 401),
    ('/auth/v2.0', {'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'},
     400),
    ('/auth/', {'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'}, 400),
])
def test_auth_refusals(mw, path, headers, status):
    resp, seen = call(mw, path, headers=headers)
    assert resp.status_int == status
    assert seen is None and 'X-Auth-Token' not in resp.headers
    if status == 401:
        assert resp.headers['Www-Authenticate'].startswith('Swift realm=')
    assert resp.body.count(b'\n') == 1


def test_auth_only_get(mw):
    resp, _ = call(mw, '/auth/v1.0', method='POST', headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
    assert resp.status_int == 405 and resp.headers['Allow'] == 'GET'


def test_storage_url_scheme_and_configured_urls(make):
    mw, _ = make(storage_url_scheme='https', reseller_prefix='AUTH')
    resp, _ = call(mw, '/auth/v1.0', headers={
        'X-Auth-User': 'test6:tester6', 'X-Auth-Key': 'testing6',
        'Host': 'h:1'})
    assert resp.headers['X-Storage-Url'] == 'https://h:1/v1/AUTH_six'
    resp, _ = call(mw, '/auth/v1.0', headers={
        'X-Auth-User': 'test7:tester7', 'X-Auth-Key': 'testing7'})
    assert resp.headers['X-Storage-Url'] == \
        'https://store.example.com/v1/AUTH_7'


def test_storage_url_ignores_a_hostile_host_header(mw):
    resp, _ = call(mw, '/auth/v1.0', headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing',
        'Host': 'evil/"<x>'}, environ={'SERVER_NAME': 'proxy',
                                       'SERVER_PORT': '8080'})
    assert resp.headers['X-Storage-Url'] == 'http://proxy:8080/v1/AUTH_test'


def test_token_life_setting(make):
    mw, _ = make(token_life='60')
    resp, _ = call(mw, '/auth/v1.0', headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
    assert 50 <= int(resp.headers['X-Auth-Token-Expires']) <= 60


# -- admins: owners of their account ------------------------------------

@pytest.mark.parametrize('method,path', [
    ('GET', '/v1/AUTH_test'), ('HEAD', '/v1/AUTH_test'),
    ('POST', '/v1/AUTH_test'), ('PUT', '/v1/AUTH_test/c'),
    ('POST', '/v1/AUTH_test/c'), ('DELETE', '/v1/AUTH_test/c'),
    ('GET', '/v1/AUTH_test/c'), ('PUT', '/v1/AUTH_test/c/o/p'),
    ('DELETE', '/v1/AUTH_test/c/o'), ('GET', '/v1.0/AUTH_test/c/o'),
])
def test_admin_owns_its_account(mw, method, path):
    token = get_token(mw)
    resp, seen = call(mw, path, method, {'X-Auth-Token': token})
    assert resp.status_int == 200
    assert seen['swift_owner'] is True
    assert seen['objstore.account_owner'] is True
    assert seen['REMOTE_USER'] == 'test,test:tester,AUTH_test'
    assert 'reseller_request' not in seen
    assert seen['swift.clean_acl'] is acl.clean_acl
    assert seen['objstore.authorize'] is seen['swift.authorize']
    status, env = authorize(seen)
    assert status is None and env['swift_owner'] is True


@pytest.mark.parametrize('method', ['PUT', 'DELETE'])
def test_admin_may_not_create_or_delete_its_account(mw, method):
    token = get_token(mw)
    resp, seen = call(mw, '/v1/AUTH_test', method, {'X-Auth-Token': token})
    assert resp.status_int == 403 and seen is None


def test_storage_token_header_and_configured_account(mw):
    token = get_token(mw, 'test6:tester6', 'testing6')
    resp, seen = call(mw, '/v1/AUTH_six', headers={'X-Storage-Token': token})
    assert resp.status_int == 200 and seen['swift_owner'] is True
    resp, _ = call(mw, '/v1/AUTH_test6', headers={'X-Auth-Token': token})
    assert resp.status_int == 403


# -- users without .admin, other accounts' users --------------------------

@pytest.mark.parametrize('method,path', [
    ('GET', '/v1/AUTH_test'), ('HEAD', '/v1/AUTH_test'),
    ('POST', '/v1/AUTH_test'), ('PUT', '/v1/AUTH_test/c'),
    ('POST', '/v1/AUTH_test/c'), ('DELETE', '/v1/AUTH_test/c'),
])
def test_non_admin_gets_403_without_asking_acls(mw, method, path):
    token = get_token(mw, 'test:tester3', 'testing3')
    resp, seen = call(mw, path, method, {
        'X-Auth-Token': token, 'X-Container-Read': '.r:*'})
    assert resp.status_int == 403 and seen is None


def test_token_for_another_account_is_403(mw):
    token = get_token(mw, 'test2:tester2', 'testing2')
    for path in ('/v1/AUTH_test', '/v1/AUTH_test/c'):
        resp, seen = call(mw, path, 'PUT', {'X-Auth-Token': token})
        assert resp.status_int == 403 and seen is None
    resp, seen = call(mw, '/v1/AUTH_test/c/o', headers={
        'X-Auth-Token': token})
    assert resp.status_int == 200 and 'swift_owner' not in seen
    assert authorize(seen)[0] == 403
    assert authorize(seen, acl_value='test2')[0] is None


@pytest.mark.parametrize('method,path,acl_value,status', [
    ('GET', '/v1/AUTH_test/c', None, 403),
    ('GET', '/v1/AUTH_test/c', 'test:tester3', None),
    ('HEAD', '/v1/AUTH_test/c', 'test', None),
    ('GET', '/v1/AUTH_test/c', '.r:*', 403),
    ('GET', '/v1/AUTH_test/c', '.r:*,.rlistings', None),
    ('GET', '/v1/AUTH_test/c/o', 'test:tester', 403),
    ('GET', '/v1/AUTH_test/c/o', 'test:tester3', None),
    ('GET', '/v1/AUTH_test/c/o', '.r:*', None),
    ('PUT', '/v1/AUTH_test/c/o', 'test', None),
    ('PUT', '/v1/AUTH_test/c/o', '.r:*', 403),
    ('POST', '/v1/AUTH_test/c/o', 'test:tester3', None),
    ('DELETE', '/v1/AUTH_test/c/o', 'AUTH_test', 403),
])
def test_non_admin_through_acls(mw, method, path, acl_value, status):
    token = get_token(mw, 'test:tester3', 'testing3')
    resp, seen = call(mw, path, method, {'X-Auth-Token': token})
    assert resp.status_int == 200, 'deferred to the proxy'
    assert 'swift_owner' not in seen and 'objstore.account_owner' not in seen
    assert seen['REMOTE_USER'] == 'test,test:tester3'
    assert authorize(seen, acl_value=acl_value)[0] == status


def test_configured_groups_are_acl_groups(mw):
    token = get_token(mw, 'test5:tester5', 'testing5')
    resp, seen = call(mw, '/v1/AUTH_test/c/o', headers={
        'X-Auth-Token': token})
    assert seen['REMOTE_USER'] == 'test5,test5:tester5,service'
    assert authorize(seen, acl_value='service')[0] is None


# -- anonymous ------------------------------------------------------------

@pytest.mark.parametrize('method,path', [
    ('GET', '/v1/AUTH_test'), ('PUT', '/v1/AUTH_test'),
    ('HEAD', '/v1/AUTH_test'), ('PUT', '/v1/AUTH_test/c'),
    ('POST', '/v1/AUTH_test/c'), ('DELETE', '/v1/AUTH_test/c'),
    ('PUT', '/v1/AUTH_test/c/o'), ('POST', '/v1/AUTH_test/c/o'),
    ('DELETE', '/v1/AUTH_test/c/o'),
])
def test_anonymous_401_without_asking_acls(mw, method, path):
    """Write ACLs name users only, so anonymous writes never pass."""
    resp, seen = call(mw, path, method)
    assert resp.status_int == 401 and seen is None
    assert resp.headers['Www-Authenticate'] == 'Swift realm="AUTH_test"'
    if method == 'HEAD':
        assert resp.body == b''


@pytest.mark.parametrize('method,path,acl_value,referer,status', [
    ('GET', '/v1/AUTH_test/c/o', None, None, 401),
    ('GET', '/v1/AUTH_test/c/o', '.r:*', None, None),
    ('HEAD', '/v1/AUTH_test/c/o', '.r:*', None, None),
    ('GET', '/v1/AUTH_test/c', '.r:*', None, 401),
    ('GET', '/v1/AUTH_test/c', '.r:*,.rlistings', None, None),
    ('GET', '/v1/AUTH_test/c/o', '.r:.example.com', 'http://a.example.com/',
     None),
    ('GET', '/v1/AUTH_test/c/o', '.r:.example.com', 'http://a.example.org/',
     401),
    ('GET', '/v1/AUTH_test/c/o', '.r:.example.com', None, 401),
    ('GET', '/v1/AUTH_test/c/o', '.r:*,.r:-bad.com', 'http://bad.com/x',
     401),
    ('GET', '/v1/AUTH_test/c/o', 'test,test:tester', None, 401),
    ('HEAD', '/v1/AUTH_test/c', 'test', None, 401),
])
def test_anonymous_through_acls(mw, method, path, acl_value, referer,
                                status):
    resp, seen = call(mw, path, method)
    assert resp.status_int == 200 and 'REMOTE_USER' not in seen
    headers = {'Referer': referer} if referer else None
    assert authorize(seen, acl_value=acl_value, headers=headers)[0] == status


def test_options_passes(mw):
    resp, seen = call(mw, '/v1/AUTH_test/c', 'OPTIONS')
    assert resp.status_int == 200
    assert authorize(seen)[0] is None


def test_non_storage_paths_pass_but_authorize_denies(mw):
    resp, seen = call(mw, '/info')
    assert resp.status_int == 200
    assert authorize(seen)[0] == 401


# -- reseller admins ------------------------------------------------------

@pytest.mark.parametrize('method,path', [
    ('PUT', '/v1/AUTH_new'), ('DELETE', '/v1/AUTH_test'),
    ('GET', '/v1/AUTH_test'), ('POST', '/v1/AUTH_test2/c'),
    ('GET', '/v1/AUTH_test/c/o'),
])
def test_reseller_admin_reaches_every_account(mw, method, path):
    token = get_token(mw, 'admin:admin', 'admin')
    resp, seen = call(mw, path, method, {'X-Auth-Token': token})
    assert resp.status_int == 200
    assert seen['swift_owner'] is True and seen['reseller_request'] is True
    assert seen['objstore.account_owner'] is True
    assert authorize(seen)[0] is None


@pytest.mark.parametrize('path', ['/v1/OTHER_test', '/v1/AUTH_',
                                  '/v1/AUTH_.hidden/c', '/v1/auth_test'])
def test_accounts_outside_the_prefix_are_refused(mw, path):
    token = get_token(mw, 'admin:admin', 'admin')
    assert call(mw, path, headers={'X-Auth-Token': token})[0].status_int \
        == 403
    assert call(mw, path)[0].status_int == 401


# -- tokens ---------------------------------------------------------------

def test_expired_token_is_401_even_on_a_public_container(mw):
    user = mw.users['test:tester']
    token, _ = mw.issue_token(user, now=time.time() - 86401)
    for path in ('/v1/AUTH_test', '/v1/AUTH_test/c/o'):
        resp, seen = call(mw, path, headers={'X-Auth-Token': token})
        assert resp.status_int == 401 and seen is None


@pytest.mark.parametrize('mangle', [
    lambda t: t[:-2] + ('AA' if t[-2:] != 'AA' else 'BB'),
    lambda t: t[:12] + t[13:],
    lambda t: t + 'x',
    lambda t: 'AUTH_tk',
    lambda t: 'AUTH_tk' + '\xff' * 40,
    lambda t: t.split('.')[0],
])
def test_forged_or_garbled_token_is_401(mw, mangle):
    token = mangle(get_token(mw))
    resp, seen = call(mw, '/v1/AUTH_test/c', headers={'X-Auth-Token': token})
    assert resp.status_int == 401 and seen is None


def test_foreign_token_is_anonymous(mw):
    resp, seen = call(mw, '/v1/AUTH_test/c/o', headers={
        'X-Auth-Token': 'KEY_tk123'})
    assert resp.status_int == 200 and 'REMOTE_USER' not in seen
    assert authorize(seen, acl_value='.r:*')[0] is None
    assert authorize(seen)[0] == 401


def test_every_worker_and_proxy_accepts_the_token(make):
    first, _ = make()
    second, _ = make()
    token = get_token(first)
    resp, seen = call(second, '/v1/AUTH_test', headers={
        'X-Auth-Token': token})
    assert resp.status_int == 200 and seen['swift_owner'] is True


def test_token_secret_setting(make):
    first, _ = make(token_secret='s3cret')
    other, _ = make(token_secret='other')
    default, _ = make()
    token = get_token(first)
    assert call(first, '/v1/AUTH_test', headers={
        'X-Auth-Token': token})[0].status_int == 200
    for mw in (other, default):
        assert call(mw, '/v1/AUTH_test', headers={
            'X-Auth-Token': token})[0].status_int == 401


@pytest.mark.parametrize('change', [
    {'user_test_tester': 'newkey .admin'},
    {'user_test_tester': 'testing'},
    {'user_test_tester': None},
])
def test_changing_a_user_line_revokes_its_tokens(make, change):
    old, _ = make()
    token = get_token(old)
    settings = dict(USERS, **change)
    settings = {k: v for k, v in settings.items() if v is not None}
    app = Downstream()
    new = tempauth.filter_factory({}, settings)(app)
    resp, _ = call(new, '/v1/AUTH_test/c/o', headers={'X-Auth-Token': token})
    assert resp.status_int == 401


# -- what the client may not send ----------------------------------------

def test_backend_headers_and_owned_keys_are_dropped(mw):
    token = get_token(mw, 'test:tester3', 'testing3')
    resp, seen = call(mw, '/v1/AUTH_test/c/o', headers={
        'X-Auth-Token': token, 'X-Backend-Signature': 'x',
        'X-Backend-Storage-Policy-Index': '1', 'X-Object-Meta-A': 'b'},
        environ={'swift_owner': True, 'objstore.account_owner': True,
                 'REMOTE_USER': 'AUTH_test', 'reseller_request': True,
                 'objstore.authorize': lambda req: None,
                 'objstore.acl': '.r:*'})
    assert seen['objstore.authorize'] is seen['swift.authorize']
    assert 'objstore.acl' not in seen
    assert not [k for k in seen if k.startswith('HTTP_X_BACKEND')]
    assert seen['HTTP_X_OBJECT_META_A'] == 'b'
    for key in ('swift_owner', 'objstore.account_owner', 'reseller_request'):
        assert key not in seen
    assert seen['REMOTE_USER'] == 'test,test:tester3'
    resp, seen = call(mw, '/v1/AUTH_test', environ={'swift_owner': True})
    assert resp.status_int == 401


def test_authorize_override_passes_untouched(mw):
    def tempurl_authorize(req):
        return None
    resp, seen = call(mw, '/v1/AUTH_test/c/o', 'PUT', environ={
        'swift.authorize_override': True,
        'swift.authorize': tempurl_authorize})
    assert resp.status_int == 200
    assert seen['swift.authorize'] is tempurl_authorize


def test_overrides_can_be_disallowed(make):
    mw, _ = make(allow_overrides='false')
    resp, seen = call(mw, '/v1/AUTH_test/c', 'PUT', environ={
        'swift.authorize_override': True,
        'swift.authorize': lambda req: None})
    assert resp.status_int == 401


def test_object_temp_urls_are_left_to_tempurl(mw):
    query = '?temp_url_sig=abc&temp_url_expires=1'
    resp, seen = call(mw, '/v1/AUTH_test/c/o' + query, headers={
        'X-Auth-Token': 'AUTH_tkbogus'})
    assert resp.status_int == 200
    assert authorize(seen, acl_value='.r:*')[0] == 401
    resp, seen = call(mw, '/v1/AUTH_test/c/o' + query, 'PUT')
    assert resp.status_int == 200
    assert authorize(seen, acl_value='test')[0] == 401
    token = get_token(mw, 'test:tester3', 'testing3')
    resp, seen = call(mw, '/v1/AUTH_test/c/o' + query, 'DELETE', {
        'X-Auth-Token': token})
    assert resp.status_int == 200
    assert authorize(seen)[0] == 403


@pytest.mark.parametrize('method,path', [
    ('GET', '/v1/AUTH_test'), ('PUT', '/v1/AUTH_test'),
    ('DELETE', '/v1/AUTH_test'), ('PUT', '/v1/AUTH_test/c'),
    ('POST', '/v1/AUTH_test/c'), ('DELETE', '/v1/AUTH_test/c')])
def test_temp_url_query_opens_nothing_but_objects(mw, method, path):
    query = '?temp_url_sig=abc&temp_url_expires=1'
    resp, seen = call(mw, path + query, method)
    assert resp.status_int == 401 and seen is None


def test_authorize_reads_the_path_it_is_given(mw):
    """The proxy may ask about another path (a copy's source) with the
    same environ: the owner flags then describe that path."""
    token = get_token(mw)
    resp, seen = call(mw, '/v1/AUTH_test/c/o', 'PUT', {
        'X-Auth-Token': token})
    assert seen['swift_owner'] is True
    status, env = authorize(seen, path='/v1/AUTH_test2/c/o', method='GET')
    assert status == 403
    assert 'swift_owner' not in env and 'objstore.account_owner' not in env
    assert authorize(seen, path='/v1/AUTH_test2/c/o', method='GET',
                     acl_value='test:tester')[0] is None


def test_invalid_utf8_or_nul_path_is_412(mw):
    # Swift's answer for both; the request never reaches the proxy
    for path in ('/v1/AUTH_test/%FF%FE', '/v1/AUTH_test/c/a%00b'):
        resp, seen = call(mw, path)
        assert resp.status_int == 412 and seen is None


def test_utf8_names_keys_and_urls(make):
    # user64_<b64 'tést'>_<b64 'user'>; header values arrive as WSGI
    # latin-1 strings of the UTF-8 bytes.
    mw, _ = make(**{'user64_dMOpc3Q_dXNlcg': 'k\xe9y .admin'})
    resp, _ = call(mw, '/auth/v1.0', headers={
        'X-Auth-User': 't\xc3\xa9st:user', 'X-Auth-Key': 'k\xc3\xa9y'})
    assert resp.status_int == 200
    assert resp.headers['X-Storage-Url'] == \
        'http://localhost:80/v1/AUTH_t%C3%A9st'
    token = resp.headers['X-Auth-Token']
    resp, seen = call(mw, '/v1/AUTH_t%C3%A9st/c', headers={
        'X-Auth-Token': token})
    assert resp.status_int == 200 and seen['swift_owner'] is True
    assert seen['REMOTE_USER'] == 't\xe9st,t\xe9st:user,AUTH_t\xe9st'
    # an ACL header as the proxy may hand it over: raw UTF-8 as latin-1
    token = get_token(mw, 'test:tester3', 'testing3')
    resp, seen = call(mw, '/v1/AUTH_t%C3%A9st/c/o', headers={
        'X-Auth-Token': token})
    assert authorize(seen, acl_value='test:tester3,t\xc3\xa9st')[0] is None


# -- config and /info ---------------------------------------------------

def test_registers_in_info(make):
    make()
    assert info.get_info()['tempauth'] == {'account_acls': False}


@pytest.mark.parametrize('settings,message', [
    ({'token_life': '0'}, 'token_life'),
    ({'token_life': 'soon'}, 'token_life'),
    ({'storage_url_scheme': 'ftp'}, 'storage_url_scheme'),
    ({'user_test_nokey': ''}, 'no key'),
    ({'user_nouser': 'k'}, 'user_<account>_<user>'),
    ({'user64_!!_dA': 'k'}, 'base64'),
])
def test_config_errors(make, settings, message):
    with pytest.raises(ConfigError, match=message):
        make(**settings)


def test_needs_a_secret(tmp_path, monkeypatch):
    monkeypatch.setenv('OBJSTORE_CONF', str(tmp_path / 'missing.conf'))
    with pytest.raises(ConfigError):
        tempauth.filter_factory({}, dict(USERS))
    try:
        assert tempauth.filter_factory({}, dict(USERS, token_secret='s'))
    finally:
        info.unregister('tempauth')


def test_user64_names():
    # base64 of 'my_acct' and 'my_user' (lower-case safe: see parse_users)
    users = tempauth.parse_users({'user64_bXlfYWNjdA_bXlfdXNlcg': 'k .admin'},
                                 'AUTH_')
    user = users['my_acct:my_user']
    assert user.account_id == 'AUTH_my_acct' and user.admin


def test_from_a_pipeline_config(tmp_path, monkeypatch, cluster_conf):
    (tmp_path / 'echo_app.py').write_text(
        'def app_factory(global_conf, local_conf):\n'
        '    def app(environ, start_response):\n'
        '        start_response("200 OK", [])\n'
        '        return [b"app"]\n'
        '    return app\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    conf = tmp_path / 'proxy.conf'
    conf.write_text(
        '[pipeline:main]\npipeline = healthcheck tempauth app\n'
        '[filter:healthcheck]\nuse = objstore.middleware.healthcheck\n'
        '[filter:tempauth]\nuse = objstore.middleware.tempauth\n'
        'user_test_tester = testing .admin\n'
        '[app:app]\nuse = echo_app\n')
    try:
        app = load_pipeline(str(conf))
        assert Request.blank('/healthcheck').get_response(app).body == b'OK'
        assert Request.blank('/v1/AUTH_test').get_response(
            app).status_int == 401
        resp = Request.blank('/auth/v1.0', headers={
            'X-Auth-User': 'test:tester',
            'X-Auth-Key': 'testing'}).get_response(app)
        resp = Request.blank('/v1/AUTH_test', headers={
            'X-Auth-Token': resp.headers['X-Auth-Token']}).get_response(app)
        assert resp.body == b'app'
    finally:
        info.unregister('tempauth')
        info.unregister('healthcheck')


@pytest.mark.parametrize('path,target', [
    ('/info', (None, None, None)), ('/', (None, None, None)),
    ('/v1/a', ('a', None, None)), ('/v1/a/', ('a', None, None)),
    ('/v1/a/c/', ('a', 'c', None)), ('/v1/a/c/o/p/', ('a', 'c', 'o/p/')),
    ('/v1//c/o', (None, None, None)), ('v1/a', (None, None, None))])
def test_split_target_reads_empty_parts_strictly(path, target):
    assert tuple(tempauth.split_target(path)) == target


def test_user_authenticated_by_middleware_in_front_needs_no_token(mw):
    """The S3 API checks a signature with the user's key and names the
    user in the environ; tempauth then acts for that user."""
    resp, seen = call(mw, '/v1/AUTH_test/c/o', 'PUT',
                      environ={tempauth.AUTHENTICATED_USER: 'test:tester'})
    assert resp.status_int == 200
    assert seen['REMOTE_USER'] == 'test,test:tester,AUTH_test'
    # another account: only what its ACLs grant, which is nothing here
    resp, seen = call(mw, '/v1/AUTH_test2/c/o', 'PUT',
                      environ={tempauth.AUTHENTICATED_USER: 'test:tester'})
    assert resp.status_int == 403 or authorize(seen)[0] == 403
    resp, _ = call(mw, '/v1/AUTH_test/c/o', 'GET',
                   environ={tempauth.AUTHENTICATED_USER: 'test:nobody'})
    assert resp.status_int == 401


def test_a_verified_token_is_not_checked_again_but_still_expires(
        mw, monkeypatch):
    user = mw.users['test:tester']
    token, expires = mw.issue_token(user)
    checks = []
    real = tempauth.tokens.read_token

    def counting(*args, **kwargs):
        checks.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(tempauth.tokens, 'read_token', counting)
    environ = {'HTTP_X_AUTH_TOKEN': token}
    for _ in range(3):
        assert mw.identify(environ) == (user, False)
    assert len(checks) == 1
    # the expiry is looked at on every request
    assert mw.identify(environ, now=expires + 1) == (None, True)
    assert mw.identify(environ) == (user, False)
    assert len(checks) == 2
    # a token that fails its check is never kept
    bad = token[:-2] + ('AA' if token[-2:] != 'AA' else 'BB')
    for _ in range(2):
        assert mw.identify({'HTTP_X_AUTH_TOKEN': bad}) == (None, True)
    assert len(checks) == 4
    # nor is the store of verified tokens let to grow without end
    monkeypatch.setattr(tempauth, 'MAX_VERIFIED_TOKENS', 2)
    for when in (time.time() - 1, time.time() - 2):
        other, _ = mw.issue_token(user, now=when)
        mw.identify({'HTTP_X_AUTH_TOKEN': other})
    assert len(mw._verified) <= 2


def test_an_expired_token_forgotten_meanwhile_by_another_thread(mw):
    """The compute API identifies callers from OS threads: the store of
    verified tokens may be emptied between the look-up and the removal
    of an expired one. The answer is still 'invalid', never an error."""
    user = mw.users['test:tester']
    token, expires = mw.issue_token(user)
    environ = {'HTTP_X_AUTH_TOKEN': token}
    assert mw.identify(environ) == (user, False)

    class EmptiedAfterLookUp(dict):
        def get(self, key, default=None):
            value = super().get(key, default)
            self.clear()
            return value
    mw._verified = EmptiedAfterLookUp(mw._verified)
    assert mw.identify(environ, now=expires + 1) == (None, True)
