"""Listing requests as the proxy checks and forwards them."""
import json

import pytest

from objstore.common.http import HTTPError, Request
from objstore.proxy.listings import backend_query, empty_account


def request(query='', accept=None):
    req = Request.blank('/v1/a')
    req.environ['QUERY_STRING'] = query
    if accept:
        req.headers['Accept'] = accept
    return req


def test_backend_query_is_validated_and_re_encoded():
    assert backend_query(request('prefix=a%20b&limit=5&format=json'),
                         10000) == 'format=json&limit=5&prefix=a%20b'
    assert backend_query(request('marker=%C3%A9'), 10000) == 'marker=%C3%A9'
    assert backend_query(request(''), 10000) == ''
    for query, status in (('limit=10001', 412), ('limit=x', 400),
                          ('delimiter=ab', 412), ('format=yaml', 400),
                          ('prefix=%ff', 400), ('marker=a%00', 400)):
        with pytest.raises(HTTPError) as err:
            backend_query(request(query), 10000)
        assert err.value.status == status, query


def test_empty_account_in_every_format():
    status, pairs, body = empty_account(request(), 'AUTH_a', True)
    headers = dict(pairs)
    assert (status, body) == (204, b'')
    assert headers['X-Account-Container-Count'] == '0'
    assert headers['Content-Type'].startswith('text/plain')
    status, pairs, body = empty_account(request('format=json'), 'AUTH_a',
                                        True)
    assert (status, json.loads(body)) == (200, [])
    status, _, body = empty_account(request(accept='application/xml'),
                                    'AUTH_a', True)
    assert status == 200 and b'<account name="AUTH_a"></account>' in body
    status, _, body = empty_account(request('format=json'), 'AUTH_a', False)
    assert (status, body) == (204, b'')
