"""AgentManager on a real libvirt test driver, a real ImageCache and real
qemu-img.

Each test gets its own test:///TMP/node.xml connection (isolated state,
no daemon). The image store is `DictStoreForAgent`, a tiny in-test object
with the two calls the cache makes (show, open), as in
test_image_cache.py; the agent against the real ImageStore and objstore
is in test/functional/test_compute_agent.py. The API client is
`RecordingApiClient`, which only records the events the agent reports
(the compute API's side of that exchange is tested with the API).
"""
import base64
import hashlib
import io
import json
import os
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ET

import pytest

libvirt = pytest.importorskip('libvirt')
pycdlib = pytest.importorskip('pycdlib')

from compute.agent import manager as mgr  # noqa: E402
from compute.agent.image_cache import ImageCache  # noqa: E402
from compute.image.store import ImageNotFound  # noqa: E402
from compute.image.swift import SwiftError  # noqa: E402
from compute.virt.driver import PowerState  # noqa: E402
from compute.virt.libvirt_driver import LibvirtDriver  # noqa: E402

NODE_XML = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores>
       <threads>1</threads><mhz>1000</mhz><model>x86_64</model></cpu>
  <memory>%d</memory>
</node>
""" % (8 * 1024 * 1024)
GIB = 1024 ** 3
STORAGE_URL = 'http://127.0.0.1:1/v1/AUTH_test'


class DictStoreForAgent:
    """Images from a dict, through show() and open() like ImageStore.

    `tokens` records the (storage_url, token) each store was made for;
    `lie_about[id]` makes show() report a checksum the bytes do not have.
    """

    def __init__(self):
        self.data, self.props = {}, {}
        self.tokens = []
        self.lie_about = set()

    def add(self, data, disk_format='raw'):
        image_id = str(uuid.uuid4())
        self.data[image_id] = data
        self.props[image_id] = {
            'id': image_id, 'name': 'img', 'size': len(data),
            'checksum': hashlib.md5(data).hexdigest(),
            'disk_format': disk_format, 'container_format':
            disk_format if disk_format in ('aki', 'ari', 'ami') else 'bare',
            'status': 'active'}
        return dict(self.props[image_id])

    def factory(self, storage_url, token):
        self.tokens.append((storage_url, token))
        return self

    def show(self, image_id):
        if image_id not in self.props:
            raise ImageNotFound('no image %s' % image_id)
        props = dict(self.props[image_id])
        if image_id in self.lie_about:
            props['checksum'] = '0' * 32
        return props

    def open(self, image_id, verify=True):
        data = self.data[image_id]
        return iter([data[i:i + 4096] for i in range(0, len(data), 4096)])


class RecordingApiClient:
    """Records the agent's reports; `fail` makes the next ones fail the
    way SignedClient does when the API is down."""

    def __init__(self):
        self.requests = []
        self.fail = False

    def request(self, method, path, json_body=None):
        if self.fail:
            raise ConnectionError('API down')
        self.requests.append((method, path, json_body))
        return 200, {}


@pytest.fixture
def driver(tmp_path):
    node = tmp_path / 'node.xml'
    node.write_text(NODE_XML)
    drv = LibvirtDriver('test://' + str(node),
                        instances_path=str(tmp_path / 'agent'))
    yield drv
    drv.close()


@pytest.fixture
def cache(tmp_path):
    return ImageCache(str(tmp_path / 'agent' / 'image-cache'))


@pytest.fixture
def store():
    return DictStoreForAgent()


@pytest.fixture
def api():
    return RecordingApiClient()


@pytest.fixture
def manager(driver, cache, store, api, tmp_path):
    return mgr.AgentManager(driver, cache, str(tmp_path / 'agent'), 'host-a',
                            api_client=api, store_factory=store.factory,
                            stop_timeout=0.05)


def qcow2_bytes(tmp_path, size='1M', backing=None):
    """A real (empty) qcow2 image's bytes, made with qemu-img."""
    path = tmp_path / ('q-%s.qcow2' % uuid.uuid4().hex[:6])
    argv = ['qemu-img', 'create', '-q', '-f', 'qcow2']
    if backing:
        argv += ['-b', backing, '-F', 'raw']
    subprocess.run(argv + [str(path), size], check=True)
    return path.read_bytes()


def payload(image, flavor=None, **extra):
    instance_uuid = extra.pop('uuid', None) or str(uuid.uuid4())
    body = {'uuid': instance_uuid, 'name': 'My Server 1',
            'domain_name': 'instance-' + instance_uuid,
            'flavor': flavor or {'name': 'm1.tiny', 'vcpus': 1,
                                 'ram_mb': 128, 'disk_gb': 1},
            'image': image, 'kernel': None, 'ramdisk': None,
            'storage_url': STORAGE_URL, 'token': 'AUTH_tk123',
            'user_data': None, 'metadata': {}, 'key_name': None,
            'public_key': None}
    body.update(extra)
    return body


def domains(driver):
    """Every domain on the connection, ours or not."""
    return sorted(d.name() for d in driver._conn.listAllDomains(0))


def domain_xml(driver, name):
    return ET.fromstring(driver._conn.lookupByName(name).XMLDesc(0))


def cache_listing(cache):
    """Images and records in the cache (locks and `users` aside)."""
    return sorted(n for n in os.listdir(cache.directory)
                  if n != 'users' and not n.startswith('.'))


def assert_nothing_left(manager, driver, cache, *image_ids):
    """The promise of a failed spawn: no domain, no dir, no cache ref."""
    assert domains(driver) == []
    assert os.listdir(manager.instances_dir) == []
    for image_id in image_ids:
        assert cache.users(image_id) == []
    assert os.listdir(os.path.join(cache.directory, 'users')) == []


def read_iso(path, rr_path):
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path=rr_path)
        return out.getvalue()
    finally:
        iso.close()


def qemu_info(path):
    out = subprocess.run(['qemu-img', 'info', '-U', '--output=json', path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


# --- spawn -------------------------------------------------------------------

def test_spawn_builds_every_file_and_runs_the_domain(manager, driver, cache,
                                                     store, tmp_path):
    image = store.add(qcow2_bytes(tmp_path), 'qcow2')
    user_data = b'#cloud-config\nruncmd: [echo hi]\n'
    body = payload(image, user_data=base64.b64encode(user_data).decode(),
                   key_name='mykey', public_key='ssh-ed25519 AAAA me@here',
                   metadata={'role': 'web'})
    assert manager.spawn(body) == {'power_state': 'running'}

    name, inst_dir = body['domain_name'], manager._dir(body['uuid'])
    assert driver.list_instances() == [name]
    assert driver.get_power_state(name) is PowerState.RUNNING
    assert sorted(os.listdir(inst_dir)) == [
        'config.iso', 'console.log', 'disk.qcow2', 'instance.json']
    # the overlay is backed by the cached image and grown to the flavor
    info = qemu_info(os.path.join(inst_dir, 'disk.qcow2'))
    assert info['format'] == 'qcow2'
    assert info['backing-filename'] == cache.path(image['id'])
    assert info['backing-filename-format'] == 'qcow2'
    assert info['virtual-size'] == 1 * GIB
    # the config drive carries what cloud-init needs
    iso = os.path.join(inst_dir, 'config.iso')
    meta = json.loads(read_iso(iso, '/openstack/latest/meta_data.json'))
    assert meta['uuid'] == body['uuid']
    assert meta['name'] == 'My Server 1'
    assert meta['hostname'] == 'my-server-1'
    assert meta['public_keys'] == {'mykey': 'ssh-ed25519 AAAA me@here'}
    assert meta['meta'] == {'role': 'web'}
    assert read_iso(iso, '/openstack/latest/user_data') == user_data
    # the domain uses those files; no kernel: it boots its disk
    root = domain_xml(driver, name)
    disks = {d.get('device'): d.find('source').get('file')
             for d in root.findall('devices/disk')}
    assert disks == {'disk': os.path.join(inst_dir, 'disk.qcow2'),
                     'cdrom': iso}
    assert root.find('devices/serial/source').get('path') == \
        os.path.join(inst_dir, 'console.log')
    assert root.find('os/kernel') is None
    # the image was fetched with the user's own token; the ref is held
    assert store.tokens == [(STORAGE_URL, 'AUTH_tk123')]
    assert cache.users(image['id']) == [body['uuid']]


def test_spawn_with_kernel_and_ramdisk_boots_them_directly(manager, driver,
                                                           cache, store):
    image = store.add(b'\0' * 65536, 'ami')
    kernel = store.add(b'kernel bytes', 'aki')
    ramdisk = store.add(b'ramdisk bytes', 'ari')
    body = payload(image, kernel=kernel, ramdisk=ramdisk)
    manager.spawn(body)

    root = domain_xml(driver, body['domain_name'])
    assert root.findtext('os/kernel') == cache.path(kernel['id'])
    assert root.findtext('os/initrd') == cache.path(ramdisk['id'])
    assert root.findtext('os/cmdline') == 'console=ttyS0 root=/dev/vda'
    info = qemu_info(os.path.join(manager._dir(body['uuid']), 'disk.qcow2'))
    assert info['backing-filename-format'] == 'raw'   # ami is raw
    for img in (image, kernel, ramdisk):
        assert cache.users(img['id']) == [body['uuid']]


def test_two_instances_share_one_cached_image(manager, cache, store):
    image = store.add(b'\1' * 8192)
    first, second = payload(image), payload(image)
    manager.spawn(first)
    manager.spawn(second)
    assert cache.users(image['id']) == sorted([first['uuid'],
                                               second['uuid']])
    assert cache_listing(cache) == sorted([image['id'],
                                           image['id'] + '.json'])


BAD_PAYLOADS = {
    'upper-case uuid': dict(uuid=str(uuid.uuid4()).upper()),
    'uuid not a uuid': dict(uuid='../../etc'),
    'domain name with a slash': dict(domain_name='a/b'),
    'no name': dict(name=''),
    'zero vcpus': dict(flavor={'name': 'x', 'vcpus': 0, 'ram_mb': 64,
                               'disk_gb': 1}),
    'ram as text': dict(flavor={'name': 'x', 'vcpus': 1, 'ram_mb': '64',
                                'disk_gb': 1}),
    'disk as bool': dict(flavor={'name': 'x', 'vcpus': 1, 'ram_mb': 64,
                                 'disk_gb': True}),
    'absurd vcpus': dict(flavor={'name': 'x', 'vcpus': 10 ** 9,
                                 'ram_mb': 64, 'disk_gb': 1}),
    'flavor missing': dict(flavor='m1.tiny'),
    'user data over 64 KiB': dict(user_data=base64.b64encode(
        b'x' * (64 * 1024 + 1)).decode()),
    'user data not base64': dict(user_data='not base64!'),
    'metadata not strings': dict(metadata={'a': 1}),
    'storage url not http': dict(storage_url='file:///etc'),
    'token missing': dict(token=''),
    'ramdisk without kernel': dict(ramdisk={
        'id': str(uuid.uuid4()), 'disk_format': 'ari'}),
    'kernel of the wrong format': dict(kernel={
        'id': str(uuid.uuid4()), 'disk_format': 'raw'}),
}


@pytest.mark.parametrize('case', sorted(BAD_PAYLOADS))
def test_bad_input_is_refused_before_anything_is_made(case, manager, driver,
                                                      cache, store):
    image = store.add(b'\0' * 4096)
    body = payload(image)
    body.update(BAD_PAYLOADS[case])
    with pytest.raises(mgr.BadRequest) as err:
        manager.spawn(body)
    assert err.value.status == 400
    assert '\n' not in err.value.message
    assert_nothing_left(manager, driver, cache, image['id'])
    assert store.tokens == []   # not even a store was made
    assert cache_listing(cache) == []


def test_user_data_of_exactly_64_kib_is_accepted(manager, store):
    image = store.add(b'\0' * 4096)
    data = base64.b64encode(os.urandom(64 * 1024)).decode()
    assert manager.spawn(payload(image, user_data=data))['power_state'] == \
        'running'


@pytest.mark.parametrize('fmt,what', [('aki', 'kernel'), ('ari', 'ramdisk')])
def test_kernel_or_ramdisk_is_no_machine_image(fmt, what, manager, driver,
                                               cache, store):
    image = store.add(b'boot bytes', fmt)
    with pytest.raises(mgr.BadRequest) as err:
        manager.spawn(payload(image))
    assert 'not a bootable machine image' in err.value.message
    assert what in err.value.message
    assert_nothing_left(manager, driver, cache, image['id'])


def test_unknown_image_fails_and_leaves_nothing(manager, driver, cache,
                                                store):
    image = {'id': str(uuid.uuid4()), 'disk_format': 'raw'}
    with pytest.raises(mgr.BadRequest) as err:
        manager.spawn(payload(image))
    assert 'no image' in err.value.message
    assert_nothing_left(manager, driver, cache, image['id'])
    assert cache_listing(cache) == []


def test_checksum_mismatch_fails_and_leaves_nothing(manager, driver, cache,
                                                    store):
    image = store.add(b'\2' * 10000)
    store.lie_about.add(image['id'])
    with pytest.raises(mgr.AgentError) as err:
        manager.spawn(payload(image))
    assert 'md5' in err.value.message
    assert err.value.status == 400
    assert_nothing_left(manager, driver, cache, image['id'])
    assert cache.path(image['id']) is None
    assert cache_listing(cache) == []


def test_unreachable_objstore_is_502_and_leaves_nothing(manager, driver,
                                                        cache, store,
                                                        monkeypatch):
    image = store.add(b'\0' * 4096)

    def unreachable(image_id):
        raise SwiftError(None, 'HEAD x: cannot reach objstore: refused')
    monkeypatch.setattr(store, 'show', unreachable)
    with pytest.raises(mgr.UpstreamError) as err:
        manager.spawn(payload(image))
    assert err.value.status == 502
    assert 'cannot reach objstore' in err.value.message
    assert_nothing_left(manager, driver, cache, image['id'])


def test_failed_kernel_fetch_releases_the_machine_image_too(
        manager, driver, cache, store):
    image = store.add(b'\0' * 4096, 'ami')
    kernel = {'id': str(uuid.uuid4()), 'disk_format': 'aki'}  # not stored
    with pytest.raises(mgr.BadRequest):
        manager.spawn(payload(image, kernel=kernel))
    assert_nothing_left(manager, driver, cache, image['id'], kernel['id'])
    # the machine image stays cached (unused, for expiry) but nobody uses it
    assert cache.path(image['id']) is not None
    assert not cache.in_use(image['id'])


def test_image_larger_than_the_flavor_disk_is_refused(manager, driver, cache,
                                                      store, tmp_path):
    image = store.add(qcow2_bytes(tmp_path, size='2G'), 'qcow2')
    with pytest.raises(mgr.BadRequest) as err:
        manager.spawn(payload(image))   # m1.tiny: 1 GiB
    assert 'only 1 GiB' in err.value.message
    assert_nothing_left(manager, driver, cache, image['id'])


def test_qcow2_naming_a_backing_file_is_refused(manager, driver, cache,
                                                store, tmp_path):
    secret = tmp_path / 'host-secret.raw'
    secret.write_bytes(b'secret')
    image = store.add(qcow2_bytes(tmp_path, backing=str(secret)), 'qcow2')
    with pytest.raises(mgr.BadRequest) as err:
        manager.spawn(payload(image))
    assert 'backing file' in err.value.message
    assert_nothing_left(manager, driver, cache, image['id'])


def test_raw_bytes_claiming_qcow2_fail_cleanly(manager, driver, cache,
                                               store):
    image = store.add(b'this is not a qcow2 image' * 100, 'qcow2')
    with pytest.raises(mgr.AgentError) as err:
        manager.spawn(payload(image))
    assert 'qemu-img' in err.value.message
    assert_nothing_left(manager, driver, cache, image['id'])


def test_driver_failure_leaves_nothing(manager, driver, cache, store,
                                       monkeypatch):
    image = store.add(b'\0' * 4096)

    def broken_define(xml):
        raise libvirt.libvirtError('no room for you')
    monkeypatch.setattr(driver._conn, 'defineXML', broken_define)
    with pytest.raises(mgr.AgentError) as err:
        manager.spawn(payload(image))
    assert err.value.status == 500
    assert 'no room for you' in err.value.message
    assert_nothing_left(manager, driver, cache, image['id'])


def test_duplicate_uuid_is_409_and_keeps_the_first(manager, driver, cache,
                                                   store):
    image = store.add(b'\0' * 4096)
    body = payload(image)
    manager.spawn(body)
    with pytest.raises(mgr.Conflict) as err:
        manager.spawn(body)
    assert err.value.status == 409
    assert driver.get_power_state(body['domain_name']) is PowerState.RUNNING
    assert cache.users(image['id']) == [body['uuid']]
    assert os.path.isfile(os.path.join(manager._dir(body['uuid']),
                                       'disk.qcow2'))


def test_domain_name_taken_by_another_is_409_and_not_destroyed(
        manager, driver, cache, store):
    image = store.add(b'\0' * 4096)
    first = payload(image)
    manager.spawn(first)
    second = payload(image, domain_name=first['domain_name'])
    with pytest.raises(mgr.Conflict):
        manager.spawn(second)
    assert driver.get_power_state(first['domain_name']) is \
        PowerState.RUNNING
    assert manager.instance_uuids() == [first['uuid']]
    assert cache.users(image['id']) == [first['uuid']]


# --- actions ----------------------------------------------------------------

@pytest.fixture
def running(manager, store):
    body = payload(store.add(b'\0' * 4096))
    manager.spawn(body)
    return body


def test_stop_start_reboot(manager, driver, running):
    uid, name = running['uuid'], running['domain_name']
    assert manager.action(uid, 'stop') == {'power_state': 'shutoff'}
    assert driver.get_power_state(name) is PowerState.SHUTOFF
    assert manager.power_state(uid) is PowerState.SHUTOFF
    assert manager.action(uid, 'start') == {'power_state': 'running'}
    assert manager.action(uid, 'reboot') == {'power_state': 'running'}
    assert manager.action(uid, 'reboot_hard') == {'power_state': 'running'}
    manager.stop(uid)
    assert manager.reboot_hard(uid) == {'power_state': 'running'}


def test_unknown_action_and_unknown_instance(manager, running):
    with pytest.raises(mgr.BadRequest):
        manager.action(running['uuid'], 'explode')
    with pytest.raises(mgr.NotFound):
        manager.action(str(uuid.uuid4()), 'stop')
    with pytest.raises(mgr.BadRequest):
        manager.action('not-a-uuid', 'stop')
    with pytest.raises(mgr.NotFound):
        manager.console_log(str(uuid.uuid4()))


def test_destroy_removes_everything_and_is_idempotent(manager, driver, cache,
                                                      running):
    image_id = running['image']['id']
    manager.destroy(running['uuid'])
    assert_nothing_left(manager, driver, cache, image_id)
    assert cache.path(image_id) is not None   # cached for the next boot
    manager.destroy(running['uuid'])           # again: fine
    manager.destroy(str(uuid.uuid4()))         # never existed: fine
    with pytest.raises(mgr.BadRequest):
        manager.destroy('../x')


def test_destroy_of_a_stopped_instance(manager, driver, cache, running):
    manager.stop(running['uuid'])
    manager.destroy(running['uuid'])
    assert_nothing_left(manager, driver, cache, running['image']['id'])


def test_list_and_capacity(manager, driver, running, cache, tmp_path):
    assert manager.list() == [{'uuid': running['uuid'],
                               'power_state': 'running'}]
    cap = manager.capacity()
    assert (cap['vcpus'], cap['ram_mb']) == (4, 8 * 1024)
    assert cap['hypervisor_type'] == 'test'
    other = mgr.AgentManager(driver, cache, str(tmp_path / 'other'), 'b',
                             capacity_overrides={'vcpus': 2, 'ram_mb': 1024,
                                                 'disk_gb': None})
    cap = other.capacity()
    assert (cap['vcpus'], cap['ram_mb']) == (2, 1024)
    assert cap['disk_gb'] == manager.capacity()['disk_gb']
    # an agent sharing the libvirt connection sees only its own instances
    assert other.list() == []
    other.destroy(running['uuid'])   # not its instance: nothing happens
    assert driver.get_power_state(running['domain_name']) is \
        PowerState.RUNNING


def test_console_log_tail(manager, running):
    uid = running['uuid']
    assert manager.console_log(uid, 5) == ''
    path = os.path.join(manager._dir(uid), 'console.log')
    with open(path, 'ab') as f:
        f.write(b''.join(b'line %d\n' % i for i in range(1, 101)))
        f.write(b'bad byte \xff at the end\n')
    assert manager.console_log(uid, 2) == \
        'line 100\nbad byte \ufffd at the end\n'
    assert manager.console_log(uid).startswith('line 1\nline 2\n')
    assert manager.console_log(uid, 0) == ''
    with pytest.raises(mgr.BadRequest):
        manager.console_log(uid, -1)
    with pytest.raises(mgr.BadRequest):
        manager.console_log(uid, mgr.MAX_CONSOLE_LINES + 1)


# --- power sync ---------------------------------------------------------------

def test_guest_stopped_from_inside_is_reported_once(manager, driver, api,
                                                    running):
    uid, name = running['uuid'], running['domain_name']
    assert manager.sync_power_states() == []
    driver.power_off(name, graceful=False)   # behind the manager's back
    assert manager.sync_power_states() == [(uid, 'powered_off')]
    assert api.requests == [('POST', '/internal/events',
                             {'uuid': uid, 'event': 'powered_off',
                              'power_state': 'shutoff', 'host': 'host-a'})]
    assert manager.sync_power_states() == []
    driver.power_on(name)
    assert manager.sync_power_states() == [(uid, 'powered_on')]
    assert len(api.requests) == 2


def test_our_own_actions_are_not_reported(manager, api, running):
    manager.stop(running['uuid'])
    manager.sync_power_states()
    manager.start(running['uuid'])
    manager.sync_power_states()
    assert api.requests == []


def test_failed_report_is_retried(manager, driver, api, running):
    driver.power_off(running['domain_name'], graceful=False)
    api.fail = True
    assert manager.sync_power_states() == []
    api.fail = False
    assert manager.sync_power_states() == [(running['uuid'], 'powered_off')]


def test_sync_skips_an_instance_with_an_action_in_flight(manager, driver,
                                                         api, running):
    driver.power_off(running['domain_name'], graceful=False)
    held, release = threading.Event(), threading.Event()

    def hold_lock():
        with manager._locks.hold(running['uuid']):
            held.set()
            release.wait(10)
    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert held.wait(10)
        assert manager.sync_power_states() == []
    finally:
        release.set()
        thread.join()
    assert manager.sync_power_states() == [(running['uuid'], 'powered_off')]


def test_stopped_guest_found_after_restart_is_reported(driver, cache, store,
                                                       api, running,
                                                       tmp_path):
    driver.power_off(running['domain_name'], graceful=False)
    restarted = mgr.AgentManager(driver, cache, str(tmp_path / 'agent'),
                                 'host-a', api_client=api,
                                 store_factory=store.factory)
    assert restarted.sync_power_states() == [(running['uuid'],
                                              'powered_off')]


def test_failed_fetch_leaves_not_even_a_lock_file(manager, cache):
    image = {'id': str(uuid.uuid4()), 'disk_format': 'raw'}
    with pytest.raises(mgr.BadRequest):
        manager.spawn(payload(image))
    assert os.listdir(cache.directory) == ['users']


def test_spawn_without_token_reads_the_owners_account_anonymously(
        manager, driver, store):
    """Another account's public image: the API sends the owner's storage
    URL and no token; the agent's store is made with exactly that."""
    image = store.add(b'\3' * 4096)
    owner_url = 'http://127.0.0.1:1/v1/AUTH_owner'
    body = payload(image, storage_url=owner_url, token=None)
    assert manager.spawn(body) == {'power_state': 'running'}
    assert store.tokens == [(owner_url, None)]
    assert driver.list_instances() == [body['domain_name']]


def test_default_store_factory_without_token_is_anonymous():
    store = mgr.default_store_factory('http://127.0.0.1:1/v1/AUTH_o', None)
    try:
        assert store.session.anonymous
        assert store.account == 'AUTH_o'
    finally:
        store.close()
