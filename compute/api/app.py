"""The compute API as a WSGI app: Nova/Glance-flavoured REST over JSON.

Routes and shapes are the contract in the compute wiring notes: images,
flavors, key pairs, servers and hosts for users (X-Auth-Token), and
/internal/* for agents (signed with the shared secret; a user token alone
gets nowhere there). Every error is one JSON line,
``{"error": {"code": N, "message": "..."}}`` (the internal endpoints answer
``{"error": "<reason>"}`` as agents expect); an unexpected exception is
logged and answered 500 without its traceback.

The app only checks input and records intent in the database; slow work
goes to the Builder (compute/api/builder.py). Images are looked up through
`image_stores(caller)`, a factory of ImageStore-like objects for the
caller's account, so tests can stand in for objstore.
"""
import base64
import binascii
import hashlib
import json
import logging
import re
import time
import urllib.parse

from compute.api import db as dbmod
from compute.api import states
from compute.api.auth import require_admin
from compute.api.builder import AgentError
from compute.common import jsonapi
from compute.common.jsonapi import HttpError
from compute.common.signed_http import verify_request
from compute.image.store import (ImageChecksumError, ImageError,
                                 ImageForbidden, ImageInvalid, ImageNotFound)
from compute.image.swift import SwiftError

LOG = logging.getLogger(__name__)

MAX_USER_DATA = dbmod.MAX_USER_DATA
MAX_NAME = 255
MAX_METADATA_ITEMS = 128
MAX_CONSOLE_LINES = 100000
UNBOOTABLE_FORMATS = ('aki', 'ari')
_CONTROL = re.compile(r'[\x00-\x1f\x7f]')
_KEYPAIR_NAME = re.compile(r'[A-Za-z0-9 _.-]{1,255}\Z')
_KEY_TYPES = ('ssh-rsa', 'ssh-ed25519', 'ssh-dss', 'ecdsa-sha2-nistp256',
              'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521')
# X-Image-Meta-<Header> -> image property
_IMAGE_HEADERS = {
    'NAME': 'name', 'DISK_FORMAT': 'disk_format',
    'CONTAINER_FORMAT': 'container_format', 'KERNEL_ID': 'kernel_id',
    'RAMDISK_ID': 'ramdisk_id', 'MIN_RAM': 'min_ram',
    'MIN_DISK': 'min_disk', 'ARCHITECTURE': 'architecture',
    'VISIBILITY': 'visibility', 'HYPERVISOR_TYPE': 'hypervisor_type',
}
_ACTION_NAMES = {'os-start': states.START, 'os-stop': states.STOP}
_REBOOT_TYPES = {'SOFT': states.REBOOT_SOFT, 'HARD': states.REBOOT_HARD}
_TIME = '%Y-%m-%dT%H:%M:%SZ'
# int(x, 16) also takes '-1', '+5' and '0x10'; a negative size would make
# the next read take the whole rest of the connection into memory
_CHUNK_SIZE = re.compile(rb'[0-9A-Fa-f]{1,15}\Z')


def iso(ts):
    """An epoch time as Nova prints it."""
    return time.strftime(_TIME, time.gmtime(ts)) if ts else None


# --- request bodies that are streams ----------------------------------------

class LimitedReader:
    """The request body up to Content-Length (the server's stream would
    block waiting for bytes the client never sends)."""

    def __init__(self, stream, length):
        self.stream, self.left = stream, length

    def read(self, size=-1):
        if self.left <= 0:
            return b''
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self.stream.read(size)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data


class ChunkedReader:
    """A chunked request body decoded (wsgiref hands it over raw)."""

    def __init__(self, stream):
        self.stream = stream
        self.chunk_left = 0
        self.done = False

    def _next_chunk(self):
        line = self.stream.readline(1024)
        size = line.split(b';', 1)[0].strip()
        if not _CHUNK_SIZE.match(size):
            raise HttpError(400, 'bad chunked encoding')
        self.chunk_left = int(size, 16)
        if self.chunk_left == 0:
            self.done = True
            while self.stream.readline(1024).strip():
                pass    # trailers

    def read(self, size=-1):
        if self.done:
            return b''
        if self.chunk_left == 0:
            self._next_chunk()
            if self.done:
                return b''
        if size is None or size < 0 or size > self.chunk_left:
            size = self.chunk_left
        data = self.stream.read(size)
        if not data:
            raise HttpError(400, 'chunked body ended early')
        self.chunk_left -= len(data)
        if self.chunk_left == 0:
            self.stream.readline(16)    # the CRLF after the chunk
        return data


# --- validation -------------------------------------------------------------

def check_name(value, what='server name'):
    """A valid display name, else 400."""
    if not isinstance(value, str) or not value.strip():
        raise HttpError(400, '%s must be a non-empty string' % what)
    if len(value) > MAX_NAME:
        raise HttpError(400, '%s is longer than %d characters'
                        % (what, MAX_NAME))
    if _CONTROL.search(value):
        raise HttpError(400, '%s must not contain control characters'
                        % what)
    return value


def decode_user_data(value):
    """Base64 user data as bytes (None stays None), else 400."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise HttpError(400, 'user_data must be a base64 string')
    try:
        data = base64.b64decode(value.encode('ascii'), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise HttpError(400, 'user_data is not valid base64') from None
    if len(data) > MAX_USER_DATA:
        raise HttpError(400, 'user_data is %d bytes decoded; the limit '
                             'is %d' % (len(data), MAX_USER_DATA))
    return data


def check_metadata(value):
    """Server metadata: a small {str: str} mapping, else 400."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HttpError(400, 'metadata must be an object of strings')
    if len(value) > MAX_METADATA_ITEMS:
        raise HttpError(400, 'metadata has more than %d items'
                        % MAX_METADATA_ITEMS)
    for key, item in value.items():
        if not key or len(key) > 255 or not isinstance(item, str) \
                or len(item) > 255:
            raise HttpError(400, 'metadata keys and values must be strings '
                                 'of 1 to 255 characters')
    return value


def ref_id(value, what):
    """The id at the end of a reference (an id or a URL ending in it)."""
    if not isinstance(value, str) or not value.strip():
        raise HttpError(400, '%s must be a non-empty string' % what)
    return value.rstrip('/').rsplit('/', 1)[-1]


def key_fingerprint(public_key):
    """The md5 fingerprint of an OpenSSH public key line, else 400."""
    parts = public_key.split() if isinstance(public_key, str) else []
    if len(parts) < 2 or parts[0] not in _KEY_TYPES:
        raise HttpError(400, 'public_key must be an OpenSSH public key '
                             '("ssh-ed25519 AAAA... comment")')
    try:
        blob = base64.b64decode(parts[1].encode('ascii'), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise HttpError(400, 'public_key is not valid base64') from None
    digest = hashlib.md5(blob).hexdigest()
    return ':'.join(digest[i:i + 2] for i in range(0, 32, 2))


def query_args(environ):
    """The query string as {name: last value}."""
    return dict(urllib.parse.parse_qsl(environ.get('QUERY_STRING', ''),
                                       keep_blank_values=True))


# --- views ------------------------------------------------------------------

def server_view(row):
    """An instance row as the API shows it."""
    view = {
        'id': row['uuid'], 'name': row['name'], 'status': row['status'],
        'task_state': row['task_state'], 'power_state': row['power_state'],
        'host': row['host'], 'image': {'id': row['image_id']},
        'flavor': {'name': row['flavor_name'], 'vcpus': row['vcpus'],
                   'ram': row['ram_mb'], 'disk': row['disk_gb']},
        'created': iso(row['created_at']), 'updated': iso(row['updated_at']),
        'key_name': row['key_name'], 'tenant_id': row['project'],
        'metadata': json.loads(row.get('metadata') or '{}'),
    }
    if row['status'] == states.ERROR and row['fault_message']:
        view['fault'] = {'message': row['fault_message']}
    return view


def keypair_view(row, with_key=True):
    view = {'name': row['name'], 'fingerprint': row['fingerprint']}
    if with_key:
        view['public_key'] = row['public_key']
    return view


# --- the app --------------------------------------------------------------

class ComputeAPI:
    """The WSGI app. `authenticator` has identify(environ) -> Caller;
    `image_stores(caller)` returns an ImageStore for the caller's account
    (closed after the request if it has close()); `storage_url(caller)`
    the caller's objstore URL (passed to agents with the token)."""

    def __init__(self, db, flavors, builder, authenticator, image_stores,
                 storage_url, secret, heartbeat_timeout=30.0,
                 clock=time.time):
        self.db = db
        self.flavors = flavors
        self.builder = builder
        self.auth = authenticator
        self.image_stores = image_stores
        self.storage_url = storage_url
        self.secret = secret
        self.heartbeat_timeout = heartbeat_timeout
        self.clock = clock

    def __call__(self, environ, start_response):
        try:
            path = environ.get('PATH_INFO', '') or '/'
            if path.startswith('/internal/'):
                return self.internal(environ, start_response, path)
            return self.public(environ, start_response, path)
        except HttpError as exc:
            return jsonapi.respond_error(start_response, exc)
        except Exception:
            LOG.exception('unexpected error on %s %s',
                          environ.get('REQUEST_METHOD'),
                          environ.get('PATH_INFO'))
            return jsonapi.respond_error(start_response, HttpError(
                500, 'internal error; see the compute-api log'))

    # --- routing ------------------------------------------------------------

    def public(self, environ, start_response, path):
        method = environ.get('REQUEST_METHOD', 'GET')
        parts = [p for p in path.split('/') if p]
        if not parts:
            return jsonapi.respond(start_response, 200, self.versions())
        if parts[0] != 'v2.1':
            raise HttpError(404, 'no such resource %s' % path)
        caller = self.auth.identify(environ)
        if len(parts) == 1:
            return jsonapi.respond(start_response, 200, self.versions())
        handler = {
            'images': self.images, 'flavors': self.flavors_route,
            'os-keypairs': self.keypairs, 'servers': self.servers,
            'os-hosts': self.hosts,
        }.get(parts[1])
        if handler is None:
            raise HttpError(404, 'no such resource %s' % path)
        status, body = handler(caller, method, parts[2:], environ)
        return jsonapi.respond(start_response, status, body)

    @staticmethod
    def versions():
        return {'versions': [{'id': 'v2.1', 'status': 'CURRENT',
                              'links': [{'rel': 'self', 'href': '/v2.1/'}]}]}

    @staticmethod
    def _not_allowed(method, parts):
        return HttpError(405, 'method %s not allowed on /%s' % (
            method, '/'.join(parts)))

    # --- flavors ------------------------------------------------------------

    def flavors_route(self, caller, method, rest, environ):
        if method != 'GET':
            raise self._not_allowed(method, ['flavors'] + rest)
        if not rest or rest == ['detail']:
            return 200, {'flavors': [f.to_dict()
                                     for f in self.flavors.list()]}
        if len(rest) == 1:
            flavor = self.flavors.get(rest[0])
            if flavor is None:
                raise HttpError(404, 'no flavor %s' % rest[0])
            return 200, {'flavor': flavor.to_dict()}
        raise HttpError(404, 'no such resource')

    # --- key pairs ---------------------------------------------------------

    def keypairs(self, caller, method, rest, environ):
        if not rest and method == 'GET':
            return 200, {'keypairs': [
                {'keypair': keypair_view(k)}
                for k in self.db.list_keypairs(caller.project)]}
        if not rest and method == 'POST':
            return self.create_keypair(caller, environ)
        if len(rest) != 1:
            raise HttpError(404, 'no such resource')
        name = urllib.parse.unquote(rest[0])
        if method == 'GET':
            row = self.db.get_keypair(caller.project, name)
            if row is None:
                raise HttpError(404, 'no key pair %s' % name)
            return 200, {'keypair': keypair_view(row)}
        if method == 'DELETE':
            if not self.db.delete_keypair(caller.project, name):
                raise HttpError(404, 'no key pair %s' % name)
            return 204, None
        raise self._not_allowed(method, ['os-keypairs'] + rest)

    def create_keypair(self, caller, environ):
        body = jsonapi.parse_json(jsonapi.read_body(environ))
        spec = body.get('keypair')
        if not isinstance(spec, dict):
            raise HttpError(400, 'body must be {"keypair": {...}}')
        name = spec.get('name')
        if not isinstance(name, str) or not _KEYPAIR_NAME.match(name):
            raise HttpError(400, 'key pair name must be 1 to 255 letters, '
                                 'digits, spaces, ".", "-" or "_"')
        public_key = spec.get('public_key')
        if public_key is None:
            raise HttpError(400, 'public_key is required (this cloud does '
                                 'not generate key pairs)')
        fingerprint = key_fingerprint(public_key)
        try:
            row = self.db.create_keypair(caller.project, name,
                                         public_key.strip(), fingerprint)
        except dbmod.KeypairExists as exc:
            raise HttpError(409, str(exc)) from None
        return 201, {'keypair': keypair_view(row)}

    # --- images -------------------------------------------------------------

    def images(self, caller, method, rest, environ):
        store = self.image_stores(caller)
        try:
            return self._images(store, method, rest, environ)
        except ImageNotFound as exc:
            raise HttpError(404, str(exc)) from None
        except ImageForbidden as exc:
            raise HttpError(403, str(exc)) from None
        except ImageInvalid as exc:
            raise HttpError(400, str(exc)) from None
        except ImageChecksumError as exc:
            raise HttpError(400, 'checksum mismatch, nothing stored: %s'
                            % exc) from None
        except SwiftError as exc:
            if exc.status in (401, 403):
                raise HttpError(exc.status, 'objstore refused the image '
                                            'request: %s' % exc.message)
            raise HttpError(502, 'objstore failed: %s' % exc) from None
        except ImageError as exc:
            raise HttpError(400, str(exc)) from None
        finally:
            close = getattr(store, 'close', None)
            if close is not None:
                close()

    def _images(self, store, method, rest, environ):
        if not rest and method == 'GET':
            args = query_args(environ)
            filters = {k: args[k] for k in ('name', 'status', 'disk_format',
                                            'container_format',
                                            'visibility', 'owner')
                       if k in args}
            return 200, {'images': store.list(filters)}
        if not rest and method == 'POST':
            return 201, {'image': self.upload_image(store, environ)}
        if len(rest) != 1:
            raise HttpError(404, 'no such resource')
        if method == 'GET':
            return 200, {'image': store.show(rest[0])}
        if method == 'DELETE':
            store.delete(rest[0])
            return 204, None
        raise self._not_allowed(method, ['images'] + rest)

    @staticmethod
    def upload_image(store, environ):
        """Stream the body into the store (fixed memory: ImageStore reads
        it 1 MiB at a time from the reader)."""
        props = {}
        for header, prop in _IMAGE_HEADERS.items():
            value = environ.get('HTTP_X_IMAGE_META_' + header)
            if value is not None and value != '':
                props[prop] = value
        checksum = environ.get('HTTP_X_IMAGE_META_CHECKSUM') or None
        if 'chunked' in environ.get('HTTP_TRANSFER_ENCODING', '').lower():
            stream, size = ChunkedReader(environ['wsgi.input']), None
        elif environ.get('CONTENT_LENGTH'):
            size = jsonapi.content_length(environ)
            stream = LimitedReader(environ['wsgi.input'], size)
        else:
            raise HttpError(411, 'the image needs a Content-Length or a '
                                 'chunked body')
        if checksum is not None:
            checksum = checksum.strip().lower()
        return store.upload(stream, props, size=size, expected_md5=checksum)

    # --- servers ------------------------------------------------------------

    def servers(self, caller, method, rest, environ):
        if (not rest or rest == ['detail']) and method == 'GET':
            return 200, {'servers': self.list_servers(caller, environ)}
        if not rest and method == 'POST':
            return 202, {'server': self.create_server(caller, environ)}
        if not rest or len(rest) > 2:
            raise HttpError(404, 'no such resource')
        row = self._instance(caller, rest[0])
        if len(rest) == 2:
            if rest[1] != 'action' or method != 'POST':
                raise HttpError(404, 'no such resource')
            return self.server_action(caller, row, environ)
        if method == 'GET':
            return 200, {'server': server_view(row)}
        if method == 'DELETE':
            self._begin(caller, row, states.DELETE)
            self.builder.submit_delete(row['uuid'])
            return 204, None
        raise self._not_allowed(method, ['servers'] + rest)

    def _instance(self, caller, uuid):
        row = self.db.get_instance(uuid, project=caller.project)
        if row is None:
            raise HttpError(404, 'no server %s' % uuid)
        return row

    def _begin(self, caller, row, action):
        try:
            return self.db.apply_action(row['uuid'], caller.project, action)
        except states.Conflict as exc:
            raise HttpError(409, exc.message) from None
        except dbmod.InstanceNotFound:
            raise HttpError(404, 'no server %s' % row['uuid']) from None

    def list_servers(self, caller, environ):
        args = query_args(environ)
        status = args.get('status') or None
        if status is not None:
            status = status.upper()
            if status not in states.VM_STATES:
                raise HttpError(400, 'unknown status %s; one of %s' % (
                    args['status'], ', '.join(states.VM_STATES)))
        rows = self.db.list_instances(project=caller.project,
                                      name=args.get('name') or None,
                                      status=status,
                                      host=args.get('host') or None)
        return [server_view(r) for r in rows]

    def create_server(self, caller, environ):
        body = jsonapi.parse_json(jsonapi.read_body(environ))
        spec = body.get('server')
        if not isinstance(spec, dict):
            raise HttpError(400, 'body must be {"server": {...}}')
        name = check_name(spec.get('name'))
        flavor = self.flavors.get(ref_id(spec.get('flavorRef'), 'flavorRef'))
        if flavor is None:
            raise HttpError(400, 'flavor %s not found' % spec['flavorRef'])
        user_data = decode_user_data(spec.get('user_data'))
        metadata = check_metadata(spec.get('metadata'))
        key_name, public_key = self._keypair(caller, spec.get('key_name'))
        image, kernel, ramdisk = self.boot_images(
            caller, ref_id(spec.get('imageRef'), 'imageRef'))
        self._check_fits(flavor, image)
        row = self.db.create_instance(
            name, caller.project, image['id'], flavor, user=caller.user,
            user_data=user_data, key_name=key_name, metadata=metadata)
        storage_url, token = self.image_access(caller, image)
        self.builder.submit_build(row['uuid'], {
            'image': image, 'kernel': kernel, 'ramdisk': ramdisk,
            'storage_url': storage_url, 'token': token,
            'user_data': spec.get('user_data'), 'metadata': metadata,
            'key_name': key_name, 'public_key': public_key})
        return server_view(row)

    def _keypair(self, caller, key_name):
        if key_name is None:
            return None, None
        if not isinstance(key_name, str):
            raise HttpError(400, 'key_name must be a string')
        row = self.db.get_keypair(caller.project, key_name)
        if row is None:
            raise HttpError(400, 'key pair %s not found' % key_name)
        return key_name, row['public_key']

    @staticmethod
    def _foreign_owner(caller, image):
        """The owning account of another account's (public) image, or
        None for the caller's own."""
        owner = image.get('owner')
        return owner if owner and owner != caller.project else None

    def image_access(self, caller, image):
        """(storage URL, token) an agent reads a boot's images with: the
        caller's own for the caller's images; for another account's
        public image, that account's URL and no token, as the public
        container's ACL lets anyone read it."""
        url = self.storage_url(caller)
        owner = self._foreign_owner(caller, image)
        if owner is None:
            return url, caller.token
        return '%s/%s' % (url.rsplit('/', 1)[0],
                          urllib.parse.quote(owner, safe='')), None

    def boot_images(self, caller, image_id):
        """(image, kernel or None, ramdisk or None) props for a boot; 400
        for an unknown/unbootable image or a missing kernel/ramdisk.
        Another account's private image is simply not found (the store
        sees only public images of other accounts); the kernel and
        ramdisk of another account's image are looked up in that
        account, the one the agent will read them from."""
        store = self.image_stores(caller)
        try:
            image = self._boot_image(store, image_id, 'image')
            if image.get('disk_format') in UNBOOTABLE_FORMATS:
                raise HttpError(400, 'image %s is a %s image; boot a '
                                     'machine image that names it instead'
                                % (image_id, image['disk_format']))
            owner = self._foreign_owner(caller, image)
            kernel = ramdisk = None
            if image.get('kernel_id'):
                kernel = self._boot_image(store, image['kernel_id'],
                                          'kernel_id', owner)
            if image.get('ramdisk_id'):
                ramdisk = self._boot_image(store, image['ramdisk_id'],
                                           'ramdisk_id', owner)
            return image, kernel, ramdisk
        finally:
            close = getattr(store, 'close', None)
            if close is not None:
                close()

    @staticmethod
    def _boot_image(store, image_id, what, owner=None):
        try:
            image = store.show(image_id, owner=owner) if owner \
                else store.show(image_id)
        except ImageNotFound:
            raise HttpError(400, '%s %s not found' % (what, image_id)) \
                from None
        except SwiftError as exc:
            raise HttpError(502 if exc.status not in (401, 403)
                            else exc.status,
                            'cannot look up %s %s: %s' % (what, image_id,
                                                          exc)) from None
        if image.get('status') != 'active':
            raise HttpError(400, '%s %s is not active (status %s)'
                            % (what, image_id, image.get('status')))
        return image

    @staticmethod
    def _check_fits(flavor, image):
        """Nova refuses a flavor smaller than the image's minimums (400)."""
        for prop, have, unit in (('min_ram', flavor.ram, 'MB'),
                                 ('min_disk', flavor.disk, 'GB')):
            try:
                need = int(image.get(prop) or 0)
            except (TypeError, ValueError):
                need = 0
            if prop == 'min_disk' and have == 0:
                continue    # disk 0: as big as the image needs
            if need > have:
                raise HttpError(400, "flavor %s's %s (%d %s) is smaller "
                                     'than the image needs (%s %d %s)'
                                % (flavor.name, prop[4:], have, unit,
                                   prop, need, unit))

    def server_action(self, caller, row, environ):
        body = jsonapi.parse_json(jsonapi.read_body(environ))
        if len(body) != 1:
            raise HttpError(400, 'an action body has exactly one key, '
                                 'e.g. {"os-stop": null}')
        name, arg = next(iter(body.items()))
        if name == 'os-getConsoleOutput':
            return 200, {'output': self.console(row, arg)}
        if name in _ACTION_NAMES:
            action = _ACTION_NAMES[name]
        elif name == 'reboot':
            kind = (arg or {}).get('type', 'SOFT') \
                if isinstance(arg, dict) else None
            action = _REBOOT_TYPES.get(str(kind).upper())
            if action is None:
                raise HttpError(400, 'reboot type must be SOFT or HARD')
        else:
            raise HttpError(400, 'unknown action %s' % name)
        self._begin(caller, row, action)
        self.builder.submit_action(row['uuid'], action)
        return 202, None

    def console(self, row, arg):
        length = (arg or {}).get('length') if isinstance(arg, dict) else None
        if length is not None:
            try:
                length = int(length)
            except (TypeError, ValueError):
                raise HttpError(400, 'length must be a whole number') \
                    from None
            if not 0 <= length <= MAX_CONSOLE_LINES:
                raise HttpError(400, 'length must be 0 to %d'
                                % MAX_CONSOLE_LINES)
        if row['host'] is None or row['status'] == states.BUILD:
            raise HttpError(409, 'server %s is not running on a host yet'
                            % row['uuid'])
        try:
            return self.builder.console(row, length)
        except AgentError as exc:
            raise HttpError(502, 'cannot get the console log: %s' % exc) \
                from None

    # --- hosts --------------------------------------------------------------

    def hosts(self, caller, method, rest, environ):
        require_admin(caller)
        if method != 'GET' or rest:
            raise HttpError(404, 'no such resource')
        now = self.clock()
        out = []
        for host in self.db.list_hosts():
            up = now - host['last_heartbeat'] < self.heartbeat_timeout
            out.append({
                'name': host['name'], 'state': 'up' if up else 'down',
                'status': 'enabled' if host['enabled'] else 'disabled',
                'hypervisor_type': host['hypervisor_type'],
                'architecture': host['architecture'],
                'vcpus': host['vcpus'], 'vcpus_used': host['vcpus_used'],
                'ram_mb': host['ram_mb'], 'ram_mb_used': host['ram_mb_used'],
                'disk_gb': host['disk_gb'],
                'disk_gb_used': host['disk_gb_used'],
                'instances': self.db.count_instances(host['name'])})
        return 200, {'hosts': out}

    # --- internal (agents) ------------------------------------------------

    def internal(self, environ, start_response, path):
        """Signed agent reports; 401 {"error": reason} otherwise."""
        try:
            body = jsonapi.read_body(environ)
        except HttpError as exc:
            return jsonapi.respond(start_response, exc.status,
                                   {'error': exc.message})
        reason = verify_request(self.secret, environ, body)
        if reason:
            return jsonapi.respond(start_response, 401, {'error': reason})
        method = environ.get('REQUEST_METHOD')
        parts = [p for p in path.split('/') if p]
        try:
            if len(parts) == 3 and parts[1] == 'hosts' and method == 'PUT':
                status, answer = self.register_host(
                    urllib.parse.unquote(parts[2]), jsonapi.parse_json(body))
            elif parts == ['internal', 'events'] and method == 'POST':
                status, answer = self.agent_event(jsonapi.parse_json(body))
            else:
                status, answer = 404, {'error': 'no such resource'}
        except HttpError as exc:
            status, answer = exc.status, {'error': exc.message}
        return jsonapi.respond(start_response, status, answer)

    def register_host(self, name, body):
        fields = {}
        for key in ('vcpus', 'ram_mb', 'disk_gb'):
            value = body.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 0:
                raise HttpError(400, '%s must be a whole number' % key)
            fields[key] = value
        agent_url = body.get('agent_url')
        if not isinstance(agent_url, str) or \
                not agent_url.startswith(('http://', 'https://')):
            raise HttpError(400, 'agent_url must be an http(s) URL')
        try:
            self.db.upsert_host(
                check_name(name, 'host name'),
                hypervisor_type=str(body.get('hypervisor_type') or 'qemu'),
                architecture=str(body.get('architecture') or 'x86_64'),
                agent_url=agent_url, last_heartbeat=self.clock(), **fields)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        return 200, {'host': name}

    def agent_event(self, body):
        uuid, event = body.get('uuid'), body.get('event')
        if event not in (states.POWERED_OFF, states.POWERED_ON):
            raise HttpError(400, 'event must be powered_off or powered_on')
        if not isinstance(uuid, str):
            raise HttpError(400, 'uuid must be a string')
        try:
            row = self.db.record_event(uuid, event)
        except dbmod.InstanceNotFound:
            raise HttpError(404, 'no instance %s' % uuid) from None
        except ValueError as exc:
            raise HttpError(409, str(exc)) from None
        return 200, {'status': row['status']}
