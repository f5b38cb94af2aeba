"""Static large object manifests: parsing, checking, ETag, formats (pure).

The client PUTs a JSON list of segments (``?multipart-manifest=put``)::

    [{"path": "cont/seg1", "etag": "<md5>", "size_bytes": 1048576},
     {"path": "/cont/seg2", "etag": null, "size_bytes": null,
      "range": "0-99"}]

and the manifest stored in its place (what ``?multipart-manifest=get``
returns) records each segment as the cluster found it::

    [{"name": "/cont/seg1", "bytes": 1048576, "hash": "<md5>",
      "content_type": "...", "last_modified": "..."},
     {"name": "/cont/seg2", "bytes": 500, "hash": "<md5>", "range": "0-99",
      "sub_slo": true}]

The large object's size is the sum of the segments' (ranged) lengths;
its ETag is the MD5 of the segments' ETags concatenated, where a ranged
segment contributes ``<etag>:<first>-<last>;``. Nothing here does I/O.
"""
import hashlib
import json
import xml.etree.ElementTree as ElementTree

from objstore.middleware.segments import Segment, clip
from objstore.obj import ranges

PUT_KEYS = frozenset(('path', 'etag', 'size_bytes', 'range'))


class ManifestError(Exception):
    """A manifest refused as a whole: ``status`` and a one-line reason."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _segment_path(value):
    """'/container/object' of a manifest path, or None when it is not
    one."""
    if not isinstance(value, str):
        return None
    text = value[1:] if value.startswith('/') else value
    container, slash, obj = text.partition('/')
    if not container or not slash or not obj:
        return None
    return '/%s/%s' % (container, obj)


def parse_range_spec(text):
    """(first, last) of a segment's "range" ('first' None: a suffix,
    'last' None: to the end); ValueError with the reason otherwise."""
    if not isinstance(text, str):
        raise ValueError('"range" must be a string')
    specs = ranges.parse_range('bytes=' + text)
    if specs is None:
        raise ValueError('invalid range')
    if len(specs) != 1:
        raise ValueError('multiple ranges (only one allowed)')
    return specs[0]


def parse_put(body, max_segments):
    """The segments of a manifest PUT body, as dicts with keys path
    ('/c/o'), etag, size_bytes, range ((first, last) or None).

    Raises ManifestError: 400 for anything malformed (every index's
    problem listed), 413 for too many segments.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ManifestError(400, 'Manifest must be valid JSON.')
    if not isinstance(data, list):
        raise ManifestError(400, 'Manifest must be a list.')
    if not data:
        raise ManifestError(400, 'Manifest must have at least one segment.')
    if len(data) > max_segments:
        raise ManifestError(413, 'Number of segments must be <= %d'
                            % max_segments)
    problems = []
    out = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append('Index %d: not a JSON object' % index)
            continue
        extra = sorted(set(item) - PUT_KEYS)
        if extra:
            problems.append('Index %d: extraneous keys %s' % (
                index, ', '.join('"%s"' % k for k in extra)))
            continue
        path = _segment_path(item.get('path'))
        if path is None:
            problems.append('Index %d: path does not refer to an object. '
                            'Path must be of the form /container/object.'
                            % index)
            continue
        etag = item.get('etag')
        if etag is not None and not isinstance(etag, str):
            problems.append('Index %d: "etag" must be a string or null '
                            '(if provided)' % index)
            continue
        size = item.get('size_bytes')
        if size is not None and (isinstance(size, bool) or
                                 not isinstance(size, int) or size < 0):
            problems.append('Index %d: "size_bytes" must be an integer or '
                            'null (if provided)' % index)
            continue
        span = None
        if item.get('range') is not None:
            try:
                span = parse_range_spec(item['range'])
            except ValueError as e:
                problems.append('Index %d: %s' % (index, e))
                continue
        out.append({'path': path, 'etag': etag, 'size_bytes': size,
                    'range': span})
    if problems:
        raise ManifestError(400, '\n'.join(problems))
    return out


def _strip(etag):
    return (etag or '').strip().strip('"').lower()


def check_segment(segment, found, is_last, min_segment_size):
    """(reason or None, stored entry) for one segment of a PUT.

    ``found``: what the cluster said about the segment's path: a dict
    with 'status' and, when 2xx, 'bytes', 'hash' (for a nested SLO its
    size and ETag as a large object), 'content_type', 'last_modified',
    'sub_slo' (bool).
    """
    status = found['status']
    if not 200 <= status < 300:
        return '%d %s' % (status, found.get('reason', '')), None
    size, etag = found['bytes'], found['hash']
    if segment['size_bytes'] is not None and segment['size_bytes'] != size:
        return 'Size Mismatch', None
    if segment['etag'] is not None and _strip(segment['etag']) != \
            _strip(etag):
        return 'Etag Mismatch', None
    entry = {'name': segment['path'], 'bytes': size, 'hash': etag,
             'content_type': found.get('content_type'),
             'last_modified': found.get('last_modified')}
    length = size
    if segment['range'] is not None:
        spans = ranges.satisfiable([segment['range']], size)
        if not spans:
            return 'Unsatisfiable Range', None
        start, stop = spans[0]
        length = stop - start
        entry['range'] = '%d-%d' % (start, stop - 1)
    if length < 1:
        return 'Too small; each segment must be at least 1 byte.', None
    if not is_last and length < min_segment_size:
        return ('Too small; each segment, except the last, must be at '
                'least %d bytes.' % min_segment_size), None
    if found.get('sub_slo'):
        entry['sub_slo'] = True
    return None, entry


def entry_span(entry):
    """(start, stop) of the bytes an entry takes from its segment."""
    text = entry.get('range')
    if not text:
        return 0, entry['bytes']
    first, _, last = text.partition('-')
    return int(first), int(last) + 1


def total_size(entries):
    return sum(stop - start for start, stop in map(entry_span, entries))


def slo_etag(entries):
    """The large object's ETag (unquoted): MD5 of the segments' ETags,
    a ranged one written '<etag>:<range>;'."""
    md5 = hashlib.md5(usedforsecurity=False)
    for entry in entries:
        if entry.get('range'):
            md5.update(('%s:%s;' % (entry['hash'], entry['range']))
                       .encode('utf-8'))
        else:
            md5.update(entry['hash'].encode('utf-8'))
    return md5.hexdigest()


def parse_stored(body):
    """The entries of a stored manifest; ManifestError(409) if damaged."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, list) or not data:
        raise ManifestError(409, 'the stored manifest is damaged')
    for entry in data:
        if not isinstance(entry, dict) or \
                not isinstance(entry.get('name'), str) or \
                not isinstance(entry.get('hash'), str) or \
                not isinstance(entry.get('bytes'), int):
            raise ManifestError(409, 'the stored manifest is damaged')
        if entry.get('range'):
            try:
                start, stop = entry_span(entry)
            except (ValueError, AttributeError):
                raise ManifestError(409, 'the stored manifest is damaged')
            if not 0 <= start < stop <= entry['bytes']:
                raise ManifestError(409, 'the stored manifest is damaged')
    return data


def raw_format(entries):
    """The stored manifest in the form a client PUTs (``format=raw``)."""
    out = []
    for entry in entries:
        item = {'path': entry['name'], 'etag': entry['hash'],
                'size_bytes': entry['bytes']}
        if entry.get('range'):
            item['range'] = entry['range']
        out.append(item)
    return out


def error_body(errors, as_json):
    """The 400 body listing each failed segment: (path, reason) pairs."""
    if as_json:
        return json.dumps({'Errors': [[p, r] for p, r in errors]})
    return 'Errors:\n' + ''.join('%s, %s\n' % pr for pr in errors)


def leaf_segments(entries, account_path, fetch, max_depth, depth=1):
    """The large object as plain segments, nested SLOs expanded.

    ``account_path``: '/v1/<account>' the entries' names hang under;
    ``fetch(path)``: the stored entries of the nested manifest at
    ``path`` (may raise ManifestError). Deeper than ``max_depth``
    manifests (a loop, say) is a ManifestError(409). Returns
    segments.Segment tuples.
    """
    out = []
    for entry in entries:
        path = account_path + entry['name']
        start, stop = entry_span(entry)
        if not entry.get('sub_slo'):
            out.append(Segment(path, start, stop, entry['hash'],
                               entry['bytes']))
            continue
        if depth >= max_depth:
            raise ManifestError(409, 'Max recursion depth exceeded')
        sub = fetch(path)
        if _strip(slo_etag(sub)) != _strip(entry['hash']) or \
                total_size(sub) != entry['bytes']:
            raise ManifestError(409, 'nested manifest %s changed since '
                                'the manifest was written' % entry['name'])
        inner = leaf_segments(sub, account_path, fetch, max_depth,
                              depth + 1)
        out.extend(clip(inner, start, stop))
    return out


def manifest_depth(entries, account_path, fetch, max_depth, depth=1):
    """How many manifests deep ``entries`` go (1: no nested SLO);
    ManifestError(400) beyond ``max_depth``."""
    if depth > max_depth:
        raise ManifestError(400, 'Max recursion depth exceeded')
    deepest = depth
    for entry in entries:
        if entry.get('sub_slo'):
            sub = fetch(account_path + entry['name'])
            deepest = max(deepest, manifest_depth(
                sub, account_path, fetch, max_depth, depth + 1))
    return deepest


def listing_hash(value):
    """(hash, slo_etag or None) of a container row's ``hash``: an SLO
    manifest's row carries '<manifest md5>; slo_etag=<large object etag>'
    (the container update override its PUT stored)."""
    own, sep, params = value.partition(';')
    if not sep:
        return value, None
    for param in params.split(';'):
        name, _, found = param.partition('=')
        if name.strip() == 'slo_etag' and found.strip():
            return own.strip(), found.strip()
    return own.strip(), None


def rewrite_json_listing(body):
    """A JSON container listing (bytes) with SLO rows as Swift shows
    them: ``hash`` the manifest's MD5, ``slo_etag`` the quoted SLO etag
    (``bytes`` is already the large object's total)."""
    entries = json.loads(body.decode('utf-8'))
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get('hash'), str):
            own, slo = listing_hash(entry['hash'])
            if slo is not None:
                entry['hash'] = own
                entry['slo_etag'] = '"%s"' % slo
    return json.dumps(entries).encode('utf-8')


def rewrite_xml_listing(body):
    """An XML container listing (bytes), SLO rows as in the JSON one."""
    root = ElementTree.fromstring(body)
    for item in root.findall('object'):
        node = item.find('hash')
        if node is None or node.text is None:
            continue
        own, slo = listing_hash(node.text)
        if slo is not None:
            node.text = own
            ElementTree.SubElement(item, 'slo_etag').text = '"%s"' % slo
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + \
        ElementTree.tostring(root, encoding='utf-8', xml_declaration=False)
