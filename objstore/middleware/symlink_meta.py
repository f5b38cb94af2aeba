"""What a symlink is on disk and in listings: pure functions, no I/O.

A symlink is a 0-byte object whose target is system metadata:
``X-Object-Sysmeta-Symlink-Target`` ('<container>/<object>',
percent-encoded), ``-Target-Account``, and for a static link
``-Target-Etag`` and ``-Target-Bytes``. Clients can neither set nor see
system metadata (the gatekeeper filter), so a link cannot be forged and
a metadata POST keeps it. The container row of a link gets its target
through the container update override of its Content-Type,
``<type>;symlink_target=<c/o>[;symlink_target_account=<a>]
[;symlink_target_etag=<e>;symlink_target_bytes=<n>]``, which the
listing shows as ``symlink_path`` (and ``symlink_etag``/``symlink_bytes``)
with the parameters taken off ``content_type``.

Links written before system metadata crossed the proxy kept the target
in Content-Type parameters of our own (``objstore_symlink_target`` and
friends): they are still read (and cleaned from answers and listings),
never written.
"""
import json
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote, unquote_to_bytes

from objstore.common import constraints
from objstore.common.http import HTTPError

# the old scheme's parameters (read, never written)
PARAM_PREFIX = 'objstore_symlink_'
# the container row's parameters (Swift's)
LISTING_PREFIX = 'symlink_target'
_OWN_PARAMS = (PARAM_PREFIX, LISTING_PREFIX)
DEFAULT_CONTENT_TYPE = 'application/symlink'
SYSMETA_TARGET = 'X-Object-Sysmeta-Symlink-Target'
SYSMETA_ACCOUNT = 'X-Object-Sysmeta-Symlink-Target-Account'
SYSMETA_ETAG = 'X-Object-Sysmeta-Symlink-Target-Etag'
SYSMETA_BYTES = 'X-Object-Sysmeta-Symlink-Target-Bytes'
_LOWER_TARGET = SYSMETA_TARGET.lower()
OVERRIDE_CONTENT_TYPE = \
    'HTTP_X_OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_CONTENT_TYPE'


class Link:
    """Where a symlink points: account (None = the link's own), container,
    object, and for static links the target's etag and size."""

    def __init__(self, container, obj, account=None, etag=None, size=None):
        self.container, self.obj, self.account = container, obj, account
        self.etag, self.size = etag, size

    def __eq__(self, other):
        return isinstance(other, Link) and vars(self) == vars(other)

    def __repr__(self):
        return 'Link(%r)' % vars(self)

    def path(self, own_account):
        """The target's client path, '/v1/<a>/<c>/<o>' percent-encoded."""
        return '/v1/%s' % quote('%s/%s/%s' % (self.account or own_account,
                                              self.container, self.obj))

    def headers(self):
        """The X-Symlink-* headers that describe this link to a client."""
        out = {'X-Symlink-Target': quote('%s/%s' % (self.container,
                                                    self.obj))}
        if self.account:
            out['X-Symlink-Target-Account'] = quote(self.account)
        if self.etag:
            out['X-Symlink-Target-Etag'] = self.etag
            out['X-Symlink-Target-Bytes'] = str(self.size or 0)
        return out


def _decode(value, header):
    try:
        return unquote_to_bytes(value.encode('latin-1')).decode('utf-8')
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise HTTPError(412, '%s is not valid UTF-8' % header)


def parse_target(value):
    """(container, object) of an X-Symlink-Target '<container>/<object>'
    (percent-encoded, leading slash allowed); 412 otherwise, 400 for a
    name over the limits."""
    text = _decode(value.strip(), 'X-Symlink-Target').lstrip('/')
    container, _, obj = text.partition('/')
    if not container or not obj or '\x00' in text:
        raise HTTPError(412, 'X-Symlink-Target header must be of the form '
                        '<container name>/<object name>')
    err = constraints.check_name(
        container, constraints.MAX_CONTAINER_NAME_LENGTH, 'container') or \
        constraints.check_object_name(obj)
    if err:
        raise HTTPError(400, 'X-Symlink-Target: %s' % err)
    return container, obj


def parse_account(value):
    """The account an X-Symlink-Target-Account names; 412 if not one."""
    text = _decode(value.strip(), 'X-Symlink-Target-Account')
    if not text or '/' in text or '\x00' in text:
        raise HTTPError(412, 'X-Symlink-Target-Account header must name '
                        'one account')
    err = constraints.check_name(
        text, constraints.MAX_ACCOUNT_NAME_LENGTH, 'account')
    if err:
        raise HTTPError(400, 'X-Symlink-Target-Account: %s' % err)
    return text


def _split(content_type):
    """(media type, [(name, raw param text)]) of a Content-Type value."""
    parts = [p.strip() for p in (content_type or '').split(';')]
    params = []
    for part in parts[1:]:
        if part:
            params.append((part.partition('=')[0].strip().lower(), part))
    return parts[0], params


def clean_content_type(content_type):
    """``content_type`` without any parameters of ours, old or listing
    ones (what a client may send and what it is shown)."""
    media, params = _split(content_type)
    kept = [raw for name, raw in params if not name.startswith(_OWN_PARAMS)]
    return ';'.join([media] + kept)


def has_own_params(content_type):
    """Cheap test: may ``content_type`` carry parameters of ours?"""
    return 'symlink_' in content_type


def link_content_type(content_type):
    """The stored Content-Type of a link: the client's own (cleaned) or
    application/symlink."""
    base = clean_content_type(content_type) if content_type else ''
    if not base or base.startswith(';'):
        base = DEFAULT_CONTENT_TYPE + base
    return base


def _encode(text):
    return quote(text, safe='')


def link_environ(link, content_type):
    """The environ keys a link's PUT stores: its system metadata and the
    container row's Content-Type override (``content_type``: the link's
    own, from link_content_type)."""
    env = {'HTTP_X_OBJECT_SYSMETA_SYMLINK_TARGET':
           quote('%s/%s' % (link.container, link.obj))}
    params = [(LISTING_PREFIX, _encode('%s/%s' % (link.container,
                                                   link.obj)))]
    if link.account:
        env['HTTP_X_OBJECT_SYSMETA_SYMLINK_TARGET_ACCOUNT'] = \
            quote(link.account)
        params.append((LISTING_PREFIX + '_account', _encode(link.account)))
    if link.etag:
        env['HTTP_X_OBJECT_SYSMETA_SYMLINK_TARGET_ETAG'] = link.etag
        env['HTTP_X_OBJECT_SYSMETA_SYMLINK_TARGET_BYTES'] = \
            str(int(link.size or 0))
        params.append((LISTING_PREFIX + '_etag', _encode(link.etag)))
        params.append((LISTING_PREFIX + '_bytes', str(int(link.size or 0))))
    env[OVERRIDE_CONTENT_TYPE] = content_type + ''.join(
        ';%s=%s' % kv for kv in params)
    return env


def _unquote(value):
    try:
        return unquote_to_bytes(value.encode('latin-1')).decode('utf-8')
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def link_from_headers(headers):
    """The Link an object's answer headers (a case-insensitive mapping)
    describe, or None for an object that is not a link. System metadata
    first; an old link's Content-Type parameters otherwise."""
    target = headers.get(SYSMETA_TARGET)
    if target is None:
        content_type = headers.get('Content-Type') or ''
        if PARAM_PREFIX in content_type:
            return read_link(content_type)
        return None
    target = _unquote(target)
    if not target or '/' not in target:
        return None
    container, obj = target.split('/', 1)
    account = headers.get(SYSMETA_ACCOUNT)
    account = _unquote(account) if account else None
    size = (headers.get(SYSMETA_BYTES) or '').strip()
    return Link(container, obj, account or None,
                (headers.get(SYSMETA_ETAG) or '').strip() or None,
                int(size) if size.isdigit() else None)


def is_link_answer(pairs):
    """Cheap test on an answer's [(name, value)]: may it be a link?"""
    for key, value in pairs:
        size = len(key)
        if size == 31:
            if key.lower() == _LOWER_TARGET:
                return True
        elif size == 12 and PARAM_PREFIX in value and \
                key.lower() == 'content-type':
            return True
    return False


def read_link(content_type, prefix=PARAM_PREFIX):
    """The Link that Content-Type parameters describe (an old link's
    ``objstore_symlink_*``, or a listing row's ``symlink_target*`` with
    ``prefix='symlink_'``), or None when they name none."""
    _, params = _split(content_type)
    values = {}
    for name, raw in params:
        if name.startswith(prefix):
            value = raw.partition('=')[2].strip()
            try:
                values[name[len(prefix):]] = \
                    unquote_to_bytes(value).decode('utf-8')
            except UnicodeDecodeError:
                return None
    target = values.get('target')
    if not target or '/' not in target:
        return None
    container, obj = target.split('/', 1)
    size = values.get('target_bytes')
    return Link(container, obj, values.get('target_account') or None,
                values.get('target_etag') or None,
                int(size) if size and size.isdigit() else None)


def listing_entry(entry, account):
    """A container listing entry as the client sees it: a link's entry
    gets ``symlink_path`` (and ``symlink_etag``/``symlink_bytes`` for a
    static link) and a clean ``content_type``. Modifies ``entry``."""
    content_type = entry.get('content_type')
    if not isinstance(content_type, str) or \
            not has_own_params(content_type):
        return entry
    link = read_link(content_type, 'symlink_') or read_link(content_type)
    entry['content_type'] = clean_content_type(content_type)
    if link is not None:
        entry['symlink_path'] = link.path(account)
        if link.etag:
            entry['symlink_etag'] = link.etag
            entry['symlink_bytes'] = link.size or 0
    return entry


def rewrite_json_listing(body, account):
    """A JSON container listing (bytes) with links shown as links."""
    entries = json.loads(body.decode('utf-8'))
    for entry in entries:
        if isinstance(entry, dict):
            listing_entry(entry, account)
    return json.dumps(entries).encode('utf-8')


def rewrite_xml_listing(body, account):
    """An XML container listing (bytes) with links shown as links."""
    root = ElementTree.fromstring(body)
    for item in root.findall('object'):
        node = item.find('content_type')
        if node is None or node.text is None:
            continue
        entry = listing_entry({'content_type': node.text}, account)
        node.text = entry.pop('content_type')
        for key, value in entry.items():
            ElementTree.SubElement(item, key).text = str(value)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + \
        ElementTree.tostring(root, encoding='utf-8', xml_declaration=False)
