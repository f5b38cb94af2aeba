"""Issue 8's bad input that the other large-object tests leave out.

Each refused request gets a clear 4xx and leaves what was stored before
untouched: a refused manifest does not replace an object already under
its name, a refused archive member is not stored, a truncated archive
leaves no half-written object, a refused segmented upload sends no
segment. The rest of issue 8's "Bad input" list is covered beside the
feature it attacks: test_large_objects.py (manifests that are not JSON,
missing segments, wrong size or ETag, too many segments, nesting beyond
the limit, SLO loops, a DLO covering itself), test_symlink_bulk.py
(symlink loops, absolute and '..' archive members beside good ones).

Runs against the `aio_cluster` proxy (the default pipeline and limits).
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid

import pytest
import requests


def md5(data):
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope='module')
def info(aio_cluster):
    return requests.get(aio_cluster['url'] + '/info').json()


@pytest.fixture(scope='module')
def account(aio_cluster):
    resp = requests.get(aio_cluster['auth_url'], headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
    assert resp.status_code == 200
    return resp.headers['X-Storage-Url'], {
        'X-Auth-Token': resp.headers['X-Auth-Token']}


class Api:
    """requests as test:tester in a container of the test's own."""

    def __init__(self, account):
        self.url, self.headers = account
        self.c = 'bad-' + uuid.uuid4().hex[:8]
        assert self.put('', b'').status_code in (201, 202)

    def _url(self, name, query=''):
        path = '%s/%s' % (self.url, self.c)
        if name:
            path += '/' + name
        return path + ('?' + query if query else '')

    def put(self, name, data, query='', **headers):
        return requests.put(self._url(name, query), data=data,
                            headers=dict(self.headers, **headers))

    def get(self, name, query='', **headers):
        return requests.get(self._url(name, query),
                            headers=dict(self.headers, **headers))

    def names(self):
        resp = self.get('', 'format=json')
        assert resp.status_code == 200, resp.text
        return [row['name'] for row in resp.json()]

    def manifest(self, name, entries, **headers):
        return self.put(name, json.dumps(entries), 'multipart-manifest=put',
                        **headers)

    def segment(self, name, data):
        assert self.put(name, data).status_code == 201
        return {'path': '%s/%s' % (self.c, name), 'etag': md5(data),
                'size_bytes': len(data)}


@pytest.fixture
def api(account):
    return Api(account)


def assert_clear_4xx(resp, status, words):
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert words in resp.text, resp.text
    assert 'Traceback' not in resp.text


# -- /info ---------------------------------------------------------------------

def test_info_advertises_every_issue8_middleware(info):
    """Issue 8's middleware and the rest of the all-in-one pipeline
    (Swift does not advertise its gatekeeper; ours does, harmlessly)."""
    for name in ('slo', 'dlo', 'symlink', 'bulk_delete', 'bulk_upload',
                 'versioned_writes', 'copy', 's3api', 'tempauth'):
        assert name in info, (name, sorted(info))
    assert info['slo']['max_manifest_segments'] >= 1
    assert info['symlink']['symloop_max'] >= 1
    assert info['bulk_upload']['max_failed_extractions'] >= 1


# -- static large objects ----------------------------------------------------------

def test_refused_manifest_leaves_the_object_under_its_name(api):
    """A manifest PUT that fails validation does not replace (or
    remove) an object already stored under the manifest's name."""
    old = b'the object before'
    assert api.put('m', old).status_code == 201
    good = [api.segment('s0', b'a' * 10), api.segment('s1', b'b' * 10)]
    bad = {
        'size': ([dict(good[0], size_bytes=9), good[1]], 'Size Mismatch'),
        'etag': ([good[0], dict(good[1], etag=md5(b'x'))], 'Etag Mismatch'),
        'missing': ([dict(good[0], path=api.c + '/gone')], '404'),
    }
    for case, (manifest, words) in bad.items():
        assert_clear_4xx(api.manifest('m', manifest), 400, words)
        got = api.get('m')
        assert got.content == old, case
        assert 'X-Static-Large-Object' not in got.headers
    assert_clear_4xx(api.put('m', b'{not json', 'multipart-manifest=put'),
                     400, 'valid JSON')
    assert api.get('m').content == old


def test_manifest_naming_itself_is_refused(api):
    assert api.put('self', b'plain').status_code == 201
    entry = api.segment('other', b'o' * 5)
    resp = api.manifest('self', [entry, {'path': api.c + '/self',
                                         'etag': md5(b'plain'),
                                         'size_bytes': 5}])
    assert_clear_4xx(resp, 400, 'itself')
    assert api.get('self').content == b'plain'


def test_too_many_segments_at_the_advertised_limit(api, info):
    """Swift answers 413 (Request Entity Too Large) for more segments
    than max_manifest_segments; exactly the limit is accepted."""
    limit = info['slo']['max_manifest_segments']
    entry = api.segment('one', b'1')
    resp = api.manifest('toomany', [entry] * (limit + 1))
    assert_clear_4xx(resp, 413, str(limit))
    assert api.get('toomany').status_code == 404
    resp = api.manifest('enough', [entry] * limit)
    assert resp.status_code == 201, resp.text
    assert api.get('enough').content == b'1' * limit


def test_manifest_body_over_the_size_limit_is_413(api, info):
    limit = info['slo']['max_manifest_size']
    body = b'[' + b' ' * limit + b']'
    resp = api.put('huge', body, 'multipart-manifest=put')
    assert_clear_4xx(resp, 413, 'Manifest File')
    assert api.get('huge').status_code == 404


def test_empty_segments_and_bad_ranges_are_refused(api):
    empty = api.segment('seg-empty', b'')
    full = api.segment('seg-full', b'f' * 10)
    cases = {
        'm-empty': ([full, empty], 'at least 1 byte'),
        'm-outside': ([dict(full, range='20-30')], 'Unsatisfiable Range'),
        'm-garbage': ([dict(full, range='bytes=1-2,4-5')], 'range'),
    }
    for name, (manifest, words) in cases.items():
        assert_clear_4xx(api.manifest(name, manifest), 400, words)
        assert api.get(name).status_code == 404, name
    assert sorted(api.names()) == ['seg-empty', 'seg-full']


# -- dynamic large objects -------------------------------------------------------

def test_dlo_manifests_naming_each_other_do_not_loop(api):
    """Segments are read as stored, never expanded again: two manifests
    whose prefixes cover each other answer at once, each with the other
    (an empty object) as its only segment."""
    assert api.put('a', b'', **{'X-Object-Manifest':
                                api.c + '/b'}).status_code == 201
    assert api.put('b', b'', **{'X-Object-Manifest':
                                api.c + '/a'}).status_code == 201
    for name in ('a', 'b'):
        resp = api.get(name)
        assert resp.status_code == 200 and resp.content == b''
        assert resp.headers['Etag'] == '"%s"' % md5(md5(b'').encode())
    # a manifest whose prefix covers itself and real segments
    api.put('self/1', b'one')
    api.put('self/2', b'two')
    assert api.put('self', b'', **{'X-Object-Manifest':
                                   api.c + '/self'}).status_code == 201
    assert api.get('self').content == b'onetwo'


def test_dlo_manifest_header_must_name_container_and_prefix(api):
    assert api.put('kept', b'k').status_code == 201
    for value in ('nocontainer', '/', '%FF/x'):
        resp = api.put('kept', b'', **{'X-Object-Manifest': value})
        assert resp.status_code == 400, (value, resp.text)
        assert 'Traceback' not in resp.text
    assert api.get('kept').content == b'k'


# -- symlinks -------------------------------------------------------------------

def test_symlink_to_itself_is_refused_and_chains_stop(api, info):
    assert api.put('me', b'data').status_code == 201
    resp = api.put('me', b'', **{'X-Symlink-Target': api.c + '/me'})
    assert_clear_4xx(resp, 400, 'itself')
    assert api.get('me').content == b'data'
    # a chain one link longer than symloop_max: 409, each link intact
    hops = info['symlink']['symloop_max'] + 1
    for i in range(hops):
        assert api.put('hop%d' % i, b'', **{
            'X-Symlink-Target': '%s/hop%d' % (api.c, i + 1)}).status_code \
            == 201
    assert api.put('hop%d' % hops, b'end').status_code == 201
    assert_clear_4xx(api.get('hop0'), 409, 'symbolic links')
    assert api.get('hop1').content == b'end'
    # a link to a link that points back
    api.put('x', b'', **{'X-Symlink-Target': api.c + '/y'})
    api.put('y', b'', **{'X-Symlink-Target': api.c + '/x'})
    assert_clear_4xx(api.get('x'), 409, 'symbolic links')
    assert api.get('x', 'symlink=get').status_code == 200


# -- archives -------------------------------------------------------------------

def tar_bytes(members, mode='w'):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members:
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return buf.getvalue()


def extract(api, body, fmt, container=True):
    url = '%s/%s' % (api.url, api.c) if container else api.url
    resp = requests.put(url + '?extract-archive=' + fmt, data=body,
                        headers=dict(api.headers, Accept='application/json'))
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize('fmt,mode', [('tar', 'w'), ('tar.gz', 'w:gz'),
                                      ('tar.bz2', 'w:bz2')])
def test_archive_escaping_paths_store_nothing(api, fmt, mode):
    bad = ['/etc/passwd', '../up', 'a/../../b', './../x', 'a/./b', 'a/..']
    body = tar_bytes([(name, b'evil') for name in bad], mode)
    result = extract(api, body, fmt)
    assert result['Number Files Created'] == 0
    assert result['Response Status'] == '400 Bad Request'
    assert sorted(status for _, status in result['Errors']) == \
        ['400 Bad Request'] * len(bad)
    assert api.names() == []
    # to the account: '..' cannot name (or escape to) a container either
    result = extract(api, tar_bytes([('../%s/o' % api.c, b'x'),
                                     ('/%s/o' % api.c, b'y')], mode),
                     fmt, container=False)
    assert result['Number Files Created'] == 0
    assert result['Response Status'] == '400 Bad Request'
    assert api.names() == []


def test_truncated_archive_leaves_no_partial_object(api):
    data = os.urandom(300000)
    whole = tar_bytes([('first', b'1'), ('big', data)], 'w:gz')
    result = extract(api, whole[:len(whole) // 2], 'tar.gz')
    assert result['Response Body'].startswith('Invalid Tar File'), result
    # the cut member is reported as a client-side (4xx) failure
    assert [(name.rsplit('/', 1)[-1], status[0]) for name, status in
            result['Errors']] == [('big', '4')], result
    assert result['Response Status'].startswith('4'), result
    assert 'big' not in api.names()
    assert api.get('big').status_code == 404
    # the member before the cut was complete and is stored
    assert api.get('first').content == b'1'
    # the same archive whole is fine
    result = extract(api, whole, 'tar.gz')
    assert result['Number Files Created'] == 2
    assert api.get('big').content == data


# -- the command line ------------------------------------------------------------

def test_cli_refuses_too_many_segments_before_sending_any(aio_cluster, api,
                                                          info, tmp_path):
    limit = info['slo']['max_manifest_segments']
    (tmp_path / 'f.bin').write_bytes(b'z' * (limit + 1))
    proc = subprocess.run(
        [sys.executable, '-m', 'objstore.cli.client.main',
         '-A', aio_cluster['auth_url'], '-U', 'test:tester', '-K', 'testing',
         'upload', api.c, 'f.bin', '--segment-size', '1'],
        capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
        env={k: v for k, v in os.environ.items()
             if not k.startswith(('ST_', 'OS_', 'SWIFTCLIENT_'))})
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        'objstore: error: ')
    assert '--segment-size' in proc.stderr
    assert api.names() == []
    resp = requests.get('%s/%s_segments' % (api.url, api.c),
                        headers=api.headers)
    assert resp.status_code in (204, 404) or resp.text == ''


def test_no_traceback_in_the_logs(aio_cluster):
    """Every refusal above was an answer, never a crash: no server of
    this module's cluster logged a traceback. (Runs last in the file.)"""
    log_dir = os.path.join(aio_cluster['var'], 'log')
    for name in sorted(os.listdir(log_dir)):
        with open(os.path.join(log_dir, name), 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
        assert 'Traceback' not in text, (name, text[-3000:])
