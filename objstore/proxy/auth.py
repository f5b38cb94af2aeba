"""What the proxy needs from the auth middleware in front of it.

The contract (tempauth or any other auth filter):

* ``environ['objstore.authorize']``: an optional callable ``f(req)``
  returning None to allow the request or a WSGI response to deny it.
  The proxy calls it once it knows the ACL that applies, set as
  ``req.acl`` (and ``environ['objstore.acl']``): the container's read
  ACL for object and container reads, its write ACL for object writes,
  None for account requests and container writes. ``swift.authorize``
  is honoured the same way.
* ``environ['objstore.account_owner'] = True`` when the user owns the
  account in the path (or is a reseller admin): owners may auto-create
  their account and see ACL headers.

Without an auth filter in the pipeline every request is the owner's.
"""
AUTHORIZE_KEYS = ('objstore.authorize', 'swift.authorize')
OWNER_KEYS = ('objstore.account_owner', 'swift_owner')


def auth_active(environ):
    return any(key in environ for key in AUTHORIZE_KEYS + OWNER_KEYS)


def has_authorize(environ):
    """Whether an auth filter wants to judge requests by their ACLs."""
    return any(callable(environ.get(key)) for key in AUTHORIZE_KEYS)


def is_owner(req):
    environ = req.environ
    if any(environ.get(key) for key in OWNER_KEYS):
        return True
    return not auth_active(environ)


def authorize(req, acl=None):
    """None when the request may proceed, else the denial to answer."""
    for key in AUTHORIZE_KEYS:
        check = req.environ.get(key)
        if callable(check):
            req.environ['objstore.acl'] = acl
            req.acl = acl
            return check(req)
    return None
