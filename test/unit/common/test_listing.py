"""Listing parameters and the plain/JSON/XML formats, without a server."""
import datetime
import json
import random
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from objstore.common import listing
from objstore.common.http import HTTPError, Request
from objstore.common.timestamp import Timestamp

ODD_NAMES = ['plain', 'amp&er', '<tag>', 'quo"te', "apos'", 'sp ace',
             'ünï/cødé', '日本語', 'line\nbreak', 'tab\tbed', '\U0001f600',
             ']]>', '&amp;', 'a%2Fb', '+plus+']


def req(query='', accept=None):
    headers = {'Accept': accept} if accept is not None else {}
    return Request.blank('/d/1/a/c' + ('?' + query if query else ''),
                         headers=headers)


def params(query='', accept=None, limit=10000):
    return listing.listing_params(req(query, accept), limit)


def status_of(query='', accept=None):
    with pytest.raises(HTTPError) as e:
        params(query, accept)
    return e.value.status


def test_defaults():
    p = params()
    assert p.query() == {'limit': 10000, 'marker': '', 'end_marker': '',
                         'prefix': '', 'delimiter': '', 'reverse': False}
    assert p.content_type == 'text/plain'


def test_all_parameters_decoded():
    p = params(urlencode({'prefix': 'ü/', 'delimiter': '/', 'marker': 'a b',
                          'end_marker': 'z&', 'limit': '7',
                          'reverse': 'on', 'format': 'JSON'}))
    assert p.query() == {'limit': 7, 'marker': 'a b', 'end_marker': 'z&',
                         'prefix': 'ü/', 'delimiter': '/', 'reverse': True}
    assert p.content_type == 'application/json'
    assert params('limit=0').limit == 0
    assert params('reverse=false').reverse is False


@pytest.mark.parametrize('query,accept,expected', [
    ('format=plain', None, 'text/plain'),
    ('format=xml', None, 'application/xml'),
    ('format=json', 'application/xml', 'application/json'),
    ('', 'application/json', 'application/json'),
    ('', 'application/xml', 'application/xml'),
    ('', 'text/xml', 'text/xml'),
    ('', '*/*', 'text/plain'),
    ('', 'application/json;q=0.5, text/xml', 'text/xml'),
    ('', 'text/html,application/xml;q=0.9,*/*;q=0.8', 'application/xml'),
    ('format=', 'application/json', 'application/json'),
])
def test_format_and_accept(query, accept, expected):
    assert params(query, accept).content_type == expected


@pytest.mark.parametrize('query,accept,status', [
    ('limit=10001', None, 412),
    ('limit=abc', None, 400),
    ('limit=-1', None, 400),
    ('limit=1.5', None, 400),
    ('delimiter=ab', None, 412),
    ('format=yaml', None, 400),
    ('', 'image/png', 406),
    ('', 'bad;;;q=x', 400),
    ('prefix=%00', None, 400),
    ('marker=a%00b', None, 400),
    ('end_marker=%FF', None, 400),
])
def test_bad_parameters(query, accept, status):
    assert status_of(query, accept) == status


def test_limit_maximum_is_the_callers():
    assert params('limit=50', limit=50).limit == 50
    with pytest.raises(HTTPError) as e:
        params('limit=51', limit=50)
    assert e.value.status == 412


def test_iso_time():
    assert listing.iso_time('1700000000.12345') == \
        '2023-11-14T22:13:20.123450'
    assert listing.iso_time(Timestamp(0)) == '1970-01-01T00:00:00.000000'


def test_iso_time_of_stored_timestamps_matches_the_datetime_route():
    rng = random.Random(7)
    stamps = [Timestamp(0), Timestamp(951782400), Timestamp(10 ** 10 - 1),
              Timestamp(4102444800.5, offset=3)]
    stamps += [Timestamp(rng.randrange(0, 10 ** 15) / 100000.0,
                         offset=rng.choice([0, 0, 1, 2 ** 40]))
               for _ in range(3000)]
    for ts in stamps:
        expected = datetime.datetime.fromtimestamp(
            ts.ticks // 100000, datetime.timezone.utc).replace(
                microsecond=ts.ticks % 100000 * 10, tzinfo=None).isoformat(
                    timespec='microseconds')
        # stored rows hold the internal form; other callers pass others
        for form in (ts.internal, ts.normal, ts):
            assert listing.iso_time(form) == expected, form


def rows(names):
    return [{'name': n, 'etag': 'e%d' % i, 'size': i,
             'content_type': 'text/plain', 'created_at': '1700000000.00000'}
            for i, n in enumerate(names)]


def test_json_round_trips_odd_names():
    entries = [listing.container_entry(r) for r in rows(ODD_NAMES)]
    entries.append(listing.container_entry(('subdir', 'sub<&>/')))
    body = listing.render('application/json', entries, 'container', 'c',
                          'object')
    data = json.loads(body)
    assert [e.get('name', e.get('subdir')) for e in data] == \
        ODD_NAMES + ['sub<&>/']
    assert data[1] == {'name': 'amp&er', 'hash': 'e1', 'bytes': 1,
                       'content_type': 'text/plain',
                       'last_modified': '2023-11-14T22:13:20.000000'}


@pytest.mark.parametrize('content_type', ['application/xml', 'text/xml'])
def test_xml_parses_back_with_odd_names(content_type):
    entries = [listing.container_entry(r) for r in rows(ODD_NAMES)]
    entries.append(listing.container_entry(('subdir', 'q"<&\n/')))
    body = listing.render(content_type, entries, 'container', 'c&<"\n',
                          'object')
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(body)
    assert root.tag == 'container' and root.get('name') == 'c&<"\n'
    objects = root.findall('object')
    assert [o.findtext('name') for o in objects] == ODD_NAMES
    assert objects[2].findtext('hash') == 'e2'
    assert objects[2].findtext('bytes') == '2'
    assert objects[2].findtext('content_type') == 'text/plain'
    sub = root.find('subdir')
    assert sub.get('name') == sub.findtext('name') == 'q"<&\n/'


def test_account_entries_in_every_format():
    acct_rows = [{'name': n, 'object_count': 3, 'bytes_used': 10,
                  'put_timestamp': '1700000000.00000'} for n in ODD_NAMES]
    entries = [listing.account_entry(r) for r in acct_rows]
    entries.append(listing.account_entry(('subdir', 'x-')))
    data = json.loads(listing.render('application/json', entries,
                                     'account', 'a', 'container'))
    assert data[0] == {'name': 'plain', 'count': 3, 'bytes': 10,
                       'last_modified': '2023-11-14T22:13:20.000000'}
    assert data[-1] == {'subdir': 'x-'}
    root = ET.fromstring(listing.render('application/xml', entries,
                                        'account', 'a', 'container'))
    assert root.tag == 'account'
    assert [c.findtext('name') for c in root.findall('container')] == \
        ODD_NAMES
    assert root.find('container').findtext('count') == '3'
    plain = listing.render('text/plain', entries, 'account', 'a',
                           'container')
    assert plain == ''.join(n + '\n' for n in ODD_NAMES + ['x-']).encode()


def test_empty_listings():
    assert listing.render('text/plain', [], 'container', 'c', 'o') == b''
    assert listing.render('application/json', [], 'container', 'c',
                          'o') == b'[]'
    root = ET.fromstring(listing.render('application/xml', [], 'container',
                                        'c', 'object'))
    assert root.tag == 'container' and list(root) == []
