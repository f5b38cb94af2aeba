"""tempurl middleware over a stand-in for the rest of the pipeline.

The stand-in answers the key lookups from dicts, and for objects calls
``swift.authorize`` as the proxy does before touching anything.
"""
import time

import pytest

from objstore.common import info
from objstore.common.http import Request, Response, request_path
from objstore.middleware import tempurl
from objstore.middleware import tempurl_rules as rules

ACCOUNT = '/v1/AUTH_test'
OBJ = ACCOUNT + '/c/o'


class Downstream:
    def __init__(self):
        self.account = {'X-Account-Meta-Temp-URL-Key': 'akey'}
        self.containers = {'c': {'X-Container-Meta-Temp-URL-Key': 'ckey'}}
        self.calls = []

    def __call__(self, environ, start_response):
        req = Request(environ)
        path = request_path(req)
        self.calls.append((req.method, path, dict(environ)))
        parts = path.split('/', 4)
        if len(parts) == 3:
            resp = Response(status=200, headers=self.account)
        elif len(parts) == 4:
            headers = self.containers.get(parts[3])
            resp = Response(status=200 if headers is not None else 404,
                            headers=headers or {})
        else:
            denial = environ['swift.authorize'](req)
            if denial is not None:
                return denial(environ, start_response)
            resp = Response(status=200, body=b'data', headers={
                'X-Object-Meta-Secret': 's', 'X-Object-Meta-Public-A': 'p',
                'X-Timestamp-Seen': environ.get('HTTP_X_TIMESTAMP', '-')})
        return resp(environ, start_response)


@pytest.fixture
def down():
    return Downstream()


@pytest.fixture
def make(down):
    def build(**conf):
        return tempurl.filter_factory({}, conf)(down)
    yield build
    info.unregister('tempurl')


def url(method, path=OBJ, key='akey', expires=None, digest='sha256',
        extra=''):
    expires = int(time.time()) + 60 if expires is None else expires
    sig = rules.sign(key, method, expires, path, digest).hex()
    return '%s?temp_url_sig=%s&temp_url_expires=%d%s' % (path, sig, expires,
                                                         extra)


def call(app, target, method='GET', environ=None, **kw):
    env = dict(environ or {}, REMOTE_ADDR='127.0.0.1')
    return Request.blank(target, method=method, environ=env,
                         **kw).get_response(app)


def test_valid_get_is_allowed_scoped_and_cleaned(make, down):
    resp = call(make(), url('GET'), headers={'X-Timestamp': '1'})
    assert resp.status_int == 200 and resp.body == b'data'
    assert 'X-Object-Meta-Secret' not in resp.headers
    assert resp.headers['X-Object-Meta-Public-A'] == 'p'
    assert resp.headers['X-Timestamp-Seen'] == '-'
    assert resp.headers['Content-Disposition'] == \
        'attachment; filename="o"; filename*=UTF-8\'\'o'
    method, path, env = down.calls[-1]
    assert env['swift.authorize_override'] is True
    assert env['REMOTE_USER'] == '.wsgi.tempurl'
    check = env['swift.authorize']
    assert check(Request.blank(ACCOUNT + '/segs/s1')) is None
    assert check(Request.blank('/v1/AUTH_other/c/o')).status_int == 401
    # the lookups were HEADs judged by nobody, the container from cache
    heads = [c for c in down.calls if c[0] == 'HEAD']
    assert [h[1] for h in heads] == [ACCOUNT, ACCOUNT + '/c']
    assert heads[0][2]['swift.authorize'](Request.blank('/x')) is None
    assert heads[1][2]['objstore.cached_info_ok'] is True


def test_container_key_scope(make, down):
    resp = call(make(), url('GET', key='ckey'))
    assert resp.status_int == 200
    check = down.calls[-1][2]['swift.authorize']
    assert check(Request.blank(ACCOUNT + '/c/other')) is None
    assert check(Request.blank(ACCOUNT + '/segs/s1')).status_int == 401


@pytest.mark.parametrize('target', [
    url('GET', key='wrong'),
    url('GET', expires=int(time.time()) - 10),
    url('PUT'),
    url('GET', path=ACCOUNT + '/c/other').replace('/other', '/o'),
    OBJ + '?temp_url_sig=abc&temp_url_expires=9999999999',
    OBJ + '?temp_url_expires=9999999999',
    url('GET', path=ACCOUNT + '/c'),
    url('GET', digest='sha1'),
])
def test_invalid_is_401_before_touching_the_object(make, down, target):
    resp = call(make(), target)
    assert resp.status_int == 401
    assert resp.body == b'401 Unauthorized: Temp URL invalid\n'
    assert resp.headers['Www-Authenticate'] == 'Swift realm="AUTH_test"'
    assert all(c[0] == 'HEAD' and c[1].count('/') < 4 for c in down.calls)


def test_head_with_put_signature_and_empty_401_body(make):
    app = make()
    assert call(app, url('PUT'), method='HEAD').status_int == 200
    resp = call(app, url('DELETE'), method='HEAD')
    assert resp.status_int == 401 and resp.body == b''


def test_filename_and_inline(make):
    app = make()
    resp = call(app, url('GET', extra='&filename=my%20file.txt'))
    assert resp.headers['Content-Disposition'].startswith(
        'attachment; filename="my file.txt"')
    resp = call(app, url('GET', extra='&inline'))
    assert resp.headers['Content-Disposition'] == 'inline'


def test_pointer_headers_refused(make):
    for header in ('X-Object-Manifest', 'X-Symlink-Target'):
        resp = call(make(), url('PUT'), method='PUT', body=b'',
                    headers={header: 'c/x'})
        assert resp.status_int == 400
        assert header in resp.text


def test_no_keys_means_invalid(make, down):
    down.account = {}
    down.containers = {}
    assert call(make(), url('GET')).status_int == 401


def test_keys_hidden_from_non_owners(make, down):
    app = make()
    resp = call(app, ACCOUNT + '/c', method='HEAD',
                environ={'swift.authorize': lambda r: None})
    assert 'X-Container-Meta-Temp-Url-Key' not in resp.headers
    resp = call(app, ACCOUNT + '/c', method='HEAD',
                environ={'swift.authorize': lambda r: None,
                         'swift_owner': True})
    assert resp.headers['X-Container-Meta-Temp-Url-Key'] == 'ckey'


def test_info_and_config(make):
    make(methods='GET PUT', allowed_digests='sha1 sha512')
    got = info.get_info()['tempurl']
    assert got['methods'] == ['GET', 'PUT']
    assert got['allowed_digests'] == ['sha1', 'sha512']
    assert got['deprecated_digests'] == ['sha1']
    assert got['incoming_remove_headers'] == ['x-timestamp',
                                              'x-open-expired']
    assert got['outgoing_allow_headers'] == ['x-object-meta-public-*']
    with pytest.raises(Exception, match='allowed_digests'):
        make(allowed_digests='md5')


def test_plain_requests_pass_untouched(make, down):
    resp = call(make(), OBJ, environ={'swift.authorize': lambda r: None})
    assert resp.status_int == 200
    assert 'swift.authorize_override' not in down.calls[-1][2]
    assert resp.headers['X-Object-Meta-Secret'] == 's'
