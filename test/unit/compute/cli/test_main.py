"""Argument parsing, settings from the environment, and how main reports
failures (one line, exit 1; usage errors exit 2; no traceback)."""
import io
import socket

import pytest

from compute.cli import commands, main

TOKEN_ENV = {'OS_AUTH_TOKEN': 'AUTH_tk123'}


def parse(argv, env=None):
    return main.parse_args(argv, TOKEN_ENV if env is None else env)


def usage_error(argv, env=None):
    with pytest.raises(SystemExit) as info:
        parse(argv, env)
    return info.value.code


def test_global_options_go_before_or_after_the_command():
    before = parse(['--json', '--compute-url', 'http://h:1', 'list'])
    after = parse(['list', '--json', '--compute-url', 'http://h:1'])
    for args in (before, after):
        assert args.json is True
        assert args.compute_url == 'http://h:1'
        assert args.func is commands.server_list


def test_a_value_given_before_the_command_is_not_reset_after_it():
    args = parse(['--os-auth-token', 'given', 'show', 'web'], env={})
    assert args.os_auth_token == 'given'
    assert args.server == 'web'


def test_environment_supplies_defaults_and_options_win():
    env = {'ST_AUTH': 'http://a/auth/v1.0', 'ST_USER': 'test:tester',
           'ST_KEY': 'testing', 'COMPUTE_URL': 'http://c:9'}
    args = parse(['host-list'], env)
    assert (args.auth, args.user, args.key) == \
        ('http://a/auth/v1.0', 'test:tester', 'testing')
    assert args.compute_url == 'http://c:9'
    assert args.json is False
    args = parse(['--user', 'other:u', 'host-list', '--compute-url', 'x'],
                 env)
    assert args.user == 'other:u' and args.compute_url == 'x'


def test_default_compute_url():
    assert parse(['flavor-list']).compute_url == 'http://127.0.0.1:8774'


def test_missing_credentials_is_a_usage_error(capsys):
    assert usage_error(['list'], env={}) == 2
    err = capsys.readouterr().err
    assert 'compute: error: give --auth, --user and --key' in err
    # a missing user is not enough; an empty variable counts as unset
    assert usage_error(['list'], env={'ST_AUTH': 'u', 'ST_KEY': 'k'}) == 2
    assert usage_error(['list'], env={'ST_AUTH': 'u', 'ST_USER': 'a:b',
                                      'ST_KEY': ''}) == 2


def test_empty_key_from_the_command_line_is_accepted():
    args = parse(['--auth', 'u', '--user', 'a:b', '--key', '', 'list'], {})
    assert args.key == ''


def test_image_upload_arguments():
    args = parse(['image-upload', 'disk.img', '--name', 'cirros',
                  '--disk-format', 'ami', '--container-format', 'ami',
                  '--kernel-id', 'k', '--ramdisk-id', 'r', '--min-ram', '64',
                  '--min-disk', '1', '--architecture', 'x86_64',
                  '--public'])
    assert (args.file, args.name, args.disk_format, args.container_format,
            args.kernel_id, args.ramdisk_id, args.min_ram, args.min_disk,
            args.architecture, args.visibility) == \
        ('disk.img', 'cirros', 'ami', 'ami', 'k', 'r', 64, 1, 'x86_64',
         'public')
    args = parse(['image-upload', 'f', '--name', 'n'])
    assert args.visibility is None and args.disk_format is None


@pytest.mark.parametrize('argv', [
    ['image-upload', 'f'],                                   # no --name
    ['image-upload', 'f', '--name', 'n', '--disk-format', 'vmdk'],
    ['image-upload', 'f', '--name', 'n', '--min-ram', '-1'],
    ['boot', 'vm'],                                          # no image
    ['boot', 'vm', '--image', 'i', '--flavor', 'f', '--timeout', '0'],
    ['console-log', 'vm', '--length', 'ten'],
    ['reboot'],
    ['no-such-command'],
    [],
])
def test_bad_usage_exits_2(argv):
    assert usage_error(argv) == 2


def test_boot_arguments_and_defaults():
    args = parse(['boot', 'vm1', '--image', 'cirros', '--flavor', 'm1.tiny',
                  '--user-data', 'ud.txt', '--key-name', 'k', '--wait',
                  '--timeout', '90'])
    assert (args.name, args.image, args.flavor, args.user_data,
            args.key_name, args.wait, args.timeout) == \
        ('vm1', 'cirros', 'm1.tiny', 'ud.txt', 'k', True, 90.0)
    args = parse(['boot', 'vm1', '--image', 'i', '--flavor', 'f'])
    assert args.wait is False and args.timeout == main.DEFAULT_WAIT_TIMEOUT


@pytest.mark.parametrize('argv, func', [
    (['image-list'], commands.image_list),
    (['image-show', 'x'], commands.image_show),
    (['image-delete', 'x'], commands.image_delete),
    (['flavor-list'], commands.flavor_list),
    (['list', '--status', 'ACTIVE', '--name', 'web'], commands.server_list),
    (['show', 'x'], commands.show),
    (['console-log', 'x', '--length', '5'], commands.console_log),
    (['stop', 'x'], commands.stop),
    (['start', 'x'], commands.start),
    (['reboot', 'x', '--hard'], commands.reboot),
    (['delete', 'x', '--wait'], commands.delete),
    (['host-list'], commands.host_list),
    (['keypair-add', 'k', '--pub-key', 'f'], commands.keypair_add),
    (['keypair-list'], commands.keypair_list),
    (['keypair-delete', 'k'], commands.keypair_delete),
])
def test_every_command_parses_to_its_function(argv, func):
    assert parse(argv).func is func


def closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_main_reports_an_unreachable_api_in_one_line(monkeypatch):
    url = 'http://127.0.0.1:%d' % closed_port()
    monkeypatch.setattr('os.environ', dict(TOKEN_ENV, COMPUTE_URL=url))
    out, err = io.StringIO(), io.StringIO()
    assert main.main(['list'], out, err) == 1
    assert err.getvalue() == ('compute: error: cannot connect to the compute '
                              'API at %s (is it running?)\n' % url)
    assert out.getvalue() == ''


def test_main_reports_an_unreachable_auth_service(monkeypatch):
    auth = 'http://127.0.0.1:%d/auth/v1.0' % closed_port()
    monkeypatch.setattr('os.environ', {'ST_AUTH': auth, 'ST_USER': 'a:b',
                                       'ST_KEY': 'k'})
    err = io.StringIO()
    assert main.main(['flavor-list'], io.StringIO(), err) == 1
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and auth in lines[0]
    assert lines[0].startswith('compute: error: cannot connect to the auth')


def test_main_reports_a_local_file_problem_before_any_request(
        monkeypatch, tmp_path):
    monkeypatch.setattr('os.environ', dict(TOKEN_ENV))
    err = io.StringIO()
    missing = str(tmp_path / 'missing.img')
    assert main.main(['image-upload', missing, '--name', 'n'],
                     io.StringIO(), err) == 1
    assert err.getvalue().startswith('compute: error: cannot read %s'
                                     % missing)
