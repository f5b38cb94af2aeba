"""The proxy server's WSGI app: routing, /info, and the console script.

``/v1/<account>[/<container>[/<object>]]`` goes to the account,
container or object controller; ``/info`` tells clients the cluster's
limits and the middleware enabled. Every answer carries X-Trans-Id (and
X-Openstack-Request-Id, the same value); no answer is ever a traceback.

``objstore-proxy-server CONF`` loads CONF's ``[pipeline:main]`` (for
example ``healthcheck tempauth proxy-server``) and serves it with
pre-forked workers; ``[app:proxy-server]`` holds this app's settings.
"""
import importlib.metadata
import json
import logging
import os
import sys

from objstore.common import config, constraints, info
from objstore.common.config import ConfigError
from objstore.common.http import (HTTPError, Request, error_response,
                                  client_path, split_path)
from objstore.common.pipeline import load_pipeline, pipeline_names
from objstore.common.wsgi import run_server
from objstore.proxy.account import AccountController
from objstore.proxy.base import Denied, make_response
from objstore.proxy.container import ContainerController
from objstore.proxy.errorlimit import ErrorLimiter
from objstore.proxy.headers import new_trans_id
from objstore.proxy.infocache import InfoCache
from objstore.proxy.nodeclient import NodeClient
from objstore.proxy.nodes import NodeSlots
from objstore.proxy.obj import ObjectController
from objstore.proxy.pool import ConnectionPool
from objstore.proxy.settings import Settings
from rings.ring import Ring, RingError

SECTION = 'app:proxy-server'
DEFAULT_PORT = 8080
API_VERSIONS = ('v1', 'v1.0')
KINDS = ('account', 'container', 'object')
log = logging.getLogger('objstore.proxy')


def version():
    try:
        return importlib.metadata.version('objstore')
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'


def parse_path(path):
    """(account, container, object) of a /v1 path; HTTPError otherwise.

    A trailing slash after the account or container names the account
    or container itself; an object name keeps its slashes.
    """
    try:
        api, account, container, obj = split_path(path, 2, 4,
                                                  rest_with_last=True)
    except HTTPError:
        raise HTTPError(404, 'no such resource: use /v1/<account>'
                        '[/<container>[/<object>]]')
    if api not in API_VERSIONS:
        raise HTTPError(404, 'unknown API version %r' % api)
    if obj == '':
        obj = None
    if container == '':
        if obj is not None:
            raise HTTPError(400, 'container name is empty')
        container = None
    return account, container, obj


def check_names(account, container, obj):
    err = constraints.check_name(account, constraints.MAX_ACCOUNT_NAME_LENGTH,
                                 'account')
    if err is None and container is not None:
        err = constraints.check_name(
            container, constraints.MAX_CONTAINER_NAME_LENGTH, 'container')
    if err is None and obj is not None:
        err = constraints.check_object_name(obj)
    if err:
        raise HTTPError(400, err)


class ProxyApp:
    """One per worker process: rings, settings, pools, caches."""

    def __init__(self, conf):
        self.settings = Settings.from_conf(conf)
        ring_dir = conf.get('ring_dir') or config.ring_dir()
        try:
            self.rings = {kind: Ring(os.path.join(ring_dir,
                                                  '%s.ring.gz' % kind))
                          for kind in KINDS}
        except RingError as e:
            raise ConfigError(str(e))
        settings = self.settings
        self.limiter = ErrorLimiter(settings.error_suppression_limit,
                                    settings.error_suppression_interval)
        self.pool = ConnectionPool(settings.conn_timeout,
                                   settings.node_timeout,
                                   settings.max_idle_connections,
                                   settings.idle_connection_age)
        self.client = NodeClient(config.backend_secret(), self.pool,
                                 self.limiter)
        self.cache = InfoCache(settings.recheck_existence)

    def slots(self, kind, part):
        ring = self.rings[kind]
        return NodeSlots(ring, part, self.limiter,
                         self.settings.node_count(ring.replica_count))

    def __call__(self, environ, start_response):
        trans_id = environ.get('objstore.trans_id') or \
            new_trans_id(self.settings.trans_id_suffix)
        environ['objstore.trans_id'] = trans_id
        resp = self.handle(Request(environ))
        headers = getattr(resp, 'headers', None)
        if headers is not None:
            headers['X-Trans-Id'] = trans_id
            headers['X-Openstack-Request-Id'] = trans_id
        return resp(environ, start_response)

    def handle(self, req):
        """The response to ``req``: the controllers' work, or the error."""
        try:
            path = client_path(req)
            if path in ('/info', '/info/'):
                return self.info(req)
            account, container, obj = parse_path(path)
            check_names(account, container, obj)
            if obj is not None:
                cls = ObjectController
            elif container is not None:
                cls = ContainerController
            else:
                cls = AccountController
            if req.method not in cls.methods:
                raise HTTPError(405, '%s not allowed here' % req.method,
                                {'Allow': ', '.join(cls.methods)})
            controller = cls(self, req, account, container, obj)
            return getattr(controller, req.method)()
        except HTTPError as e:
            return e.response(req)
        except Denied as e:
            return e.response
        except Exception:
            log.exception('%s %s failed', req.method,
                          req.environ.get('PATH_INFO'))
            return error_response(500, 'internal error', request=req)

    def info(self, req):
        """GET /info: the limits and what each middleware registered."""
        if req.method not in ('GET', 'HEAD'):
            raise HTTPError(405, 'only GET and HEAD', {'Allow': 'GET, HEAD'})
        if not self.settings.expose_info:
            raise HTTPError(403, 'the cluster does not publish /info')
        swift = dict(constraints.LIMITS)
        swift.update({
            'version': version(),
            'account_autocreate': self.settings.account_autocreate,
            'allow_account_management':
                self.settings.allow_account_management,
            'policies': [{'name': 'Policy-0', 'default': True}],
        })
        body = info.get_info()
        body['swift'] = dict(body.get('swift', {}), **swift)
        data = json.dumps(body, sort_keys=True).encode('utf-8')
        pairs = [('Content-Type', 'application/json; charset=utf-8'),
                 ('Content-Length', str(len(data)))]
        return make_response(200, pairs,
                             app_iter=[b'' if req.method == 'HEAD' else data])


def app_factory(global_conf, local_conf):
    """The pipeline's app: settings from [app:proxy-server]."""
    conf = dict(global_conf)
    conf.update(local_conf)
    return ProxyApp(conf)


# the filters that shape what an object's GET returns: copy must come
# before them to copy what a GET returns (Swift puts it there too)
SHAPING_FILTERS = ('slo', 'dlo', 'versioned_writes', 'symlink')
# filters the proxy cannot do without, added where a pipeline lacks them
REQUIRED_FILTERS = {'gatekeeper': {'use': 'objstore.middleware.gatekeeper'},
                    'copy': {'use': 'objstore.middleware.copy'}}


def copy_position(names):
    """Where a copy filter goes in a pipeline (names, the app last) that
    lacks one: before the first filter that shapes objects, else right
    before the app; after auth, whose authorisation it carries."""
    position = len(names) - 1
    for index, name in enumerate(names[:-1]):
        if name in SHAPING_FILTERS:
            position = index
            break
    if 'tempauth' in names[:-1]:
        position = max(position, names.index('tempauth') + 1)
    return position


def complete_pipeline(names):
    """``names`` with the required filters it lacks: a gatekeeper
    outermost (without one, clients could set system metadata through
    middleware that passes it on) and copy (the proxy app itself does no
    server-side copy)."""
    names = list(names)
    if 'copy' not in names:
        names.insert(copy_position(names), 'copy')
    if 'gatekeeper' not in names:
        names.insert(0, 'gatekeeper')
    return names


def _load(conf):
    path = conf['__file__']
    return load_pipeline(path, names=complete_pipeline(pipeline_names(path)),
                         default_filters=REQUIRED_FILTERS)


def main(argv=None):
    """Run the proxy server's pipeline from the config file named."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ('-h', '--help'):
        sys.stderr.write('usage: objstore-proxy-server CONF\n')
        return 2
    return run_server(argv[0], SECTION, _load, DEFAULT_PORT)


if __name__ == '__main__':
    sys.exit(main())
