"""Image properties and the objstore object metadata that carries them.

The store is the registry: an image's properties live as user metadata on
its object, one header per property, `X-Object-Meta-Image-<Prop>` (the
property name with '_' spelled '-', since many HTTP stacks drop header
names containing '_'). Everything here is pure so the API server can refuse
bad input with a 400 before a byte is uploaded, and the same checks apply
to what the store writes.

Values are text; non-ASCII characters, '%' and spaces at either end are
percent-encoded so that any name survives HTTP headers (which are latin-1
and lose surrounding whitespace) unchanged. Objstore's metadata limits
(90 items, 256 bytes per value, 4096 bytes in all) are checked on the
encoded form, so whatever `validate` accepts the store can write.
"""
import datetime
import re
import string
import urllib.parse
import uuid

from objstore.common import constraints

HEADER_PREFIX = 'X-Object-Meta-Image-'

DISK_FORMATS = ('raw', 'qcow2', 'aki', 'ari', 'ami')
CONTAINER_FORMATS = ('bare', 'aki', 'ari', 'ami')
# Formats of the Amazon style: kernel (aki), ramdisk (ari), machine (ami).
# Disk and container format must agree for these.
AMAZON_FORMATS = ('aki', 'ari', 'ami')
VISIBILITIES = ('private', 'public')
STATUSES = ('saving', 'active')

# Every property, in the order headers are written.
PROPERTIES = ('name', 'disk_format', 'container_format', 'size', 'checksum',
              'sha256', 'min_ram', 'min_disk', 'architecture',
              'hypervisor_type', 'kernel_id', 'ramdisk_id', 'visibility',
              'status', 'created_at', 'owner')
INT_PROPERTIES = ('size', 'min_ram', 'min_disk')
# Properties the store computes; a user cannot set them on upload.
STORE_OWNED = ('size', 'checksum', 'sha256', 'status', 'created_at')

NAME_MAX_CHARS = 255
TIME_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
_TOKEN = re.compile(r'^[A-Za-z0-9_.+-]{1,64}$')
_HEX = re.compile(r'^[0-9a-f]+$')
# Printable ASCII (space included) stays as is in a header value; '%'
# must be encoded so that decoding is exact.
_SAFE = ''.join(c for c in string.printable
                if c not in '%' and c not in string.whitespace[1:])


def header_name(prop):
    """The metadata header that carries one property."""
    return HEADER_PREFIX + '-'.join(
        part.capitalize() for part in prop.split('_'))


def encode_value(text):
    """Text -> a header value that decodes back exactly (see module doc)."""
    value = urllib.parse.quote(text, safe=_SAFE)
    if value.startswith(' '):
        value = '%20' + value[1:]
    if value.endswith(' '):
        value = value[:-1] + '%20'
    return value


def decode_value(value):
    """The inverse of encode_value."""
    return urllib.parse.unquote(value)


# --- checks for single values -------------------------------------------

def _text(prop, value, max_chars=None):
    if not isinstance(value, str):
        raise ValueError('%s must be a string, got %r' % (prop, value))
    if not value:
        raise ValueError('%s must not be empty' % prop)
    if max_chars is not None and len(value) > max_chars:
        raise ValueError('%s is %d characters long; the limit is %d'
                         % (prop, len(value), max_chars))
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError('%s contains control characters' % prop)
    return value


def _choice(prop, value, allowed):
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise ValueError('%s must be one of %s, got %r'
                         % (prop, ', '.join(allowed), value))
    return value.strip().lower()


def _whole(prop, value):
    """A non-negative int from an int or a decimal string (not a bool)."""
    if isinstance(value, bool):
        raise ValueError('%s must be a whole number, got %r' % (prop, value))
    if isinstance(value, str) and re.fullmatch(r'\s*-?\d+\s*', value):
        value = int(value)
    if not isinstance(value, int):
        raise ValueError('%s must be a whole number, got %r' % (prop, value))
    if value < 0:
        raise ValueError('%s must not be negative, got %d' % (prop, value))
    return value


def _hex(prop, value, length):
    if not isinstance(value, str) or not _HEX.match(value.strip().lower()) \
            or len(value.strip()) != length:
        raise ValueError('%s must be %d hex digits, got %r'
                         % (prop, length, value))
    return value.strip().lower()


def _uuid(prop, value):
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise ValueError('%s must be an image id (a UUID), got %r'
                         % (prop, value)) from None


def _token(prop, value):
    if not isinstance(value, str) or not _TOKEN.match(value):
        raise ValueError('%s must be 1-64 letters, digits or "_.+-", got %r'
                         % (prop, value))
    return value


def _time(prop, value):
    try:
        parsed = datetime.datetime.strptime(value, TIME_FORMAT)
    except (TypeError, ValueError):
        raise ValueError('%s must be a UTC time like 2024-01-31T12:00:00Z, '
                         'got %r' % (prop, value)) from None
    return parsed.strftime(TIME_FORMAT)


_CHECKS = {
    'name': lambda p, v: _text(p, v, NAME_MAX_CHARS),
    'disk_format': lambda p, v: _choice(p, v, DISK_FORMATS),
    'container_format': lambda p, v: _choice(p, v, CONTAINER_FORMATS),
    'size': _whole,
    'checksum': lambda p, v: _hex(p, v, 32),
    'sha256': lambda p, v: _hex(p, v, 64),
    'min_ram': _whole,
    'min_disk': _whole,
    'architecture': _token,
    'hypervisor_type': _token,
    'kernel_id': _uuid,
    'ramdisk_id': _uuid,
    'visibility': lambda p, v: _choice(p, v, VISIBILITIES),
    'status': lambda p, v: _choice(p, v, STATUSES),
    'created_at': _time,
    'owner': lambda p, v: _text(p, v, NAME_MAX_CHARS),
}


# --- whole property sets ------------------------------------------------

def _apply_defaults(props):
    """Fill what an image without a say gets: a private raw bare image."""
    props.setdefault('disk_format', 'raw')
    if 'container_format' not in props:
        disk = props['disk_format']
        props['container_format'] = disk if disk in AMAZON_FORMATS else 'bare'
    props.setdefault('visibility', 'private')
    props.setdefault('min_ram', 0)
    props.setdefault('min_disk', 0)


def _check_formats(props):
    """Amazon-style formats pair up; only non-kernel images name a kernel."""
    disk, container = props['disk_format'], props['container_format']
    if (disk in AMAZON_FORMATS or container in AMAZON_FORMATS) \
            and disk != container:
        raise ValueError('disk_format %r and container_format %r must be '
                         'the same when either is aki, ari or ami'
                         % (disk, container))
    if disk in ('aki', 'ari'):
        for prop in ('kernel_id', 'ramdisk_id'):
            if prop in props:
                raise ValueError('an %s image cannot name a %s; only machine '
                                 'images boot from a kernel and ramdisk'
                                 % (disk, prop))


def _check_limits(headers):
    """Objstore's metadata limits, with a message naming the culprit."""
    for key, value in headers.items():
        nbytes = len(value.encode('latin-1'))
        if nbytes > constraints.MAX_META_VALUE_LENGTH:
            raise ValueError(
                '%s is %d bytes once encoded for objstore metadata; the limit '
                'is %d bytes' % (_prop_of(key), nbytes,
                                 constraints.MAX_META_VALUE_LENGTH))
    reason = constraints.check_metadata(headers, 'object')
    if reason:
        raise ValueError('image properties do not fit objstore metadata: %s'
                         % reason)


def validate(props):
    """Properties -> a normalised copy, or ValueError saying what is wrong.

    Unknown keys are refused (a typo should not vanish silently); None
    means "not given". Enum values are lower-cased, ids made canonical, int
    properties made ints, and defaults filled in (raw/bare, private, no
    minimum RAM or disk). `name` is required.
    """
    if not hasattr(props, 'items'):
        raise ValueError('image properties must be a mapping, got %r'
                         % (props,))
    unknown = sorted(k for k in props if k not in _CHECKS)
    if unknown:
        raise ValueError('unknown image propert%s %s (known: %s)' % (
            'y' if len(unknown) == 1 else 'ies',
            ', '.join(repr(k) for k in unknown), ', '.join(PROPERTIES)))
    clean = {}
    for prop, value in props.items():
        if value is not None:
            clean[prop] = _CHECKS[prop](prop, value)
    if 'name' not in clean:
        raise ValueError('name is required')
    _apply_defaults(clean)
    _check_formats(clean)
    _check_limits(_encode(clean))
    return {prop: clean[prop] for prop in PROPERTIES if prop in clean}


def _encode(clean):
    return {header_name(prop): encode_value(str(clean[prop]))
            for prop in PROPERTIES if prop in clean}


def _prop_of(key):
    """The property a metadata header name carries, or None."""
    lkey = key.lower()
    prefix = HEADER_PREFIX.lower()
    if not lkey.startswith(prefix):
        return None
    prop = lkey[len(prefix):].replace('-', '_')
    return prop if prop in _CHECKS else None


def to_headers(props):
    """Validated properties -> {header name: value} for a PUT or POST.

    Raises ValueError as validate() does.
    """
    return _encode(validate(props))


def from_headers(headers):
    """Object headers (any case) -> properties.

    Lenient, because what is stored may have been written by an older
    version or by hand: other metadata is ignored, values are decoded and
    int properties made ints where they parse, but nothing is refused.
    """
    props = {}
    for key, value in headers.items():
        prop = _prop_of(key)
        if prop is None:
            continue
        value = decode_value(value)
        if prop in INT_PROPERTIES and re.fullmatch(r'\d+', value.strip()):
            value = int(value)
        props[prop] = value
    return {prop: props[prop] for prop in PROPERTIES if prop in props}
