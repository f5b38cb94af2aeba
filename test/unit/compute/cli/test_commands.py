"""Command logic: request bodies and headers built from arguments, what
gets printed, and the paths a command takes. The API client is a stub
object that answers from a table (no server: the lead's functional tests
run these against the real API)."""
import argparse
import base64
import hashlib
import io
import json

import pytest

from compute.cli import commands
from compute.cli.client import CLIError

ID1 = '11111111-1111-4111-8111-111111111111'
ID2 = '22222222-2222-4222-8222-222222222222'
IMG = '99999999-9999-4999-8999-999999999999'


class StubClient:
    """Answers (method, path) from `answers`; records every call."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def call(self, method, path, json_body=None, ok=(200,), **kwargs):
        self.calls.append((method, path, json_body, kwargs))
        answer = self.answers[(method, path)]
        if callable(answer):
            answer = answer()
        status, body = answer
        if status not in ok:
            raise CLIError('HTTP %d' % status)
        return status, body

    def request(self, method, path, json_body=None, ok=(200,), **kwargs):
        return self.call(method, path, json_body, ok, **kwargs)[1]


def make_ctx(answers, as_json=False):
    return commands.Context(StubClient(answers), io.StringIO(),
                            io.StringIO(), as_json=as_json, tty=False)


def ns(**kwargs):
    return argparse.Namespace(**kwargs)


def test_upload_headers_carry_given_properties_only():
    args = ns(name='cirros 0.6', disk_format='qcow2', container_format=None,
              kernel_id=None, ramdisk_id=None, min_ram=0, min_disk=None,
              architecture='x86_64', visibility=None)
    headers = commands.upload_headers(args, 'ab' * 16)
    assert headers == {
        'Content-Type': 'application/octet-stream',
        'X-Image-Meta-Checksum': 'ab' * 16,
        'X-Image-Meta-Name': 'cirros 0.6',
        'X-Image-Meta-Disk-Format': 'qcow2',
        'X-Image-Meta-Min-Ram': '0',
        'X-Image-Meta-Architecture': 'x86_64'}


def test_upload_headers_send_printable_ascii_as_it_is():
    args = ns(name='100% cirros', visibility='public', hypervisor_type='qemu')
    headers = commands.upload_headers(args, '0' * 32)
    assert headers['X-Image-Meta-Name'] == '100% cirros'
    assert headers['X-Image-Meta-Visibility'] == 'public'
    assert headers['X-Image-Meta-Hypervisor-Type'] == 'qemu'


@pytest.mark.parametrize('name', ['caf\u00e9', ' lead', 'trail ', 'tab\there'])
def test_upload_headers_refuse_what_headers_cannot_carry(name):
    with pytest.raises(CLIError, match='--name .*printable ASCII'):
        commands.upload_headers(ns(name=name), '0' * 32)


def test_image_upload_refuses_a_bad_name_before_reading(tmp_path):
    path = tmp_path / 'img'
    path.write_bytes(b'x')
    ctx = make_ctx({})
    with pytest.raises(CLIError, match='printable ASCII'):
        commands.image_upload(ctx, ns(file=str(path), name='caf\u00e9'))
    assert ctx.client.calls == []


def test_image_upload_refuses_a_directory_before_any_request(tmp_path):
    ctx = make_ctx({})
    with pytest.raises(CLIError, match='not a regular file'):
        commands.image_upload(ctx, ns(file=str(tmp_path)))
    assert ctx.client.calls == []


def test_image_upload_sends_md5_and_a_sized_body(tmp_path):
    path = tmp_path / 'kernel'
    path.write_bytes(b'k' * 5000)
    answer = {'image': {'id': IMG, 'name': 'k', 'status': 'active'}}
    ctx = make_ctx({('POST', '/v2.1/images'): (201, answer)}, as_json=True)
    args = ns(file=str(path), name='k', disk_format='aki',
              container_format=None, kernel_id=None, ramdisk_id=None,
              min_ram=None, min_disk=None, architecture=None,
              visibility=None)
    commands.image_upload(ctx, args)
    method, _, _, kwargs = ctx.client.calls[0]
    assert method == 'POST'
    assert kwargs['headers']['X-Image-Meta-Checksum'] == \
        hashlib.md5(b'k' * 5000).hexdigest()
    assert kwargs['headers']['X-Image-Meta-Disk-Format'] == 'aki'
    assert len(kwargs['data']) == 5000
    assert json.loads(ctx.out.getvalue()) == answer['image']


def test_image_id_resolves_names_through_the_listing():
    images = {'images': [{'id': IMG, 'name': 'cirros'}]}
    ctx = make_ctx({('GET', '/v2.1/images'): (200, images)})
    assert commands.image_id(ctx, 'cirros') == IMG
    assert commands.image_id(ctx, ID1) == ID1      # ids are not looked up
    assert len(ctx.client.calls) == 1


def test_boot_request_with_user_data_and_key(tmp_path):
    path = tmp_path / 'ud'
    path.write_bytes(b'#cloud-config\n')
    body = commands.boot_request(
        ns(name='vm1', flavor='m1.tiny', user_data=str(path),
           key_name='mykey'), IMG)
    assert body == {'server': {
        'name': 'vm1', 'imageRef': IMG, 'flavorRef': 'm1.tiny',
        'user_data': base64.b64encode(b'#cloud-config\n').decode(),
        'key_name': 'mykey'}}
    assert commands.boot_request(
        ns(name='vm', flavor='f', user_data=None, key_name=None), IMG) == \
        {'server': {'name': 'vm', 'imageRef': IMG, 'flavorRef': 'f'}}


def test_user_data_limit_is_64_kib(tmp_path):
    path = tmp_path / 'ud'
    path.write_bytes(b'x' * (64 * 1024))
    assert len(base64.b64decode(commands.read_user_data(str(path)))) == \
        64 * 1024
    path.write_bytes(b'x' * (64 * 1024 + 1))
    with pytest.raises(CLIError, match='65537 bytes; the limit is 65536'):
        commands.read_user_data(str(path))
    with pytest.raises(CLIError, match='cannot read'):
        commands.read_user_data(str(tmp_path / 'nope'))


def boot_args(**kwargs):
    base = dict(name='vm1', image=IMG, flavor='m1.nano', user_data=None,
                key_name=None, wait=True, timeout=30)
    base.update(kwargs)
    return ns(**base)


def test_boot_wait_ending_in_error_raises_with_the_fault(monkeypatch):
    monkeypatch.setattr(commands, 'POLL_INTERVAL', 0)
    states = iter([
        {'id': ID1, 'name': 'vm1', 'status': 'BUILD'},
        {'id': ID1, 'name': 'vm1', 'status': 'ERROR',
         'fault': {'message': 'No valid host was found. not enough RAM'}}])
    ctx = make_ctx({
        ('POST', '/v2.1/servers'): (202, {'server': {'id': ID1,
                                                     'status': 'BUILD'}}),
        ('GET', '/v2.1/servers/' + ID1): lambda: (200, {'server':
                                                        next(states)})})
    with pytest.raises(CLIError) as info:
        commands.boot(ctx, boot_args())
    assert str(info.value) == ('server vm1 (%s) is ERROR: No valid host was '
                               'found. not enough RAM' % ID1)
    assert 'ERROR' in ctx.out.getvalue()      # the server is shown too
    assert ctx.client.calls[0][2]['server']['flavorRef'] == 'm1.nano'


def test_boot_wait_ending_active_shows_the_server(monkeypatch):
    monkeypatch.setattr(commands, 'POLL_INTERVAL', 0)
    ctx = make_ctx({
        ('POST', '/v2.1/servers'): (202, {'server': {'id': ID1}}),
        ('GET', '/v2.1/servers/' + ID1): (200, {'server': {
            'id': ID1, 'name': 'vm1', 'status': 'ACTIVE', 'host': 'h1'}})},
        as_json=True)
    commands.boot(ctx, boot_args())
    assert json.loads(ctx.out.getvalue())['status'] == 'ACTIVE'


def test_server_commands_resolve_names_then_act():
    servers = {'servers': [{'id': ID1, 'name': 'web'},
                           {'id': ID2, 'name': 'db'}]}
    action = '/v2.1/servers/%s/action' % ID2
    ctx = make_ctx({('GET', '/v2.1/servers/detail'): (200, servers),
                    ('POST', action): (202, None)})
    commands.reboot(ctx, ns(server='db', hard=True))
    commands.stop(ctx, ns(server=ID2))
    bodies = [c[2] for c in ctx.client.calls if c[0] == 'POST']
    assert bodies == [{'reboot': {'type': 'HARD'}}, {'os-stop': None}]
    assert ctx.out.getvalue() == ''


def test_console_log_prints_the_output_as_is():
    action = '/v2.1/servers/%s/action' % ID1
    ctx = make_ctx({('POST', action): (200, {'output': 'a\nMARKER'})})
    commands.console_log(ctx, ns(server=ID1, length=20))
    assert ctx.out.getvalue() == 'a\nMARKER\n'
    assert ctx.client.calls[0][2] == {'os-getConsoleOutput': {'length': 20}}
    commands.console_log(ctx, ns(server=ID1, length=None))
    assert ctx.client.calls[1][2] == {'os-getConsoleOutput': {}}


def test_delete_wait_treats_404_as_gone(monkeypatch):
    monkeypatch.setattr(commands, 'POLL_INTERVAL', 0)
    answers = iter([(200, {'server': {'id': ID1, 'status': 'ACTIVE',
                                      'task_state': 'deleting'}}),
                    (404, {'error': {'code': 404, 'message': 'gone'}})])
    ctx = make_ctx({('DELETE', '/v2.1/servers/' + ID1): (204, None),
                    ('GET', '/v2.1/servers/' + ID1): lambda: next(answers)})
    commands.delete(ctx, ns(server=ID1, wait=True, timeout=30))
    assert [c[0] for c in ctx.client.calls] == ['DELETE', 'GET', 'GET']


def test_unexpected_answers_are_a_clear_error():
    ctx = make_ctx({('GET', '/v2.1/flavors/detail'): (200, {'x': 1})})
    with pytest.raises(CLIError, match="unexpected answer .*'flavors'"):
        commands.flavor_list(ctx, ns())


def test_show_orders_known_fields_first_then_the_rest():
    ctx = make_ctx({})
    ctx.show({'updated': 'u', 'extra': 'e', 'status': 'ACTIVE', 'id': ID1},
             commands.SERVER_FIELDS)
    fields = [line.split()[0] for line in
              ctx.out.getvalue().splitlines()[2:]]
    assert fields == ['id', 'status', 'updated', 'extra']


def test_host_list_table_shows_used_over_total():
    hosts = {'hosts': [{'name': 'h1', 'state': 'up', 'status': 'enabled',
                        'hypervisor_type': 'qemu', 'architecture': 'x86_64',
                        'vcpus': 4, 'vcpus_used': 1, 'ram_mb': 4096,
                        'ram_mb_used': 512, 'disk_gb': 40, 'disk_gb_used': 1,
                        'instances': 1}]}
    ctx = make_ctx({('GET', '/v2.1/os-hosts'): (200, hosts)})
    commands.host_list(ctx, ns())
    row = ctx.out.getvalue().splitlines()[2].split()
    assert row == ['h1', 'up', 'enabled', 'qemu', 'x86_64', '1/4',
                   '512/4096', '1/40', '1']


def test_keypair_list_accepts_wrapped_and_plain_items():
    pairs = {'keypairs': [{'keypair': {'name': 'a', 'fingerprint': 'f1'}},
                          {'name': 'b', 'fingerprint': 'f2'}]}
    ctx = make_ctx({('GET', '/v2.1/os-keypairs'): (200, pairs)})
    commands.keypair_list(ctx, ns())
    rows = [line.split() for line in ctx.out.getvalue().splitlines()[2:]]
    assert rows == [['a', 'f1'], ['b', 'f2']]


def test_keypair_add_sends_the_key_file(tmp_path):
    path = tmp_path / 'id.pub'
    path.write_text('ssh-ed25519 AAAA me@host\n')
    ctx = make_ctx({('POST', '/v2.1/os-keypairs'): (
        201, {'keypair': {'name': 'k', 'fingerprint': 'ff'}})})
    commands.keypair_add(ctx, ns(name='k', pub_key=str(path)))
    assert ctx.client.calls[0][2] == {'keypair': {
        'name': 'k', 'public_key': 'ssh-ed25519 AAAA me@host'}}
    assert 'ff' in ctx.out.getvalue()


def test_context_draws_a_bar_only_on_a_terminal():
    err = io.StringIO()
    quiet = commands.Context(None, io.StringIO(), err, tty=False).bar('x', 4)
    quiet.add(4)
    quiet.finish()
    assert err.getvalue() == ''
    bar = commands.Context(None, io.StringIO(), err, tty=True).bar('x', 4)
    bar.add(4)
    bar.finish()
    assert err.getvalue().startswith('\rx [') and '100%' in err.getvalue()
    assert err.getvalue().endswith('\n')
