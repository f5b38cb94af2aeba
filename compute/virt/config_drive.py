"""Config drives: the ISO 9660 image cloud-init reads a guest's identity and
user data from, without any metadata server on the network.

Two layouts, chosen by the volume label cloud-init looks for:
- 'config-2' (cloud-init's ConfigDrive datasource, the OpenStack layout):
  openstack/<version>/meta_data.json, user_data, network_data.json, written
  under 'latest' and under a dated version, since cloud-init reads the
  newest version it knows and older guests only know the dated one;
- 'cidata' (the NoCloud datasource): meta-data and user-data at the root.

Names such as 'meta_data.json' or '2012-08-10' are not valid plain ISO 9660
names, so the image carries Rock Ridge (what Linux mounts by default) and
Joliet names; the plain ISO 9660 names are 8.3 fallbacks derived here.

The image is assembled in memory (it is small: user data is capped at
64 KiB) and written to a temporary file beside `path`, then renamed into
place, so a reader never sees a half-written ISO at `path`.
"""
import io
import json
import posixpath
import re

import pycdlib

from rings.atomic import write_atomically

MAX_USER_DATA = 64 * 1024
LABEL_CONFIG_DRIVE = 'config-2'
LABEL_NOCLOUD = 'cidata'
LABELS = (LABEL_CONFIG_DRIVE, LABEL_NOCLOUD)
# The dated version is the first one cloud-init's ConfigDrive reader knows.
OPENSTACK_VERSIONS = ('2012-08-10', 'latest')

_FILE_MODE = 0o100444   # regular file, read-only for everyone in the guest
_DIR_MODE = 0o040555    # directory, readable and searchable
_NOT_D_CHARS = re.compile(r'[^A-Z0-9_]')


def _json_bytes(value, field):
    """Serialise deterministically, so equal input gives equal files."""
    try:
        return json.dumps(value, sort_keys=True).encode('utf-8')
    except (TypeError, ValueError) as exc:
        raise ValueError('%s is not JSON-serialisable: %s' % (field, exc)) \
            from None


def _check_inputs(meta_data, user_data, network_data, label):
    if label not in LABELS:
        raise ValueError('label must be one of %s' % ', '.join(LABELS))
    if not isinstance(meta_data, dict):
        raise ValueError('meta_data must be a dict')
    if user_data is not None:
        if not isinstance(user_data, (bytes, bytearray)):
            raise ValueError('user_data must be bytes')
        if len(user_data) > MAX_USER_DATA:
            raise ValueError('user_data is %d bytes, more than the %d allowed'
                             % (len(user_data), MAX_USER_DATA))
    if network_data is not None and not isinstance(network_data, dict):
        raise ValueError('network_data must be a dict')


def _openstack_files(meta_data, user_data, network_data):
    """The ConfigDrive layout; cloud-init takes meta_data['uuid'] as the
    instance id, so a drive without one would not be recognised."""
    if not isinstance(meta_data.get('uuid'), str) or not meta_data['uuid']:
        raise ValueError("meta_data needs a 'uuid' string for a %s drive"
                         % LABEL_CONFIG_DRIVE)
    per_version = {'meta_data.json': _json_bytes(meta_data, 'meta_data')}
    if user_data is not None:
        per_version['user_data'] = bytes(user_data)
    if network_data is not None:
        per_version['network_data.json'] = _json_bytes(network_data,
                                                       'network_data')
    files = {}
    for version in OPENSTACK_VERSIONS:
        for name, data in per_version.items():
            files['openstack/%s/%s' % (version, name)] = data
    return files


def _first_present(meta_data, keys):
    for key in keys:
        if meta_data.get(key) is not None:
            return meta_data[key]
    return None


def _nocloud_meta_data(meta_data):
    """NoCloud's meta-data is YAML. Each value is written as a JSON scalar
    or list, which YAML reads the same way, so a hostname holding a newline
    or a colon cannot add keys of its own."""
    instance_id = _first_present(meta_data, ('instance-id', 'uuid'))
    if not isinstance(instance_id, str) or not instance_id:
        raise ValueError("meta_data needs an 'instance-id' or 'uuid' string "
                         "for a %s drive" % LABEL_NOCLOUD)
    lines = ['instance-id: %s' % json.dumps(instance_id)]
    hostname = _first_present(meta_data,
                              ('local-hostname', 'hostname', 'name'))
    if hostname is not None:
        lines.append('local-hostname: %s' % json.dumps(str(hostname)))
    keys = _first_present(meta_data, ('public-keys', 'public_keys'))
    if isinstance(keys, dict):
        keys = [keys[name] for name in sorted(keys)]
    if keys:
        lines.append('public-keys: %s' % json.dumps([str(k) for k in keys]))
    return ('\n'.join(lines) + '\n').encode('utf-8')


def _nocloud_files(meta_data, user_data, network_data):
    """The NoCloud layout. NoCloud wants network config in its own format,
    not OpenStack's network_data.json, so passing one is refused rather
    than silently dropped."""
    if network_data is not None:
        raise ValueError('network_data is only supported on %s drives'
                         % LABEL_CONFIG_DRIVE)
    files = {'meta-data': _nocloud_meta_data(meta_data)}
    if user_data is not None:
        files['user-data'] = bytes(user_data)
    return files


def config_drive_files(meta_data, user_data=None, network_data=None,
                       label=LABEL_CONFIG_DRIVE):
    """Return {relative path: bytes} of what the drive holds (pure)."""
    _check_inputs(meta_data, user_data, network_data, label)
    if label == LABEL_CONFIG_DRIVE:
        return _openstack_files(meta_data, user_data, network_data)
    return _nocloud_files(meta_data, user_data, network_data)


def _iso9660_name(name, is_dir, taken):
    """An ISO 9660 level 1 name (8.3 upper-case d-characters) for `name`,
    unique among `taken` in its directory. Only a fallback: guests read the
    Rock Ridge or Joliet name."""
    stem, ext = name, ''
    if not is_dir and '.' in name.lstrip('.'):
        stem, _, ext = name.rpartition('.')
    stem = _NOT_D_CHARS.sub('_', stem.upper())[:8] or '_'
    ext = _NOT_D_CHARS.sub('_', ext.upper())[:3]
    candidate, counter = stem, 0
    while True:
        full = candidate if is_dir else '%s.%s;1' % (candidate, ext)
        if full not in taken:
            taken.add(full)
            return full
        counter += 1
        suffix = str(counter)
        candidate = stem[:8 - len(suffix)] + suffix


class _IsoTree:
    """Maps each directory and file of the drive to its three names
    (ISO 9660, Rock Ridge, Joliet) and adds it to a pycdlib image once."""

    def __init__(self, iso):
        self.iso = iso
        self.iso_paths = {'': ''}   # relative path -> ISO 9660 path
        self.taken = {'': set()}    # ISO 9660 dir path -> names used in it

    def _child(self, rel_path, is_dir):
        parent, name = posixpath.split(rel_path)
        parent_iso = self.iso_paths[parent]
        iso_name = _iso9660_name(name, is_dir, self.taken[parent_iso])
        return name, '%s/%s' % (parent_iso, iso_name)

    def add_dir(self, rel_path):
        if rel_path in self.iso_paths:
            return
        self.add_dir(posixpath.dirname(rel_path))
        name, iso_path = self._child(rel_path, is_dir=True)
        self.iso.add_directory(iso_path=iso_path, rr_name=name,
                               joliet_path='/' + rel_path,
                               file_mode=_DIR_MODE)
        self.iso_paths[rel_path] = iso_path
        self.taken[iso_path] = set()

    def add_file(self, rel_path, data):
        self.add_dir(posixpath.dirname(rel_path))
        name, iso_path = self._child(rel_path, is_dir=False)
        # pycdlib reads the file object when writing, so keep it in memory.
        self.iso.add_fp(io.BytesIO(data), len(data), iso_path=iso_path,
                        rr_name=name, joliet_path='/' + rel_path,
                        file_mode=_FILE_MODE)


def _write_iso(fileobj, files, label):
    """Master an ISO holding `files` with volume label `label` to fileobj.

    The label goes into both the primary and the Joliet volume descriptor,
    since blkid (and so cloud-init's LABEL= lookup) may report either.
    """
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident=label, joliet=3,
            rock_ridge='1.09')
    try:
        tree = _IsoTree(iso)
        for rel_path in sorted(files):
            tree.add_file(rel_path, files[rel_path])
        iso.write_fp(fileobj)
    finally:
        iso.close()


def build_config_drive(path, meta_data, user_data=None, network_data=None,
                       label=LABEL_CONFIG_DRIVE):
    """Write a config drive ISO to `path` (atomically) for cloud-init.

    meta_data: dict (for 'config-2' it needs 'uuid'; for 'cidata' an
    'instance-id' or 'uuid', plus optional 'hostname'/'name' and
    'public_keys'). user_data: bytes, at most 64 KiB, or None.
    network_data: dict in OpenStack's network_data.json format ('config-2'
    only) or None. Raises ValueError for bad input before creating anything.
    """
    files = config_drive_files(meta_data, user_data, network_data, label)
    # 0600: user data may hold secrets (QEMU runs as root here)
    write_atomically(path, lambda fileobj: _write_iso(fileobj, files, label),
                     mode=0o600)
