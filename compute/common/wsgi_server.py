"""The compute processes' HTTP server: the standard library's, threaded.

The compute API and agents are control planes: a few requests a second,
many of which block for seconds in libvirt, qemu-img, SQLite or a
download from objstore. Real threads suit that better than objstore's
green server (a libvirt call would stall its hub), so this is wsgiref
on a ThreadingHTTPServer, quiet, with logging through `logging`.
"""
import logging
import socketserver
import threading
from wsgiref import simple_server

LOG = logging.getLogger(__name__)


class _Handler(simple_server.WSGIRequestHandler):
    """wsgiref's handler with its per-request stderr lines sent to logging
    (an access log), and no reverse DNS lookup of the client."""

    def address_string(self):
        return self.client_address[0]

    def log_message(self, fmt, *args):
        LOG.info('%s %s', self.address_string(), fmt % args)


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(app, host='127.0.0.1', port=0):
    """A bound, not yet serving server; ``.server_port`` is the port."""
    return simple_server.make_server(host, port, app, server_class=_Server,
                                     handler_class=_Handler)


def serve_in_thread(app, host='127.0.0.1', port=0):
    """Start serving in a daemon thread; return the server (call
    ``shutdown()`` then ``server_close()`` to stop it)."""
    server = make_server(app, host, port)
    # a short poll so shutdown() returns at once (tests stop many)
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={'poll_interval': 0.05},
                              name='http-%d' % server.server_port,
                              daemon=True)
    thread.start()
    return server
