"""SwiftSession without a token: anonymous requests, as public images
of other accounts are read (a real HTTP server on 127.0.0.1)."""
import http.server
import threading

import pytest

from compute.image.swift import SwiftError, SwiftSession


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers HEAD with 200 under /v1/AUTH_test/pub/, else 401, and
    records every request's method, path and X-Auth-Token."""

    seen = []

    def do_HEAD(self):
        self.seen.append((self.command, self.path,
                          self.headers.get('X-Auth-Token')))
        ok = self.path.startswith('/v1/AUTH_test/pub/')
        self.send_response(200 if ok else 401)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.seen = []
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Recorder)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d' % srv.server_port
    srv.shutdown()
    srv.server_close()


def test_anonymous_session_sends_no_token_and_does_not_retry(server):
    session = SwiftSession.from_token(server + '/v1/AUTH_test', None)
    try:
        assert session.anonymous
        assert session.account == 'AUTH_test'
        session.head_object('pub', 'x')
        with pytest.raises(SwiftError) as info:
            session.head_object('priv', 'x')
        assert info.value.status == 401
    finally:
        session.close()
    assert Recorder.seen == [('HEAD', '/v1/AUTH_test/pub/x', None),
                             ('HEAD', '/v1/AUTH_test/priv/x', None)]


def test_token_session_still_sends_its_token(server):
    session = SwiftSession.from_token(server + '/v1/AUTH_test', 'tk1')
    try:
        assert not session.anonymous
        session.head_object('pub', 'x')
    finally:
        session.close()
    assert Recorder.seen == [('HEAD', '/v1/AUTH_test/pub/x', 'tk1')]
