"""compute-api: the compute REST API, its scheduler and builders, one process.

    compute-api --conf compute.conf

Reads [api], [scheduler], [flavors] and [DEFAULT] (agent_secret), opens
state_dir/compute.db, picks up work a previous run left unfinished
(Builder.recover), and serves on bind_ip:bind_port until SIGTERM or
SIGINT. Configuration errors stop it at once with a one-line message,
before it listens: a half-configured API is worse than none.
"""
import argparse
import logging
import os
import signal
import sys
import threading
import urllib.parse

from compute.api.app import ComputeAPI
from compute.api.auth import Authenticator
from compute.api.builder import Builder
from compute.api.db import ComputeDB
from compute.api.flavors import Flavors
from compute.common import config, wsgi_server
from compute.image.store import ImageStore
from compute.image.swift import SwiftSession
from compute.scheduler import scheduler_options
from objstore.common.config import ConfigError as ObjstoreConfigError

LOG = logging.getLogger('compute-api')
DEFAULT_PORT = 8774


def scheduler_section(conf, api):
    """[scheduler] with the wiring's shorthands applied: `weigher = pack`
    packs by RAM (negative multiplier), `spread` (default) spreads; the
    API's heartbeat_timeout is the scheduler's unless it sets its own."""
    section = config.own(conf, 'scheduler')
    weigher = (section.pop('weigher', '') or 'spread').strip().lower()
    if weigher not in ('spread', 'pack'):
        raise config.ConfigError('[scheduler] weigher must be spread or '
                                 'pack, not %r' % weigher)
    if weigher == 'pack' and not section.get('ram_weight_multiplier'):
        section['ram_weight_multiplier'] = '-1.0'
    if not section.get('heartbeat_timeout') and api.get('heartbeat_timeout'):
        section['heartbeat_timeout'] = api['heartbeat_timeout']
    return section


def storage_url_maker(objstore_url):
    """caller -> the caller's objstore storage URL."""
    base = objstore_url.rstrip('/')

    def storage_url(caller):
        return '%s/v1/%s' % (base, caller.project)
    return storage_url


def account_url_maker(objstore_url):
    """account -> that account's objstore storage URL."""
    base = objstore_url.rstrip('/')

    def account_url(account):
        return '%s/v1/%s' % (base, urllib.parse.quote(account, safe=''))
    return account_url


def image_store_maker(storage_url, accounts=None, account_url=None):
    """caller -> an ImageStore acting with the caller's own token, so
    objstore itself decides what the caller may read and write.

    `accounts()` lists the accounts whose public images the caller also
    sees: those are read anonymously from `account_url(account)`, so the
    public container's ACL, not a token, is what lets them be read."""
    def image_stores(caller):
        session = SwiftSession.from_token(storage_url(caller), caller.token)
        others = []
        if accounts is not None:
            others = [ImageStore(SwiftSession.from_token(
                account_url(account), None))
                for account in accounts() if account != caller.project]
        return ImageStore(session, others=others)
    return image_stores


def build_app(conf, clock=None):
    """(app, builder, db) from a loaded compute.conf; ConfigError if bad."""
    api = config.section(conf, 'api')
    secret = config.secret(api)
    state_dir = config.path(api, 'state_dir', 'var/compute/api')
    os.makedirs(state_dir, exist_ok=True)
    proxy_conf = (api.get('proxy_conf') or '').strip()
    if not proxy_conf:
        raise config.ConfigError('[api] proxy_conf must name the objstore '
                                 'proxy config (its tempauth section)')
    try:
        authenticator = Authenticator.from_proxy_conf(proxy_conf)
        flavors = Flavors.from_config(config.own(conf, 'flavors'))
        options = scheduler_options(scheduler_section(conf, api))
    except (ObjstoreConfigError, ValueError) as exc:
        raise config.ConfigError(str(exc)) from None
    timeout = config.number(api, 'heartbeat_timeout',
                            options.heartbeat_timeout, minimum=1)
    db = ComputeDB(os.path.join(state_dir, 'compute.db'))
    builder = Builder(db, options, secret)
    objstore_url = api.get('objstore_url') or 'http://127.0.0.1:8080'
    storage_url = storage_url_maker(objstore_url)
    image_stores = image_store_maker(storage_url, authenticator.accounts,
                                     account_url_maker(objstore_url))
    extra = {'clock': clock} if clock else {}
    app = ComputeAPI(db, flavors, builder, authenticator,
                     image_stores, storage_url, secret,
                     heartbeat_timeout=timeout, **extra)
    return app, builder, db


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='compute-api', description='The compute REST API server.')
    parser.add_argument('--conf', required=True, help='compute.conf path')
    return parser.parse_args(argv)


def main(argv=None):
    """Run compute-api until SIGTERM/SIGINT; the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO,
                        format='%(asctime)s %(name)s %(levelname)s '
                               '%(message)s')
    try:
        conf = config.load(args.conf)
        app, builder, db = build_app(conf)
        api = config.section(conf, 'api')
        host = api.get('bind_ip') or '127.0.0.1'
        port = int(config.number(api, 'bind_port', DEFAULT_PORT, kind=int))
        server = wsgi_server.make_server(app, host, port)
    except (config.ConfigError, OSError) as exc:
        print('compute-api: %s' % exc, file=sys.stderr)
        return 2
    for uuid, what in builder.recover().items():
        LOG.info('recovery: %s: %s', uuid, what)
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    LOG.info('compute-api listening on %s:%d', host, server.server_port)
    while not stop.wait(1.0):
        pass
    LOG.info('compute-api stopping')
    server.shutdown()
    server.server_close()
    builder.close(wait=False)
    return 0


if __name__ == '__main__':
    sys.exit(main())
