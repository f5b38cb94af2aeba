"""The compute agent's HTTP side: the signed JSON API the compute API
drives, and the ``compute-agent`` process around it.

Every request must carry a valid, fresh signature over its method, path,
query and body (compute.common.signed_http): a spawn request names a
user's token and image, so nobody but the API may send one. The work
itself is in AgentManager; this module decodes requests, maps errors to
JSON answers and runs the agent's background duties:

* register and heartbeat the host's capacity to the API,
* report power state changes the agent did not cause,
* expire unused images from the cache.

Routes (wiring contract):
  PUT    /v1/instances/<uuid>               spawn        -> 201
  POST   /v1/instances/<uuid>/action        power action -> 200
  DELETE /v1/instances/<uuid>               destroy      -> 204
  GET    /v1/instances/<uuid>/console       console tail -> 200
  GET    /v1/instances/<uuid>               power state  -> 200
  GET    /v1/instances                      list         -> 200
  GET    /v1/host                           capacity     -> 200
"""
import argparse
import logging
import os
import re
import signal
import sys
import threading
import urllib.parse

from compute.agent.image_cache import ImageCache
from compute.agent.manager import AgentError, AgentManager, BadRequest
from compute.common import config as cconfig
from compute.common import jsonapi, signed_http, wsgi_server
from compute.virt.driver import DriverError

LOG = logging.getLogger('compute.agent')

_UUID = r'[^/]+'
_ROUTES = (
    (re.compile(r'/v1/instances\Z'), {'GET': 'list_instances'}),
    (re.compile(r'/v1/host\Z'), {'GET': 'host'}),
    (re.compile(r'/v1/instances/(%s)\Z' % _UUID),
     {'PUT': 'spawn', 'DELETE': 'destroy', 'GET': 'show'}),
    (re.compile(r'/v1/instances/(%s)/action\Z' % _UUID), {'POST': 'action'}),
    (re.compile(r'/v1/instances/(%s)/console\Z' % _UUID),
     {'GET': 'console'}),
)


class AgentApp:
    """The WSGI application: verify, route, answer JSON."""

    def __init__(self, manager, secret):
        self.manager = manager
        self.secret = secret

    def __call__(self, environ, start_response):
        try:
            status, body = self._handle(environ)
        except jsonapi.HttpError as exc:
            return jsonapi.respond_error(start_response, exc)
        except AgentError as exc:
            return jsonapi.respond_error(
                start_response, jsonapi.HttpError(exc.status, exc.message))
        except Exception as exc:
            # never a traceback to the client; the log has it
            LOG.exception('%s %s failed', environ.get('REQUEST_METHOD'),
                          environ.get('PATH_INFO'))
            message = ' '.join(('internal error: %s: %s'
                                % (type(exc).__name__, exc)).split())[:500]
            return jsonapi.respond_error(start_response,
                                         jsonapi.HttpError(500, message))
        return jsonapi.respond(start_response, status, body)

    def _handle(self, environ):
        """(status, body) for one request, or an exception."""
        body = jsonapi.read_body(environ)
        reason = signed_http.verify_request(self.secret, environ, body)
        if reason:
            raise jsonapi.HttpError(401, 'request refused: %s' % reason)
        handler, args = self._route(environ)
        return handler(environ, body, *args)

    def _route(self, environ):
        path = environ.get('PATH_INFO', '')
        method = environ.get('REQUEST_METHOD', 'GET')
        for pattern, methods in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            if method not in methods:
                raise jsonapi.HttpError(405, '%s is not allowed on %s'
                                        % (method, path))
            return getattr(self, methods[method]), match.groups()
        raise jsonapi.HttpError(404, 'no such resource: %s' % path)

    # --- handlers: (environ, body, *path args) -> (status, body) ----------

    def list_instances(self, environ, body):
        return 200, {'instances': self.manager.list()}

    def host(self, environ, body):
        try:
            return 200, self.manager.capacity()
        except DriverError as exc:
            raise AgentError(str(exc)) from exc

    def spawn(self, environ, body, instance_uuid):
        payload = jsonapi.parse_json(body)
        if payload.get('uuid') != instance_uuid:
            raise BadRequest('the body\'s uuid %r is not the one in the path '
                             '(%s)' % (payload.get('uuid'), instance_uuid))
        return 201, self.manager.spawn(payload)

    def show(self, environ, body, instance_uuid):
        state = self.manager.power_state(instance_uuid)
        return 200, {'uuid': instance_uuid, 'power_state': state.value}

    def destroy(self, environ, body, instance_uuid):
        self.manager.destroy(instance_uuid)
        return 204, None

    def action(self, environ, body, instance_uuid):
        payload = jsonapi.parse_json(body)
        return 200, self.manager.action(instance_uuid, payload.get('action'))

    def console(self, environ, body, instance_uuid):
        query = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))
        length = None
        raw = query.get('length', [''])[-1]
        if raw:
            if not raw.isdigit():
                raise BadRequest('length must be a whole number, not %r'
                                 % raw)
            length = int(raw)
        return 200, {'output': self.manager.console_log(instance_uuid,
                                                        length)}


# --- background duties -------------------------------------------------------

class Periodic(threading.Thread):
    """Run ``task`` every ``interval`` seconds until stopped; an error is
    logged and the task runs again next time (never fatal)."""

    def __init__(self, name, interval, task, stop_event):
        super().__init__(name=name, daemon=True)
        self.interval, self.task, self.stop_event = interval, task, stop_event

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.task()
            except Exception:
                LOG.exception('%s failed; retrying in %s s', self.name,
                              self.interval)
            self.stop_event.wait(self.interval)


class Heartbeat:
    """Register (and re-register) the host with the API: the same PUT
    both times, so an API that lost its database learns the host again."""

    def __init__(self, manager, client, agent_url):
        self.manager, self.client, self.agent_url = manager, client, agent_url
        self.sent = 0

    def __call__(self):
        body = dict(self.manager.capacity(), agent_url=self.agent_url)
        path = '/internal/hosts/%s' % urllib.parse.quote(
            self.manager.host_name, safe='')
        try:
            status, answer = self.client.request('PUT', path, body)
        except signed_http.SignedClientError as exc:
            LOG.warning('heartbeat failed: %s', exc)
            return
        if status != 200:
            LOG.warning('heartbeat refused by the API (%d): %s', status,
                        answer)
            return
        if self.sent == 0:
            LOG.info('registered host %s with %s', self.manager.host_name,
                     self.client.base_url)
        self.sent += 1


# --- the process ------------------------------------------------------------

def _overrides(values):
    """vcpus / ram_mb / disk_gb from [agent], where set (fake hosts)."""
    out = {}
    for key in ('vcpus', 'ram_mb', 'disk_gb'):
        value = cconfig.number(values, key, None, kind=int, minimum=1)
        if value is not None:
            out[key] = value
    return out


class Agent:
    """Everything ``compute-agent`` runs, built from its config section."""

    def __init__(self, values, base=None):
        from compute.virt.libvirt_driver import LibvirtDriver
        self.secret = cconfig.secret(values)
        self.host_name = (values.get('name') or '').strip() or \
            os.uname().nodename
        self.bind_ip = (values.get('bind_ip') or '127.0.0.1').strip()
        self.bind_port = cconfig.number(values, 'bind_port', 8775, int, 0)
        state_dir = cconfig.path(values, 'state_dir',
                                 'var/compute/agent-' + self.host_name, base)
        uri = (values.get('libvirt_uri') or 'qemu:///system').strip()
        self.intervals = {
            'heartbeat': cconfig.number(values, 'heartbeat_interval', 5.0,
                                        minimum=0.05),
            'power-sync': cconfig.number(values, 'power_sync_interval', 5.0,
                                         minimum=0.05),
            'image-expiry': cconfig.number(values, 'image_cache_expire_'
                                           'interval', 600.0, minimum=0.05),
        }
        api_url = (values.get('api_url') or 'http://127.0.0.1:8774').strip()
        self.client = signed_http.SignedClient(api_url, self.secret,
                                               timeout=10.0)
        self.driver = LibvirtDriver(
            uri, domain_type=(values.get('domain_type') or '').strip()
            or None, instances_path=os.path.join(state_dir, 'instances'))
        self.cache = ImageCache(
            os.path.join(state_dir, 'image-cache'),
            max_unused_age=cconfig.number(values, 'image_cache_max_age',
                                          86400.0))
        # below the API's 60 s request timeout, so a guest ignoring the
        # power button is stopped hard before the API gives up on us
        self.manager = AgentManager(
            self.driver, self.cache, state_dir, self.host_name,
            api_client=self.client, capacity_overrides=_overrides(values),
            stop_timeout=cconfig.number(values, 'shutdown_timeout', 30.0))
        self.stop_event = threading.Event()
        self.server = None

    def start(self):
        """Bind, then start the background threads and the server."""
        app = AgentApp(self.manager, self.secret)
        self.server = wsgi_server.make_server(app, self.bind_ip,
                                              self.bind_port)
        agent_url = 'http://%s:%d' % (self.bind_ip, self.server.server_port)
        tasks = {'heartbeat': Heartbeat(self.manager, self.client, agent_url),
                 'power-sync': self.manager.sync_power_states,
                 'image-expiry': self.cache.expire}
        for name, task in tasks.items():
            Periodic(name, self.intervals[name], task,
                     self.stop_event).start()
        LOG.info('compute agent %s listening on %s (libvirt %s)',
                 self.host_name, agent_url, self.driver.uri)
        return agent_url

    def serve(self):
        self.server.serve_forever(poll_interval=0.2)

    def stop(self):
        """Called from a signal handler: the threads end on their own."""
        self.stop_event.set()
        threading.Thread(target=self.server.shutdown, daemon=True).start()

    def close(self):
        self.server.server_close()
        self.client.close()
        self.driver.close()


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='compute-agent', description='The compute agent of one host.')
    parser.add_argument('--conf', required=True, help='compute.conf path')
    parser.add_argument('--libvirt-uri',
                        help="overrides [agent] libvirt_uri (compute-aio "
                             "passes the one it chose)")
    parser.add_argument('--domain-type',
                        help='overrides [agent] domain_type (qemu, kvm...)')
    parser.add_argument('-v', '--verbose', action='store_true')
    return parser.parse_args(argv)


def resolve_hypervisor(values):
    """``values`` with libvirt_uri 'auto' (or none) replaced by what this
    host can run: the system libvirtd, made to run when we are root, else
    the test driver, with host_setup's loud warning in the log."""
    uri = (values.get('libvirt_uri') or 'auto').strip()
    if uri != 'auto':
        return values
    from compute.virt import host_setup
    uri, domain_type, warning = host_setup.choose_hypervisor()
    if warning:
        LOG.warning('%s', warning)
    resolved = dict(values, libvirt_uri=uri)
    if not (values.get('domain_type') or '').strip():
        resolved['domain_type'] = domain_type
    return resolved


def main(argv=None):
    """``compute-agent --conf FILE``: serve until SIGTERM or SIGINT."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format='%(asctime)s compute-agent %(levelname)s %(name)s: '
               '%(message)s')
    try:
        conf = cconfig.load(args.conf)
        values = cconfig.section(conf, 'agent')
        for key in ('libvirt_uri', 'domain_type'):
            if getattr(args, key):
                values[key] = getattr(args, key)
        values = resolve_hypervisor(values)
        agent = Agent(values, base=os.path.dirname(
            os.path.abspath(args.conf)))
        agent.start()
    except (cconfig.ConfigError, DriverError, OSError, ValueError) as exc:
        LOG.error('cannot start: %s', exc)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _sig, _frame: agent.stop())
    try:
        agent.serve()
    finally:
        agent.close()
    LOG.info('compute agent %s stopped', agent.host_name)
    return 0


if __name__ == '__main__':
    sys.exit(main())
