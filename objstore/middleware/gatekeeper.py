"""gatekeeper: the proxy pipeline's edge, where system metadata stops.

System metadata (X-Object-Sysmeta-*, X-Container-Sysmeta-*,
X-Account-Sysmeta-*) is how middleware keeps state of its own on
objects, containers and accounts: an SLO's size and etag, a symlink's
target, an S3 bucket's settings. Clients must neither set nor see it.
This filter removes it (and X-Backend-*) from every client request and
from every answer, and marks the request so the proxy app knows that
whatever system metadata reaches it was set by middleware in between,
and passes it through both ways.

The proxy puts a gatekeeper outermost by itself when its pipeline names
none; without one in front, the proxy app drops system metadata as
before, so a pipeline built by hand (tests) is safe too.

    [filter:gatekeeper]
    use = objstore.middleware.gatekeeper
"""
from objstore.common import info
from objstore.proxy.headers import SYSMETA_TRUSTED, is_internal

_ENV_PREFIXES = tuple('HTTP_X_%s%s_' % (remove, kind)
                      for remove in ('', 'REMOVE_')
                      for kind in ('OBJECT_SYSMETA', 'CONTAINER_SYSMETA',
                                   'ACCOUNT_SYSMETA', 'BACKEND'))


def strip_request(environ):
    """Drop what only cluster components may send from a client request."""
    for key in [k for k in environ if k.startswith(_ENV_PREFIXES)]:
        del environ[key]


class GateKeeper:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        strip_request(environ)
        environ[SYSMETA_TRUSTED] = True

        def start_public(status, headers, exc_info=None):
            return start_response(
                status, [(k, v) for k, v in headers if not is_internal(k)],
                exc_info)
        return self.app(environ, start_public)


def filter_factory(global_conf, local_conf):
    info.register('gatekeeper')
    return GateKeeper
