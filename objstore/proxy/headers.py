"""Which headers cross the proxy, in each direction: pure functions.

Clients must not steer the storage nodes: headers that only cluster
components may send (X-Backend-*, system metadata, the container and
account update targets, the object rows a container server records)
are dropped from every client request, and the proxy sets its own
X-Timestamp. Answers lose the internal headers on the way back.

System metadata is the exception when the request came through the
gatekeeper filter (``trusted``): then any of it on the request was set
by middleware, and the answer's goes back to middleware, which the
gatekeeper strips it from before the client sees it.
"""
import os
import time

from objstore.common import signing

HOP_BY_HOP = frozenset((
    'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
    'proxy-connection', 'te', 'trailer', 'trailers', 'transfer-encoding',
    'upgrade'))
# environ key set by the gatekeeper filter: system metadata on this
# request was set by middleware, and middleware may see the answer's
SYSMETA_TRUSTED = 'objstore.sysmeta_trusted'
# environ key set by middleware on a container HEAD sub-request that may
# be answered from the proxy's short-lived cache of container info (what
# versioned_writes asks on every object write): no fan-out to replicas
CACHED_INFO_OK = 'objstore.cached_info_ok'
SYSMETA_PREFIXES = ('x-object-sysmeta-', 'x-container-sysmeta-',
                    'x-account-sysmeta-')
INTERNAL_PREFIXES = ('x-backend-',) + SYSMETA_PREFIXES
# signed headers a client may send as they are (the rest steer servers)
CLIENT_SIGNED_OK = frozenset(('content-length', 'etag', 'x-delete-at'))
# client headers the proxy replaces or that mean nothing to a backend
CLIENT_DROPPED = frozenset((
    'host', 'content-length', 'expect', 'x-timestamp', 'x-auth-token',
    'x-storage-token', 'x-trans-id', 'x-openstack-request-id',
    'x-delete-after', 'x-copy-from', 'x-copy-from-account', 'destination',
    'destination-account', 'x-fresh-metadata', 'x-newest',
    'x-detect-content-type',
)) | HOP_BY_HOP | (frozenset(signing.SIGNED_HEADERS) - CLIENT_SIGNED_OK)
# backend answer headers the client must not see or that we set ourselves
RESPONSE_DROPPED = HOP_BY_HOP | frozenset(('date', 'server'))


def is_internal(name):
    """True for headers only cluster components may set, including the
    X-Remove-<header> spelling that deletes one of them."""
    return _hidden(name.lower(), False)


def _hidden(lname, trusted):
    """Whether a header (lower-case) stays inside the cluster."""
    if lname.startswith('x-remove-'):
        lname = 'x-' + lname[len('x-remove-'):]
    if trusted and lname.startswith(SYSMETA_PREFIXES):
        return False
    return lname.startswith(INTERNAL_PREFIXES)


def backend_headers(client_headers, trusted=False):
    """The client's request headers a storage node may see (a new dict);
    system metadata only when ``trusted`` (set by middleware)."""
    out = {}
    for key, value in client_headers.items():
        lkey = key.lower()
        if lkey in CLIENT_DROPPED or _hidden(lkey, trusted):
            continue
        out[key] = value
    return out


def client_headers(backend_pairs, trusted=False):
    """[(name, value)] of a backend answer minus what stays internal;
    system metadata stays when ``trusted`` (middleware reads it)."""
    return [(key, value) for key, value in backend_pairs
            if key.lower() not in RESPONSE_DROPPED and
            not _hidden(key.lower(), trusted)]


def new_trans_id(suffix=''):
    """'tx' + 21 random hex digits + '-' + the hex time: unique, sortable
    by time within the suffix, and what Swift clients expect to log."""
    return 'tx%s-%010x%s' % (os.urandom(11).hex()[:21], int(time.time()),
                             suffix)

