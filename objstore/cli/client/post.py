"""``objstore post [CONTAINER [OBJECT]]``: metadata and ACLs.

``-m key:value`` sets metadata (an empty value removes it), ``-r``/``-w``
the container's read/write ACLs, ``-H`` any other header. A container
that does not exist yet is created with them, as python-swiftclient does.
"""
from objstore.cli.client.common import parse_headers, parse_meta
from objstore.cli.client.errors import UsageError


def post_headers(args):
    """The headers a post sends, from its options."""
    kind = 'Object' if args.object else (
        'Container' if args.container else 'Account')
    if (args.read_acl is not None or args.write_acl is not None) and \
            kind != 'Container':
        raise UsageError('-r/-w (ACLs) apply to containers only')
    headers = parse_meta(args.meta, kind)
    if args.read_acl is not None:
        headers['X-Container-Read'] = args.read_acl
    if args.write_acl is not None:
        headers['X-Container-Write'] = args.write_acl
    headers.update(parse_headers(args.header))
    return headers


def run(args, conn, out):
    if args.object and not args.container:
        raise UsageError('name the container of the object')
    headers = post_headers(args)
    if args.container and not args.object:
        resp = conn.request('POST', args.container, headers=headers,
                            ok=(404,))
        if resp.status_code == 404:
            conn.request('PUT', args.container, headers=headers)
    else:
        conn.request('POST', args.container, args.object, headers=headers)
    return 0
