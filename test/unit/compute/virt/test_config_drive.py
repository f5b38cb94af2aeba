"""build_config_drive(): ISOs read back with pycdlib, byte for byte."""
import io
import json
import os
import re
import stat

import pycdlib
import pytest

from compute.virt import config_drive
from compute.virt.config_drive import (MAX_USER_DATA, build_config_drive,
                                       config_drive_files)

META = {'uuid': '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', 'hostname': 'vm-1',
        'name': 'vm-1', 'public_keys': {'mykey': 'ssh-ed25519 AAAA me@x'}}
NETWORK = {'links': [{'id': 'eth0', 'type': 'phy'}], 'networks': [],
           'services': []}
USER_DATA = b'#!/bin/sh\necho "hello \xff\x00 world"\n'
LEVEL1_NAME = re.compile(r'[A-Z0-9_]{1,8}(\.[A-Z0-9_]{0,3};1)?\Z')


@pytest.fixture
def iso_reader():
    """Open ISOs for reading and close them all after the test."""
    opened = []

    def open_iso(path):
        iso = pycdlib.PyCdlib()
        iso.open(str(path))
        opened.append(iso)
        return iso
    yield open_iso
    for iso in opened:
        iso.close()


def read(iso, **path_kwarg):
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **path_kwarg)
    return out.getvalue()


def exists(iso, path):
    try:
        read(iso, rr_path=path)
    except pycdlib.pycdlibexception.PyCdlibInvalidInput:
        return False
    return True


def label_of(iso):
    """Both the primary and the Joliet volume labels, decoded."""
    primary = iso.pvd.volume_identifier.decode('ascii').rstrip()
    joliet = iso.joliet_vd.volume_identifier.decode('utf-16-be').rstrip()
    return primary, joliet


def test_config2_drive_holds_every_file_in_both_versions(tmp_path,
                                                         iso_reader):
    path = tmp_path / 'config.iso'
    build_config_drive(str(path), META, USER_DATA, NETWORK)
    iso = iso_reader(path)
    for version in ('latest', '2012-08-10'):
        base = '/openstack/%s/' % version
        for kind in ('rr_path', 'joliet_path'):
            meta = read(iso, **{kind: base + 'meta_data.json'})
            assert json.loads(meta) == META
            assert read(iso, **{kind: base + 'user_data'}) == USER_DATA
            network = read(iso, **{kind: base + 'network_data.json'})
            assert json.loads(network) == NETWORK


def test_config2_label_is_in_both_volume_descriptors(tmp_path, iso_reader):
    path = tmp_path / 'config.iso'
    build_config_drive(str(path), META, None)
    assert label_of(iso_reader(path)) == ('config-2', 'config-2')


def test_optional_files_are_absent_when_not_given(tmp_path, iso_reader):
    path = tmp_path / 'config.iso'
    build_config_drive(str(path), META)
    iso = iso_reader(path)
    assert exists(iso, '/openstack/latest/meta_data.json')
    assert not exists(iso, '/openstack/latest/user_data')
    assert not exists(iso, '/openstack/latest/network_data.json')
    assert not exists(iso, '/openstack/2012-08-10/user_data')


def test_empty_user_data_is_an_empty_file(tmp_path, iso_reader):
    path = tmp_path / 'config.iso'
    build_config_drive(str(path), META, b'')
    assert read(iso_reader(path), rr_path='/openstack/latest/user_data') \
        == b''


def test_plain_iso9660_names_are_valid_level1_names(tmp_path, iso_reader):
    path = tmp_path / 'config.iso'
    build_config_drive(str(path), META, USER_DATA, NETWORK)
    seen = 0
    for _, dirs, files in iso_reader(path).walk(iso_path='/'):
        for name in dirs + files:
            assert LEVEL1_NAME.match(name), name
            seen += 1
    assert seen == 3 + 2 * 3   # openstack, two versions, three files each


def test_files_and_directories_are_read_only_in_the_guest(tmp_path,
                                                          iso_reader):
    path = tmp_path / 'config.iso'
    build_config_drive(str(path), META, USER_DATA)
    iso = iso_reader(path)
    modes = {child.rock_ridge.name(): child.rock_ridge.get_file_mode()
             for child in iso.list_children(rr_path='/openstack/latest')
             if not (child.is_dot() or child.is_dotdot())}
    assert modes == {b'meta_data.json': 0o100444, b'user_data': 0o100444}
    top = [c for c in iso.list_children(rr_path='/')
           if not (c.is_dot() or c.is_dotdot())]
    assert [c.rock_ridge.get_file_mode() for c in top] == [0o040555]


def test_nocloud_drive(tmp_path, iso_reader):
    path = tmp_path / 'cidata.iso'
    build_config_drive(str(path), META, USER_DATA, label='cidata')
    iso = iso_reader(path)
    assert label_of(iso) == ('cidata', 'cidata')
    assert read(iso, rr_path='/user-data') == USER_DATA
    assert read(iso, joliet_path='/user-data') == USER_DATA
    assert read(iso, rr_path='/meta-data') == (
        b'instance-id: "%s"\nlocal-hostname: "vm-1"\n'
        b'public-keys: ["ssh-ed25519 AAAA me@x"]\n' % META['uuid'].encode())
    assert not exists(iso, '/openstack/latest/meta_data.json')


def test_nocloud_meta_data_is_yaml_that_cannot_be_injected():
    yaml = pytest.importorskip('yaml')
    meta = {'instance-id': 'i-1', 'hostname': 'h\ninstance-id: evil\n: x'}
    files = config_drive_files(meta, None, label='cidata')
    assert yaml.safe_load(files['meta-data']) == {
        'instance-id': 'i-1', 'local-hostname': meta['hostname']}


def test_nocloud_prefers_explicit_keys_and_lists_keys():
    meta = {'instance-id': 'i-1', 'uuid': 'u-1', 'local-hostname': 'lh',
            'hostname': 'h', 'public-keys': ['k1', 'k2']}
    text = config_drive_files(meta, label='cidata')['meta-data'].decode()
    assert text == ('instance-id: "i-1"\nlocal-hostname: "lh"\n'
                    'public-keys: ["k1", "k2"]\n')


def test_nocloud_without_user_data_has_only_meta_data():
    assert sorted(config_drive_files({'uuid': 'u'}, label='cidata')) == [
        'meta-data']


def test_nocloud_refuses_openstack_network_data(tmp_path):
    with pytest.raises(ValueError, match='network_data'):
        build_config_drive(str(tmp_path / 'x.iso'), META, None, NETWORK,
                           label='cidata')
    assert os.listdir(tmp_path) == []


def test_user_data_of_exactly_64k_is_accepted(tmp_path, iso_reader):
    data = bytes(range(256)) * (MAX_USER_DATA // 256)
    assert len(data) == 64 * 1024
    path = tmp_path / 'config.iso'
    build_config_drive(str(path), META, data)
    assert read(iso_reader(path), rr_path='/openstack/latest/user_data') \
        == data


@pytest.mark.parametrize('label', ['config-2', 'cidata'])
def test_user_data_over_64k_is_refused_and_nothing_written(tmp_path, label):
    with pytest.raises(ValueError, match='user_data'):
        build_config_drive(str(tmp_path / 'x.iso'), META,
                           b'x' * (MAX_USER_DATA + 1), label=label)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('kwargs,field', [
    ({'user_data': 'text, not bytes'}, 'user_data'),
    ({'meta_data': {'hostname': 'no uuid'}}, 'uuid'),
    ({'meta_data': {'uuid': ''}}, 'uuid'),
    ({'meta_data': ['not', 'a', 'dict']}, 'meta_data'),
    ({'meta_data': {'uuid': 'u', 'bad': object()}}, 'meta_data'),
    ({'network_data': ['not a dict']}, 'network_data'),
    ({'network_data': {'bad': {1, 2}}}, 'network_data'),
    ({'label': 'CONFIG-2'}, 'label'),
    ({'label': 'cidata', 'meta_data': {'hostname': 'h'}}, 'instance-id'),
])
def test_bad_input_is_refused_before_any_file_exists(tmp_path, kwargs,
                                                     field):
    args = {'meta_data': META, 'user_data': None}
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        build_config_drive(str(tmp_path / 'x.iso'), **args)
    assert os.listdir(tmp_path) == []


def test_failure_while_writing_leaves_old_file_and_no_temp(tmp_path,
                                                           monkeypatch):
    path = tmp_path / 'config.iso'
    path.write_bytes(b'previous drive')

    def broken_write_fp(self, fileobj, *args, **kwargs):
        fileobj.write(b'\0' * 4096)   # half an ISO, then the disk fails
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(pycdlib.PyCdlib, 'write_fp', broken_write_fp)
    with pytest.raises(OSError, match='No space'):
        build_config_drive(str(path), META, USER_DATA)
    assert os.listdir(tmp_path) == ['config.iso']
    assert path.read_bytes() == b'previous drive'


def test_failure_before_replace_leaves_no_file_at_all(tmp_path,
                                                      monkeypatch):
    def failing_replace(src, dst):
        raise OSError(5, 'I/O error')
    monkeypatch.setattr(os, 'replace', failing_replace)
    with pytest.raises(OSError, match='I/O error'):
        build_config_drive(str(tmp_path / 'x.iso'), META)
    assert os.listdir(tmp_path) == []


def test_rebuild_replaces_existing_drive(tmp_path, iso_reader):
    path = tmp_path / 'config.iso'
    build_config_drive(str(path), META, b'first')
    build_config_drive(str(path), META, b'second')
    assert os.listdir(tmp_path) == ['config.iso']
    assert read(iso_reader(path), rr_path='/openstack/latest/user_data') \
        == b'second'


def test_drive_is_private_to_its_owner(tmp_path):
    path = tmp_path / 'config.iso'
    build_config_drive(str(path), META, USER_DATA)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_config_drive_files_is_deterministic():
    first = config_drive_files(dict(META), USER_DATA, NETWORK)
    second = config_drive_files(dict(reversed(list(META.items()))),
                                USER_DATA, NETWORK)
    assert first == second
    assert sorted(first) == sorted(
        'openstack/%s/%s' % (version, name)
        for version in ('latest', '2012-08-10')
        for name in ('meta_data.json', 'user_data', 'network_data.json'))


def test_iso9660_names_stay_unique_when_mangled_names_collide():
    taken = set()
    names = [config_drive._iso9660_name(name, False, taken) for name in
             ('meta_data.json', 'meta_data.jsonx', 'META-DAT.JSO',
              'meta_data_two.json')]
    assert len(set(names)) == 4
    assert all(LEVEL1_NAME.match(name) for name in names), names
    dir_taken = set()
    dirs = [config_drive._iso9660_name(name, True, dir_taken)
            for name in ('2012-08-10', '2012-08-11')]
    assert dirs == ['2012_08_', '2012_081']
