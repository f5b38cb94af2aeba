"""``objstore copy CONTAINER OBJECT --destination /CONTAINER[/OBJECT]``:
a server-side copy (COPY with a Destination header), optionally with new
metadata (``-m``). Without --destination the object is copied onto
itself, which is how its metadata is changed without re-uploading."""
from urllib.parse import quote

from objstore.cli.client.common import parse_headers, parse_meta
from objstore.cli.client.errors import ClientError, UsageError


def destination(value, obj):
    """(container, object) from ``/container[/object]``."""
    if not value.startswith('/') or not value.strip('/'):
        raise UsageError('--destination must be /container[/object], not '
                         '%r' % value)
    container, _, name = value[1:].partition('/')
    return container, name or obj


def run(args, conn, out):
    container, obj = (args.container, args.object) if args.destination \
        is None else destination(args.destination, args.object)
    headers = parse_meta(args.meta, 'Object')
    headers.update(parse_headers(args.header))
    headers['Destination'] = quote('%s/%s' % (container, obj), safe='/')
    try:
        conn.request('COPY', args.container, args.object, headers=headers)
    except ClientError as e:
        if e.status != 404:
            raise
        # the 404 may be the destination's container, not the source
        raise ClientError('COPY %s/%s to %s/%s: not found (the object, or '
                          'the container %s)' % (args.container, args.object,
                                                 container, obj, container),
                          404)
    out.done('%s/%s copied to %s/%s' % (args.container, args.object,
                                        container, obj))
    return 0
