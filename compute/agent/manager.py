"""The compute agent's work on one host, without any HTTP.

The API decides what runs where; the agent makes it so on its host: it
fetches images into the local cache, prepares each instance's files and
asks the hypervisor driver to run, stop or forget the guest. The HTTP
layer (compute/agent/server.py) only decodes requests and maps the
errors raised here to status codes.

Which instances are this agent's: exactly those with a directory under
``state_dir/instances``. Several agents may share one libvirtd (two
"hosts" on one machine in tests), so a domain without a directory of ours
is never touched, and the directory is the one durable record an agent
keeps. Each directory holds:

* ``instance.json`` -- the domain name and the image ids the instance
  holds cache references on, written before anything else is created, so
  a delete after a crash at any point knows what to undo;
* ``disk.qcow2`` -- the copy-on-write root disk over the cached image;
* ``config.iso`` -- the config drive (meta-data and user-data);
* ``console.log`` -- the guest's first serial port.

Spawning is all or nothing: on any failure the domain (if started), the
cache references and the directory are removed before the error is
raised, so the API can record the fault and nothing half-made remains.
"""
import base64
import binascii
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading

from compute.agent.image_cache import ImageFetchError
from compute.image.store import ImageError, ImageStore
from compute.image.swift import SwiftSession
from compute.virt import overlay
from compute.virt.config_drive import MAX_USER_DATA, build_config_drive
from compute.virt.driver import (DriverError, Flavor, ImagePaths, Instance,
                                 InstanceExists, InstanceNotFound,
                                 PowerState)
from rings.atomic import write_atomically

LOG = logging.getLogger(__name__)

INSTANCES_DIR = 'instances'
RECORD_FILE = 'instance.json'
DISK_FILE = 'disk.qcow2'
CONFIG_DRIVE_FILE = 'config.iso'
CONSOLE_LOG_FILE = 'console.log'
KERNEL_CMDLINE = 'console=ttyS0 root=/dev/vda'
GIB = 1024 ** 3

# Upper bounds on a flavor: far above any real host, they only stop
# numbers that would overflow libvirt's or qemu-img's arithmetic.
MAX_VCPUS = 4096
MAX_RAM_MB = 64 * 1024 * 1024
MAX_DISK_GB = 1024 * 1024
MAX_NAME_CHARS = 255
MAX_PUBLIC_KEY_CHARS = 16 * 1024
MAX_METADATA_ITEMS = 128
MAX_FAULT_CHARS = 500
# How much of a console log is read to find its last lines.
CONSOLE_TAIL_BYTES = 1024 * 1024
MAX_CONSOLE_LINES = 100000
ACTIONS = ('stop', 'start', 'reboot', 'reboot_hard')
MACHINE_FORMATS = {'qcow2': 'qcow2', 'raw': 'raw', 'ami': 'raw'}
EVENT_POWERED_OFF = 'powered_off'
EVENT_POWERED_ON = 'powered_on'

_TOKEN_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z')
_CONTROL_RE = re.compile('[\x00-\x1f\x7f]')
_UUID_RE = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                      r'[0-9a-f]{12}\Z')


class AgentError(Exception):
    """A request the agent could not carry out; ``status`` is the HTTP
    status the server answers with, the message one line for a fault."""
    status = 500

    def __init__(self, message):
        super().__init__(one_line(message))
        self.message = str(self)


class BadRequest(AgentError):
    """The request itself is wrong; retrying it cannot help."""
    status = 400


class NotFound(AgentError):
    """No such instance on this host."""
    status = 404


class Conflict(AgentError):
    """The instance (or its domain) already exists on this host."""
    status = 409


class UpstreamError(AgentError):
    """objstore could not be read; the request may work later."""
    status = 502


def one_line(text):
    """Faults are shown in one table cell: no newlines, bounded length."""
    text = ' '.join(str(text).split())
    if len(text) > MAX_FAULT_CHARS:
        text = text[:MAX_FAULT_CHARS - 3] + '...'
    return text


# --- validation of a spawn request ---------------------------------------

def canonical_uuid(value, what='uuid'):
    """``value`` if it is a UUID in canonical form, else BadRequest.

    The canonical form only: the uuid becomes a directory name and the
    API's key, so two spellings of one uuid must not both exist."""
    if not isinstance(value, str) or not _UUID_RE.match(value):
        raise BadRequest('%s must be a lower-case UUID with hyphens, not %r'
                         % (what, value if isinstance(value, str)
                            else type(value).__name__))
    return value


def _text(payload, key, max_chars=MAX_NAME_CHARS, required=True):
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest('%s must be a non-empty string' % key)
    if len(value) > max_chars or _CONTROL_RE.search(value):
        raise BadRequest('%s must be at most %d printable characters'
                         % (key, max_chars))
    return value


def _token(payload, key):
    value = payload.get(key)
    if not isinstance(value, str) or not _TOKEN_RE.match(value):
        raise BadRequest('%s must be 1-64 letters, digits, ".", "_" or "-" '
                         'starting with a letter or digit, not %r'
                         % (key, value))
    return value


def _positive_int(flavor, key, maximum):
    value = flavor.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or \
            not 0 < value <= maximum:
        raise BadRequest('flavor %s must be a whole number from 1 to %d, '
                         'not %r' % (key, maximum, value))
    return value


def _flavor(payload):
    flavor = payload.get('flavor')
    if not isinstance(flavor, dict):
        raise BadRequest('flavor must be an object')
    return Flavor(name=_token(flavor, 'name'),
                  vcpus=_positive_int(flavor, 'vcpus', MAX_VCPUS),
                  ram_mb=_positive_int(flavor, 'ram_mb', MAX_RAM_MB),
                  disk_gb=_positive_int(flavor, 'disk_gb', MAX_DISK_GB))


def _image(payload, key, formats, required=True):
    """An image's properties from the payload: a dict with a UUID id and
    one of ``formats`` as disk_format."""
    image = payload.get(key)
    if image is None and not required:
        return None
    if not isinstance(image, dict):
        raise BadRequest('%s must be an object with the image properties'
                         % key)
    canonical_uuid(image.get('id'), '%s id' % key)
    fmt = image.get('disk_format')
    if fmt not in formats:
        if key == 'image' and fmt in ('aki', 'ari'):
            raise BadRequest('image %s is a %s image (a %s), not a bootable '
                             'machine image' % (image['id'], fmt,
                                                'kernel' if fmt == 'aki'
                                                else 'ramdisk'))
        raise BadRequest('%s %s has disk_format %r; expected %s'
                         % (key, image['id'], fmt, ' or '.join(formats)))
    return image


def _user_data(payload):
    """The decoded user data (bytes) or None; at most 64 KiB decoded."""
    value = payload.get('user_data')
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest('user_data must be a base64 string')
    # checked before decoding, so a huge value is not decoded at all
    if len(value) > (MAX_USER_DATA + 2) // 3 * 4 + 4:
        raise BadRequest('user_data is over %d bytes once decoded'
                         % MAX_USER_DATA)
    try:
        data = base64.b64decode(value.encode('ascii'), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise BadRequest('user_data is not valid base64') from None
    if len(data) > MAX_USER_DATA:
        raise BadRequest('user_data is %d bytes once decoded; the limit is '
                         '%d' % (len(data), MAX_USER_DATA))
    return data


def _metadata(payload):
    value = payload.get('metadata')
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_METADATA_ITEMS:
        raise BadRequest('metadata must be an object of at most %d items'
                         % MAX_METADATA_ITEMS)
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > MAX_NAME_CHARS or \
                len(item) > MAX_NAME_CHARS:
            raise BadRequest('metadata keys and values must be strings of '
                             'at most %d characters' % MAX_NAME_CHARS)
    return dict(value)


def _storage_url(payload):
    value = _text(payload, 'storage_url', max_chars=2048)
    if not value.startswith(('http://', 'https://')):
        raise BadRequest('storage_url must be an http(s) URL')
    return value.rstrip('/')


class SpawnRequest:
    """A checked spawn payload: everything the agent will use, typed."""

    def __init__(self, payload):
        if not isinstance(payload, dict):
            raise BadRequest('the spawn request must be a JSON object')
        self.uuid = canonical_uuid(payload.get('uuid'))
        self.name = _text(payload, 'name')
        self.domain_name = _token(payload, 'domain_name')
        self.flavor = _flavor(payload)
        self.image = _image(payload, 'image', tuple(MACHINE_FORMATS))
        self.kernel = _image(payload, 'kernel', ('aki',), required=False)
        self.ramdisk = _image(payload, 'ramdisk', ('ari',), required=False)
        if self.ramdisk is not None and self.kernel is None:
            raise BadRequest('a ramdisk needs a kernel (direct kernel boot)')
        self.storage_url = _storage_url(payload)
        # no token: another account's public image, read anonymously
        self.token = _text(payload, 'token', max_chars=4096, required=False)
        self.user_data = _user_data(payload)
        self.metadata = _metadata(payload)
        self.key_name = _text(payload, 'key_name', required=False)
        self.public_key = _text(payload, 'public_key',
                                max_chars=MAX_PUBLIC_KEY_CHARS,
                                required=False)

    def image_ids(self):
        """Every image this instance needs in the cache, machine first."""
        return [img['id'] for img in (self.image, self.kernel, self.ramdisk)
                if img is not None]


def hostname_for(name, instance_uuid):
    """A DNS label made from the display name, for cloud-init."""
    label = re.sub(r'[^a-z0-9-]+', '-', name.lower()).strip('-')[:63]
    return label.strip('-') or 'instance-' + instance_uuid[:8]


def default_store_factory(storage_url, token):
    """The user's image store, reached with the user's own token, so the
    agent reads exactly the images that user may read; without a token,
    the account's public images, read anonymously."""
    return ImageStore(SwiftSession.from_token(storage_url, token))


def _close_store(store):
    session = getattr(store, 'session', None)
    close = getattr(session, 'close', None)
    if close is not None:
        close()


class _KeyedLocks:
    """One lock per key, dropped again when nobody holds or waits for it
    (so the map does not grow with every instance ever seen)."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks = {}   # key -> [lock, users]

    @contextlib.contextmanager
    def hold(self, key, blocking=True):
        """Yield True holding the key's lock, or False (holding nothing)
        when ``blocking`` is off and someone else holds it."""
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        got = entry[0].acquire(blocking)
        try:
            yield got
        finally:
            if got:
                entry[0].release()
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


def _category(state):
    """'on', 'off' or None (a passing state that reports nothing)."""
    if state is PowerState.RUNNING:
        return 'on'
    if state in (PowerState.SHUTOFF, PowerState.CRASHED):
        return 'off'
    return None


class AgentManager:
    """Instances of one host: spawn, power actions, destroy, console log,
    power state sync and capacity.

    ``driver`` is a ComputeDriver, ``image_cache`` an ImageCache;
    ``api_client`` (a SignedClient to the API) receives power events;
    ``capacity_overrides`` replaces vcpus/ram_mb/disk_gb of what the
    driver reports (two fake hosts on one machine); ``store_factory(
    storage_url, token)`` gives the image store a spawn fetches from.

    Thread safety: actions on one instance are serialised by a per-uuid
    lock. The libvirt connection itself is thread-safe, but the driver
    checks a domain name before defining it (define would replace an
    existing definition), so driver.spawn calls are serialised by one
    lock to keep two different instances from claiming one name.
    """

    def __init__(self, driver, image_cache, state_dir, host_name,
                 api_client=None, capacity_overrides=None,
                 store_factory=None, stop_timeout=60):
        self.driver = driver
        self.image_cache = image_cache
        self.state_dir = os.path.abspath(state_dir)
        self.instances_dir = os.path.join(self.state_dir, INSTANCES_DIR)
        self.host_name = host_name
        self.api_client = api_client
        self.capacity_overrides = {k: v for k, v in
                                   (capacity_overrides or {}).items()
                                   if v is not None}
        self.store_factory = store_factory or default_store_factory
        self.stop_timeout = stop_timeout
        self._locks = _KeyedLocks()
        self._spawn_lock = threading.Lock()
        self._known = {}   # uuid -> last power category seen ('on'/'off')
        os.makedirs(self.instances_dir, exist_ok=True)

    # --- paths and records ------------------------------------------------

    def _dir(self, instance_uuid):
        return os.path.join(self.instances_dir, instance_uuid)

    def _file(self, instance_uuid, name):
        return os.path.join(self._dir(instance_uuid), name)

    def instance_uuids(self):
        """The uuids of this agent's instances: its directories."""
        try:
            names = os.listdir(self.instances_dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _UUID_RE.match(n)
                      and os.path.isdir(self._dir(n)))

    def _write_record(self, req):
        record = {'uuid': req.uuid, 'domain_name': req.domain_name,
                  'image_ids': req.image_ids()}
        write_atomically(self._file(req.uuid, RECORD_FILE),
                         lambda f: f.write(json.dumps(record).encode()))

    def _read_record(self, instance_uuid):
        """The instance's record; None when missing or damaged (a crash
        before it was written: then nothing else was created either)."""
        try:
            with open(self._file(instance_uuid, RECORD_FILE),
                      encoding='utf-8') as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _domain_name(self, instance_uuid):
        """The domain name of one of our instances; NotFound otherwise."""
        if not os.path.isdir(self._dir(instance_uuid)):
            raise NotFound('no instance %s on host %s'
                           % (instance_uuid, self.host_name))
        record = self._read_record(instance_uuid)
        if record is None or not isinstance(record.get('domain_name'), str):
            raise AgentError('instance %s has no readable record; delete it'
                             % instance_uuid)
        return record['domain_name']

    # --- spawn --------------------------------------------------------------

    def spawn(self, payload):
        """Build and start an instance; return {'power_state': ...}.

        Raises BadRequest, Conflict, UpstreamError or AgentError with a
        one-line fault after removing everything this call created."""
        req = SpawnRequest(payload)
        with self._locks.hold(req.uuid):
            self._claim_dir(req.uuid)
            state = {'refs': [], 'spawn_tried': False}
            try:
                self._write_record(req)
                self._build(req, state)
            except BaseException as exc:
                self._undo_spawn(req, state)
                if isinstance(exc, Exception):
                    raise _as_agent_error(req, exc) from exc
                raise
            self._known[req.uuid] = 'on'
        LOG.info('spawned instance %s as %s', req.uuid, req.domain_name)
        return {'power_state': PowerState.RUNNING.value}

    def _claim_dir(self, instance_uuid):
        """Create the instance's directory; it existing means the uuid is
        already on this host (409), whatever state it is in."""
        os.makedirs(self.instances_dir, exist_ok=True)
        try:
            os.mkdir(self._dir(instance_uuid), 0o755)
        except FileExistsError:
            raise Conflict('instance %s already exists on host %s'
                           % (instance_uuid, self.host_name)) from None

    def _build(self, req, state):
        """Everything of a spawn after the directory and record exist.
        ``state`` tracks what must be undone on failure."""
        # references first, so nothing can expire an image between its
        # fetch and the overlay that uses it (see ImageCache.acquire)
        for image_id in req.image_ids():
            self.image_cache.acquire(image_id, req.uuid)
            state['refs'].append(image_id)
        paths = self._fetch_all(req)
        disk = self._file(req.uuid, DISK_FILE)
        self._make_disk(req, paths['image'], disk)
        config = self._file(req.uuid, CONFIG_DRIVE_FILE)
        build_config_drive(config, self._meta_data(req), req.user_data)
        console = self._file(req.uuid, CONSOLE_LOG_FILE)
        open(console, 'ab').close()
        kernel = paths.get('kernel')
        image_paths = ImagePaths(
            disk=disk, disk_format='qcow2', kernel=kernel,
            ramdisk=paths.get('ramdisk'),
            cmdline=KERNEL_CMDLINE if kernel else None)
        with self._spawn_lock:
            state['spawn_tried'] = True
            try:
                self.driver.spawn(Instance(name=req.domain_name,
                                           uuid=req.uuid),
                                  image_paths, req.flavor, config, console)
            except InstanceExists:
                # that domain is someone else's: never destroy it
                state['spawn_tried'] = False
                raise

    def _fetch_all(self, req):
        """{'image'|'kernel'|'ramdisk': cached path}, via the user's store."""
        store = self.store_factory(req.storage_url, req.token)
        try:
            return {key: self.image_cache.fetch(image['id'], store)
                    for key, image in (('image', req.image),
                                       ('kernel', req.kernel),
                                       ('ramdisk', req.ramdisk))
                    if image is not None}
        finally:
            _close_store(store)

    def _make_disk(self, req, base, disk):
        """The instance's qcow2 overlay over the cached image, as large as
        the flavor's disk when that is larger than the image."""
        base_format = MACHINE_FORMATS[req.image['disk_format']]
        # the format is given, never probed (see overlay.py)
        info = overlay.image_info(base, fmt=base_format)
        if info.get('backing-filename') or info.get('full-backing-filename'):
            # a user's qcow2 naming a backing file could make the guest
            # read any file on the host
            raise BadRequest('image %s is a qcow2 image with a backing file; '
                             'only standalone images can be booted'
                             % req.image['id'])
        virtual_size = info.get('virtual-size')
        if not isinstance(virtual_size, int):
            raise AgentError('qemu-img reports no size for image %s'
                             % req.image['id'])
        wanted = req.flavor.disk_gb * GIB
        if virtual_size > wanted:
            raise BadRequest('image %s needs a %d byte disk; flavor %s has '
                             'only %d GiB' % (req.image['id'], virtual_size,
                                              req.flavor.name,
                                              req.flavor.disk_gb))
        overlay.create_overlay(base, disk, base_format)
        if wanted > virtual_size:
            grow_disk(disk, wanted)

    def _meta_data(self, req):
        """OpenStack meta_data.json: cloud-init takes the uuid as instance
        id, the hostname and the public key from here."""
        meta = {'uuid': req.uuid, 'name': req.name,
                'hostname': hostname_for(req.name, req.uuid),
                'launch_index': 0, 'meta': req.metadata}
        if req.public_key:
            meta['public_keys'] = {req.key_name or 'default': req.public_key}
        return meta

    def _undo_spawn(self, req, state):
        """Remove what a failed spawn made, each step on its own so one
        failing step does not leave the others' leftovers."""
        if state['spawn_tried']:
            # the driver's spawn is all or nothing; this is for a failure
            # that left a domain anyway. Never for InstanceExists: that
            # domain belongs to someone else.
            self._destroy_domain_quietly(req.domain_name, req.uuid)
        for image_id in state['refs']:
            try:
                self.image_cache.release(image_id, req.uuid)
            except Exception:
                LOG.exception('instance %s: releasing image %s failed',
                              req.uuid, image_id)
        shutil.rmtree(self._dir(req.uuid), ignore_errors=True)
        self._known.pop(req.uuid, None)

    def _destroy_domain_quietly(self, name, instance_uuid):
        try:
            if name in self.driver.list_instances():
                self.driver.destroy(name)
        except DriverError:
            LOG.exception('instance %s: removing domain %s after a failed '
                          'spawn failed', instance_uuid, name)

    # --- actions ------------------------------------------------------------

    def action(self, instance_uuid, action):
        """Run a power action; return {'power_state': ...} afterwards."""
        if action not in ACTIONS:
            raise BadRequest('action must be one of %s, not %r'
                             % (', '.join(ACTIONS), action))
        return getattr(self, action)(instance_uuid)

    def stop(self, instance_uuid):
        return self._act(instance_uuid, 'stop', lambda name:
                         self.driver.power_off(name, graceful=True,
                                               timeout=self.stop_timeout))

    def start(self, instance_uuid):
        return self._act(instance_uuid, 'start', self.driver.power_on)

    def reboot(self, instance_uuid):
        return self._act(instance_uuid, 'reboot', lambda name:
                         self.driver.reboot(name, hard=False,
                                            timeout=self.stop_timeout))

    def reboot_hard(self, instance_uuid):
        return self._act(instance_uuid, 'reboot_hard', lambda name:
                         self.driver.reboot(name, hard=True))

    def _act(self, instance_uuid, what, call):
        """Run ``call(domain_name)`` under the instance's lock, and note
        the resulting state so power sync does not report our own doing.
        """
        canonical_uuid(instance_uuid)
        with self._locks.hold(instance_uuid):
            name = self._domain_name(instance_uuid)
            try:
                call(name)
                state = self.driver.get_power_state(name)
            except DriverError as exc:
                raise AgentError('%s of instance %s failed: %s'
                                 % (what, instance_uuid, exc)) from exc
            if _category(state) is not None:
                self._known[instance_uuid] = _category(state)
        return {'power_state': state.value}

    def destroy(self, instance_uuid):
        """Remove the domain, the cache references and the directory.

        Idempotent: an unknown uuid is already destroyed. If the domain
        cannot be removed the directory stays, so a retry still knows
        the instance."""
        canonical_uuid(instance_uuid)
        with self._locks.hold(instance_uuid):
            if not os.path.isdir(self._dir(instance_uuid)):
                return
            record = self._read_record(instance_uuid) or {}
            name = record.get('domain_name')
            if isinstance(name, str):
                try:
                    self.driver.destroy(name)
                except DriverError as exc:
                    raise AgentError('delete of instance %s failed: %s'
                                     % (instance_uuid, exc)) from exc
            for image_id in record.get('image_ids') or []:
                self.image_cache.release(image_id, instance_uuid)
            shutil.rmtree(self._dir(instance_uuid))
            self._known.pop(instance_uuid, None)
        LOG.info('destroyed instance %s', instance_uuid)

    def console_log(self, instance_uuid, length=None):
        """The last ``length`` lines of the console log (all of its last
        MiB when None), as text."""
        canonical_uuid(instance_uuid)
        if length is not None and (isinstance(length, bool)
                                   or not isinstance(length, int)
                                   or not 0 <= length <= MAX_CONSOLE_LINES):
            raise BadRequest('length must be a whole number from 0 to %d'
                             % MAX_CONSOLE_LINES)
        if not os.path.isdir(self._dir(instance_uuid)):
            raise NotFound('no instance %s on host %s'
                           % (instance_uuid, self.host_name))
        data = _tail_bytes(self._file(instance_uuid, CONSOLE_LOG_FILE),
                           CONSOLE_TAIL_BYTES)
        text = data.decode('utf-8', 'replace')
        if length is None:
            return text
        if length == 0:
            return ''
        lines = text.splitlines(keepends=True)
        return ''.join(lines[-length:])

    def power_state(self, instance_uuid):
        """The guest's state now; 'nostate' when its domain is gone."""
        canonical_uuid(instance_uuid)
        name = self._domain_name(instance_uuid)
        try:
            return self.driver.get_power_state(name)
        except InstanceNotFound:
            return PowerState.NOSTATE

    def list(self):
        """[{'uuid', 'power_state'}] of this agent's instances."""
        out = []
        for instance_uuid in self.instance_uuids():
            try:
                state = self.power_state(instance_uuid).value
            except AgentError:
                state = PowerState.NOSTATE.value  # deleted meanwhile
            except DriverError as exc:
                LOG.warning('instance %s: %s', instance_uuid, exc)
                state = PowerState.NOSTATE.value
            out.append({'uuid': instance_uuid, 'power_state': state})
        return out

    def capacity(self):
        """What the host offers, with the configured overrides."""
        capacity = dict(self.driver.host_capacity())
        capacity.update(self.capacity_overrides)
        return capacity

    # --- power state sync -----------------------------------------------------

    def sync_power_states(self):
        """Report guests whose power changed without us (a shutdown from
        inside, a crash); return the [(uuid, event)] delivered.

        An instance with an action in flight is skipped: the action notes
        its own outcome. A report that fails is retried on the next call,
        because the last known state is only updated once delivered. At
        first sight (after an agent restart) a stopped guest is reported,
        a running one only noted: the API refuses a redundant event
        harmlessly, and a guest that stopped while we were away must
        still reach SHUTOFF."""
        delivered = []
        for instance_uuid in self.instance_uuids():
            with self._locks.hold(instance_uuid, blocking=False) as held:
                if not held:
                    continue
                event = self._sync_one(instance_uuid)
                if event:
                    delivered.append((instance_uuid, event))
        return delivered

    def _sync_one(self, instance_uuid):
        """The event delivered for one instance, or None."""
        try:
            state = self._observed_state(instance_uuid)
        except (AgentError, DriverError) as exc:
            LOG.warning('power sync of %s: %s', instance_uuid, exc)
            return None
        now = _category(state)
        before = self._known.get(instance_uuid)
        if now is None or now == before:
            return None
        if before is None and now == 'on':
            self._known[instance_uuid] = now
            return None
        event = EVENT_POWERED_OFF if now == 'off' else EVENT_POWERED_ON
        if self._report(instance_uuid, event, state):
            self._known[instance_uuid] = now
            return event
        return None

    def _observed_state(self, instance_uuid):
        """A guest whose domain vanished cannot run: that is SHUTOFF."""
        if not os.path.isdir(self._dir(instance_uuid)):
            raise NotFound('instance %s is gone' % instance_uuid)
        name = self._domain_name(instance_uuid)
        try:
            return self.driver.get_power_state(name)
        except InstanceNotFound:
            return PowerState.SHUTOFF

    def _report(self, instance_uuid, event, state):
        """POST the event to the API; True once it was received (an
        answer of 404 or 409 too: the API has decided, retrying cannot
        change that)."""
        if self.api_client is None:
            return False
        body = {'uuid': instance_uuid, 'event': event,
                'power_state': state.value, 'host': self.host_name}
        try:
            status, _answer = self.api_client.request(
                'POST', '/internal/events', body)
        except Exception as exc:
            LOG.warning('reporting %s of %s failed: %s', event,
                        instance_uuid, exc)
            return False
        if status in (200, 201, 202, 204, 404, 409):
            LOG.info('reported %s of %s (API answered %d)', event,
                     instance_uuid, status)
            return True
        LOG.warning('reporting %s of %s: API answered %d', event,
                    instance_uuid, status)
        return False


def grow_disk(path, size_bytes, timeout=overlay.DEFAULT_TIMEOUT):
    """Grow a qcow2 disk to ``size_bytes`` with qemu-img resize (overlay.py
    has no resize helper). The guest's filesystem is grown by cloud-init's
    growpart, not here."""
    argv = [overlay.QEMU_IMG, 'resize', '-q', '-f', 'qcow2',
            os.path.abspath(path), str(size_bytes)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise overlay.OverlayError('qemu-img resize failed: %s' % exc) \
            from None
    if result.returncode != 0:
        raise overlay.OverlayError('qemu-img resize failed (exit %d): %s'
                                   % (result.returncode,
                                      result.stderr.strip()))


def _tail_bytes(path, limit):
    """The last ``limit`` bytes of a file (b'' when it does not exist)."""
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read(limit)
    except FileNotFoundError:
        return b''


def _as_agent_error(req, exc):
    """The error a failed spawn raises: its status says whose fault it
    is, its message what the API records as the instance's fault."""
    if isinstance(exc, AgentError):
        return exc
    if isinstance(exc, InstanceExists):
        return Conflict('instance %s: %s' % (req.uuid, exc))
    if isinstance(exc, ImageFetchError):
        # the image or the user's access to it is wrong (4xx from
        # objstore: a refused token, no such image, bad bytes) versus
        # objstore unreachable or failing (may work later)
        cause = exc.__cause__
        status = getattr(cause, 'status', None)
        if cause is None or isinstance(cause, (ImageError, ValueError)) or \
                (isinstance(status, int) and 400 <= status < 500):
            return BadRequest(str(exc))
        return UpstreamError(str(exc))
    if isinstance(exc, ValueError):
        return BadRequest('instance %s: %s' % (req.uuid, exc))
    if isinstance(exc, DriverError):
        return AgentError('spawn of instance %s failed: %s' % (req.uuid, exc))
    if isinstance(exc, OSError):
        return AgentError('spawn of instance %s failed: %s'
                          % (req.uuid, exc))
    return AgentError('spawn of instance %s failed: %s: %s'
                      % (req.uuid, type(exc).__name__, exc))
