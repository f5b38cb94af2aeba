"""Conditional requests (RFC 7232) on an object: pure functions.

Order as the RFC gives it: If-Match, else If-Unmodified-Since (412 when
false); then If-None-Match, else If-Modified-Since (304 for GET/HEAD when
false). Dates compare at whole seconds against Last-Modified, which is the
object's timestamp rounded up. Unparseable dates are ignored.
"""
import email.utils
import math


def parse_etags(value):
    """The entity tags of an If-Match/If-None-Match value ('*' kept)."""
    tags = []
    for item in value.split(','):
        item = item.strip()
        if item.startswith('W/'):
            item = item[2:]
        if len(item) >= 2 and item[0] == item[-1] == '"':
            item = item[1:-1]
        if item:
            tags.append(item)
    return tags


def parse_http_date(value):
    """Seconds since the epoch, or None when the date does not parse."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    try:
        return parsed.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def last_modified(timestamp):
    """Last-Modified seconds: the timestamp rounded up."""
    return math.ceil(float(timestamp))


def http_date(seconds):
    return email.utils.formatdate(seconds, usegmt=True)


def _matches(tags, etag):
    return '*' in tags or etag in tags


def evaluate(headers, etag, timestamp):
    """None when the request proceeds, else 412 or 304.

    ``headers``: the request's (case-insensitive mapping); ``etag``: the
    object's; ``timestamp``: its Timestamp (drives Last-Modified).
    """
    modified = last_modified(timestamp)
    if_match = headers.get('If-Match')
    if if_match is not None:
        if not _matches(parse_etags(if_match), etag):
            return 412
    else:
        since = parse_http_date(headers.get('If-Unmodified-Since'))
        if since is not None and modified > since:
            return 412
    if_none_match = headers.get('If-None-Match')
    if if_none_match is not None:
        if _matches(parse_etags(if_none_match), etag):
            return 304
    else:
        since = parse_http_date(headers.get('If-Modified-Since'))
        if since is not None and modified <= since:
            return 304
    return None


def evaluate_missing(headers):
    """For an absent object: If-Match can never hold (412), else None."""
    if headers.get('If-Match') is not None:
        return 412
    return None
