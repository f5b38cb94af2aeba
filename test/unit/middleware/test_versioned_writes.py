"""The pure rules of legacy versioning (versioning_rules.py) and the
middleware's container-header handling with a stub app."""
import pytest

from objstore.common import info
from objstore.common.http import Request
from objstore.common.timestamp import Timestamp
from objstore.middleware import versioned_writes
from objstore.middleware import versioning_rules as rules


def _headers(**kw):
    return Request.blank('/', headers={
        k.replace('_', '-'): v for k, v in kw.items()}).headers


# -- naming ---------------------------------------------------------------

def test_version_names():
    assert rules.version_prefix('obj') == '003obj/'
    assert rules.version_prefix('a' * 300) == '12c' + 'a' * 300 + '/'
    # length in characters, as Swift names them
    assert rules.version_prefix('\u00e9t\u00e9') == '003\u00e9t\u00e9/'
    assert rules.version_name('obj', '1700000000.12345') == \
        '003obj/1700000000.12345'
    assert rules.version_name('obj', Timestamp(5)) == \
        '003obj/0000000005.00000'
    # names sort by time
    assert rules.version_name('o', 9.5) < rules.version_name('o', 10)


def test_object_timestamp():
    assert rules.object_timestamp({'X-Timestamp': '1700000000.00001'}) == \
        Timestamp('1700000000.00001')
    assert rules.object_timestamp(
        {'Last-Modified': 'Tue, 14 Nov 2023 22:13:20 GMT'}) == \
        Timestamp(1700000000)
    assert rules.object_timestamp({'X-Timestamp': 'junk'}) is None
    assert rules.object_timestamp({}) is None


# -- container headers ----------------------------------------------------

def test_container_update_modes():
    assert rules.container_update(_headers(X_Object_Meta_A='1')) is None
    assert rules.container_update(_headers(X_Versions_Location='arc')) == {
        rules.SYSMETA_LOCATION: 'arc', rules.SYSMETA_MODE: 'stack'}
    assert rules.container_update(_headers(X_History_Location='h%20x')) == {
        rules.SYSMETA_LOCATION: 'h%20x', rules.SYSMETA_MODE: 'history'}
    off = {rules.SYSMETA_LOCATION: '', rules.SYSMETA_MODE: ''}
    assert rules.container_update(_headers(X_Versions_Location='')) == off
    assert rules.container_update(
        _headers(X_Remove_Versions_Location='x')) == off
    assert rules.container_update(
        _headers(X_Remove_History_Location='x')) == off
    # one set, the other removed: the set one wins
    assert rules.container_update(_headers(
        X_History_Location='h', X_Remove_Versions_Location='1'))[
            rules.SYSMETA_MODE] == 'history'


def test_container_update_refusals():
    with pytest.raises(rules.RuleError) as err:
        rules.container_update(_headers(X_Versions_Location='a',
                                        X_History_Location='b'))
    assert err.value.status == 400
    with pytest.raises(rules.RuleError) as err:
        rules.container_update(_headers(X_Versions_Location='a%2Fb'))
    assert err.value.status == 412
    with pytest.raises(rules.RuleError) as err:
        rules.container_update(_headers(X_History_Location='x' * 257))
    assert err.value.status == 400
    with pytest.raises(rules.RuleError) as err:
        rules.container_update(_headers(X_History_Location='%ff'))
    assert err.value.status == 400


def test_container_versioning_and_client_view():
    stored = {rules.SYSMETA_LOCATION: 'my%20arc',
              rules.SYSMETA_MODE: 'history'}
    assert rules.container_versioning(stored) == ('my arc', 'history')
    assert rules.client_view(stored) == {'X-History-Location': 'my%20arc'}
    # no mode recorded: stack, as the oldest containers have
    assert rules.container_versioning({rules.SYSMETA_LOCATION: 'a'}) == \
        ('a', 'stack')
    assert rules.container_versioning({rules.SYSMETA_LOCATION: ''}) == \
        (None, None)
    assert rules.client_view({}) == {}


# -- markers, copies, failures, DELETE plans ------------------------------

def test_delete_marker_detection():
    assert rules.is_delete_marker({'content_type': rules.DELETE_MARKER_TYPE})
    assert rules.is_delete_marker(
        {'content_type': 'application/x-deleted; swift_versions_deleted=1'})
    assert not rules.is_delete_marker({'content_type': 'application/x-deleted'})
    assert not rules.is_delete_marker({'content_type': 'text/plain'})
    assert not rules.is_delete_marker({})


def test_archived_headers():
    pairs = [('Content-Type', 'text/plain'), ('Etag', '"abc"'),
             ('X-Object-Meta-Color', 'red'),
             ('X-Object-Sysmeta-Slo-Size', '20'),
             ('X-Static-Large-Object', 'True'),
             ('X-Symlink-Target', 'c/o'), ('X-Timestamp', '1.0'),
             ('X-Delete-At', '99'), ('Last-Modified', 'x'),
             ('Content-Length', '5'), ('X-Trans-Id', 'tx')]
    assert rules.archived_headers(pairs) == {
        'Content-Type': 'text/plain', 'Etag': 'abc',
        'X-Object-Meta-Color': 'red', 'X-Object-Sysmeta-Slo-Size': '20',
        'X-Static-Large-Object': 'True', 'X-Symlink-Target': 'c/o'}


def test_failure_status():
    assert rules.failure_status(403) == 403
    assert rules.failure_status(401) == 401
    assert rules.failure_status(404) == 412
    assert rules.failure_status(409) == 412
    assert rules.failure_status(500) == 503
    assert rules.failure_status(507) == 503


def _row(name, marker=False):
    return {'name': name, 'content_type': rules.DELETE_MARKER_TYPE
            if marker else 'text/plain'}


def _never():
    raise AssertionError('must not be asked')


def test_delete_plan():
    restore, marker = rules.delete_plan([], _never)
    assert list(restore) == [] and marker is None
    rows = [_row('3'), _row('2'), _row('m', True), _row('1')]
    restore, marker = rules.delete_plan(rows, _never)
    assert [r['name'] for r in restore] == ['3', '2'] and marker is None
    # newest is a marker, object back: a plain delete
    rows = [_row('m', True), _row('2')]
    restore, marker = rules.delete_plan(rows, lambda: True)
    assert list(restore) == [] and marker is None
    # newest is a marker, object gone: the version before it returns
    restore, marker = rules.delete_plan(rows, lambda: False)
    assert [r['name'] for r in restore] == ['2'] and marker['name'] == 'm'
    restore, marker = rules.delete_plan(
        [_row('m2', True), _row('m1', True), _row('1')], lambda: False)
    assert list(restore) == [] and marker['name'] == 'm2'


def test_delete_plan_reads_lazily():
    seen = []

    def rows():
        for name in ('3', '2', '1'):
            seen.append(name)
            yield _row(name)
    restore, _ = rules.delete_plan(rows(), _never)
    assert next(restore)['name'] == '3'
    assert seen == ['3']


# -- the middleware with a stub app ---------------------------------------

class _StubApp:
    """Records the requests it gets; answers containers with sysmeta."""

    def __init__(self, answer_headers=None):
        self.calls = []
        self.answer_headers = answer_headers or {}

    def __call__(self, environ, start_response):
        self.calls.append(dict(environ))
        start_response('204 No Content', list(self.answer_headers.items()))
        return [b'']


def _call(mw, method, path, headers=None):
    req = Request.blank(path, method=method, headers=headers or {})
    return req.get_response(mw)


def test_middleware_container_requests():
    app = _StubApp()
    mw = versioned_writes.VersionedWrites(app)
    resp = _call(mw, 'POST', '/v1/a/c', {'X-History-Location': 'arc'})
    assert resp.status_int == 204
    sent = app.calls[-1]
    assert sent['HTTP_X_CONTAINER_SYSMETA_VERSIONS_LOCATION'] == 'arc'
    assert sent['HTTP_X_CONTAINER_SYSMETA_VERSIONS_MODE'] == 'history'
    assert 'HTTP_X_HISTORY_LOCATION' not in sent
    calls = len(app.calls)
    resp = _call(mw, 'PUT', '/v1/a/c', {'X-History-Location': 'arc',
                                        'X-Versions-Location': 'arc'})
    assert resp.status_int == 400
    assert len(app.calls) == calls       # nothing reached the cluster
    app.answer_headers = {rules.SYSMETA_LOCATION: 'arc',
                          rules.SYSMETA_MODE: 'stack'}
    resp = _call(mw, 'HEAD', '/v1/a/c')
    assert resp.headers['X-Versions-Location'] == 'arc'


def test_object_writes_reuse_the_container_answer_briefly():
    # an unversioned container; its HEAD always carries its counts
    app = _StubApp({'X-Container-Object-Count': '0'})
    now = [100.0]
    mw = versioned_writes.VersionedWrites(app, clock=lambda: now[0])

    def methods():
        return [c['REQUEST_METHOD'] for c in app.calls]
    _call(mw, 'PUT', '/v1/a/c/o1')
    _call(mw, 'PUT', '/v1/a/c/o2')
    _call(mw, 'DELETE', '/v1/a/c/o1')
    assert methods() == ['HEAD', 'PUT', 'PUT', 'DELETE']
    now[0] += mw.INFO_TTL
    _call(mw, 'PUT', '/v1/a/c/o3')      # looked up again once it is old
    assert methods()[-2:] == ['HEAD', 'PUT']
    # a container write through this middleware is seen at once
    _call(mw, 'POST', '/v1/a/c', {'X-Versions-Location': 'arc'})
    app.answer_headers[rules.SYSMETA_LOCATION] = 'arc'
    app.calls.clear()
    _call(mw, 'PUT', '/v1/a/c/o4')
    assert methods()[0] == 'HEAD'
    assert 'GET' in methods()           # the current object is archived


def test_a_failed_container_lookup_is_not_kept():
    class Failing(_StubApp):
        def __call__(self, environ, start_response):
            self.calls.append(dict(environ))
            start_response('503 Service Unavailable', [])
            return [b'']
    app = Failing()
    mw = versioned_writes.VersionedWrites(app)
    _call(mw, 'PUT', '/v1/a/c/o1')
    _call(mw, 'PUT', '/v1/a/c/o2')
    assert [c['REQUEST_METHOD'] for c in app.calls] == [
        'HEAD', 'PUT', 'HEAD', 'PUT']


def test_middleware_disabled():
    app = _StubApp({rules.SYSMETA_LOCATION: 'arc'})
    mw = versioned_writes.VersionedWrites(app, allow=False)
    assert _call(mw, 'POST', '/v1/a/c',
                 {'X-Versions-Location': 'arc'}).status_int == 412
    # objects pass straight through: no container lookups
    _call(mw, 'PUT', '/v1/a/c/o')
    assert [c['REQUEST_METHOD'] for c in app.calls] == ['PUT']


def test_filter_factory_info():
    info.unregister('versioned_writes')
    versioned_writes.filter_factory({}, {})
    assert info.get_info()['versioned_writes'] == {
        'allowed_flags': ['x-versions-location', 'x-history-location']}
    versioned_writes.filter_factory({}, {'allow_versioned_writes': 'false'})
    assert 'versioned_writes' not in info.get_info()
    from objstore.common.config import ConfigError
    with pytest.raises(ConfigError):
        versioned_writes.filter_factory({},
                                        {'allow_versioned_writes': 'maybe'})
