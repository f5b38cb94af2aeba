"""Running a WSGI app as a server: one listening socket, pre-forked workers.

The parent binds the socket, forks ``workers`` children that all accept on
it (the kernel spreads connections), restarts a child that dies, and on
SIGTERM/SIGINT asks every child to stop: a child closes its listening
socket, finishes the requests in flight and exits. ``workers = 0`` serves
in the parent itself (handy for debugging).
"""
import logging
import os
import signal
import sys
import time

from objstore.common import concurrency, header_parser, http_server
from objstore.common.config import ConfigError, config_true, read_conf

log = logging.getLogger('objstore.wsgi')
STOP_GRACE = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# every line a server writes: when, which server, what
LOG_FORMAT = '%%(asctime)s %s %%(message)s'


def load_app_conf(path, section):
    """The app's settings: [DEFAULT] merged under [<section>]."""
    conf = read_conf(path)
    if section not in conf:
        raise ConfigError('%s: no [%s] section' % (path, section))
    return dict(conf[section], __file__=path)


def int_conf(conf, key, default):
    try:
        return int(conf.get(key, default))
    except (TypeError, ValueError):
        raise ConfigError('%s must be an integer, got %r' % (key, conf[key]))


def _serve(sock, app, log_name):
    """Serve until SIGTERM/SIGINT; then finish in-flight requests.

    The accept loop runs in its own green thread. A stop signal writes a
    byte to a pipe the hub watches (a handler alone would not wake the hub
    out of its poll); a green thread reading that pipe throws SystemExit
    into the accept loop, which makes http_server stop accepting, close
    idle connections and wait for the requests still running.
    """
    server = concurrency.spawn(http_server.serve, sock, app,
                               logger=logging.getLogger(log_name),
                               access_log=AccessLog(log_name),
                               socket_timeout=60, max_clients=1024)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)

    def on_signal(signum, frame):
        try:
            concurrency.write_from_signal_handler(wake_w, b'x')
        except OSError:
            pass  # pipe full: a stop is already on its way

    def stopper():
        concurrency.wait_readable(wake_r)
        concurrency.kill(server, SystemExit)

    concurrency.spawn(stopper)
    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    # a server comes here with the stop signals blocked (see run_server
    # and _supervise): one sent before now has waited for this handler
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        server.wait()
    except SystemExit:
        pass
    finally:
        os.close(wake_r)
        os.close(wake_w)


class AccessLog:
    """One line per request on stderr, formatted like the process's
    logging lines (``LOG_FORMAT``) but written directly: a LogRecord and
    a Formatter per request were 5-8% of a busy server's CPU."""

    def __init__(self, section, stream=None):
        self.section = section
        self.stream = stream if stream is not None else sys.stderr
        self._second = None
        self._stamp = ''

    def __call__(self, message):
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime('%Y-%m-%d %H:%M:%S',
                                        time.localtime(second))
        self.stream.write('%s,%03d %s %s\n' % (
            self._stamp, (now - second) * 1000, self.section, message))
        self.stream.flush()


def run_server(conf_path, section, app_factory, default_port,
               sched_batch=False):
    """Console-script entry: load config, bind, fork workers, serve.

    ``sched_batch`` is the default of the ``sched_batch`` setting: run
    the server's processes under SCHED_BATCH (see
    concurrency.batch_scheduling)."""
    concurrency.patch_all()
    header_parser.install(concurrency.green_http_client())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=LOG_FORMAT % section)
    try:
        conf = load_app_conf(conf_path, section)
        ip = conf.get('bind_ip', '127.0.0.1')
        port = int_conf(conf, 'bind_port', default_port)
        workers = int_conf(conf, 'workers', 1)
        batch = config_true(conf.get('sched_batch',
                                     'true' if sched_batch else 'false'))
        app = app_factory(conf)
    except ConfigError as e:
        sys.stderr.write('%s: %s\n' % (section, e))
        return 2
    # From the moment the port answers, a stop must end in a clean exit:
    # the stop signals wait, blocked, for the handlers put in below.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        sock = concurrency.listen((ip, port), backlog=1024)
    except OSError as e:
        sys.stderr.write('%s: cannot listen on %s:%d: %s\n'
                         % (section, ip, port, e.strerror))
        return 2
    if batch:
        concurrency.batch_scheduling()
    log.info('%s listening on %s:%d with %d workers', section, ip,
             sock.getsockname()[1], workers)
    if workers <= 0:
        _serve(sock, app, section)
        return 0
    return _supervise(sock, app, section, workers)


def server_main(section, app_factory, default_port, sched_batch=False):
    """The console-script ``main(argv=None)`` of a server: one CONF arg."""
    def main(argv=None):
        argv = sys.argv[1:] if argv is None else argv
        if len(argv) != 1 or argv[0] in ('-h', '--help'):
            sys.stderr.write('usage: objstore-%s CONF\n' % section)
            return 2
        return run_server(argv[0], section, app_factory, default_port,
                          sched_batch)
    main.__doc__ = 'Run the %s from the config file named.' % section
    return main


def _supervise(sock, app, section, workers):
    children = set()
    stopping = []

    def fork():
        # The stop signals are blocked across the fork. In the child they
        # stay blocked until _serve has put in its own handler: one that
        # came earlier would run the parent's handler there, and the
        # worker would serve on until the parent's grace ran out and it
        # was killed. In the parent they stay blocked until the child is
        # in `children`, so that a stop meanwhile is passed on to it too;
        # and a stop that came before is seen here: no worker after it.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            if stopping:
                return
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                code = 0
                try:
                    _serve(sock, app, section)
                except BaseException:
                    logging.getLogger(section).exception('worker failed')
                    code = 1
                finally:
                    os._exit(code)
            children.add(pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def stop(signum, frame):
        stopping.append(signum)
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    for _ in range(workers):
        fork()
    deadline = None
    while children:
        if stopping and deadline is None:
            deadline = time.monotonic() + STOP_GRACE
        try:
            pid, _ = concurrency.wait_child(
                -1, os.WNOHANG if stopping else 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == 0:
            if time.monotonic() > deadline:
                for child in children:
                    os.kill(child, signal.SIGKILL)
            time.sleep(0.05)
            continue
        children.discard(pid)
        if not stopping:
            log.warning('%s worker %d died; starting another', section, pid)
            time.sleep(0.1)
            fork()
    sock.close()
    return 0
