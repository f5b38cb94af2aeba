"""The proxy in front of a real all-in-one cluster, driven by real clients.

One four-node cluster (objstore-aio) and one proxy process with the full
pipeline (healthcheck tempauth proxy-server) serve every test of this
module; each test works in its own container. Clients: `requests` for
the raw HTTP and python-swiftclient for what users run.
"""
import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
import requests
import swiftclient.client as swiftclient

from objstore.cli import aio




def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Proxy:
    """A proxy-server process on a free port, over an aio cluster."""

    def __init__(self, var, **settings):
        self.var = var
        self.port = free_port()
        self.conf = os.path.join(var, 'etc', 'test-proxy-server.conf')
        with open(self.conf, 'w') as f:
            f.write(aio.proxy_conf_text(
                self.port, **dict({'node_timeout': '5'}, **settings)))
        self.url = 'http://127.0.0.1:%d' % self.port
        env = dict(os.environ, OBJSTORE_CONF=os.path.join(
            var, 'etc', 'objstore.conf'))
        self.log = open(os.path.join(var, 'proxy.log'), 'wb')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'objstore.proxy.server', self.conf],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port), 0.5)\
                    .close()
                break
            except OSError:
                if self.proc.poll() is not None or \
                        time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError('proxy did not start')
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope='module')
def proxy(aio_cluster):
    """A proxy of our own (short node_timeout) over the module's cluster."""
    server = Proxy(aio_cluster['var'])
    try:
        yield server
    finally:
        server.stop()


def auth(proxy, user, key):
    resp = requests.get(proxy.url + '/auth/v1.0',
                        headers={'X-Auth-User': user, 'X-Auth-Key': key})
    assert resp.status_code == 200, resp.text
    return resp.headers['X-Storage-Url'], resp.headers['X-Auth-Token']


class Client:
    """requests with the token and storage URL of one user."""

    def __init__(self, proxy, user='test:tester', key='testing'):
        self.url, self.token = auth(proxy, user, key)
        self.session = requests.Session()

    def __call__(self, method, path='', headers=None, **kwargs):
        headers = dict(headers or {})
        headers.setdefault('X-Auth-Token', self.token)
        return self.session.request(method, self.url + path,
                                    headers=headers, **kwargs)


@pytest.fixture(scope='module')
def tester(proxy):
    return Client(proxy)


@pytest.fixture
def container(tester, request):
    name = 'c-%s' % request.node.name[:40].replace('[', '-').rstrip(']')
    assert tester('PUT', '/' + name).status_code in (201, 202)
    return name


def assert_trans_id(resp):
    trans = resp.headers.get('X-Trans-Id', '')
    assert trans.startswith('tx'), resp.headers
    assert resp.headers['X-Openstack-Request-Id'] == trans
    assert not [h for h in resp.headers if h.lower().startswith(
        ('x-backend-', 'x-object-sysmeta', 'x-container-sysmeta'))]


# -- /info, /healthcheck, auth ------------------------------------------------

def test_info_lists_limits_and_middleware_without_auth(proxy):
    resp = requests.get(proxy.url + '/info')
    assert resp.status_code == 200
    assert_trans_id(resp)
    info = resp.json()
    assert info['swift']['max_file_size'] == 5 * 1024 ** 3
    assert info['swift']['container_listing_limit'] == 10000
    assert info['swift']['max_meta_count'] == 90
    assert info['swift']['version']
    assert 'tempauth' in info and 'healthcheck' in info
    assert requests.head(proxy.url + '/info').status_code == 200
    assert requests.post(proxy.url + '/info').status_code == 405


def test_healthcheck(proxy):
    resp = requests.get(proxy.url + '/healthcheck')
    assert (resp.status_code, resp.text) == (200, 'OK')


def test_requests_without_a_token_are_refused(proxy, tester):
    resp = requests.get(tester.url)
    assert resp.status_code == 401
    resp = requests.get(tester.url, headers={'X-Auth-Token': 'bogus'})
    assert resp.status_code == 401
    # not a Swift path: the S3 API's, whose anonymous answer is 403
    resp = requests.get(proxy.url + '/v2/x')
    assert resp.status_code == 403
    assert '<Code>AccessDenied</Code>' in resp.text


def test_unknown_paths_and_methods(tester, proxy):
    resp = requests.get(proxy.url + '/', headers={
        'X-Auth-Token': tester.token})
    assert resp.status_code == 404
    assert_trans_id(resp)
    resp = tester('PATCH', '/c')
    assert resp.status_code == 405 and 'GET' in resp.headers['Allow']


# -- accounts -----------------------------------------------------------------

def test_account_is_created_on_first_use_by_its_owner(proxy):
    owner = Client(proxy, 'test2:tester2', 'testing2')
    resp = owner('HEAD')
    assert resp.status_code == 204
    assert resp.headers['X-Account-Container-Count'] == '0'
    resp = owner('GET', '', params={'format': 'json'})
    assert (resp.status_code, resp.json()) == (200, [])
    assert owner('PUT', '/first').status_code == 201
    resp = owner('GET')
    assert resp.status_code == 200 and resp.text == 'first\n'
    assert_trans_id(resp)
    # another account's users see nothing there
    resp = Client(proxy)('GET', '', headers={})
    assert resp.status_code in (200, 204)
    other = requests.get(owner.url, headers={
        'X-Auth-Token': Client(proxy).token})
    assert other.status_code == 403


def test_account_metadata(tester):
    resp = tester('POST', '', headers={'X-Account-Meta-Color': 'red'})
    assert resp.status_code == 204
    assert tester('HEAD').headers['X-Account-Meta-Color'] == 'red'
    tester('POST', '', headers={'X-Remove-Account-Meta-Color': 'x'})
    assert 'X-Account-Meta-Color' not in tester('HEAD').headers
    too_many = {'X-Account-Meta-K%d' % i: 'v' for i in range(91)}
    assert tester('POST', '', headers=too_many).status_code == 400


def test_account_put_and_delete_are_not_allowed(proxy, tester):
    # tempauth refuses them to anyone but a reseller admin; the proxy
    # itself, without allow_account_management, to everybody
    assert tester('PUT').status_code in (403, 405)
    assert tester('DELETE').status_code in (403, 405)
    admin = Client(proxy, 'admin:admin', 'admin')
    resp = admin('PUT', '', headers={})
    assert resp.status_code == 405 and 'Allow' in resp.headers
    assert admin('DELETE').status_code == 405


def test_account_listing_formats_and_parameters(tester):
    for name in ('lst-a', 'lst-b', 'lst-c'):
        assert tester('PUT', '/' + name).status_code in (201, 202)
    resp = tester('GET', '', params={'prefix': 'lst-', 'format': 'json'})
    assert [c['name'] for c in resp.json()] == ['lst-a', 'lst-b', 'lst-c']
    assert set(resp.json()[0]) >= {'name', 'count', 'bytes'}
    resp = tester('GET', '', params={'prefix': 'lst-', 'marker': 'lst-a',
                                     'limit': '1'})
    assert resp.text == 'lst-b\n'
    resp = tester('GET', '', params={'prefix': 'lst-', 'reverse': 'true',
                                     'end_marker': 'lst-a'})
    assert resp.text == 'lst-c\nlst-b\n'
    resp = tester('GET', '', params={'prefix': 'lst-'},
                  headers={'Accept': 'application/xml'})
    root = ET.fromstring(resp.content)
    assert root.tag == 'account'
    assert [e.findtext('name') for e in root] == ['lst-a', 'lst-b', 'lst-c']
    assert tester('GET', '', params={'limit': '10001'}).status_code == 412
    assert tester('GET', '', params={'format': 'yaml'}).status_code == 400


# -- containers ---------------------------------------------------------------

def test_container_lifecycle_and_metadata(tester):
    resp = tester('PUT', '/life', headers={'X-Container-Meta-A': '1'})
    assert resp.status_code == 201
    assert_trans_id(resp)
    assert tester('PUT', '/life').status_code == 202
    head = tester('HEAD', '/life')
    assert head.status_code == 204
    assert head.headers['X-Container-Meta-A'] == '1'
    assert head.headers['X-Container-Object-Count'] == '0'
    assert tester('POST', '/life', headers={
        'X-Container-Meta-B': '2', 'X-Remove-Container-Meta-A': 'x'
    }).status_code == 204
    head = tester('HEAD', '/life')
    assert head.headers['X-Container-Meta-B'] == '2'
    assert 'X-Container-Meta-A' not in head.headers
    assert tester('PUT', '/life/o', data=b'x').status_code == 201
    assert tester('DELETE', '/life').status_code == 409
    assert tester('DELETE', '/life/o').status_code == 204
    assert tester('DELETE', '/life').status_code == 204
    assert tester('HEAD', '/life').status_code == 404
    assert tester('DELETE', '/life').status_code == 404
    assert tester('POST', '/life').status_code == 404


def test_container_names_and_metadata_are_checked(tester):
    assert tester('PUT', '/' + 'c' * 257).status_code == 400
    meta = {'X-Container-Meta-' + 'n' * 129: 'v'}
    assert tester('PUT', '/badmeta', headers=meta).status_code == 400
    assert tester('HEAD', '/badmeta').status_code == 404


def test_object_listing_formats_and_parameters(tester, container):
    names = ['a/1', 'a/2', 'b/1', 'c', 'd']
    for name in names:
        assert tester('PUT', '/%s/%s' % (container, name),
                      data=name.encode()).status_code == 201
    base = '/' + container
    assert tester('GET', base).text == ''.join(n + '\n' for n in names)
    listing = tester('GET', base, params={'format': 'json'}).json()
    assert [o['name'] for o in listing] == names
    first = listing[0]
    assert first['bytes'] == 3
    assert first['hash'] == hashlib.md5(b'a/1').hexdigest()
    assert first['content_type'] and first['last_modified']
    resp = tester('GET', base, params={'delimiter': '/', 'format': 'json'})
    assert [o.get('name') or o.get('subdir') for o in resp.json()] == \
        ['a/', 'b/', 'c', 'd']
    resp = tester('GET', base, params={'prefix': 'a/', 'delimiter': '/'})
    assert resp.text == 'a/1\na/2\n'
    resp = tester('GET', base, params={'marker': 'a/2', 'end_marker': 'd'})
    assert resp.text == 'b/1\nc\n'
    resp = tester('GET', base, params={'limit': '2', 'reverse': 'on'})
    assert resp.text == 'd\nc\n'
    resp = tester('GET', base, params={'format': 'xml'})
    root = ET.fromstring(resp.content)
    assert root.tag == 'container' and root.get('name') == container
    assert [e.findtext('name') for e in root.iter('object')] == names
    resp = tester('GET', base, headers={'Accept': 'application/json'})
    assert resp.headers['Content-Type'].startswith('application/json')
    assert tester('GET', base, params={'delimiter': '//'}).status_code == 412
    head = tester('HEAD', base)
    assert head.headers['X-Container-Object-Count'] == '5'
    assert head.headers['X-Container-Bytes-Used'] == str(
        sum(len(n) for n in names))


# -- objects ------------------------------------------------------------------

def test_object_put_get_head_post_delete(tester, container):
    path = '/%s/photo.jpg' % container
    body = os.urandom(100000)
    resp = tester('PUT', path, data=body, headers={
        'X-Object-Meta-Color': 'blue', 'Content-Type': 'image/jpeg'})
    assert resp.status_code == 201
    assert resp.headers['Etag'] == hashlib.md5(body).hexdigest()
    assert resp.headers['Last-Modified']
    assert_trans_id(resp)
    resp = tester('GET', path)
    assert resp.status_code == 200 and resp.content == body
    assert resp.headers['Content-Type'] == 'image/jpeg'
    assert resp.headers['Content-Length'] == str(len(body))
    assert resp.headers['Accept-Ranges'] == 'bytes'
    assert resp.headers['X-Object-Meta-Color'] == 'blue'
    assert resp.headers['Last-Modified'] and resp.headers['X-Timestamp']
    assert_trans_id(resp)
    head = tester('HEAD', path)
    assert head.status_code == 200
    assert head.headers['Content-Length'] == str(len(body))
    assert tester('POST', path, headers={
        'X-Object-Meta-Size': 'big'}).status_code == 202
    head = tester('HEAD', path)
    assert head.headers['X-Object-Meta-Size'] == 'big'
    assert 'X-Object-Meta-Color' not in head.headers
    assert tester('POST', path, headers={
        'Content-Type': 'image/png'}).status_code == 202
    assert tester('HEAD', path).headers['Content-Type'] == 'image/png'
    assert tester('DELETE', path).status_code == 204
    assert tester('GET', path).status_code == 404
    assert tester('HEAD', path).status_code == 404
    assert tester('DELETE', path).status_code == 404
    assert tester('POST', path).status_code == 404


def test_content_type_is_guessed_when_not_sent(tester, container):
    path = '/%s/page.html' % container
    # curl-like: no Content-Type header at all
    req = requests.Request('PUT', tester.url + path, data=b'<p>',
                           headers={'X-Auth-Token': tester.token})
    prepared = req.prepare()
    prepared.headers.pop('Content-Type', None)
    assert tester.session.send(prepared).status_code == 201
    assert tester('HEAD', path).headers['Content-Type'] == 'text/html'


def test_writes_into_a_missing_container_are_404(tester):
    assert tester('PUT', '/nosuch/o', data=b'x').status_code == 404
    assert tester('POST', '/nosuch/o').status_code == 404
    assert tester('DELETE', '/nosuch/o').status_code == 404
    assert tester('GET', '/nosuch/o').status_code == 404


def test_bad_object_requests_are_refused_before_anything_is_stored(
        tester, container):
    base = '/%s/' % container
    cases = [
        ('PUT', base + 'o' * 1025, {}, b'x', 400),
        ('PUT', base + 'a/%2E%2E/b', {}, b'x', 400),
        ('PUT', base + 'meta', {'X-Object-Meta-' + 'k' * 129: 'v'}, b'x',
         400),
        ('PUT', base + 'many', {'X-Object-Meta-K%d' % i: 'v'
                                for i in range(91)}, b'x', 400),
        ('PUT', base + 'past', {'X-Delete-At': '1000'}, b'x', 400),
        ('PUT', base + 'word', {'X-Delete-At': 'soon'}, b'x', 400),
        ('PUT', base + 'after', {'X-Delete-After': '-1'}, b'x', 400),
        ('PUT', base + 'copy', {'X-Copy-From': 'nocontainer'}, b'', 412),
        ('POST', base + 'x', {'X-Delete-After': 'x'}, None, 400),
    ]
    for method, path, headers, data, status in cases:
        resp = tester(method, path, headers=headers, data=data)
        assert resp.status_code == status, (path, resp.status_code,
                                            resp.text)
        assert '\n' not in resp.text.strip()
        assert_trans_id(resp)
    assert tester('GET', '/' + container).text == ''


def raw_put(proxy, tester, path, extra):
    """The proxy's answer to a PUT head sent as is (no body follows)."""
    with socket.create_connection(('127.0.0.1', proxy.port)) as s:
        path = tester.url.split(str(proxy.port), 1)[1] + path
        s.sendall(('PUT %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n'
                   '%sConnection: close\r\n\r\n'
                   % (path, tester.token, extra)).encode())
        s.settimeout(10)
        return s.makefile('rb').read()


def test_length_is_required_and_limited(proxy, tester, container):
    answer = raw_put(proxy, tester, '/%s/nolen' % container, '')
    assert answer.startswith(b'HTTP/1.1 411'), answer[:100]
    # too big: refused before the client sends a byte of it
    answer = raw_put(proxy, tester, '/%s/big' % container,
                     'Expect: 100-continue\r\nContent-Length: %d\r\n'
                     % (5 * 1024 ** 3 + 1))
    assert answer.startswith(b'HTTP/1.1 413'), answer[:100]
    assert b'100 Continue' not in answer
    assert tester('HEAD', '/%s/big' % container).status_code == 404


def test_client_cannot_send_internal_headers(tester, container):
    path = '/%s/internal' % container
    resp = tester('PUT', path, data=b'x', headers={
        'X-Timestamp': '9999999999.99999',
        'X-Backend-Replication': 'true',
        'X-Object-Sysmeta-Secret': 'no',
        'X-Container-Host': '10.0.0.1:1', 'X-Container-Device': 'sdz',
        'X-Container-Partition': '1'})
    assert resp.status_code == 201
    head = tester('HEAD', path)
    assert float(head.headers['X-Timestamp']) < time.time() + 10
    assert 'X-Object-Sysmeta-Secret' not in head.headers
    listing = tester('GET', '/' + container).text
    assert listing == 'internal\n'
    # an ordinary overwrite still wins: the forged timestamp was dropped
    assert tester('PUT', path, data=b'yy').status_code == 201
    assert tester('GET', path).content == b'yy'


def test_ranges(tester, container):
    path = '/%s/ranged' % container
    body = bytes(range(256)) * 10
    tester('PUT', path, data=body)
    resp = tester('GET', path, headers={'Range': 'bytes=10-19'})
    assert resp.status_code == 206 and resp.content == body[10:20]
    assert resp.headers['Content-Range'] == 'bytes 10-19/2560'
    resp = tester('GET', path, headers={'Range': 'bytes=-5'})
    assert resp.content == body[-5:]
    resp = tester('GET', path, headers={'Range': 'bytes=2550-'})
    assert resp.content == body[2550:]
    resp = tester('GET', path, headers={'Range': 'bytes=0-0,5-6'})
    assert resp.status_code == 206
    assert resp.headers['Content-Type'].startswith('multipart/byteranges')
    assert body[5:7] in resp.content
    resp = tester('GET', path, headers={'Range': 'bytes=5000-'})
    assert resp.status_code == 416


def test_conditional_requests(tester, container):
    path = '/%s/cond' % container
    etag = tester('PUT', path, data=b'abc').headers['Etag']
    assert tester('GET', path, headers={
        'If-Match': '"%s"' % etag}).status_code == 200
    assert tester('GET', path, headers={
        'If-Match': '"nope"'}).status_code == 412
    resp = tester('GET', path, headers={'If-None-Match': etag})
    assert resp.status_code == 304 and resp.headers['Etag'] == etag
    last = tester('HEAD', path).headers['Last-Modified']
    assert tester('GET', path, headers={
        'If-Modified-Since': last}).status_code == 304
    assert tester('GET', path, headers={
        'If-Unmodified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT'
    }).status_code == 412
    assert tester('PUT', path, data=b'new', headers={
        'If-None-Match': '*'}).status_code == 412
    assert tester('GET', path).content == b'abc'
    assert tester('PUT', '/%s/fresh' % container, data=b'new', headers={
        'If-None-Match': '*'}).status_code == 201


def test_chunked_upload(tester, container):
    pieces = [os.urandom(70000) for _ in range(5)]

    def body():
        yield from pieces
    resp = tester('PUT', '/%s/chunked' % container, data=body())
    whole = b''.join(pieces)
    assert resp.status_code == 201
    assert resp.headers['Etag'] == hashlib.md5(whole).hexdigest()
    resp = tester('GET', '/%s/chunked' % container)
    assert resp.content == whole


@pytest.mark.parametrize('body', [b'abc', os.urandom(300000)],
                         ids=['whole', 'streamed'])
def test_etag_mismatch_is_422_and_stores_nothing(tester, container, body):
    resp = tester('PUT', '/%s/bad-etag' % container, data=body,
                  headers={'Etag': hashlib.md5(b'xyz').hexdigest()})
    assert resp.status_code == 422
    assert tester('HEAD', '/%s/bad-etag' % container).status_code == 404


def test_streamed_upload_with_its_etag_quoted(tester, container):
    body = os.urandom(300000)
    resp = tester('PUT', '/%s/quoted' % container, data=body, headers={
        'Etag': '"%s"' % hashlib.md5(body).hexdigest().upper()})
    assert resp.status_code == 201
    assert resp.headers['Etag'] == hashlib.md5(body).hexdigest()
    assert tester('GET', '/%s/quoted' % container).content == body


def test_copy_with_x_copy_from_and_copy_verb(tester, container):
    src = '/%s/source' % container
    body = os.urandom(200000)
    tester('PUT', src, data=body, headers={
        'X-Object-Meta-Kept': 'yes', 'Content-Type': 'app/src'})
    resp = tester('PUT', '/%s/copy1' % container, headers={
        'X-Copy-From': '%s/source' % container,
        'X-Object-Meta-Extra': 'new'})
    assert resp.status_code == 201
    assert resp.headers['X-Copied-From'] == '%s/source' % container
    assert resp.headers['X-Copied-From-Last-Modified']
    copy1 = tester('GET', '/%s/copy1' % container)
    assert copy1.content == body
    assert copy1.headers['X-Object-Meta-Kept'] == 'yes'
    assert copy1.headers['X-Object-Meta-Extra'] == 'new'
    assert copy1.headers['Content-Type'] == 'app/src'
    tester('PUT', '/other-' + container)
    resp = tester('COPY', src, headers={
        'Destination': '/other-%s/copy2' % container,
        'Content-Type': 'app/changed', 'X-Fresh-Metadata': 'true'})
    assert resp.status_code == 201
    copy2 = tester('GET', '/other-%s/copy2' % container)
    assert copy2.content == body
    assert copy2.headers['Content-Type'] == 'app/changed'
    assert 'X-Object-Meta-Kept' not in copy2.headers
    assert tester('PUT', '/%s/copy3' % container, headers={
        'X-Copy-From': '%s/missing' % container}).status_code == 404
    assert tester('COPY', src).status_code == 412
    assert tester('COPY', src, headers={
        'Destination': 'nocontainer'}).status_code == 412
    assert tester('PUT', '/%s/copy4' % container, data=b'x', headers={
        'X-Copy-From': '%s/source' % container}).status_code == 400


def test_delete_after(tester, container):
    path = '/%s/shortlived' % container
    resp = tester('PUT', path, data=b'x', headers={'X-Delete-After': '1'})
    assert resp.status_code == 201
    at = int(tester('HEAD', path).headers['X-Delete-At'])
    assert time.time() < at <= time.time() + 3
    deadline = time.time() + 5
    while tester('GET', path).status_code == 200:
        assert time.time() < deadline
        time.sleep(0.2)
    assert tester('GET', path).status_code == 404
    tester('PUT', path, data=b'x')
    later = int(time.time()) + 100
    assert tester('POST', path, headers={
        'X-Delete-At': str(later)}).status_code == 202
    assert tester('HEAD', path).headers['X-Delete-At'] == str(later)


# -- ACLs and other users -----------------------------------------------------

def test_container_acls(proxy, tester, container):
    path = '/%s/shared' % container
    tester('PUT', path, data=b'secret')
    other = Client(proxy, 'test:tester3', 'testing3')
    assert other('GET', path).status_code == 403
    assert other('GET', '/' + container).status_code == 403
    assert tester('POST', '/' + container, headers={
        'X-Container-Read': 'test:tester3'}).status_code == 204
    head = tester('HEAD', '/' + container)
    assert head.headers['X-Container-Read'] == 'test:tester3'
    resp = other('GET', path)
    assert (resp.status_code, resp.content) == (200, b'secret')
    listing = other('GET', '/' + container)
    assert listing.status_code == 200
    assert 'X-Container-Read' not in listing.headers
    assert other('PUT', path, data=b'mine').status_code == 403
    tester('POST', '/' + container, headers={'X-Container-Read': '.r:*'})
    time.sleep(0.1)
    anonymous = requests.get(tester.url + path)
    assert (anonymous.status_code, anonymous.content) == (200, b'secret')
    assert tester('POST', '/' + container, headers={
        'X-Container-Write': '.r:*'}).status_code == 400


# -- python-swiftclient -------------------------------------------------------

def test_swiftclient_end_to_end(proxy):
    conn = swiftclient.Connection(proxy.url + '/auth/v1.0', 'test:tester',
                                  'testing', retries=0)
    conn.put_container('sc')
    data = os.urandom(300000)
    etag = conn.put_object('sc', 'blob', io.BytesIO(data), chunk_size=65536,
                           headers={'X-Object-Meta-Via': 'swiftclient'})
    assert etag == hashlib.md5(data).hexdigest()
    headers, body = conn.get_object('sc', 'blob')
    assert body == data and headers['x-object-meta-via'] == 'swiftclient'
    headers, chunks = conn.get_object('sc', 'blob', resp_chunk_size=65536)
    assert b''.join(chunks) == data
    conn.copy_object('sc', 'blob', '/sc/blob2')
    _, listing = conn.get_container('sc')
    assert [o['name'] for o in listing] == ['blob', 'blob2']
    assert [o['bytes'] for o in listing] == [len(data)] * 2
    _, containers = conn.get_account()
    assert 'sc' in [c['name'] for c in containers]
    conn.post_object('sc', 'blob', {'X-Object-Meta-New': '1'})
    assert conn.head_object('sc', 'blob')['x-object-meta-new'] == '1'
    info = conn.get_capabilities()
    assert info['swift']['max_object_name_length'] == 1024
    for name in ('blob', 'blob2'):
        conn.delete_object('sc', name)
    conn.delete_container('sc')
    with pytest.raises(swiftclient.ClientException) as err:
        conn.head_container('sc')
    assert err.value.http_status == 404


def test_preauth_token_and_listing_json(proxy, tester):
    conn = swiftclient.Connection(preauthurl=tester.url,
                                  preauthtoken=tester.token, retries=0)
    conn.put_container('pre')
    conn.put_object('pre', 'x', b'1')
    headers, listing = conn.get_container('pre')
    assert listing[0]['name'] == 'x'
    assert headers['x-trans-id'].startswith('tx')
    conn.delete_object('pre', 'x')
    conn.delete_container('pre')


def test_zero_byte_object_and_client_gone_mid_upload(proxy, tester,
                                                     container):
    path = '/%s/empty' % container
    assert tester('PUT', path, data=b'').status_code == 201
    resp = tester('GET', path)
    assert (resp.status_code, resp.content) == (200, b'')
    # a client that sends half its body and hangs up stores nothing
    with socket.create_connection(('127.0.0.1', proxy.port)) as s:
        full = tester.url.split(str(proxy.port), 1)[1] + \
            '/%s/half' % container
        s.sendall(('PUT %s HTTP/1.1\r\nHost: x\r\nX-Auth-Token: %s\r\n'
                   'Content-Length: 1000000\r\n\r\n'
                   % (full, tester.token)).encode() + b'x' * 300000)
    time.sleep(0.5)
    assert tester('HEAD', '/%s/half' % container).status_code == 404
    assert tester('GET', '/' + container).text == 'empty\n'
