"""Bulk requests without I/O: what to delete, where an archive member
goes, and how the per-item results are written.

The middleware (bulk.py) does the sub-requests; everything it decides
about names and formats is here, so it is tested without a server.
"""
import json
from urllib.parse import quote, unquote_to_bytes
from xml.sax.saxutils import escape

from objstore.common import constraints

RESULT_FORMATS = ('text/plain', 'application/json', 'application/xml',
                  'text/xml')
ARCHIVE_MODES = {'tar': 'r|', 'tar.gz': 'r|gz', 'tgz': 'r|gz',
                 'tar.bz2': 'r|bz2', 'tbz2': 'r|bz2'}


class ItemError(ValueError):
    """One item of a bulk request is refused; ``status`` says how."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


def delete_targets(lines):
    """(container, object or None) for each line of a bulk-delete body.

    Lines are percent-encoded '/container/object' or '/container' paths
    relative to the account (leading slash optional); blank lines are
    skipped. Yields ItemError instances for lines that name nothing
    valid, so the caller can report them in order.
    """
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        try:
            text = unquote_to_bytes(line).decode('utf-8')
        except UnicodeDecodeError:
            yield line.decode('latin-1'), ItemError(
                400, 'Invalid UTF8 or contains NULL')
            continue
        shown = text
        if '\x00' in text:
            yield shown, ItemError(400, 'Invalid UTF8 or contains NULL')
            continue
        container, _, obj = text.lstrip('/').partition('/')
        if not container:
            yield shown, ItemError(400, 'Invalid path: %s' % shown)
            continue
        err = constraints.check_name(
            container, constraints.MAX_CONTAINER_NAME_LENGTH, 'container')
        if err is None and obj:
            err = constraints.check_name(
                obj, constraints.MAX_OBJECT_NAME_LENGTH, 'object')
        if err:
            yield shown, ItemError(400, err)
            continue
        yield shown, (container, obj or None)


def member_destination(name, container, prefix):
    """(container, object) for a regular archive member ``name``.

    Extracting to the account, the first path component is the
    container; to a container, the whole name (after ``prefix/``) is the
    object. Absolute names, '..' or '.' components (after a leading
    './'), empty parts and names over the limits are ItemError(400):
    nothing is ever written outside the request's target.
    """
    original = name
    while name.startswith('./'):
        name = name[2:]
    if name.startswith('/'):
        raise ItemError(400, 'absolute path in archive: %s' % original)
    parts = name.split('/')
    if any(part in ('.', '..') for part in parts):
        raise ItemError(400, 'path with "." or ".." in archive: %s'
                        % original)
    if '\x00' in name or not name:
        raise ItemError(400, 'invalid name in archive: %r' % original)
    if container is None:
        container, _, obj = name.partition('/')
        if not container or not obj:
            raise ItemError(400, 'archive member %s names no container '
                            'and object' % original)
    else:
        obj = name if not prefix else prefix.rstrip('/') + '/' + name
    err = constraints.check_name(
        container, constraints.MAX_CONTAINER_NAME_LENGTH, 'container') or \
        constraints.check_object_name(obj)
    if err:
        raise ItemError(400, '%s: %s' % (original, err))
    return container, obj


def status_text(status):
    from objstore.common.http import HTTP_REASONS
    reasons = dict(HTTP_REASONS)
    reasons.update({200: 'OK', 201: 'Created', 202: 'Accepted',
                    204: 'No Content', 502: 'Bad Gateway'})
    return '%d %s' % (status, reasons.get(status, 'Error'))


def final_status(errors, failure=None):
    """'Response Status' of a finished bulk request: 200 when every item
    worked; 502 when an item failed on the server side; else 400."""
    if failure is not None:
        return failure
    if not errors:
        return status_text(200)
    if any(status.startswith('5') for _, status in errors):
        return status_text(502)
    return status_text(400)


def render(content_type, results, errors, root_tag):
    """The result body of a bulk request.

    ``results`` is an ordered dict ('Number Deleted', 'Response Status'
    ...); ``errors`` a list of [name, status]. Plain text is one
    'Key: value' line each and then 'Errors:' with 'name, status' lines;
    XML uses the keys lower-cased with underscores under ``root_tag``.
    """
    if content_type == 'application/json':
        data = dict(results)
        data['Errors'] = [list(e) for e in errors]
        return json.dumps(data).encode('utf-8')
    if content_type in ('application/xml', 'text/xml'):
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n<%s>' % root_tag]
        for key, value in results.items():
            tag = key.lower().replace(' ', '_')
            out.append('<%s>%s</%s>' % (tag, escape(str(value)), tag))
        out.append('<errors>')
        for name, status in errors:
            out.append('<object><name>%s</name><status>%s</status>'
                       '</object>' % (escape(name), escape(status)))
        out.append('</errors></%s>\n' % root_tag)
        return ''.join(out).encode('utf-8')
    lines = ['%s: %s' % (key, value) for key, value in results.items()]
    lines.append('Errors:')
    lines += ['%s, %s' % (name, status) for name, status in errors]
    return ('\n'.join(lines) + '\n').encode('utf-8')


def quoted(container, obj=None):
    """An item's name as the results show it: '/container[/object]'."""
    return quote('/%s' % container + ('/%s' % obj if obj else ''))
