"""The compute CLI's commands: one function per subcommand.

Each takes a Context (the API client, where to print, --json or not) and
the parsed arguments, talks to the API through ComputeClient and prints
either a table or the API's objects as JSON. Failures are CLIErrors;
main turns them into one line on stderr.
"""
import base64
import os
import urllib.parse

from compute.cli import output
from compute.cli.client import (
    UPLOAD_TIMEOUT, CLIError, CountingFile, file_md5, regular_file_size)
from compute.cli.lookup import DELETED, looks_like_id, resolve, wait_for
from compute.image.properties import encode_value
from objstore.cli.client.progress import Progress

USER_DATA_MAX = 64 * 1024
ACTIVE, ERROR = 'ACTIVE', 'ERROR'
POLL_INTERVAL = 1.0

SERVER_COLUMNS = [('ID', 'id'), ('Name', 'name'), ('Status', 'status'),
                  ('Task State', 'task_state'),
                  ('Power State', 'power_state'), ('Host', 'host'),
                  ('Flavor', lambda s: (s.get('flavor') or {}).get('name'))]
SERVER_FIELDS = ('id', 'name', 'status', 'task_state', 'power_state', 'host',
                 'image', 'flavor', 'fault', 'key_name', 'created',
                 'updated')
IMAGE_COLUMNS = [('ID', 'id'), ('Name', 'name'), ('Disk Format',
                 'disk_format'), ('Container Format', 'container_format'),
                 ('Size', 'size'), ('Status', 'status'),
                 ('Visibility', 'visibility'), ('Owner', 'owner')]
FLAVOR_COLUMNS = [('Name', 'name'), ('VCPUs', 'vcpus'), ('RAM (MB)', 'ram'),
                  ('Disk (GB)', 'disk')]
HOST_COLUMNS = [
    ('Name', 'name'), ('State', 'state'), ('Status', 'status'),
    ('Hypervisor', 'hypervisor_type'), ('Arch', 'architecture'),
    ('VCPUs used/total', lambda h: _used(h, 'vcpus')),
    ('RAM MB used/total', lambda h: _used(h, 'ram_mb')),
    ('Disk GB used/total', lambda h: _used(h, 'disk_gb')),
    ('Instances', 'instances')]
KEYPAIR_COLUMNS = [('Name', 'name'), ('Fingerprint', 'fingerprint')]
# The image properties image-upload sends, as (argument, header suffix).
UPLOAD_HEADERS = (('name', 'Name'), ('disk_format', 'Disk-Format'),
                  ('container_format', 'Container-Format'),
                  ('kernel_id', 'Kernel-Id'), ('ramdisk_id', 'Ramdisk-Id'),
                  ('min_ram', 'Min-Ram'), ('min_disk', 'Min-Disk'),
                  ('architecture', 'Architecture'),
                  ('hypervisor_type', 'Hypervisor-Type'),
                  ('visibility', 'Visibility'))


class Context:
    """What every command needs: the client and where output goes."""

    def __init__(self, client, out, err, as_json=False, tty=None):
        self.client, self.out, self.err = client, out, err
        self.as_json = as_json
        self.tty = err.isatty() if tty is None else tty

    def print(self, text):
        self.out.write(text + '\n')

    def show(self, obj, fields=None):
        """One object: JSON, or a Field/Value table in `fields` order
        followed by whatever else the API sent."""
        if self.as_json:
            self.print(output.to_json(obj))
            return
        order = [f for f in (fields or ()) if f in obj]
        order += [k for k in obj if k not in order]
        self.print(output.object_table(obj, order))

    def show_list(self, columns, objects):
        if self.as_json:
            self.print(output.to_json(objects))
        else:
            self.print(output.list_table(columns, objects))

    def bar(self, label, total):
        """A byte progress bar on stderr, drawn only when that is a
        terminal (the objstore CLI's own bar)."""
        return Progress(self.err, label, total, enabled=self.tty)


def _used(host, field):
    return '%s/%s' % (host.get(field + '_used', ''), host.get(field, ''))


def _field(body, key):
    """body[key], or a clear error when the API answered something else."""
    if not isinstance(body, dict) or key not in body:
        raise CLIError('unexpected answer from the compute API (no %r)' % key)
    return body[key]


def _quote(ref):
    return urllib.parse.quote(ref, safe='')


# --- images -------------------------------------------------------------

def image_id(ctx, ref):
    """An image id from an id or a unique image name."""
    if looks_like_id(ref):
        return ref
    images = _field(ctx.client.request('GET', '/v2.1/images'), 'images')
    return resolve(images, ref, 'image')['id']


def header_value(what, value):
    """`value` as an X-Image-Meta-* header value, sent as it is.

    The API takes these headers literally (it does not percent-decode
    them), so only what HTTP carries unchanged can be sent: printable
    ASCII without blanks at either end. Anything else is refused here
    with a clear line rather than stored mangled or failing in the HTTP
    library.
    """
    text = str(value)
    if encode_value(text.replace('%', '')) != text.replace('%', ''):
        raise CLIError('%s %r: only printable ASCII characters (and no '
                       'blanks at either end) can be sent' % (what, text))
    return text


def upload_headers(args, checksum):
    """The X-Image-Meta-* headers for an upload from parsed arguments."""
    headers = {'Content-Type': 'application/octet-stream',
               'X-Image-Meta-Checksum': checksum}
    for attr, suffix in UPLOAD_HEADERS:
        value = getattr(args, attr, None)
        if value is not None:
            headers['X-Image-Meta-' + suffix] = header_value(
                '--' + attr.replace('_', '-'), value)
    return headers


def image_upload(ctx, args):
    """Two streaming passes over the file: md5, then the upload itself."""
    size = regular_file_size(args.file)
    upload_headers(args, '')        # refuse bad values before any work
    for attr in ('kernel_id', 'ramdisk_id'):
        if getattr(args, attr):
            setattr(args, attr, image_id(ctx, getattr(args, attr)))
    try:
        bar = ctx.bar('checksum', size)
        checksum, size = file_md5(args.file, bar)
        bar.finish()
        with open(args.file, 'rb') as f:
            bar = ctx.bar('upload  ', size)
            body = ctx.client.request(
                'POST', '/v2.1/images', ok=(201,),
                data=CountingFile(f, size, bar),
                headers=upload_headers(args, checksum),
                timeout=UPLOAD_TIMEOUT)
            bar.finish()
    except OSError as exc:
        raise CLIError('cannot read %s: %s' % (args.file, exc.strerror)) \
            from None
    ctx.show(_field(body, 'image'))


def image_list(ctx, args):
    body = ctx.client.request('GET', '/v2.1/images')
    ctx.show_list(IMAGE_COLUMNS, _field(body, 'images'))


def image_show(ctx, args):
    ref = _quote(image_id(ctx, args.image))
    ctx.show(_field(ctx.client.request('GET', '/v2.1/images/' + ref),
                    'image'))


def image_delete(ctx, args):
    ref = _quote(image_id(ctx, args.image))
    ctx.client.request('DELETE', '/v2.1/images/' + ref, ok=(200, 204))


def flavor_list(ctx, args):
    body = ctx.client.request('GET', '/v2.1/flavors/detail')
    ctx.show_list(FLAVOR_COLUMNS, _field(body, 'flavors'))


# --- servers ------------------------------------------------------------

def server_id(ctx, ref):
    """A server id from an id or a unique server name."""
    if looks_like_id(ref):
        return ref
    servers = _field(ctx.client.request('GET', '/v2.1/servers/detail'),
                     'servers')
    return resolve(servers, ref, 'server')['id']


def get_server(ctx, sid):
    body = ctx.client.request('GET', '/v2.1/servers/' + _quote(sid))
    return _field(body, 'server')


def read_user_data(path):
    """The file's bytes base64-encoded; refused above the API's 64 KiB
    before it is read, so a wrong path to a big file fails fast."""
    try:
        size = os.path.getsize(path)
        if size > USER_DATA_MAX:
            raise CLIError('user data %s is %d bytes; the limit is %d'
                           % (path, size, USER_DATA_MAX))
        with open(path, 'rb') as f:
            data = f.read(USER_DATA_MAX + 1)
    except OSError as exc:
        raise CLIError('cannot read %s: %s' % (path, exc.strerror)) from None
    if len(data) > USER_DATA_MAX:
        raise CLIError('user data %s is over %d bytes' % (path, USER_DATA_MAX))
    return base64.b64encode(data).decode('ascii')


def boot_request(args, image):
    """The POST /v2.1/servers body from parsed arguments."""
    server = {'name': args.name, 'imageRef': image,
              'flavorRef': args.flavor}
    if args.user_data:
        server['user_data'] = read_user_data(args.user_data)
    if args.key_name:
        server['key_name'] = args.key_name
    return {'server': server}


def settled(server):
    """A build is over: ACTIVE, ERROR (or gone)."""
    return server.get('status') in (ACTIVE, ERROR, DELETED)


def fault_of(server):
    fault = server.get('fault') or {}
    return fault.get('message') if isinstance(fault, dict) else str(fault)


def boot(ctx, args):
    body = boot_request(args, image_id(ctx, args.image))
    server = _field(ctx.client.request('POST', '/v2.1/servers', body,
                                       ok=(200, 202)), 'server')
    if args.wait:
        sid = _field(server, 'id')
        server = wait_for(lambda: get_server(ctx, sid), settled,
                          args.timeout, POLL_INTERVAL)
        if server.get('status') != ACTIVE:
            ctx.show(server, SERVER_FIELDS)
            raise CLIError('server %s (%s) is %s: %s' % (
                server.get('name'), sid, server.get('status'),
                fault_of(server) or 'no fault message'))
    ctx.show(server, SERVER_FIELDS)


def server_list(ctx, args):
    params = {k: v for k, v in (('status', args.status), ('name', args.name))
              if v}
    body = ctx.client.request('GET', '/v2.1/servers/detail', params=params)
    ctx.show_list(SERVER_COLUMNS, _field(body, 'servers'))


def show(ctx, args):
    ctx.show(get_server(ctx, server_id(ctx, args.server)), SERVER_FIELDS)


def _action(ctx, ref, body, ok=(200, 202)):
    path = '/v2.1/servers/%s/action' % _quote(server_id(ctx, ref))
    return ctx.client.request('POST', path, body, ok=ok)


def console_log(ctx, args):
    params = {} if args.length is None else {'length': args.length}
    body = _action(ctx, args.server, {'os-getConsoleOutput': params},
                   ok=(200,))
    text = _field(body, 'output') or ''
    if ctx.as_json:
        ctx.print(output.to_json(body))
    else:
        ctx.out.write(text if text.endswith('\n') or not text
                      else text + '\n')


def stop(ctx, args):
    _action(ctx, args.server, {'os-stop': None})


def start(ctx, args):
    _action(ctx, args.server, {'os-start': None})


def reboot(ctx, args):
    kind = 'HARD' if args.hard else 'SOFT'
    _action(ctx, args.server, {'reboot': {'type': kind}})


def delete(ctx, args):
    sid = server_id(ctx, args.server)
    ctx.client.request('DELETE', '/v2.1/servers/' + _quote(sid),
                       ok=(200, 202, 204))
    if args.wait:
        wait_for(lambda: _server_or_gone(ctx, sid),
                 lambda s: s.get('status') == DELETED, args.timeout,
                 POLL_INTERVAL)


def _server_or_gone(ctx, sid):
    """The server, or a stand-in DELETED one once the API forgot it."""
    status, body = ctx.client.call('GET', '/v2.1/servers/' + _quote(sid),
                                   ok=(200, 404))
    if status == 404:
        return {'id': sid, 'status': DELETED}
    return _field(body, 'server')


# --- hosts and key pairs ------------------------------------------------

def host_list(ctx, args):
    body = ctx.client.request('GET', '/v2.1/os-hosts')
    ctx.show_list(HOST_COLUMNS, _field(body, 'hosts'))


def _unwrap_keypair(item):
    """Nova wraps each listed key pair in {"keypair": {...}}; accept both."""
    if isinstance(item, dict) and isinstance(item.get('keypair'), dict):
        return item['keypair']
    return item


def keypair_add(ctx, args):
    try:
        with open(args.pub_key, encoding='utf-8') as f:
            public_key = f.read(64 * 1024).strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError('cannot read %s: %s' % (
            args.pub_key, getattr(exc, 'strerror', None) or exc)) from None
    body = ctx.client.request(
        'POST', '/v2.1/os-keypairs',
        {'keypair': {'name': args.name, 'public_key': public_key}},
        ok=(200, 201))
    ctx.show(_unwrap_keypair(_field(body, 'keypair')))


def keypair_list(ctx, args):
    body = ctx.client.request('GET', '/v2.1/os-keypairs')
    pairs = [_unwrap_keypair(k) for k in _field(body, 'keypairs')]
    ctx.show_list(KEYPAIR_COLUMNS, pairs)


def keypair_delete(ctx, args):
    ctx.client.request('DELETE', '/v2.1/os-keypairs/' + _quote(args.name),
                       ok=(200, 202, 204))
