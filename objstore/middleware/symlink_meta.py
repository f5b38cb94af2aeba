"""What a symlink is on disk and in listings: pure functions, no I/O.

A symlink is a 0-byte object whose Content-Type carries the target as
parameters this middleware owns (``objstore_symlink_target`` and
friends). The Content-Type is the one field that reaches the container
listing (the object server sends it with every container update) and
survives a metadata POST, so one place serves both the object and the
listing's ``symlink_path``. Clients never see the parameters: they are
stripped from every client request (no forged links) and from every
answer (``X-Symlink-*`` headers and ``symlink_path`` show them instead).
"""
import json
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote, unquote_to_bytes

from objstore.common import constraints
from objstore.common.http import HTTPError

PARAM_PREFIX = 'objstore_symlink_'
TARGET = PARAM_PREFIX + 'target'
ACCOUNT = PARAM_PREFIX + 'target_account'
ETAG = PARAM_PREFIX + 'target_etag'
BYTES = PARAM_PREFIX + 'target_bytes'
DEFAULT_CONTENT_TYPE = 'application/symlink'


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


def normalize_etag(value):
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value


def _split(content_type):
    """(media type, [(name, raw param text)]) of a Content-Type value."""
    parts = [p.strip() for p in (content_type or '').split(';')]
    params = []
    for part in parts[1:]:
        if part:
            params.append((part.partition('=')[0].strip().lower(), part))
    return parts[0], params


def clean_content_type(content_type):
    """``content_type`` without any of our parameters (what a client may
    send and what it is shown)."""
    media, params = _split(content_type)
    kept = [raw for name, raw in params if not name.startswith(PARAM_PREFIX)]
    return ';'.join([media] + kept)


def link_content_type(content_type, link):
    """The stored Content-Type of a symlink: the client's own type (or
    application/symlink) plus the target as our parameters."""
    base = clean_content_type(content_type) if content_type else ''
    if not base or base.startswith(';'):
        base = DEFAULT_CONTENT_TYPE + base
    params = [(TARGET, quote('%s/%s' % (link.container, link.obj), safe=''))]
    if link.account:
        params.append((ACCOUNT, quote(link.account, safe='')))
    if link.etag:
        params.append((ETAG, quote(link.etag, safe='')))
        params.append((BYTES, str(int(link.size or 0))))
    return base + ''.join(';%s=%s' % kv for kv in params)


def read_link(content_type):
    """The Link a stored Content-Type describes, or None for an object
    that is not a symlink (or whose parameters are garbled)."""
    _, params = _split(content_type)
    values = {}
    for name, raw in params:
        if name.startswith(PARAM_PREFIX):
            value = raw.partition('=')[2].strip()
            try:
                values[name] = unquote_to_bytes(value).decode('utf-8')
            except UnicodeDecodeError:
                return None
    target = values.get(TARGET)
    if not target or '/' not in target:
        return None
    container, obj = target.split('/', 1)
    size = values.get(BYTES)
    return Link(container, obj, values.get(ACCOUNT) or None,
                values.get(ETAG) or None,
                int(size) if size and size.isdigit() else None)


def listing_entry(entry, account):
    """A container listing entry as the client sees it: a link's entry
    gets ``symlink_path`` (and ``symlink_etag``/``symlink_bytes`` for a
    static link) and a clean ``content_type``. Modifies ``entry``."""
    content_type = entry.get('content_type')
    if not isinstance(content_type, str):
        return entry
    link = read_link(content_type)
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
