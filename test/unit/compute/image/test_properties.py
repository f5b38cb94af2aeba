"""Image properties <-> objstore object metadata: validation and encoding."""
import uuid

import pytest

from compute.image import properties as p
from objstore.common import constraints

KERNEL = str(uuid.uuid4())
RAMDISK = str(uuid.uuid4())


def full():
    """Every property set, as the store writes them for an active image."""
    return {
        'name': 'debian-12', 'disk_format': 'ami', 'container_format': 'ami',
        'size': 123456, 'checksum': 'a' * 32, 'sha256': 'b' * 64,
        'min_ram': 256, 'min_disk': 2, 'architecture': 'x86_64',
        'hypervisor_type': 'qemu', 'kernel_id': KERNEL,
        'ramdisk_id': RAMDISK, 'visibility': 'private', 'status': 'active',
        'created_at': '2024-05-01T10:20:30Z', 'owner': 'AUTH_test'}


def test_full_round_trip():
    props = full()
    headers = p.to_headers(props)
    assert headers['X-Object-Meta-Image-Disk-Format'] == 'ami'
    assert headers['X-Object-Meta-Image-Min-Ram'] == '256'
    assert all(k.startswith('X-Object-Meta-Image-') for k in headers)
    assert not any('_' in k for k in headers)
    assert p.from_headers(headers) == props
    assert p.validate(props) == props


def test_from_headers_any_case_and_ignores_others():
    headers = {'x-object-meta-image-name': 'n', 'X-OBJECT-META-IMAGE-SIZE':
               '12', 'X-Object-Meta-Color': 'blue', 'Content-Length': '5',
               'X-Object-Meta-Image-Unknown-Thing': 'x',
               'X-Object-Meta-Image-Min-Disk': 'garbage'}
    assert p.from_headers(headers) == {'name': 'n', 'size': 12,
                                       'min_disk': 'garbage'}


def test_defaults_and_normalising():
    out = p.validate({'name': 'x', 'disk_format': ' QCOW2 ', 'min_ram': '64',
                      'kernel_id': KERNEL.upper(), 'checksum': 'AB' * 16,
                      'visibility': 'Public', 'size': None})
    assert out == {'name': 'x', 'disk_format': 'qcow2',
                   'container_format': 'bare', 'checksum': 'ab' * 16,
                   'min_ram': 64, 'min_disk': 0, 'kernel_id': KERNEL,
                   'visibility': 'public'}
    assert p.validate({'name': 'k', 'disk_format': 'aki'})[
        'container_format'] == 'aki'


@pytest.mark.parametrize('props, message', [
    ({}, 'name is required'),
    ({'name': ''}, 'name must not be empty'),
    ({'name': 'x' * 256}, '256 characters'),
    ({'name': 'a\nb'}, 'control characters'),
    ({'name': 7}, 'name must be a string'),
    ({'name': 'x', 'disk_format': 'vhd'}, 'disk_format must be one of'),
    ({'name': 'x', 'container_format': 'ovf'},
     'container_format must be one of'),
    ({'name': 'x', 'visibility': 'shared'}, 'visibility must be one of'),
    ({'name': 'x', 'status': 'queued'}, 'status must be one of'),
    ({'name': 'x', 'min_ram': -1}, 'min_ram must not be negative'),
    ({'name': 'x', 'min_disk': '-3'}, 'min_disk must not be negative'),
    ({'name': 'x', 'size': 1.5}, 'size must be a whole number'),
    ({'name': 'x', 'min_ram': True}, 'min_ram must be a whole number'),
    ({'name': 'x', 'min_ram': '1e3'}, 'min_ram must be a whole number'),
    ({'name': 'x', 'checksum': 'z' * 32}, 'checksum must be 32 hex'),
    ({'name': 'x', 'sha256': 'a' * 63}, 'sha256 must be 64 hex'),
    ({'name': 'x', 'kernel_id': 'vmlinuz'}, 'kernel_id must be an image id'),
    ({'name': 'x', 'ramdisk_id': 42}, 'ramdisk_id must be an image id'),
    ({'name': 'x', 'architecture': 'x86 64'}, 'architecture must be'),
    ({'name': 'x', 'created_at': 'yesterday'}, 'created_at must be'),
    ({'name': 'x', 'created_at': '2024-02-30T00:00:00Z'}, 'created_at'),
    ({'name': 'x', 'colour': 'red'}, "unknown image property 'colour'"),
    ({'name': 'x', 'disk_format': 'aki', 'container_format': 'bare'},
     'must be the same'),
    ({'name': 'x', 'disk_format': 'raw', 'container_format': 'ari'},
     'must be the same'),
    ({'name': 'x', 'disk_format': 'aki', 'kernel_id': KERNEL},
     'an aki image cannot name a kernel_id'),
    ({'name': 'x', 'disk_format': 'ari', 'ramdisk_id': RAMDISK},
     'an ari image cannot name a ramdisk_id'),
])
def test_invalid(props, message):
    with pytest.raises(ValueError, match=message):
        p.validate(props)
    with pytest.raises(ValueError):
        p.to_headers(props)


def test_not_a_mapping():
    with pytest.raises(ValueError, match='mapping'):
        p.validate(['name'])


def test_machine_and_plain_images_may_name_kernel():
    for fmt in ('ami', 'raw', 'qcow2'):
        out = p.validate({'name': 'm', 'disk_format': fmt,
                          'kernel_id': KERNEL, 'ramdisk_id': RAMDISK})
        assert out['kernel_id'] == KERNEL and out['ramdisk_id'] == RAMDISK


@pytest.mark.parametrize('name', [
    'plain', ' spaces at both ends ', '100% real', 'Ünïcødé ✓ 日本',
    'quotes "and" \'such\'', '%41 not decoded twice', 'tab\u00a0nbsp'])
def test_names_survive_headers(name):
    headers = p.to_headers({'name': name})
    value = headers['X-Object-Meta-Image-Name']
    value.encode('ascii')  # always plain ASCII on the wire
    assert value == value.strip()  # HTTP would drop outer whitespace
    assert p.from_headers(headers)['name'] == name


def test_ascii_names_stored_readably():
    headers = p.to_headers({'name': 'Debian 12 (bookworm) amd64'})
    assert headers['X-Object-Meta-Image-Name'] == 'Debian 12 (bookworm) amd64'


def test_value_limit_on_encoded_bytes():
    # 255 ASCII characters fit in objstore's 256-byte value limit
    assert p.to_headers({'name': 'n' * 255})
    # 100 three-byte characters are 900 bytes once percent-encoded
    with pytest.raises(ValueError, match='name is 900 bytes once encoded'):
        p.validate({'name': '日' * 100})


def test_whole_set_within_objstore_limits():
    props = dict(full(), name='n' * 255, owner='o' * 255)
    headers = p.to_headers(props)
    assert constraints.check_metadata(headers, 'object') is None
    assert len(headers) <= constraints.MAX_META_COUNT


def test_overall_limit_enforced(monkeypatch):
    monkeypatch.setattr(constraints, 'MAX_META_OVERALL_SIZE', 200)
    with pytest.raises(ValueError, match='do not fit objstore metadata'):
        p.validate(dict(full(), name='n' * 150))


def test_header_names():
    assert p.header_name('kernel_id') == 'X-Object-Meta-Image-Kernel-Id'
    assert p.header_name('name') == 'X-Object-Meta-Image-Name'
    assert {p._prop_of(p.header_name(k)) for k in p.PROPERTIES} == \
        set(p.PROPERTIES)
