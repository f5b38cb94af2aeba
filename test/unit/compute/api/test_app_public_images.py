"""The compute API with images of other accounts: show, list, delete and
boot of a public image owned elsewhere (the app over a real HTTP server,
images from an in-memory stand-in that behaves like ImageStore does across
accounts; see test/unit/compute/image/test_store_public.py for the store).
"""
import uuid as uuidlib

import pytest

from compute.image.store import ImageForbidden, ImageNotFound
from test.unit.compute.api.test_app import Cloud, error_of, image

PUB_KERNEL = str(uuidlib.uuid4())
PUB_MACHINE = str(uuidlib.uuid4())
PRIVATE = str(uuidlib.uuid4())
OWNER = 'AUTH_test'

STORED = {
    PUB_KERNEL: image(PUB_KERNEL, 'aki', container_format='aki',
                      visibility='public', owner=OWNER),
    PUB_MACHINE: image(PUB_MACHINE, 'ami', container_format='ami',
                       kernel_id=PUB_KERNEL, visibility='public',
                       owner=OWNER),
    PRIVATE: image(PRIVATE, visibility='private', owner=OWNER),
}


class AccountImages:
    """What ImageStore answers to `project`: AUTH_test's images are all
    its own; other accounts see only the public ones, read-only.
    `shows` records (image id, owner argument) of every show()."""

    shows = []

    def __init__(self, project):
        self.project = project

    def _visible(self, image_id, owner=None):
        found = STORED.get(image_id)
        if found is None or (owner and owner != found['owner']) or (
                self.project != OWNER and found['visibility'] != 'public'):
            raise ImageNotFound('no image %s' % image_id)
        return dict(found)

    def show(self, image_id, owner=None):
        self.shows.append((image_id, owner))
        return self._visible(image_id, owner)

    def list(self, filters=None):
        return [dict(i) for i in STORED.values()
                if self.project == OWNER or i['visibility'] == 'public']

    def delete(self, image_id):
        found = self._visible(image_id)
        if found['owner'] != self.project:
            raise ImageForbidden('image %s belongs to %s: only its owner '
                                 'may delete it' % (image_id, OWNER))

    def close(self):
        pass


class PublicCloud(Cloud):
    @staticmethod
    def images(caller):
        return AccountImages(caller.project)


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    AccountImages.shows = []
    c = PublicCloud(tmp_path)
    c.builds = []
    monkeypatch.setattr(c.builder, 'submit_build',
                        lambda uuid, spec: c.builds.append((uuid, spec)))
    yield c
    c.close()


def test_other_account_lists_and_shows_public_with_owner(cloud):
    status, body = cloud.call('GET', '/v2.1/images', user='test2:tester2')
    assert status == 200
    assert {i['id'] for i in body['images']} == {PUB_KERNEL, PUB_MACHINE}
    status, body = cloud.call('GET', '/v2.1/images/' + PUB_MACHINE,
                              user='test2:tester2')
    assert status == 200 and body['image']['owner'] == OWNER


def test_other_accounts_private_image_is_404(cloud):
    status, body = cloud.call('GET', '/v2.1/images/' + PRIVATE,
                              user='test2:tester2')
    assert status == 404 and PRIVATE in error_of(body)


def test_delete_by_non_owner_is_403(cloud):
    status, body = cloud.call('DELETE', '/v2.1/images/' + PUB_MACHINE,
                              user='test2:tester2')
    assert status == 403
    assert 'only its owner' in error_of(body)
    assert cloud.call('DELETE', '/v2.1/images/' + PUB_MACHINE)[0] == 204


def test_boot_of_foreign_public_image_reads_owner_anonymously(cloud):
    status, body = cloud.boot(imageRef=PUB_MACHINE, user='test2:tester2')
    assert status == 202, body
    [(uuid, spec)] = cloud.builds
    assert uuid == body['server']['id']
    assert spec['storage_url'] == 'http://127.0.0.1:1/v1/' + OWNER
    assert spec['token'] is None
    assert spec['kernel']['id'] == PUB_KERNEL
    # the kernel was looked up in the machine image's owner's account
    assert (PUB_KERNEL, OWNER) in AccountImages.shows


def test_owner_boots_own_public_image_with_own_token(cloud):
    status, body = cloud.boot(imageRef=PUB_MACHINE)
    assert status == 202, body
    [(_uuid, spec)] = cloud.builds
    assert spec['storage_url'] == 'http://127.0.0.1:1/v1/' + OWNER
    assert cloud.auth.identify(
        {'HTTP_X_AUTH_TOKEN': spec['token']}).project == OWNER
    assert (PUB_KERNEL, None) in AccountImages.shows


def test_boot_of_other_accounts_private_image_is_400(cloud):
    status, body = cloud.boot(imageRef=PRIVATE, user='test2:tester2')
    assert status == 400
    assert 'image %s not found' % PRIVATE in error_of(body)
    assert cloud.builds == []
    assert cloud.db.list_instances(project='AUTH_test2') == []
