"""``objstore stat [CONTAINER [OBJECT]]``: what the cluster knows about
an account, a container or an object, from one HEAD.

The well-known headers get names people read (Objects, Bytes, Read ACL,
ETag...), metadata shows as ``Meta <key>``, and every other header
follows as sent; ``--json`` gives the raw headers.
"""
from urllib.parse import unquote, urlsplit

from objstore.cli.client.output import format_fields

NAMED = {
    'account': [('X-Account-Container-Count', 'Containers'),
                ('X-Account-Object-Count', 'Objects'),
                ('X-Account-Bytes-Used', 'Bytes')],
    'container': [('X-Container-Object-Count', 'Objects'),
                  ('X-Container-Bytes-Used', 'Bytes'),
                  ('X-Container-Read', 'Read ACL'),
                  ('X-Container-Write', 'Write ACL')],
    'object': [('Content-Type', 'Content Type'),
               ('Content-Length', 'Content Length'),
               ('Last-Modified', 'Last Modified'),
               ('ETag', 'ETag'),
               ('X-Object-Manifest', 'Manifest'),
               ('X-Static-Large-Object', 'Static Large Object')],
}
META = {'account': 'x-account-meta-', 'container': 'x-container-meta-',
        'object': 'x-object-meta-'}
# headers of every response that say nothing about the thing itself
NOISE = ('content-length', 'date', 'connection', 'accept-ranges')


def account_name(storage_url):
    return unquote(urlsplit(storage_url).path.rstrip('/').rsplit('/', 1)[-1])


def header_text(value):
    """A header value as the user wrote it: http.client reads headers as
    Latin-1, but Swift's metadata values are UTF-8."""
    try:
        return value.encode('latin-1').decode('utf-8')
    except UnicodeError:
        return value


def describe(kind, headers, names):
    """[(label, value)] for a HEAD's ``headers`` of a ``kind`` thing."""
    fields = list(names)
    lower = {k.lower(): (k, header_text(v)) for k, v in headers.items()}
    shown = set()
    for header, label in NAMED[kind]:
        value = lower.get(header.lower(), (None, None))[1]
        shown.add(header.lower())
        if value is None and kind != 'container' and header not in (
                'X-Object-Manifest', 'X-Static-Large-Object'):
            value = ''
        if value is not None:
            fields.append((label, value))
    prefix = META[kind]
    for key in sorted(lower):
        if key.startswith(prefix):
            fields.append(('Meta ' + lower[key][0][len(prefix):],
                           lower[key][1]))
            shown.add(key)
    for key in sorted(lower):
        if key in shown or key in NOISE:
            continue
        fields.append(lower[key])
    return fields


def run(args, conn, out):
    account = account_name(conn.storage_url)
    if args.object:
        kind, names = 'object', [('Account', account),
                                 ('Container', args.container),
                                 ('Object', args.object)]
    elif args.container:
        kind, names = 'container', [('Account', account),
                                    ('Container', args.container)]
    else:
        kind, names = 'account', [('Account', account)]
    headers = conn.head(args.container, args.object).headers
    if out.as_json:
        out.json(dict({k.lower(): v for k, v in names},
                      headers={k.lower(): header_text(v)
                               for k, v in headers.items()}))
    else:
        out.lines(format_fields(describe(kind, headers, names)))
    return 0
