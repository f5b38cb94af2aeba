"""Legacy object versioning through a real proxy over the aio cluster.

The all-in-one proxy runs versioned_writes (before symlink); everything
is done with python-swiftclient, as a user would.
"""
import json
import uuid

import pytest
import requests


swiftclient = pytest.importorskip('swiftclient.client')
ClientException = pytest.importorskip('swiftclient.exceptions') \
    .ClientException

DELETE_MARKER = 'application/x-deleted;swift_versions_deleted=1'


@pytest.fixture(scope='module')
def proxy(aio_cluster):
    """The all-in-one proxy, which runs versioned_writes."""
    assert 'versioned_writes' in requests.get(aio_cluster['url'] +
                                              '/info').json()
    return aio_cluster['url']


@pytest.fixture(scope='module')
def auth(proxy):
    return swiftclient.get_auth(proxy + '/auth/v1.0', 'test:tester',
                                'testing')


def _containers(auth, header):
    url, token = auth
    suffix = uuid.uuid4().hex[:8]
    current, archive = 'cur-' + suffix, 'arc-' + suffix
    swiftclient.put_container(url, token, archive)
    swiftclient.put_container(url, token, current, headers={header: archive})
    return url, token, current, archive


@pytest.fixture
def stack(auth):
    return _containers(auth, 'X-Versions-Location')


@pytest.fixture
def history(auth):
    return _containers(auth, 'X-History-Location')


def _names(url, token, container):
    _, listing = swiftclient.get_container(url, token, container)
    return [row['name'] for row in listing]


def _body(url, token, container, name):
    return swiftclient.get_object(url, token, container, name)[1]


def _status(call, *args, **kwargs):
    with pytest.raises(ClientException) as err:
        call(*args, **kwargs)
    return err.value.http_status


def test_info(proxy):
    info = requests.get(proxy + '/info').json()
    assert sorted(info['versioned_writes']['allowed_flags']) == [
        'x-history-location', 'x-versions-location']


def test_container_headers(stack, history):
    url, token, current, archive = stack
    headers = swiftclient.head_container(url, token, current)
    assert headers['x-versions-location'] == archive
    assert 'x-history-location' not in headers
    assert not any(k.startswith('x-container-sysmeta') for k in headers)
    url, token, current, archive = history
    headers = swiftclient.head_container(url, token, current)
    assert headers['x-history-location'] == archive
    assert 'x-versions-location' not in headers
    # switching modes, then off with X-Remove-*
    swiftclient.post_container(url, token, current,
                               {'X-Versions-Location': archive})
    headers = swiftclient.head_container(url, token, current)
    assert headers['x-versions-location'] == archive
    assert 'x-history-location' not in headers
    swiftclient.post_container(url, token, current,
                               {'X-Remove-Versions-Location': 'x'})
    headers = swiftclient.head_container(url, token, current)
    assert 'x-versions-location' not in headers
    # unversioned now: an overwrite archives nothing
    swiftclient.put_object(url, token, current, 'o', b'1')
    swiftclient.put_object(url, token, current, 'o', b'2')
    assert _names(url, token, archive) == []


def test_both_headers_refused(stack):
    url, token, current, archive = stack
    assert _status(swiftclient.post_container, url, token, current,
                   {'X-Versions-Location': archive,
                    'X-History-Location': archive}) == 400
    assert _status(swiftclient.put_container, url, token,
                   'new-' + uuid.uuid4().hex[:8],
                   headers={'X-Versions-Location': archive,
                            'X-History-Location': archive}) == 400
    assert _status(swiftclient.post_container, url, token, current,
                   {'X-Versions-Location': 'a/b'}) == 412
    # the setting is what it was
    headers = swiftclient.head_container(url, token, current)
    assert headers['x-versions-location'] == archive


def test_stack_versions_and_restore(stack):
    url, token, current, archive = stack
    for body in (b'v1', b'v2', b'v3', b'v4'):
        swiftclient.put_object(url, token, current, 'obj', body,
                               content_type='text/x-%s' % body.decode(),
                               headers={'X-Object-Meta-Body': body.decode()})
    names = _names(url, token, archive)
    assert len(names) == 3
    assert all(n.startswith('003obj/') for n in names)
    assert [_body(url, token, archive, n) for n in names] == \
        [b'v1', b'v2', b'v3']
    headers = swiftclient.head_object(url, token, archive, names[0])
    assert headers['content-type'] == 'text/x-v1'
    assert headers['x-object-meta-body'] == 'v1'
    assert _body(url, token, current, 'obj') == b'v4'
    # each DELETE brings the previous version back
    for expected in (b'v3', b'v2', b'v1'):
        swiftclient.delete_object(url, token, current, 'obj')
        headers, body = swiftclient.get_object(url, token, current, 'obj')
        assert body == expected
        assert headers['x-object-meta-body'] == expected.decode()
        assert headers['content-type'] == 'text/x-%s' % expected.decode()
    assert _names(url, token, archive) == []
    swiftclient.delete_object(url, token, current, 'obj')
    assert _status(swiftclient.get_object, url, token, current, 'obj') == 404
    assert _status(swiftclient.delete_object, url, token, current,
                   'obj') == 404


def test_history_delete_markers(history):
    url, token, current, archive = history
    swiftclient.put_object(url, token, current, 'doc', b'one')
    swiftclient.put_object(url, token, current, 'doc', b'two')
    swiftclient.delete_object(url, token, current, 'doc')
    assert _status(swiftclient.get_object, url, token, current, 'doc') == 404
    _, listing = swiftclient.get_container(url, token, archive)
    assert [row['name'][:7] for row in listing] == ['003doc/'] * 3
    assert [_body(url, token, archive, row['name'])
            for row in listing[:2]] == [b'one', b'two']
    assert listing[2]['content_type'] == DELETE_MARKER
    assert listing[2]['bytes'] == 0
    assert listing[0]['name'] < listing[1]['name'] < listing[2]['name']


def test_stack_delete_after_history_marker(auth):
    """A container switched from history to stack mode: a DELETE undoes
    the history-mode delete (the version before the marker comes back,
    the marker goes)."""
    url, token, current, archive = _containers(auth, 'X-History-Location')
    swiftclient.put_object(url, token, current, 'x', b'old')
    swiftclient.delete_object(url, token, current, 'x')
    swiftclient.post_container(url, token, current,
                               {'X-Versions-Location': archive})
    swiftclient.delete_object(url, token, current, 'x')
    assert _body(url, token, current, 'x') == b'old'
    assert _names(url, token, archive) == []


def test_missing_archive_container(auth):
    url, token = auth
    current = 'cur-' + uuid.uuid4().hex[:8]
    swiftclient.put_container(url, token, current,
                              headers={'X-Versions-Location': 'nowhere-' +
                                       uuid.uuid4().hex[:8]})
    swiftclient.put_object(url, token, current, 'o', b'first')
    # the first write has nothing to archive; an overwrite cannot archive
    assert _status(swiftclient.put_object, url, token, current, 'o',
                   b'second') == 412
    assert _body(url, token, current, 'o') == b'first'
    # a DELETE has no versions to restore: the object goes
    swiftclient.delete_object(url, token, current, 'o')
    assert _status(swiftclient.get_object, url, token, current, 'o') == 404


def test_large_object_manifest_archived(stack):
    url, token, current, archive = stack
    swiftclient.put_object(url, token, current, 'seg/1', b'a' * 10)
    swiftclient.put_object(url, token, current, 'seg/2', b'b' * 10)
    manifest = [{'path': '/%s/seg/1' % current},
                {'path': '/%s/seg/2' % current}]
    swiftclient.put_object(url, token, current, 'big', json.dumps(manifest),
                           query_string='multipart-manifest=put')
    swiftclient.put_object(url, token, current, 'big', b'small')
    names = [n for n in _names(url, token, archive) if n.startswith('003big')]
    assert len(names) == 1
    # the archived copy is the manifest, still a large object
    headers, body = swiftclient.get_object(url, token, archive, names[0])
    assert body == b'a' * 10 + b'b' * 10
    assert headers['x-static-large-object'].lower() == 'true'
    swiftclient.delete_object(url, token, current, 'big')
    assert _body(url, token, current, 'big') == b'a' * 10 + b'b' * 10
    headers, raw = swiftclient.get_object(
        url, token, current, 'big', query_string='multipart-manifest=get')
    assert len(json.loads(raw)) == 2


def test_acl_limited_user(proxy, stack):
    url, token, current, archive = stack
    swiftclient.post_container(url, token, current, {
        'X-Container-Read': 'test:tester3',
        'X-Container-Write': 'test:tester3'})
    swiftclient.put_object(url, token, current, 'shared', b'mine')
    swiftclient.put_object(url, token, current, 'shared', b'mine 2')
    url3, token3 = swiftclient.get_auth(proxy + '/auth/v1.0',
                                        'test:tester3', 'testing3')
    assert _body(url3, token3, current, 'shared') == b'mine 2'
    # no access to the archive: its versions stay out of reach
    assert _status(swiftclient.get_container, url3, token3, archive) == 403
    (name,) = _names(url, token, archive)
    assert _status(swiftclient.get_object, url3, token3, archive,
                   name) == 403
    # and so do writes that would archive or restore
    assert _status(swiftclient.put_object, url3, token3, current, 'shared',
                   b'theirs') == 403
    assert _status(swiftclient.delete_object, url3, token3, current,
                   'shared') == 403
    assert _body(url, token, current, 'shared') == b'mine 2'
    assert _names(url, token, archive) == [name]
    # write access to the archive lets them overwrite (archiving),
    # still without reading the archive
    swiftclient.post_container(url, token, archive,
                               {'X-Container-Write': 'test:tester3'})
    swiftclient.put_object(url3, token3, current, 'shared', b'theirs')
    assert _body(url3, token3, current, 'shared') == b'theirs'
    assert len(_names(url, token, archive)) == 2
    assert _status(swiftclient.get_container, url3, token3, archive) == 403


def test_symlink_archived_as_link(stack):
    url, token, current, archive = stack
    swiftclient.put_object(url, token, current, 'target', b'pointed at')
    swiftclient.put_object(url, token, current, 'link', b'', headers={
        'X-Symlink-Target': '%s/target' % current})
    swiftclient.put_object(url, token, current, 'link', b'plain now')
    (name,) = [n for n in _names(url, token, archive)
               if n.startswith('004link/')]
    headers, body = swiftclient.get_object(url, token, archive, name,
                                           query_string='symlink=get')
    assert body == b''
    assert headers['x-symlink-target'] == '%s/target' % current
    assert _body(url, token, archive, name) == b'pointed at'


def test_bulk_delete_restores_a_link_as_a_link(stack):
    """A bulk delete restores the previous version as a plain DELETE
    does: with its system metadata (the link's target), through the
    same middleware."""
    url, token, current, archive = stack
    swiftclient.put_object(url, token, current, 'target', b'pointed at')
    swiftclient.put_object(url, token, current, 'link', b'', headers={
        'X-Symlink-Target': '%s/target' % current})
    swiftclient.put_object(url, token, current, 'link', b'plain now')
    resp = requests.post('%s?bulk-delete' % url,
                         data=('/%s/link' % current).encode(),
                         headers={'X-Auth-Token': token,
                                  'Accept': 'application/json'})
    assert resp.json()['Number Deleted'] == 1
    headers, body = swiftclient.get_object(url, token, current, 'link',
                                           query_string='symlink=get')
    assert body == b''
    assert headers['x-symlink-target'] == '%s/target' % current
    assert _body(url, token, current, 'link') == b'pointed at'
    assert _names(url, token, archive) == []


def test_unicode_name_and_if_none_match(stack):
    url, token, current, archive = stack
    name = '\u00e9t\u00e9/ob j'
    swiftclient.put_object(url, token, current, name, b'1')
    # If-None-Match: * never overwrites, so nothing is archived
    assert _status(swiftclient.put_object, url, token, current, name, b'2',
                   headers={'If-None-Match': '*'}) == 412
    assert _names(url, token, archive) == []
    swiftclient.put_object(url, token, current, name, b'2')
    assert _names(url, token, archive)[0].startswith('008' + name + '/')
    swiftclient.delete_object(url, token, current, name)
    assert _body(url, token, current, name) == b'1'
