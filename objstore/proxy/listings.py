"""Listing requests as the proxy forwards them.

The proxy checks the parameters itself (400/406/412 before any node is
asked, with the servers' own rules from objstore.common.listing) and
sends them on re-encoded, so a raw byte in a client's query string can
never reach a node in a form the signature or http.client would choke
on.
"""
from urllib.parse import quote, urlencode

from objstore.common import listing
from objstore.common.timestamp import Timestamp


def backend_query(req, max_limit):
    """The validated query string to send on (HTTPError when invalid)."""
    listing.listing_params(req, max_limit)
    query = listing.parse_query(req.environ.get('QUERY_STRING', ''))
    return urlencode(sorted(query.items()), quote_via=quote)


def empty_account(req, account, with_body):
    """(status, header pairs, body) of an account that does not exist
    yet but will be created on first write: what its listing would be.
    """
    query = listing.parse_query(req.environ.get('QUERY_STRING', ''))
    content_type = listing.listing_content_type(req, query)
    body = b''
    if with_body and content_type != 'text/plain':
        body = listing.render(content_type, [], 'account', account,
                              'container')
    now = Timestamp.now().normal
    pairs = [('X-Account-Container-Count', '0'),
             ('X-Account-Object-Count', '0'),
             ('X-Account-Bytes-Used', '0'),
             ('X-Timestamp', now), ('X-Put-Timestamp', now),
             ('Content-Type', content_type + '; charset=utf-8'),
             ('Content-Length', str(len(body)))]
    return (200 if body else 204), pairs, body
