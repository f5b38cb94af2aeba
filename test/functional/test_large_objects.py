"""Static and dynamic large objects through a real proxy and cluster.

A proxy of its own (the all-in-one pipeline with max_manifest_segments
lowered to 5 so "too many" is cheap) runs over the `aio_cluster` fixture's storage nodes. Clients are
python-swiftclient's Connection and plain HTTP (requests); every test
works in containers named after itself.
"""
import hashlib
import json
import os
import time

import pytest
import requests
from swiftclient import client as swift
from swiftclient.exceptions import ClientException

from objstore.cli import aio
from test.conftest import ServerProcess, free_port

MAX_SEGMENTS = 5
MAX_DEPTH = 3


def md5(data):
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope='module')
def proxy_server(aio_cluster):
    port = free_port()
    text = aio.proxy_conf_text(port, account_autocreate='true')
    slo = 'use = objstore.middleware.slo\n'
    assert slo in text
    text = text.replace(slo, slo + 'max_manifest_segments = %d\n'
                        'max_nesting_depth = %d\n' % (MAX_SEGMENTS,
                                                      MAX_DEPTH))
    conf = os.path.join(aio_cluster['var'], 'etc', 'lo-proxy-%d.conf' % port)
    with open(conf, 'w') as f:
        f.write(text)
    env = dict(os.environ, OBJSTORE_CONF=aio_cluster['conf'])
    server = ServerProcess('objstore.proxy.server', conf, port, env)
    # ours, not some other process that took the port meanwhile
    assert 'slo' in requests.get('http://127.0.0.1:%d/info' % port).json()
    yield server
    log = server.read_log()
    server.stop()
    assert 'Traceback' not in log, log


@pytest.fixture(scope='module')
def proxy(proxy_server):
    return 'http://127.0.0.1:%d' % proxy_server.port


@pytest.fixture(scope='module')
def conn(proxy):
    c = swift.Connection(proxy + '/auth/v1.0', 'test:tester', 'testing',
                         retries=0)
    c.get_auth()
    # the account is created on first use; a cluster that has just
    # started may not have every storage server answering yet
    for _ in range(40):
        try:
            c.put_container('warm-up')
            break
        except ClientException:
            time.sleep(0.25)
    return c


def auth(conn):
    return conn.url, {'X-Auth-Token': conn.token}


def segments(conn, container, sizes, prefix='seg'):
    """Upload segments of the given sizes; [(name, data, etag)]."""
    conn.put_container(container)
    out = []
    for index, size in enumerate(sizes):
        data = bytes([65 + index % 26]) * size
        name = '%s/%03d' % (prefix, index)
        etag = conn.put_object(container, name, data)
        out.append((name, data, etag))
    return out


def manifest_of(container, segs, **extra):
    return [dict({'path': '%s/%s' % (container, n), 'etag': e,
                  'size_bytes': len(d)}, **extra) for n, d, e in segs]


def put_manifest(conn, container, name, manifest, headers=None):
    url, h = auth(conn)
    h.update(headers or {})
    return requests.put('%s/%s/%s?multipart-manifest=put' % (url, container,
                                                            name),
                        data=json.dumps(manifest), headers=h)


def not_stored(conn, container, name):
    with pytest.raises(ClientException) as e:
        conn.head_object(container, name)
    return e.value.http_status == 404


def test_info_advertises_slo_and_dlo(proxy):
    info = requests.get(proxy + '/info').json()
    assert info['slo']['max_manifest_segments'] == MAX_SEGMENTS
    assert info['slo']['max_manifest_size'] == 8388608
    assert info['slo']['min_segment_size'] >= 1
    assert info['slo']['max_nesting_depth'] == MAX_DEPTH
    assert 'dlo' in info


def test_slo_put_get_head_and_etag(conn):
    segs = segments(conn, 'slo1', [100, 200, 50])
    resp = put_manifest(conn, 'slo1', 'big', manifest_of('slo1', segs),
                        {'Content-Type': 'text/x-big', 'X-Object-Meta-Color':
                         'blue'})
    assert resp.status_code == 201, resp.text
    expected_etag = md5(''.join(e for _, _, e in segs).encode())
    assert resp.headers['Etag'] == '"%s"' % expected_etag
    whole = b''.join(d for _, d, _ in segs)
    headers = conn.head_object('slo1', 'big')
    assert headers['content-length'] == str(len(whole))
    assert headers['etag'] == '"%s"' % expected_etag
    assert headers['x-static-large-object'].lower() == 'true'
    assert headers['x-object-meta-color'] == 'blue'
    headers, body = conn.get_object('slo1', 'big')
    assert body == whole
    assert headers['content-type'] == 'text/x-big'
    # the raw manifest, in the stored and in the PUT form
    _, raw = conn.get_object('slo1', 'big',
                             query_string='multipart-manifest=get')
    stored = json.loads(raw)
    assert [s['name'] for s in stored] == ['/slo1/' + n for n, _, _ in segs]
    assert [s['bytes'] for s in stored] == [100, 200, 50]
    _, raw = conn.get_object('slo1', 'big',
                             query_string='multipart-manifest=get&format=raw')
    assert json.loads(raw) == [dict(m, path='/' + m['path'])
                               for m in manifest_of('slo1', segs)]


def test_slo_ranges_across_segments(conn):
    segs = segments(conn, 'slo2', [10, 10, 10])
    assert put_manifest(conn, 'slo2', 'm', manifest_of('slo2', segs)) \
        .status_code == 201
    whole = b''.join(d for _, d, _ in segs)
    url, h = auth(conn)
    for spec, want in (('5-24', whole[5:25]), ('-7', whole[-7:]),
                       ('25-', whole[25:]), ('0-0', whole[:1])):
        r = requests.get(url + '/slo2/m', headers=dict(h, Range='bytes='
                                                         + spec))
        assert r.status_code == 206, spec
        assert r.content == want, spec
        assert r.headers['Content-Range'].endswith('/30')
    r = requests.get(url + '/slo2/m', headers=dict(h, Range='bytes=30-'))
    assert r.status_code == 416
    assert r.headers['Content-Range'] == 'bytes */30'
    r = requests.get(url + '/slo2/m', headers=dict(h, Range='bytes=1-2,'
                                                   '18-21'))
    assert r.status_code == 206
    assert r.headers['Content-Type'].startswith('multipart/byteranges')
    assert whole[1:3] in r.content and whole[18:22] in r.content


def test_slo_segment_ranges_and_conditions(conn):
    segs = segments(conn, 'slo3', [10, 10])
    manifest = manifest_of('slo3', segs)
    manifest[0]['range'] = '2-5'
    manifest[1]['range'] = '-3'
    resp = put_manifest(conn, 'slo3', 'm', manifest)
    assert resp.status_code == 201, resp.text
    etag = md5(('%s:2-5;%s:7-9;' % (segs[0][2], segs[1][2])).encode())
    assert resp.headers['Etag'] == '"%s"' % etag
    headers, body = conn.get_object('slo3', 'm')
    assert body == segs[0][1][2:6] + segs[1][1][7:]
    url, h = auth(conn)
    assert requests.get(url + '/slo3/m', headers=dict(
        h, **{'If-None-Match': '"%s"' % etag})).status_code == 304
    assert requests.get(url + '/slo3/m', headers=dict(
        h, **{'If-Match': '"nope"'})).status_code == 412
    r = requests.get(url + '/slo3/m', headers=dict(h, **{'If-Match': etag}))
    assert r.status_code == 200 and r.content == body


def test_nested_slo_and_nesting_loop(conn):
    segs = segments(conn, 'slo4', [5, 6, 7])
    assert put_manifest(conn, 'slo4', 'inner',
                        manifest_of('slo4', segs[:2])).status_code == 201
    inner = conn.head_object('slo4', 'inner')
    outer = [{'path': 'slo4/inner', 'etag': inner['etag'].strip('"'),
              'size_bytes': 11},
             manifest_of('slo4', segs[2:])[0]]
    resp = put_manifest(conn, 'slo4', 'outer', outer)
    assert resp.status_code == 201, resp.text
    _, body = conn.get_object('slo4', 'outer')
    assert body == b''.join(d for _, d, _ in segs)
    url, h = auth(conn)
    r = requests.get(url + '/slo4/outer', headers=dict(h, Range='bytes=3-8'))
    assert r.content == body[3:9]
    # a loop: 'inner' rewritten to name 'outer', which names 'inner'
    loop = [{'path': 'slo4/outer', 'etag': None, 'size_bytes': None}]
    assert put_manifest(conn, 'slo4', 'inner', loop).status_code == 201
    r = requests.get(url + '/slo4/outer', headers=h)
    assert r.status_code == 409
    assert 'inner' in r.text


def test_nesting_beyond_the_limit_is_refused(conn):
    segs = segments(conn, 'slo8', [4])
    below = manifest_of('slo8', segs)
    for level in range(1, MAX_DEPTH + 1):
        resp = put_manifest(conn, 'slo8', 'level%d' % level, below)
        assert resp.status_code == 201, (level, resp.text)
        below = [{'path': 'slo8/level%d' % level, 'etag': None,
                  'size_bytes': 4}]
    resp = put_manifest(conn, 'slo8', 'toodeep', below)
    assert resp.status_code == 400
    assert 'recursion depth' in resp.text
    assert not_stored(conn, 'slo8', 'toodeep')
    _, body = conn.get_object('slo8', 'level%d' % MAX_DEPTH)
    assert body == segs[0][1]


def test_bad_manifests_are_400_and_store_nothing(conn):
    segs = segments(conn, 'slo5', [10, 10])
    good = manifest_of('slo5', segs)
    url, h = auth(conn)
    cases = {
        'notjson': ('{not json', 'valid JSON'),
        'empty': ([], 'at least one segment'),
        'missing': ([dict(good[0], path='slo5/nothing-here')] + good[1:],
                    '404'),
        'size': ([dict(good[0], size_bytes=11)] + good[1:], 'Size Mismatch'),
        'etag': ([dict(good[0], etag='0' * 32)] + good[1:], 'Etag Mismatch'),
        'badkey': ([dict(good[0], colour='red')], 'extraneous'),
        'badrange': ([dict(good[0], range='5-2')], 'invalid range'),
    }
    for name, (manifest, reason) in cases.items():
        body = manifest if isinstance(manifest, str) else json.dumps(manifest)
        r = requests.put('%s/slo5/%s?multipart-manifest=put' % (url, name),
                         data=body, headers=h)
        assert r.status_code == 400, (name, r.text)
        assert reason in r.text, (name, r.text)
        assert not_stored(conn, 'slo5', name)
    too_many = good[:1] * (MAX_SEGMENTS + 1)
    r = put_manifest(conn, 'slo5', 'toomany', too_many)
    assert r.status_code == 413 and 'segments' in r.text
    assert not_stored(conn, 'slo5', 'toomany')
    # per-segment errors are listed, as JSON when asked
    r = put_manifest(conn, 'slo5', 'both', [
        dict(good[0], size_bytes=1), dict(good[1], path='slo5/gone')],
        {'Accept': 'application/json'})
    assert r.status_code == 400
    assert sorted(e[1] for e in r.json()['Errors']) == [
        '404 Not Found', 'Size Mismatch']
    # the reserved header without the query is refused
    r = requests.put(url + '/slo5/sneaky', data=b'x', headers=dict(
        h, **{'X-Static-Large-Object': 'true'}))
    assert r.status_code == 400
    assert not_stored(conn, 'slo5', 'sneaky')
    # a wrong ETag for the whole manifest: 422, nothing stored
    r = put_manifest(conn, 'slo5', 'wrongetag', good, {'Etag': '0' * 32})
    assert r.status_code == 422
    assert not_stored(conn, 'slo5', 'wrongetag')


def test_changed_segment_cuts_the_body_short(conn, proxy_server):
    segs = segments(conn, 'slo6', [100, 100])
    assert put_manifest(conn, 'slo6', 'm', manifest_of('slo6', segs)) \
        .status_code == 201
    conn.put_object('slo6', segs[1][0], b'z' * 100)
    url, h = auth(conn)
    r = requests.get(url + '/slo6/m', headers=h, stream=True)
    assert r.status_code == 200
    got = b''
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in r.iter_content(1024):
            got += chunk
    assert len(got) < 200 and segs[1][1][:1] not in got
    assert 'slo6/seg/001 has ETag' in proxy_server.read_log()
    # a changed first segment is found before the status goes out
    conn.put_object('slo6', segs[0][0], b'z' * 100)
    r = requests.get(url + '/slo6/m', headers=h)
    assert r.status_code == 409


def test_multipart_manifest_delete(conn):
    segs = segments(conn, 'slo7', [3, 4])
    assert put_manifest(conn, 'slo7', 'm', manifest_of('slo7', segs)) \
        .status_code == 201
    url, h = auth(conn)
    r = requests.delete(url + '/slo7/m?multipart-manifest=delete',
                        headers=dict(h, Accept='application/json'))
    assert r.status_code == 200
    result = r.json()
    assert result['Number Deleted'] == 3
    assert result['Errors'] == []
    _, listing = conn.get_container('slo7')
    assert listing == []


def test_dlo_get_head_range_and_self_prefix(conn):
    segs = segments(conn, 'dlo1', [7, 8, 9], prefix='parts/')
    conn.put_object('dlo1', 'parts', b'',
                    headers={'X-Object-Manifest': 'dlo1/parts'})
    whole = b''.join(d for _, d, _ in segs)
    headers = conn.head_object('dlo1', 'parts')
    # the manifest is listed under its own prefix: an empty segment
    etag = md5((md5(b'') + ''.join(e for _, _, e in segs)).encode())
    assert headers['content-length'] == str(len(whole))
    assert headers['etag'] == '"%s"' % etag
    headers, body = conn.get_object('dlo1', 'parts')
    assert body == whole
    url, h = auth(conn)
    r = requests.get(url + '/dlo1/parts', headers=dict(h,
                                                       Range='bytes=5-16'))
    assert r.status_code == 206 and r.content == whole[5:17]
    r = requests.get(url + '/dlo1/parts?multipart-manifest=get', headers=h)
    assert r.status_code == 200 and r.content == b''
    assert r.headers['X-Object-Manifest'] == 'dlo1/parts'
    r = requests.put(url + '/dlo1/bad', data=b'', headers=dict(
        h, **{'X-Object-Manifest': 'no-slash'}))
    assert r.status_code == 400
    assert not_stored(conn, 'dlo1', 'bad')


def test_swiftclient_segmented_upload_round_trip(conn, tmp_path):
    """What `swift upload --use-slo -S` writes reads back whole."""
    import subprocess
    import sys
    data = os.urandom(300 * 1024)
    src = tmp_path / 'file.bin'
    src.write_bytes(data)
    swift_cli = os.path.join(os.path.dirname(sys.executable), 'swift')
    if not os.path.exists(swift_cli):
        pytest.skip('no swift command line')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('ST_', 'OS_'))}
    base = [swift_cli, '-A', conn.authurl, '-U', 'test:tester', '-K',
            'testing']
    for mode in (['--use-slo'], []):
        name = 'slo' if mode else 'dlo'
        done = subprocess.run(
            base + ['upload', 'cli', str(src), '--object-name', name,
                    '-S', str(100 * 1024)] + mode,
            cwd=tmp_path, env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        headers, body = conn.get_object('cli', name)
        assert body == data, name
        out = tmp_path / ('out-' + name)
        done = subprocess.run(base + ['download', 'cli', name, '-o',
                                      str(out)],
                              cwd=tmp_path, env=env, capture_output=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == data
    # `swift delete` of the SLO removes its segments too
    done = subprocess.run(base + ['delete', 'cli', 'slo'], cwd=tmp_path,
                          env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    _, listing = conn.get_container('cli_segments')
    assert not [o for o in listing if o['name'].startswith('slo/')]
    assert [o['name'] for o in conn.get_container('cli')[1]] == ['dlo']


def test_post_keeps_an_slo_large(conn):
    segs = segments(conn, 'slo9', [3, 3])
    assert put_manifest(conn, 'slo9', 'm', manifest_of('slo9', segs)) \
        .status_code == 201
    conn.post_object('slo9', 'm', {'X-Object-Meta-Tag': 'new',
                                   'X-Static-Large-Object': 'false'})
    headers, body = conn.get_object('slo9', 'm')
    assert body == b'AAABBB'
    assert headers['x-object-meta-tag'] == 'new'


def test_segments_are_read_with_the_clients_rights(conn, proxy):
    segs = segments(conn, 'acl-segs', [4, 4])
    conn.put_container('acl-man', headers={'X-Container-Read': 'test:tester3'})
    assert put_manifest(conn, 'acl-man', 'm', manifest_of('acl-segs', segs)) \
        .status_code == 201
    other = swift.Connection(proxy + '/auth/v1.0', 'test:tester3',
                             'testing3', retries=0)
    with pytest.raises(ClientException) as e:
        other.get_object('acl-man', 'm')
    assert e.value.http_status == 403
    conn.post_container('acl-segs', {'X-Container-Read': 'test:tester3'})
    _, body = other.get_object('acl-man', 'm')
    assert body == b'AAAABBBB'
    # and a manifest may not name segments its writer cannot read
    conn.post_container('acl-man', {'X-Container-Write': 'test:tester3'})
    conn.post_container('acl-segs', {'X-Container-Read': ''})
    url = conn.url + '/acl-man/theirs?multipart-manifest=put'
    r = requests.put(url, data=json.dumps(manifest_of('acl-segs', segs)),
                     headers={'X-Auth-Token': other.get_auth()[1]})
    assert r.status_code == 400 and '403' in r.text
    assert not_stored(conn, 'acl-man', 'theirs')


def test_slo_listing_shows_the_large_object_and_sysmeta_stays_hidden(conn):
    segs = segments(conn, 'slo10', [4, 6])
    resp = put_manifest(conn, 'slo10', 'big', manifest_of('slo10', segs))
    assert resp.status_code == 201
    expected_etag = md5(''.join(e for _, _, e in segs).encode())
    _, raw = conn.get_object('slo10', 'big',
                             query_string='multipart-manifest=get')
    headers = conn.head_object('slo10', 'big')
    assert headers['content-length'] == '10'
    assert headers['etag'] == '"%s"' % expected_etag
    assert not [k for k in headers if 'sysmeta' in k]
    conn.post_object('slo10', 'big', {'X-Object-Meta-Tag': 'after'})
    for query in ({}, {'prefix': 'big'}):
        _, listing = conn.get_container('slo10', **query)
        row, = [r for r in listing if r['name'] == 'big']
        assert row['bytes'] == 10
        assert row['hash'] == md5(raw)
        assert row['slo_etag'] == '"%s"' % expected_etag
    url, h = auth(conn)
    xml = requests.get('%s/slo10?format=xml' % url, headers=h).text
    assert '<slo_etag>"%s"</slo_etag>' % expected_etag in xml
    headers = conn.head_object('slo10', 'big')
    assert headers['content-length'] == '10'
    assert headers['x-object-meta-tag'] == 'after'
    # a client cannot forge the system metadata that makes an SLO
    url, h = auth(conn)
    resp = requests.put('%s/slo10/fake' % url, data=b'[]', headers=dict(
        h, **{'X-Object-Sysmeta-Slo': 'True',
              'X-Object-Sysmeta-Slo-Size': '999'}))
    assert resp.status_code == 201
    headers, body = conn.get_object('slo10', 'fake')
    assert body == b'[]' and headers['content-length'] == '2'
