"""Account and container listings: query parameters in, plain/JSON/XML out.

Both database servers (and later the proxy) read the same parameters the
same way (prefix, delimiter, marker, end_marker, limit, reverse, format)
and answer in the same three formats. Parsing is a function of the query
string and the Accept header; rendering is a pure function of the rows,
so both are tested without a server.
"""
import datetime
import functools
import json
import re
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape, quoteattr

from objstore.common.config import config_true
from objstore.common.constraints import parse_listing_limit
from objstore.common.http import HTTPError, best_offer
from objstore.common.timestamp import Timestamp

FORMATS = {'plain': 'text/plain', 'json': 'application/json',
           'xml': 'application/xml'}
# what Accept may choose, in our order of preference on ties
OFFERS = ('text/plain', 'application/json', 'application/xml', 'text/xml')


class ListingParams:
    """The validated parameters of one listing request."""

    __slots__ = ('prefix', 'delimiter', 'marker', 'end_marker', 'limit',
                 'reverse', 'content_type')

    def __init__(self, prefix='', delimiter='', marker='', end_marker='',
                 limit=10000, reverse=False, content_type='text/plain'):
        self.prefix = prefix
        self.delimiter = delimiter
        self.marker = marker
        self.end_marker = end_marker
        self.limit = limit
        self.reverse = reverse
        self.content_type = content_type

    def query(self):
        """The keyword arguments a broker's list method takes."""
        return {'limit': self.limit, 'marker': self.marker,
                'end_marker': self.end_marker, 'prefix': self.prefix,
                'delimiter': self.delimiter, 'reverse': self.reverse}


def parse_query(query_string):
    """{name: value} of a query string (last value wins), or HTTPError.

    Values are percent-decoded UTF-8; anything else is a 400, so a
    listing never compares names against mojibake.
    """
    try:
        pairs = parse_qsl(query_string or '', keep_blank_values=True,
                          encoding='utf-8', errors='strict')
    except UnicodeDecodeError:
        raise HTTPError(400, 'query string is not valid UTF-8')
    except ValueError:
        raise HTTPError(400, 'malformed query string')
    return dict(pairs)


def listing_content_type(req, query):
    """The media type to answer in, from ``format=`` or else Accept."""
    fmt = query.get('format')
    if fmt is not None and fmt != '':
        try:
            return FORMATS[fmt.lower()]
        except KeyError:
            raise HTTPError(400, 'format must be plain, json or xml')
    chosen = best_offer(req, OFFERS)
    if chosen is None:
        raise HTTPError(406, 'can answer only in %s' % ', '.join(OFFERS))
    return chosen


def listing_params(req, max_limit):
    """ListingParams of a GET, or HTTPError (400, 406 or 412).

    As in Swift: a limit above the maximum and a delimiter of more than
    one character are 412. A limit that is not a non-negative integer,
    a NUL in any parameter and an unknown format are 400 (Swift ignores
    the first and answers plain text for the last; a client that sent
    them meant something we cannot do).
    """
    query = parse_query(req.environ.get('QUERY_STRING', ''))
    values = {}
    for key in ('prefix', 'delimiter', 'marker', 'end_marker'):
        value = query.get(key, '')
        if '\x00' in value:
            raise HTTPError(400, '%s contains a NUL byte' % key)
        values[key] = value
    if len(values['delimiter']) > 1:
        raise HTTPError(412, 'Bad delimiter: one character at most')
    raw_limit = query.get('limit')
    limit, err = parse_listing_limit(raw_limit, max_limit)
    if err:
        status = 412 if raw_limit.strip().isdigit() else 400
        raise HTTPError(status, err)
    return ListingParams(limit=limit,
                         reverse=config_true(query.get('reverse', '')),
                         content_type=listing_content_type(req, query),
                         **values)


# A stored timestamp in its internal form: seconds, 5 decimals, maybe an
# offset (which listings do not show).
_INTERNAL = re.compile(r'(\d{10})\.(\d{5})(?:_[0-9a-f]{16})?\Z')


@functools.lru_cache(maxsize=4096)
def _iso_date(day):
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)) \
        .isoformat()


def iso_time(timestamp):
    """'2024-01-02T03:04:05.678900': a timestamp as listings show it.

    A full listing formats 10,000 of these: stored ones (text in the
    internal form) are done with arithmetic and a cache of dates, about
    a tenth of the datetime route the rest take.
    """
    match = _INTERNAL.match(timestamp) if isinstance(timestamp, str) \
        else None
    if match is not None:
        day, second = divmod(int(match.group(1)), 86400)
        hour, second = divmod(second, 3600)
        minute, second = divmod(second, 60)
        return '%sT%02d:%02d:%02d.%s0' % (_iso_date(day), hour, minute,
                                          second, match.group(2))
    ticks = Timestamp(timestamp).ticks
    seconds, rest = divmod(ticks, 100000)
    when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return when.replace(microsecond=rest * 10, tzinfo=None).isoformat(
        timespec='microseconds')


def _xml_entry(tag, entry):
    if 'subdir' in entry:
        name = entry['subdir']
        return '<subdir name=%s><name>%s</name></subdir>' % (
            quoteattr(name), escape(name))
    fields = ''.join('<%s>%s</%s>' % (key, escape(str(value)), key)
                     for key, value in entry.items())
    return '<%s>%s</%s>' % (tag, fields, tag)


def render(content_type, entries, root_tag, root_name, item_tag):
    """The listing body (bytes) for ``entries`` in ``content_type``.

    ``entries`` are dicts with 'name' first (their keys become the JSON
    keys and XML elements, in order) or {'subdir': name}. Plain text is
    one name per line; XML is UTF-8 with names escaped as text and
    attributes.
    """
    if content_type == 'application/json':
        return json.dumps(entries).encode('utf-8')
    if content_type in ('application/xml', 'text/xml'):
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
                 '<%s name=%s>' % (root_tag, quoteattr(root_name))]
        parts.extend(_xml_entry(item_tag, entry) for entry in entries)
        parts.append('</%s>' % root_tag)
        return ''.join(parts).encode('utf-8')
    return ''.join('%s\n' % (entry.get('name') or entry.get('subdir'))
                   for entry in entries).encode('utf-8')


def container_entry(row):
    """A container listing entry from a ContainerBroker listing row."""
    if isinstance(row, tuple):
        return {'subdir': row[1]}
    return {'name': row['name'], 'hash': row['etag'], 'bytes': row['size'],
            'content_type': row['content_type'],
            'last_modified': iso_time(row['created_at'])}


def account_entry(row):
    """An account listing entry from an AccountBroker listing row."""
    if isinstance(row, tuple):
        return {'subdir': row[1]}
    return {'name': row['name'], 'count': row['object_count'],
            'bytes': row['bytes_used'],
            'last_modified': iso_time(row['put_timestamp'])}
