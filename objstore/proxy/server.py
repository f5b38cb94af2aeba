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
from objstore.middleware import gatekeeper
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


def _load(conf):
    """The configured pipeline, behind a gatekeeper if it names none:
    without one, clients could set system metadata through middleware
    that passes it on."""
    app = load_pipeline(conf['__file__'])
    if 'gatekeeper' not in pipeline_names(conf['__file__']):
        app = gatekeeper.GateKeeper(app)
    return app


def main(argv=None):
    """Run the proxy server's pipeline from the config file named."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ('-h', '--help'):
        sys.stderr.write('usage: objstore-proxy-server CONF\n')
        return 2
    return run_server(argv[0], SECTION, _load, DEFAULT_PORT)


if __name__ == '__main__':
    sys.exit(main())
