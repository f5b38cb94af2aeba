"""Public images across accounts, through the compute CLI.

A real aio cluster, compute-api and one agent on libvirt's test driver.
test:tester uploads a public and a private image (and a public machine
image with its kernel and ramdisk); test2:tester2 sees and boots only the
public ones, read by the agent anonymously from test's public container,
and may neither delete them nor see the private one.
"""
import importlib.util
import io
import os

import pytest
import requests

from test.conftest import free_port

pytest.importorskip('libvirt')


def _load(name):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        name + '.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


system = _load('compute_system')


@pytest.fixture(scope='module')
def cloud(aio_cluster):
    """compute-api plus one test:///default agent; yields
    (cluster, CLI env of test:tester, CLI env of test2:tester2)."""
    from compute import aio as compute_aio
    var = aio_cluster['var']
    api_port = free_port()
    compute_aio.setup(var, out=io.StringIO(), api_port=api_port,
                      agent_port=free_port())
    owner = system.cli_env(aio_cluster, api_port)
    other = dict(owner, ST_USER='test2:tester2', ST_KEY='testing2')
    try:
        system.start_api(var, compute_aio.conf_path(var), api_port)
        port = free_port()
        conf = system.add_agent_conf(var, 'solo', port,
                                     libvirt_uri='test:///default',
                                     heartbeat_interval=0.5)
        system.start_agent(var, conf, 1, port)
        system.wait_for('the host up', lambda: [
            h['name'] for h in system.compute(owner, 'host-list')[1]
            if h['state'] == 'up'] == ['solo'], timeout=30)
        yield aio_cluster, owner, other
    finally:
        system.stop_agent(var, 1)
        compute_aio.stop(var, out=io.StringIO())


@pytest.fixture(scope='module')
def images(cloud, tmp_path_factory):
    """{'public', 'private', 'kernel', 'ramdisk', 'machine'}: images test
    uploaded (dicts as the CLI prints them)."""
    _cluster, owner, _other = cloud
    base = tmp_path_factory.mktemp('images')
    disk = base / 'disk.raw'
    disk.write_bytes(b'\0' * (1 << 20))
    blob = base / 'blob'
    blob.write_bytes(os.urandom(4096))

    def upload(path, name, fmt, cfmt, *extra):
        return system.compute(owner, 'image-upload', str(path), '--name',
                              name, '--disk-format', fmt,
                              '--container-format', cfmt, *extra)[1]
    made = {
        'public': upload(disk, 'pub-disk', 'raw', 'bare', '--public'),
        'private': upload(disk, 'priv-disk', 'raw', 'bare'),
        'kernel': upload(blob, 'pub-kernel', 'aki', 'aki', '--public'),
        'ramdisk': upload(blob, 'pub-ramdisk', 'ari', 'ari', '--public'),
    }
    made['machine'] = upload(disk, 'pub-machine', 'ami', 'ami', '--public',
                             '--kernel-id', made['kernel']['id'],
                             '--ramdisk-id', made['ramdisk']['id'])
    return made


def _listed(env):
    return {i['id']: i for i in system.compute(env, 'image-list')[1]}


def test_owner_sees_both_with_their_visibility(cloud, images):
    _cluster, owner, _other = cloud
    listed = _listed(owner)
    pub, priv = images['public'], images['private']
    assert listed[pub['id']]['visibility'] == 'public'
    assert listed[priv['id']]['visibility'] == 'private'
    assert {listed[pub['id']]['owner'], listed[priv['id']]['owner']} == {
        'AUTH_test'}


def test_public_container_is_world_readable_private_is_not(cloud, images):
    cluster = cloud[0]
    account = cluster['url'].rstrip('/') + '/v1/AUTH_test'
    listing = requests.get(account + '/images_public?format=json',
                           timeout=10)
    assert listing.status_code == 200
    names = {o['name'] for o in listing.json()}
    assert images['public']['id'] in names
    assert images['private']['id'] not in names
    head = requests.head(account + '/images_public/' + images['public']['id'],
                         timeout=10)
    assert head.status_code == 200
    assert requests.get(account + '/images?format=json',
                        timeout=10).status_code == 401
    assert requests.head(account + '/images/' + images['private']['id'],
                         timeout=10).status_code == 401


def test_other_account_lists_and_shows_only_public(cloud, images):
    _cluster, _owner, other = cloud
    listed = _listed(other)
    pub = listed[images['public']['id']]
    assert pub['owner'] == 'AUTH_test' and pub['name'] == 'pub-disk'
    assert images['private']['id'] not in listed
    _, shown, _ = system.compute(other, 'image-show', images['public']['id'])
    assert shown['owner'] == 'AUTH_test'
    assert shown['checksum'] == images['public']['checksum']
    code, _, err = system.compute(other, 'image-show',
                                  images['private']['id'], check=False)
    assert code != 0 and 'no image' in err, err


def test_other_account_cannot_delete_public_image(cloud, images):
    _cluster, owner, other = cloud
    code, _, err = system.compute(other, 'image-delete',
                                  images['public']['id'], check=False)
    assert code != 0 and 'only its owner' in err, err
    code, _, err = system.compute(other, 'image-delete',
                                  images['private']['id'], check=False)
    assert code != 0 and 'no image' in err, err
    assert images['public']['id'] in _listed(owner)
    assert images['private']['id'] in _listed(owner)


def test_other_account_boots_public_image(cloud, images):
    _cluster, _owner, other = cloud
    for name, key in (('borrowed', 'public'), ('borrowed-ami', 'machine')):
        _, server, _ = system.compute(other, 'boot', name, '--image',
                                      images[key]['id'], '--flavor',
                                      'm1.tiny', '--wait')
        assert server['status'] == 'ACTIVE', server
        assert server['image']['id'] == images[key]['id']
    for name in ('borrowed', 'borrowed-ami'):
        system.compute(other, 'delete', name, '--wait')
    assert [s['name'] for s in system.compute(other, 'list')[1]] == []


def test_other_account_cannot_boot_private_image(cloud, images):
    _cluster, _owner, other = cloud
    code, _, err = system.compute(other, 'boot', 'sneaky', '--image',
                                  images['private']['id'], '--flavor',
                                  'm1.tiny', check=False)
    assert code != 0 and 'not found' in err, err
    assert [s['name'] for s in system.compute(other, 'list')[1]] == []


def test_public_image_cannot_name_private_kernel(cloud, images, tmp_path):
    _cluster, owner, _other = cloud
    blob = tmp_path / 'k'
    blob.write_bytes(b'k' * 1024)
    _, kernel, _ = system.compute(owner, 'image-upload', str(blob), '--name',
                                  'priv-kernel', '--disk-format', 'aki',
                                  '--container-format', 'aki')
    code, _, err = system.compute(owner, 'image-upload', str(blob),
                                  '--name', 'bad-machine', '--disk-format',
                                  'ami', '--container-format', 'ami',
                                  '--public', '--kernel-id', kernel['id'],
                                  check=False)
    assert code != 0 and 'private' in err, err
    assert 'bad-machine' not in {i['name'] for i in _listed(owner).values()}


def test_owner_deletes_public_image(cloud, images, tmp_path):
    _cluster, owner, other = cloud
    disk = tmp_path / 'gone.raw'
    disk.write_bytes(b'\1' * 4096)
    _, image, _ = system.compute(owner, 'image-upload', str(disk), '--name',
                                 'short-lived', '--disk-format', 'raw',
                                 '--container-format', 'bare', '--public')
    assert image['id'] in _listed(other)
    system.compute(owner, 'image-delete', image['id'])
    assert image['id'] not in _listed(other)
    assert image['id'] not in _listed(owner)
