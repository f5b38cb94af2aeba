"""Container ACLs (X-Container-Read / X-Container-Write) as pure functions.

The "V1" syntax clients know from Swift: comma-separated elements, spaces
around elements and colons ignored.

* ``.r:<host>`` (also spelled ``.ref:``, ``.referer:``, ``.referrer:``)
  grants reads to requests whose Referer header names that host: ``*`` is
  any host (no Referer needed), a leading ``.`` (or ``*.``) a whole
  domain, a leading ``-`` denies instead. Elements apply in order, the
  last one that matches wins, so ``.r:*,.r:-bad.example.com`` admits
  everyone but that host.
* ``.rlistings`` lets referrer-admitted readers list the container too.
* anything else is a group name; tempauth users are members of
  ``<account>`` and ``<account>:<user>`` (plus their configured groups).

Referrer elements make sense only in the read ACL; ``clean_acl`` refuses
them in a write ACL, and ``grants`` never applies them to writes, so a
hand-stored write ACL cannot open a container to anonymous writers.
Kept free of I/O so every rule is testable on its own.
"""
from urllib.parse import urlsplit

REFERRER_DESIGNATORS = ('.r', '.ref', '.referer', '.referrer')
LISTINGS = '.rlistings'
ANY_HOST = '*'


def _elements(value):
    """The non-empty elements of an ACL string, spaces removed around
    the element and around its colons."""
    for item in (value or '').split(','):
        item = ':'.join(part.strip() for part in item.split(':'))
        if item:
            yield item


def _referrer_value(host):
    """(deny, host pattern) for the text after ``.r:``; None when empty."""
    deny = host.startswith('-')
    if deny:
        host = host[1:]
    if host.startswith('*.'):
        host = host[1:]
    host = host.lower()
    if not host.strip('.'):
        return None
    return deny, host


def clean_acl(name, value):
    """The canonical form of an ACL header value, or ValueError.

    ``name`` is the header (X-Container-Read or X-Container-Write): only
    the read ACL may hold referrer elements. Referrer spellings become
    ``.r:``, ``*.domain`` becomes ``.domain``, hosts are lower-cased and
    unknown ``.designators`` are refused, so what is stored is what
    ``parse_acl`` reads back.
    """
    writing = 'write' in name.lower()
    cleaned = []
    for element in _elements(value):
        if not element.startswith('.'):
            cleaned.append(element)
            continue
        if element == LISTINGS:
            cleaned.append(element)
            continue
        designator, colon, host = element.partition(':')
        if designator.lower() not in REFERRER_DESIGNATORS or not colon:
            raise ValueError('unknown designator %r in %s' % (designator,
                                                              name))
        if writing:
            raise ValueError('referrers are not allowed in %s' % name)
        parsed = _referrer_value(host)
        if parsed is None:
            raise ValueError('no host after %r in %s' % (designator, name))
        deny, host = parsed
        cleaned.append('.r:%s%s' % ('-' if deny else '', host))
    return ','.join(cleaned)


def parse_acl(value):
    """(referrers, groups) of an ACL string; never raises.

    ``referrers`` is a list of (deny, host pattern) in order; ``groups``
    the other elements (``.rlistings`` included). Elements that
    ``clean_acl`` would refuse are skipped, so a malformed stored ACL
    grants nothing through them.
    """
    referrers, groups = [], []
    for element in _elements(value):
        if not element.startswith('.') or element == LISTINGS:
            groups.append(element)
            continue
        designator, colon, host = element.partition(':')
        if designator.lower() in REFERRER_DESIGNATORS and colon:
            parsed = _referrer_value(host)
            if parsed is not None:
                referrers.append(parsed)
    return referrers, groups


def referrer_host(referer):
    """The lower-cased host of a Referer header value, or None."""
    if not referer:
        return None
    try:
        return urlsplit(referer).hostname
    except ValueError:
        return None


def _host_matches(host, pattern):
    if pattern == ANY_HOST:
        return True
    if host is None:
        return False
    if pattern.startswith('.'):
        return host.endswith(pattern)
    return host == pattern


def referrer_allowed(referer, referrers):
    """Whether the (deny, pattern) list admits this Referer header value.

    Applied in order, the last matching element decides; nothing
    matching means no.
    """
    host = referrer_host(referer)
    allowed = False
    for deny, pattern in referrers:
        if _host_matches(host, pattern):
            allowed = not deny
    return allowed


def grants(acl_value, user_groups, referer, reading, listing):
    """Whether an ACL lets this requester do this.

    ``user_groups``: the authenticated user's groups (empty when
    anonymous). ``reading``: a GET or HEAD (referrer elements only ever
    grant reads). ``listing``: the request is for the container itself,
    where referrer access also needs ``.rlistings``.
    """
    referrers, groups = parse_acl(acl_value)
    if reading and referrer_allowed(referer, referrers) and \
            (not listing or LISTINGS in groups):
        return True
    named = set(g for g in groups if not g.startswith('.'))
    return any(g in named for g in user_groups if not g.startswith('.'))
