"""Bad and hostile requests through the real proxy: each gets the right
4xx, and nothing already stored changes.

The cluster (4 storage nodes + proxy with tempauth) runs once for the
module. Before the table, test:tester stores a baseline: container `safe`
holding object `keep` with metadata; test2:tester2 stores `mine/private`.
After every case the baseline is read back byte for byte.
"""
import hashlib
import http.client
import socket
from urllib.parse import urlparse

import pytest
import requests

BODY = b'precious bytes ' * 1000
MD5 = hashlib.md5(BODY).hexdigest()


def auth(cluster, user, key):
    r = requests.get(cluster['auth_url'], timeout=10,
                     headers={'X-Auth-User': user, 'X-Auth-Key': key})
    assert r.status_code == 200, r.text
    return r.headers['X-Storage-Url'], r.headers['X-Auth-Token']


@pytest.fixture(scope='module')
def env(aio_cluster):
    url, token = auth(aio_cluster, 'test:tester', 'testing')
    url2, token2 = auth(aio_cluster, 'test2:tester2', 'testing2')
    _, token3 = auth(aio_cluster, 'test:tester3', 'testing3')
    h = {'X-Auth-Token': token}
    assert requests.put(url + '/safe', headers=h, timeout=10).ok
    assert requests.put(url + '/safe/keep', data=BODY, timeout=30, headers=dict(
        h, **{'X-Object-Meta-Color': 'blue',
              'Content-Type': 'application/x-keep'})).status_code == 201
    h2 = {'X-Auth-Token': token2}
    assert requests.put(url2 + '/mine', headers=h2, timeout=10).ok
    assert requests.put(url2 + '/mine/private', data=b'secret', headers=h2,
                        timeout=10).status_code == 201
    host = urlparse(aio_cluster['url'])
    return {'url': url, 'url2': url2, 'path': urlparse(url).path,
            'path2': urlparse(url2).path, 'token': token, 'token2': token2,
            'token3': token3, 'host': host.hostname, 'port': host.port,
            'cluster': aio_cluster}


def baseline_intact(env):
    h = {'X-Auth-Token': env['token']}
    got = requests.get(env['url'] + '/safe/keep', headers=h, timeout=30)
    assert got.status_code == 200 and got.content == BODY
    assert got.headers['Etag'].strip('"') == MD5
    assert got.headers['X-Object-Meta-Color'] == 'blue'
    assert got.headers['Content-Type'] == 'application/x-keep'
    listing = requests.get(env['url'] + '/safe?format=json', headers=h,
                           timeout=10).json()
    assert [(o['name'], o['bytes'], o['hash']) for o in listing] == \
        [('keep', len(BODY), MD5)]
    names = [c['name'] for c in requests.get(
        env['url'] + '?format=json', headers=h, timeout=10).json()]
    assert names == ['safe']
    h2 = {'X-Auth-Token': env['token2']}
    mine = requests.get(env['url2'] + '/mine/private', headers=h2,
                        timeout=10)
    assert (mine.status_code, mine.content) == (200, b'secret')


def raw(env, text):
    """Send bytes exactly as given; return the response status."""
    with socket.create_connection((env['host'], env['port']),
                                  timeout=15) as s:
        s.sendall(text)
        data = b''
        while b'\r\n' not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b' ', 2)[1])


def http_call(env, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection(env['host'], env['port'], timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def tok(env, which='token'):
    return {'X-Auth-Token': env[which]}


def meta(n, size=5):
    return {'X-Object-Meta-K%03d' % i: 'v' * size for i in range(n)}


# Each case: (id, expected status, function(env) -> status)
CASES = [
    # -- authentication
    ('no-token', 401, lambda e: requests.get(e['url'], timeout=10)
     .status_code),
    ('garbage-token', 401, lambda e: requests.get(
        e['url'], headers={'X-Auth-Token': 'nonsense'}, timeout=10)
     .status_code),
    ('forged-token', 401, lambda e: requests.get(
        e['url'], headers={'X-Auth-Token': 'AUTH_tk' + 'A' * 60 + '.' +
                           'f' * 64}, timeout=10).status_code),
    ('tampered-token', 401, lambda e: requests.get(
        e['url'], headers={'X-Auth-Token': e['token'][:-4] + 'beef'},
        timeout=10).status_code),
    ('wrong-key', 401, lambda e: requests.get(
        e['cluster']['auth_url'], headers={'X-Auth-User': 'test:tester',
                                           'X-Auth-Key': 'nope'},
        timeout=10).status_code),
    ('user-without-account', 401, lambda e: requests.get(
        e['cluster']['auth_url'], headers={'X-Auth-User': 'tester',
                                           'X-Auth-Key': 'testing'},
        timeout=10).status_code),
    # -- other accounts
    ('other-account-list', 403, lambda e: requests.get(
        e['url2'], headers=tok(e), timeout=10).status_code),
    ('other-account-read', 403, lambda e: requests.get(
        e['url2'] + '/mine/private', headers=tok(e), timeout=10)
     .status_code),
    ('other-account-write', 403, lambda e: requests.put(
        e['url2'] + '/mine/private', data=b'overwrite', headers=tok(e),
        timeout=10).status_code),
    ('other-account-delete', 403, lambda e: requests.delete(
        e['url2'] + '/mine/private', headers=tok(e), timeout=10)
     .status_code),
    ('copy-from-other-account', 403, lambda e: requests.put(
        e['url'] + '/safe/stolen', headers=dict(
            tok(e, 'token2'), **{'X-Copy-From': 'safe/keep'}), timeout=10)
     .status_code),
    ('non-admin-lists-account', 403, lambda e: requests.get(
        e['url'], headers=tok(e, 'token3'), timeout=10).status_code),
    ('non-admin-creates-container', 403, lambda e: requests.put(
        e['url'] + '/newbie', headers=tok(e, 'token3'), timeout=10)
     .status_code),
    ('non-admin-overwrites-object', 403, lambda e: requests.put(
        e['url'] + '/safe/keep', data=b'x', headers=tok(e, 'token3'),
        timeout=10).status_code),
    ('anonymous-read-private', 401, lambda e: requests.get(
        e['url'] + '/safe/keep', timeout=10).status_code),
    ('anonymous-write', 401, lambda e: requests.put(
        e['url'] + '/safe/keep', data=b'x', timeout=10).status_code),
    ('non-admin-sets-acl', 403, lambda e: requests.post(
        e['url'] + '/safe', headers=dict(tok(e, 'token3'), **{
            'X-Container-Read': '.r:*'}), timeout=10).status_code),
    # -- traversal and bad names
    ('dot-dot-object', 400, lambda e: http_call(
        e, 'PUT', e['path'] + '/safe/a/../keep', tok(e), b'x')),
    ('dot-dot-into-other-account', 400, lambda e: http_call(
        e, 'GET', e['path'] + '/safe/../../' + e['path2'].split('/')[-1] +
        '/mine/private', tok(e))),
    ('object-name-1025-bytes', 400, lambda e: requests.put(
        e['url'] + '/safe/' + 'n' * 1025, data=b'x', headers=tok(e),
        timeout=10).status_code),
    ('container-name-257-bytes', 400, lambda e: requests.put(
        e['url'] + '/' + 'c' * 257, headers=tok(e), timeout=10)
     .status_code),
    ('invalid-utf8-name', 412, lambda e: http_call(
        e, 'PUT', e['path'] + '/safe/bad%FF%FE', tok(e), b'x')),
    ('nul-in-name', 412, lambda e: http_call(
        e, 'PUT', e['path'] + '/safe/bad%00name', tok(e), b'x')),
    # -- metadata limits
    ('meta-value-257-bytes', 400, lambda e: requests.post(
        e['url'] + '/safe/keep', headers=dict(tok(e), **{
            'X-Object-Meta-Color': 'v' * 257}), timeout=10).status_code),
    ('meta-name-129-bytes', 400, lambda e: requests.post(
        e['url'] + '/safe/keep', headers=dict(tok(e), **{
            'X-Object-Meta-' + 'n' * 129: 'v'}), timeout=10).status_code),
    ('meta-91-items', 400, lambda e: requests.post(
        e['url'] + '/safe/keep', headers=dict(tok(e), **meta(91)),
        timeout=10).status_code),
    ('meta-over-4096-bytes', 400, lambda e: requests.post(
        e['url'] + '/safe/keep', headers=dict(tok(e), **meta(30, 200)),
        timeout=10).status_code),
    ('container-meta-over-limit', 400, lambda e: requests.post(
        e['url'] + '/safe', headers=dict(tok(e), **{
            'X-Container-Meta-Big': 'v' * 257}), timeout=10).status_code),
    # -- bodies and lengths
    ('etag-mismatch', 422, lambda e: requests.put(
        e['url'] + '/safe/keep', data=b'different', headers=dict(
            tok(e), ETag='0' * 32), timeout=10).status_code),
    ('no-length-no-chunking', 411, lambda e: raw(
        e, b'PUT ' + e['path'].encode() + b'/safe/keep HTTP/1.1\r\n'
        b'Host: x\r\nX-Auth-Token: ' + e['token'].encode() +
        b'\r\nConnection: close\r\n\r\n')),
    ('too-large', 413, lambda e: raw(
        e, b'PUT ' + e['path'].encode() + b'/safe/huge HTTP/1.1\r\n'
        b'Host: x\r\nX-Auth-Token: ' + e['token'].encode() +
        b'\r\nContent-Length: 5368709121\r\nConnection: close\r\n\r\n')),
    ('bad-content-length', 400, lambda e: raw(
        e, b'PUT ' + e['path'].encode() + b'/safe/keep HTTP/1.1\r\n'
        b'Host: x\r\nX-Auth-Token: ' + e['token'].encode() +
        b'\r\nContent-Length: ten\r\nConnection: close\r\n\r\nxxxxxxxxxx')),
    ('malformed-chunked-body', 400, lambda e: raw(
        e, b'PUT ' + e['path'].encode() + b'/safe/keep HTTP/1.1\r\n'
        b'Host: x\r\nX-Auth-Token: ' + e['token'].encode() +
        b'\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n'
        b'zz\r\nnot hex\r\n0\r\n\r\n')),
    ('delete-at-in-the-past', 400, lambda e: requests.post(
        e['url'] + '/safe/keep', headers=dict(tok(e), **{
            'X-Delete-At': '1000000000'}), timeout=10).status_code),
    ('delete-after-not-a-number', 400, lambda e: requests.post(
        e['url'] + '/safe/keep', headers=dict(tok(e), **{
            'X-Delete-After': 'soon'}), timeout=10).status_code),
    # -- ranges, copies, listings, verbs
    ('unsatisfiable-range', 416, lambda e: requests.get(
        e['url'] + '/safe/keep', headers=dict(tok(e), Range='bytes=%d-' %
                                              (len(BODY) + 10)),
        timeout=10).status_code),
    ('copy-bad-destination', 412, lambda e: requests.request(
        'COPY', e['url'] + '/safe/keep', headers=dict(
            tok(e), Destination='no-slash'), timeout=10).status_code),
    ('copy-from-missing', 404, lambda e: requests.put(
        e['url'] + '/safe/copy', headers=dict(tok(e), **{
            'X-Copy-From': 'safe/absent'}), timeout=10).status_code),
    ('listing-limit-too-big', 412, lambda e: requests.get(
        e['url'] + '/safe?limit=10001', headers=tok(e), timeout=10)
     .status_code),
    ('delete-non-empty-container', 409, lambda e: requests.delete(
        e['url'] + '/safe', headers=tok(e), timeout=10).status_code),
    ('unknown-verb', 405, lambda e: requests.request(
        'FROB', e['url'] + '/safe/keep', headers=tok(e), timeout=10)
     .status_code),
]


def test_the_table_is_big_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize('expected,call', [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_request(env, expected, call):
    assert call(env) == expected
    baseline_intact(env)
