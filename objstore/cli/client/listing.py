"""``objstore list [CONTAINER]``: the containers of the account or the
objects of a container, with ``--prefix``/``--delimiter`` as the API
takes them, ``--long`` for sizes and dates, ``--totals`` for a sum.

rows() and totals() are pure: they turn the API's JSON listing into
what is printed.
"""
from objstore.cli.client.output import format_table


def short_date(value):
    """'2024-05-01T10:20:30.123456' -> '2024-05-01 10:20:30'."""
    return (value or '').replace('T', ' ')[:19]


def rows(entries, container_listing):
    """Table rows for --long: containers (count, bytes, name) or objects
    (bytes, date, type, name); pseudo-directories only have a name."""
    table = []
    for e in entries:
        if 'subdir' in e:
            table.append(['', '', '', e['subdir']] if container_listing
                         else ['', '', e['subdir']])
        elif container_listing:
            table.append([e.get('bytes', 0), short_date(e.get(
                'last_modified')), e.get('content_type', ''), e['name']])
        else:
            table.append([e.get('count', 0), e.get('bytes', 0), e['name']])
    return table


def totals(entries, container_listing):
    items = [e for e in entries if 'subdir' not in e]
    total = {'bytes': sum(e.get('bytes', 0) for e in items)}
    if container_listing:
        total['objects'] = len(items)
    else:
        total['containers'] = len(items)
        total['objects'] = sum(e.get('count', 0) for e in items)
    return total


def totals_line(total):
    if 'containers' in total:
        return 'total: %d containers, %d objects, %d bytes' % (
            total['containers'], total['objects'], total['bytes'])
    return 'total: %d objects, %d bytes' % (total['objects'],
                                            total['bytes'])


def run(args, conn, out):
    in_container = args.container is not None
    entries = list(conn.listing(args.container, prefix=args.prefix,
                                delimiter=args.delimiter))
    if out.as_json:
        if args.totals:
            out.json({'items': entries,
                      'totals': totals(entries, in_container)})
        else:
            out.json(entries)
        return 0
    if args.long:
        out.lines(format_table(rows(entries, in_container)))
    else:
        out.lines([e.get('name', e.get('subdir')) for e in entries])
    if args.totals:
        out.line(totals_line(totals(entries, in_container)))
    return 0
