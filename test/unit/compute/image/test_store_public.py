"""ImageStore across accounts: public images, read-only to other accounts.

objstore is stood in for by an in-memory one that applies the rule the
store relies on: an anonymous reader gets into a container only when its
read ACL holds `.r:*` (and lists it only with `.rlistings`), else 401; a
session with a token is the account's owner. The real thing is covered
by test/functional/test_compute_public_images.py.
"""
import hashlib
import io

import pytest

from compute.image import store as store_mod
from compute.image.store import (ImageForbidden, ImageInvalid,
                                 ImageNotFound, ImageStore)
from compute.image.swift import NotFound, SwiftError


class World:
    """Accounts -> containers -> {'acl', 'objects': {name: (headers,
    body)}}; `log` records (account, anonymous, method, container)."""

    def __init__(self):
        self.accounts = {}
        self.log = []

    def session(self, account, anonymous=False):
        return FakeSession(self, account, anonymous)


class FakeSession:
    """The SwiftSession calls ImageStore makes, in memory."""

    def __init__(self, world, account, anonymous):
        self.world, self.account, self.anonymous = world, account, anonymous
        self.closed = False

    def close(self):
        self.closed = True

    def _container(self, method, container, listing=False):
        self.world.log.append((self.account, self.anonymous, method,
                               container))
        found = self.world.accounts.get(self.account, {}).get(container)
        if self.anonymous:
            acl = (found or {}).get('acl') or ''
            if method not in ('GET', 'HEAD') or '.r:*' not in acl or \
                    (listing and '.rlistings' not in acl):
                raise SwiftError(401, 'anonymous refused')
        if found is None:
            raise NotFound(404, 'no container %s' % container)
        return found

    def put_container(self, container, headers=None):
        if self.anonymous:
            raise SwiftError(401, 'anonymous refused')
        containers = self.world.accounts.setdefault(self.account, {})
        entry = containers.setdefault(container, {'acl': None,
                                                  'objects': {}})
        if headers and 'X-Container-Read' in headers:
            entry['acl'] = headers['X-Container-Read']
        return {}

    def put_object(self, container, name, body, headers=None,
                   content_length=None):
        objects = self._container('PUT', container)['objects']
        data = body if isinstance(body, bytes) else b''.join(body)
        etag = hashlib.md5(data).hexdigest()
        objects[name] = (dict(headers or {}, Etag=etag), data)
        return {'Etag': etag}

    def post_object(self, container, name, headers):
        objects = self._container('POST', container)['objects']
        if name not in objects:
            raise NotFound(404, 'no object')
        old, data = objects[name]
        kept = {k: v for k, v in old.items()
                if not k.lower().startswith('x-object-meta-')}
        objects[name] = (dict(kept, **headers), data)
        return {}

    def head_object(self, container, name):
        objects = self._container('HEAD', container)['objects']
        if name not in objects:
            raise NotFound(404, 'no object')
        return dict(objects[name][0])

    def get_object(self, container, name, chunk_size=65536):
        objects = self._container('GET', container)['objects']
        if name not in objects:
            raise NotFound(404, 'no object')
        headers, data = objects[name]

        def chunks():
            for i in range(0, len(data), chunk_size):
                yield data[i:i + chunk_size]
        return dict(headers), chunks()

    def delete_object(self, container, name):
        objects = self._container('DELETE', container)['objects']
        if objects.pop(name, None) is None:
            raise NotFound(404, 'no object')

    def list_objects(self, container, prefix=None, page_size=None):
        objects = self._container('GET', container, listing=True)['objects']
        return iter([{'name': n} for n in sorted(objects)
                     if not prefix or n.startswith(prefix)])


@pytest.fixture
def world():
    return World()


def store_of(world, account, others=(), **kw):
    """`account`'s store seeing the public images of `others`."""
    return ImageStore(world.session(account), others=[
        ImageStore(world.session(o, anonymous=True)) for o in others], **kw)


def upload(store, data=b'disk bytes', **props):
    props = dict({'name': 'img', 'disk_format': 'raw',
                  'container_format': 'bare'}, **props)
    return store.upload(io.BytesIO(data), props, size=len(data))


@pytest.fixture
def test_images(world):
    """AUTH_test's store and its public and private image."""
    own = store_of(world, 'AUTH_test')
    return own, upload(own, b'pub', visibility='public'), \
        upload(own, b'priv')


def test_public_and_private_go_to_their_containers(world, test_images):
    own, pub, priv = test_images
    containers = world.accounts['AUTH_test']
    assert list(containers['images_public']['objects']) == [pub['id']]
    assert list(containers['images']['objects']) == [priv['id']]
    assert containers['images_public']['acl'] == store_mod.PUBLIC_READ_ACL
    assert containers['images_public_segments']['acl'] == \
        store_mod.PUBLIC_READ_ACL
    assert containers['images']['acl'] is None
    assert containers['images_segments']['acl'] is None
    assert own.show(pub['id'])['visibility'] == 'public'
    assert own.show(priv['id'])['visibility'] == 'private'
    assert {i['id'] for i in own.list()} == {pub['id'], priv['id']}


def test_owner_is_where_the_image_is_not_what_was_asked(world):
    own = store_of(world, 'AUTH_test')
    image = upload(own, owner='AUTH_victim')
    assert image['owner'] == 'AUTH_test'
    assert own.show(image['id'])['owner'] == 'AUTH_test'


def test_other_account_sees_only_public(world, test_images):
    _own, pub, priv = test_images
    other = store_of(world, 'AUTH_test2', others=['AUTH_test'])
    mine = upload(other, b'mine')
    listed = {i['id']: i for i in other.list()}
    assert set(listed) == {pub['id'], mine['id']}
    assert listed[pub['id']]['owner'] == 'AUTH_test'
    assert listed[mine['id']]['owner'] == 'AUTH_test2'
    assert other.show(pub['id'])['owner'] == 'AUTH_test'
    assert b''.join(other.open(pub['id'])) == b'pub'
    with pytest.raises(ImageNotFound):
        other.show(priv['id'])
    with pytest.raises(ImageNotFound):
        other.open(priv['id'])
    assert [i['id'] for i in other.list({'owner': 'AUTH_test'})] == [
        pub['id']]


def test_other_account_never_tries_the_private_container(world,
                                                         test_images):
    _own, _pub, priv = test_images
    other = store_of(world, 'AUTH_test2', others=['AUTH_test'])
    del world.log[:]
    with pytest.raises(ImageNotFound):
        other.show(priv['id'])
    other.list()
    assert ('AUTH_test', True, 'HEAD', 'images') not in world.log
    assert not [e for e in world.log
                if e[0] == 'AUTH_test' and e[3] == 'images']


def test_only_the_owner_deletes(world, test_images):
    own, pub, priv = test_images
    other = store_of(world, 'AUTH_test2', others=['AUTH_test'])
    with pytest.raises(ImageForbidden) as info:
        other.delete(pub['id'])
    assert 'AUTH_test' in str(info.value)
    with pytest.raises(ImageNotFound):
        other.delete(priv['id'])
    assert own.show(pub['id'])['id'] == pub['id']
    own.delete(pub['id'])
    own.delete(priv['id'])
    assert own.list() == [] and other.list() == []


def test_account_without_public_images_is_just_empty(world):
    """Anonymous reads of a container that does not exist are refused
    (401), which must read as "nothing there", not as an error."""
    other = store_of(world, 'AUTH_test2', others=['AUTH_nobody'])
    assert other.list() == []
    with pytest.raises(ImageNotFound):
        other.show('6f1c4c5e-3d4c-4a8e-9a53-8d0f1b3c2a11')


def test_anonymous_store_reads_public_images(world, test_images):
    """What an agent does for another account's image: no token."""
    _own, pub, priv = test_images
    anon = ImageStore(world.session('AUTH_test', anonymous=True))
    assert anon.show(pub['id'])['owner'] == 'AUTH_test'
    assert b''.join(anon.open(pub['id'])) == b'pub'
    with pytest.raises(ImageNotFound):
        anon.show(priv['id'])
    assert [i['id'] for i in anon.list()] == [pub['id']]


def test_segmented_public_image_readable_by_others(world):
    own = store_of(world, 'AUTH_test', segment_size=4)
    data = b'0123456789'
    image = upload(own, data, visibility='public')
    segments = world.accounts['AUTH_test']['images_public_segments']
    assert len(segments['objects']) == 3
    other = store_of(world, 'AUTH_test2', others=['AUTH_test'])
    assert b''.join(other.open(image['id'])) == data
    own.delete(image['id'])
    assert segments['objects'] == {}


def test_public_image_must_name_public_kernel(world):
    own = store_of(world, 'AUTH_test')
    private_kernel = upload(own, b'k', disk_format='aki',
                            container_format='aki')
    public_kernel = upload(own, b'k', disk_format='aki',
                           container_format='aki', visibility='public')
    with pytest.raises(ImageInvalid, match='private'):
        upload(own, disk_format='ami', container_format='ami',
               visibility='public', kernel_id=private_kernel['id'])
    machine = upload(own, disk_format='ami', container_format='ami',
                     visibility='public', kernel_id=public_kernel['id'])
    assert machine['kernel_id'] == public_kernel['id']
    # a private image may name either
    assert upload(own, disk_format='ami', container_format='ami',
                  kernel_id=private_kernel['id'])['kernel_id'] == \
        private_kernel['id']


def test_kernel_of_another_account_cannot_be_named(world, test_images):
    own = store_of(world, 'AUTH_test')
    kernel = upload(own, b'k', disk_format='aki', container_format='aki',
                    visibility='public')
    other = store_of(world, 'AUTH_test2', others=['AUTH_test'])
    assert other.show(kernel['id'])['owner'] == 'AUTH_test'
    with pytest.raises(ImageInvalid, match='no such image'):
        upload(other, disk_format='ami', container_format='ami',
               kernel_id=kernel['id'])


def test_show_with_owner_looks_only_there(world, test_images):
    _own, pub, _priv = test_images
    other = store_of(world, 'AUTH_test2', others=['AUTH_test'])
    assert other.show(pub['id'], owner='AUTH_test')['id'] == pub['id']
    with pytest.raises(ImageNotFound):
        other.show(pub['id'], owner='AUTH_test2')


def test_close_closes_every_session(world):
    other = store_of(world, 'AUTH_test2', others=['AUTH_test', 'AUTH_x'])
    other.close()
    assert other.session.closed
    assert all(o.session.closed for o in other.others)
