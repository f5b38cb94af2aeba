"""The bucket registry: its pure rules, and its sub-requests against a
small in-memory stand-in for the Swift pipeline."""
import pytest

from objstore.common.config import ConfigError
from objstore.middleware.s3api import registry
from objstore.middleware.s3api.errors import S3Error


def test_registry_account_from_conf():
    assert registry.registry_account({}) == '.s3_buckets'
    assert registry.registry_account({'registry_account': ' .names '}) == \
        '.names'
    assert registry.registry_account({'registry_account': ''}) is None
    for bad in ('AUTH_names', 'names', '.a/b', '.', '..'):
        with pytest.raises(ConfigError):
            registry.registry_account({'registry_account': bad})


def test_entry_headers_and_owner():
    headers = registry.entry_headers('AUTH_test', 'test:tester')
    assert headers['If-None-Match'] == '*'
    assert registry.owner_of({'x-object-meta-owner-account': 'AUTH_x'}) == \
        'AUTH_x'
    assert registry.owner_of({registry.OWNER_ACCOUNT: ' '}) is None
    assert registry.owner_of({}) is None


def test_claim_verdict():
    assert registry.claim_verdict('AUTH_a', 'AUTH_a') == registry.MINE
    assert registry.claim_verdict('AUTH_a', 'AUTH_b') == registry.TAKEN
    assert registry.claim_verdict('AUTH_a', None) == registry.GONE


def test_privileged_environ():
    env = registry.privileged({'objstore.s3.user': 'test:tester',
                               'objstore.s3.identity': object(),
                               'swift.authorize': 'the user'})
    assert env['swift.authorize_override'] is True
    assert env['swift.authorize'](None) is None
    assert env['objstore.authorize'](None) is None
    assert env['swift_owner'] and env['objstore.account_owner']
    assert not any(k.startswith('objstore.s3.') for k in env)


class FakeSwift:
    """Objects and containers in one dict, answering as the proxy does
    for what the registry asks: PUT with If-None-Match, HEAD, DELETE."""

    def __init__(self, fail=None):
        self.containers = set()
        self.objects = {}
        self.calls = []
        self.fail = fail

    def __call__(self, environ, start_response):
        method, path = environ['REQUEST_METHOD'], environ['PATH_INFO']
        self.calls.append((method, path))
        assert environ['swift.authorize_override'] is True
        status, headers = self.answer(environ, method, path)
        start_response(status, headers + [('Content-Length', '0')])
        return []

    def answer(self, environ, method, path):
        if self.fail:
            return self.fail, []
        _, _, account, container, *obj = path.split('/', 4)
        if not obj:
            self.containers.add(container)
            return '201 Created', []
        if container not in self.containers:
            return '404 Not Found', []
        name = obj[0]
        if method == 'PUT':
            if environ.get('HTTP_IF_NONE_MATCH') == '*' and \
                    name in self.objects:
                return '412 Precondition Failed', []
            self.objects[name] = environ['HTTP_X_OBJECT_META_OWNER_ACCOUNT']
            return '201 Created', []
        if name not in self.objects:
            return '404 Not Found', []
        if method == 'DELETE':
            del self.objects[name]
            return '204 No Content', []
        return '200 OK', [(registry.OWNER_ACCOUNT, self.objects[name])]


ENV = {'REQUEST_METHOD': 'PUT', 'PATH_INFO': '/b', 'SERVER_NAME': 'x',
       'SERVER_PORT': '80', 'wsgi.url_scheme': 'http'}


def test_claim_creates_the_registry_then_holds_the_name():
    app = FakeSwift()
    reg = registry.BucketRegistry(app)
    assert reg.claim(ENV, 'photos', 'AUTH_a', 'a:u') is True
    assert ('PUT', '/v1/.s3_buckets/buckets') in app.calls
    assert reg.owner(ENV, 'photos') == 'AUTH_a'
    assert reg.claim(ENV, 'photos', 'AUTH_a', 'a:u') is False
    with pytest.raises(S3Error) as info:
        reg.claim(ENV, 'photos', 'AUTH_b', 'b:u')
    assert info.value.code == 'BucketAlreadyExists'
    assert app.objects == {'photos': 'AUTH_a'}


def test_release_only_frees_the_owners_name():
    app = FakeSwift()
    reg = registry.BucketRegistry(app)
    reg.claim(ENV, 'photos', 'AUTH_a', 'a:u')
    reg.release(ENV, 'photos', 'AUTH_b')
    assert app.objects == {'photos': 'AUTH_a'}
    reg.release(ENV, 'photos', 'AUTH_a')
    assert app.objects == {}
    reg.release(ENV, 'photos', 'AUTH_a')        # nothing to free: fine
    assert reg.claim(ENV, 'photos', 'AUTH_b', 'b:u') is True


def test_registry_failure_is_service_unavailable():
    reg = registry.BucketRegistry(FakeSwift(fail='503 Service Unavailable'))
    for call in (lambda: reg.claim(ENV, 'photos', 'AUTH_a', 'a:u'),
                 lambda: reg.owner(ENV, 'photos')):
        with pytest.raises(S3Error) as info:
            call()
        assert info.value.code == 'ServiceUnavailable'


def test_held_by_another():
    assert registry.held_by_another('AUTH_a', 'AUTH_b')
    assert not registry.held_by_another('AUTH_a', 'AUTH_a')
    assert not registry.held_by_another('AUTH_a', None)


def test_owned_by_another_account():
    app = FakeSwift()
    reg = registry.BucketRegistry(app)
    reg.claim(ENV, 'photos', 'AUTH_a', 'a:u')
    assert reg.owned_by_another(ENV, 'photos', 'AUTH_b')
    assert not reg.owned_by_another(ENV, 'photos', 'AUTH_a')
    assert not reg.owned_by_another(ENV, 'free', 'AUTH_b')
    # a registry that cannot answer: the caller keeps its NoSuchBucket
    down = registry.BucketRegistry(FakeSwift(fail='503 Service Unavailable'))
    assert not down.owned_by_another(ENV, 'photos', 'AUTH_b')
