"""The image cache against the real ImageStore on an all-in-one cluster.

What is checked is what a host's cache directory ends up holding, and how
many times the image's bytes were read from objstore.
"""
import hashlib
import io
import os
import uuid

import pytest

from compute.agent.image_cache import ImageCache, ImageFetchError
from compute.image import properties as image_props
from compute.image.store import IMAGE_TYPE, ImageChecksumError, ImageStore
from compute.image.swift import SwiftSession

KIB = 1024
DAY = 24 * 3600


class CountingStore:
    """The real store, with its GETs of image bytes counted."""

    def __init__(self, store):
        self.store = store
        self.opens = 0

    def show(self, image_id):
        return self.store.show(image_id)

    def open(self, image_id, verify=True):
        self.opens += 1
        return self.store.open(image_id, verify=verify)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture(scope='module')
def session(aio_cluster):
    s = SwiftSession(aio_cluster['auth_url'], 'test:tester', 'testing')
    yield s
    s.close()


@pytest.fixture
def store(session):
    return CountingStore(ImageStore(session,
                                    container='ic-' + uuid.uuid4().hex[:8]))


def upload(store, data, name='cirros'):
    image = store.store.upload(io.BytesIO(data), {'name': name,
                                                  'disk_format': 'qcow2'})
    return image['id']


def files(directory):
    return sorted(n for n in os.listdir(directory) if n != 'users')


def test_fetch_once_then_hit(store, tmp_path):
    data = os.urandom(300 * KIB)
    image_id = upload(store, data)
    cache = ImageCache(str(tmp_path / 'cache'))

    path = cache.fetch(image_id, store)
    with open(path, 'rb') as f:
        assert hashlib.md5(f.read()).hexdigest() == hashlib.md5(
            data).hexdigest()
    assert store.opens == 1

    assert cache.fetch(image_id, store) == path
    assert store.opens == 1  # the second fetch made no GET
    assert files(cache.directory) == sorted(
        [image_id, image_id + '.json', '.%s.lock' % image_id])


def test_bytes_replaced_behind_the_store(store, session, tmp_path):
    """The object's bytes are overwritten keeping its metadata: a fresh
    cache refuses them and keeps nothing; a cache that verified the
    original bytes earlier still serves those."""
    data = os.urandom(64 * KIB)
    image_id = upload(store, data)
    warm = ImageCache(str(tmp_path / 'warm'))
    warm_path = warm.fetch(image_id, store)

    props = store.show(image_id)
    props.pop('id')
    headers = image_props.to_headers(props)
    headers['Content-Type'] = IMAGE_TYPE
    evil = os.urandom(64 * KIB)
    session.put_object(store.store.container, image_id, evil, headers,
                       content_length=len(evil))
    assert store.show(image_id)['checksum'] == hashlib.md5(data).hexdigest()

    cold = ImageCache(str(tmp_path / 'cold'))
    with pytest.raises(ImageFetchError) as info:
        cold.fetch(image_id, store)
    assert isinstance(info.value.__cause__, ImageChecksumError)
    assert files(cold.directory) == []
    assert cold.path(image_id) is None

    assert warm.fetch(image_id, store) == warm_path
    with open(warm_path, 'rb') as f:
        assert f.read() == data


def test_expire_after_release(store, tmp_path):
    image_id = upload(store, os.urandom(32 * KIB), name='to-expire')
    clock = Clock(2_000_000.0)
    cache = ImageCache(str(tmp_path / 'cache'), max_unused_age=DAY,
                       clock=clock)
    instance = str(uuid.uuid4())
    cache.acquire(image_id, instance)
    cache.fetch(image_id, store)
    clock.now += 2 * DAY
    assert cache.expire() == []  # in use
    cache.release(image_id, instance)
    clock.now += DAY
    assert cache.expire() == []  # released exactly a day ago
    clock.now += 1
    assert cache.expire() == [image_id]
    assert files(cache.directory) == []
    # gone from the cache only: a new fetch downloads it again
    cache.fetch(image_id, store)
    assert store.opens == 2
