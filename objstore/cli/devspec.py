"""The device strings operators type at the ring builder.

Two small grammars, shared with OpenStack Swift's ring builder so that
operators can reuse what they know:

* an *add value* names one new device, every part in order::

      [r<region>]z<zone>-<ip>:<port>[R<ip>[:<port>]]/<device>[_<meta>]

  e.g. ``r1z2-10.0.0.1:6200/sdb1`` or
  ``z1-[::1]:6200R[::2]:6300/sdb1_"rack 4"``; no region means region 1;

* a *search value* picks existing devices; every part is optional but at
  least one is needed::

      d<id>r<region>z<zone>-<ip>:<port>R<ip>:<port>/<device>_<meta>

  e.g. ``d3``, ``z2``, ``r1z2-10.0.0.1``, ``10.0.0.1:6200``, ``/sdb1``,
  ``_ssd`` (meta matches as a substring, the other parts exactly).

IPv6 addresses go in brackets. Host names are accepted where an IP is;
write them in lower case, because a capital ``R`` starts the replication
part. A meta may hold spaces and underscores; surrounding double quotes
are dropped, so ``_"rack 4"`` and ``_rack 4`` mean the same.

Everything here is a pure function over strings, raising DevSpecError
(a ValueError) with a message fit to show the operator as is.
"""
import ipaddress
import math
import re

# ids, regions, zones and ports in the order a search value names them
_PREFIXES = (('d', 'id'), ('r', 'region'), ('z', 'zone'))
_IPV4 = re.compile(r'\d+\.\d+\.\d+\.\d+')
_HOST = re.compile(r'[a-z0-9](?:[a-z0-9-]*[a-z0-9])?'
                   r'(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*')
_NUMBER = re.compile(r'\d+')

# long flags naming device fields, for add and for searches
FLAG_FIELDS = {
    'id': ('id', int),
    'region': ('region', int),
    'zone': ('zone', int),
    'ip': ('ip', None),
    'port': ('port', int),
    'replication-ip': ('replication_ip', None),
    'replication-port': ('replication_port', int),
    'device': ('device', None),
    'meta': ('meta', None),
    'weight': ('weight', float),
}


class DevSpecError(ValueError):
    """A device or search string could not be understood."""


# -- small parsers: each takes text, returns (value, rest) -------------------

def _take_number(text, what, source):
    m = _NUMBER.match(text)
    if not m:
        raise DevSpecError('expected a number for the %s in %r'
                           % (what, source))
    return int(m.group()), text[m.end():]


def _take_ip(text, source, required=True):
    """An IP address or host name at the start of ``text``, normalised."""
    if text.startswith('['):
        end = text.find(']')
        if end < 0:
            raise DevSpecError('missing "]" after the IPv6 address in %r'
                               % source)
        inside = text[1:end]
        try:
            ip = ipaddress.IPv6Address(inside)
        except ValueError:
            raise DevSpecError('%r is not a valid IPv6 address (in %r)'
                               % (inside, source))
        return str(ip), text[end + 1:]
    m = _IPV4.match(text)
    if m:
        try:
            ip = ipaddress.IPv4Address(m.group())
        except ValueError:
            raise DevSpecError('%r is not a valid IPv4 address (in %r)'
                               % (m.group(), source))
        return str(ip), text[m.end():]
    if re.match(r'[0-9a-fA-F]*:[0-9a-fA-F]*:', text):
        raise DevSpecError('put IPv6 addresses in brackets, like '
                           '[::1]:6200 (in %r)' % source)
    m = _HOST.match(text)
    if m:
        if _numeric_tail(m.group()):
            raise DevSpecError('%r is not a valid IPv4 address (in %r)'
                               % (m.group(), source))
        return m.group(), text[m.end():]
    if required:
        raise DevSpecError('expected an IP address or host name at %r '
                           '(in %r)' % (text[:20], source))
    return None, text


def _numeric_tail(host):
    """Host names never end in an all-digit label; '10.0.0' is a typo."""
    return host.rsplit('.', 1)[-1].isdigit()


def _take_port(text, source):
    port, rest = _take_number(text, 'port', source)
    if not 0 < port < 65536:
        raise DevSpecError('port %d out of range 1-65535 (in %r)'
                           % (port, source))
    return port, rest


def _unquote(meta):
    if len(meta) >= 2 and meta[0] == meta[-1] == '"':
        return meta[1:-1]
    return meta


def _take_device_and_meta(text, source, out):
    """Parse ``/<device>[_<meta>]`` (the end of both grammars) into out."""
    if text.startswith('/'):
        name, sep, meta = text[1:].partition('_')
        if not name:
            raise DevSpecError('empty device name after "/" in %r' % source)
        if any(c.isspace() for c in name) or not name.isprintable():
            raise DevSpecError('device name %r may not contain spaces '
                               '(in %r)' % (name, source))
        out['device'] = name
        text = sep + meta
    if text.startswith('_'):
        out['meta'] = _unquote(text[1:])
        text = ''
    return text


def _check_ip_value(value, what):
    """An IP or host name given on its own (flags, set_info), normalised."""
    if not isinstance(value, str) or not value:
        raise DevSpecError('%s needs an IP address or host name' % what)
    bare = value[1:-1] if value.startswith('[') and value.endswith(']') \
        else value
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if _HOST.fullmatch(bare) and not _numeric_tail(bare):
        return bare
    raise DevSpecError('%r is not a valid IP address or host name for %s'
                       % (value, what))


# -- the public grammar ------------------------------------------------------

def parse_add_value(text):
    """Parse an add value into a device dict without weight or id.

    ``r1z1-127.0.0.1:6200R127.0.0.2:6300/sdb1_meta`` ->
    {'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': 6200,
     'replication_ip': '127.0.0.2', 'replication_port': 6300,
     'device': 'sdb1', 'meta': 'meta'}
    """
    source = text
    if not isinstance(text, str) or not text:
        raise DevSpecError('empty device string')
    dev = {'region': 1}
    rest = text
    if rest.startswith('r'):
        dev['region'], rest = _take_number(rest[1:], 'region', source)
    if not rest.startswith('z'):
        raise DevSpecError('device string %r needs a zone: '
                           '[r<region>]z<zone>-<ip>:<port>/<device>' % source)
    dev['zone'], rest = _take_number(rest[1:], 'zone', source)
    if not rest.startswith('-'):
        raise DevSpecError('expected "-" after the zone in %r' % source)
    dev['ip'], rest = _take_ip(rest[1:], source)
    if not rest.startswith(':'):
        raise DevSpecError('expected ":<port>" after the IP in %r' % source)
    dev['port'], rest = _take_port(rest[1:], source)
    dev['replication_ip'] = dev['ip']
    dev['replication_port'] = dev['port']
    if rest.startswith('R'):
        dev['replication_ip'], rest = _take_ip(rest[1:], source)
        if rest.startswith(':'):
            dev['replication_port'], rest = _take_port(rest[1:], source)
    if not rest.startswith('/'):
        raise DevSpecError('expected "/<device>" after the port in %r'
                           % source)
    dev['meta'] = ''
    rest = _take_device_and_meta(rest, source, dev)
    if rest:
        raise DevSpecError('unexpected %r in device string %r'
                           % (rest, source))
    return dev


def parse_search_value(text):
    """Parse a search value into criteria {field: value}.

    Only the parts present appear in the result; ``meta`` is meant as a
    substring, the other fields as exact values.
    """
    source = text
    if not isinstance(text, str) or not text:
        raise DevSpecError('empty search value')
    crit = {}
    rest = text
    for letter, field in _PREFIXES:
        if rest.startswith(letter) and rest[1:2].isdigit():
            crit[field], rest = _take_number(rest[1:], field, source)
    if rest.startswith('-'):
        crit['ip'], rest = _take_ip(rest[1:], source)
    elif not crit and rest[:1] not in ('', ':', 'R', '/', '_'):
        # an IP may start the value; after d/r/z it needs its "-"
        crit['ip'], rest = _take_ip(rest, source)
    if rest.startswith(':'):
        crit['port'], rest = _take_port(rest[1:], source)
    if rest.startswith('R'):
        rest = _take_replication(rest[1:], source, crit)
    rest = _take_device_and_meta(rest, source, crit)
    if rest:
        raise DevSpecError('unexpected %r in search value %r'
                           % (rest, source))
    if not crit:
        raise DevSpecError('search value %r names nothing to match'
                           % source)
    return crit


def _take_replication(rest, source, into):
    """Parse ``[<ip>][:<port>]`` after an "R" into ``into``; return the rest.

    At least one of the two must be there.
    """
    ip, rest = _take_ip(rest, source, required=False)
    if ip is not None:
        into['replication_ip'] = ip
    if rest.startswith(':'):
        into['replication_port'], rest = _take_port(rest[1:], source)
    elif ip is None:
        raise DevSpecError('expected a replication IP or ":<port>" '
                           'after "R" in %r' % source)
    return rest


def parse_change_value(text):
    """Parse a set_info value: ``<ip>:<port>[R<ip>:<port>]/<device>_<meta>``.

    Every part is optional (at least one is needed); returns the fields to
    change. ``:6201`` changes only the port, ``R10.0.0.9`` only the
    replication IP, ``_new meta`` only the meta.
    """
    source = text
    if not isinstance(text, str) or not text:
        raise DevSpecError('empty change value')
    change = {}
    rest = text
    if rest[:1] not in (':', 'R', '/', '_'):
        change['ip'], rest = _take_ip(rest, source)
    if rest.startswith(':'):
        change['port'], rest = _take_port(rest[1:], source)
    if rest.startswith('R'):
        rest = _take_replication(rest[1:], source, change)
    rest = _take_device_and_meta(rest, source, change)
    if rest:
        raise DevSpecError('unexpected %r in change value %r'
                           % (rest, source))
    if not change:
        raise DevSpecError('change value %r names nothing to change'
                           % source)
    return change


def parse_weight(text):
    """A device weight: a finite number >= 0."""
    try:
        weight = float(text)
    except (TypeError, ValueError):
        raise DevSpecError('weight must be a number, got %r' % (text,))
    if not math.isfinite(weight) or weight < 0:
        raise DevSpecError('weight must be a number >= 0, got %r' % (text,))
    return weight


def split_field_flags(args, allowed=tuple(FLAG_FIELDS)):
    """Pull ``--field value`` / ``--field=value`` flags out of ``args``.

    Returns ({field: value}, [other args in order]). Only the flag names in
    ``allowed`` are understood (``_`` may stand for ``-``); any other
    argument starting with ``--`` is an error, so a typo never turns into
    a search value or a weight.
    """
    found = {}
    rest = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith('--') or arg == '--':
            rest.append(arg)
            continue
        name, eq, value = arg[2:].partition('=')
        name = name.replace('_', '-')
        if name not in allowed:
            raise DevSpecError('unknown option --%s' % name)
        if not eq:
            if i >= len(args):
                raise DevSpecError('option --%s needs a value' % name)
            value = args[i]
            i += 1
        field, kind = FLAG_FIELDS[name]
        if field in found:
            raise DevSpecError('option --%s given twice' % name)
        found[field] = _convert_flag(name, field, kind, value)
    return found, rest


def _convert_flag(name, field, kind, value):
    if kind is float:
        return parse_weight(value)
    if kind is int:
        try:
            number = int(value)
        except ValueError:
            raise DevSpecError('--%s needs a whole number, got %r'
                               % (name, value))
        if number < 0:
            raise DevSpecError('--%s must be >= 0, got %r' % (name, value))
        if field.endswith('port') and not 0 < number < 65536:
            raise DevSpecError('--%s %d out of range 1-65535'
                               % (name, number))
        return number
    if field in ('ip', 'replication_ip'):
        return _check_ip_value(value, '--' + name)
    if field == 'device' and (not value or '/' in value or
                              any(c.isspace() for c in value)):
        raise DevSpecError('--device needs a name without "/" or spaces, '
                           'got %r' % value)
    return value


def dev_from_flags(flags):
    """A device dict for ``add`` from split_field_flags() output."""
    missing = [name for name in ('zone', 'ip', 'port', 'device', 'weight')
               if name not in flags]
    if missing:
        raise DevSpecError('add needs %s' % ', '.join(
            '--' + name for name in missing))
    dev = dict(flags)
    dev.setdefault('region', 1)
    dev.setdefault('replication_ip', dev['ip'])
    dev.setdefault('replication_port', dev['port'])
    dev.setdefault('meta', '')
    return dev


def meta_matches(dev, criteria):
    """The meta criterion is a substring; absent means anything."""
    want = criteria.get('meta')
    return want is None or want in (dev.get('meta') or '')


def format_ip(ip):
    """An IP as written in device strings: IPv6 in brackets."""
    return '[%s]' % ip if ':' in ip else ip


def format_dev(dev):
    """The search value naming a device; parses back to the same device.

    The replication address is shown only where it differs from the
    client-facing one, and the meta only when there is one.
    """
    text = 'd%dr%dz%d-%s:%d' % (dev['id'], dev['region'], dev['zone'],
                                format_ip(dev['ip']), dev['port'])
    if (dev['replication_ip'], dev['replication_port']) != \
            (dev['ip'], dev['port']):
        text += 'R%s:%d' % (format_ip(dev['replication_ip']),
                            dev['replication_port'])
    text += '/' + dev['device']
    if dev.get('meta'):
        text += '_"%s"' % dev['meta']
    return text
