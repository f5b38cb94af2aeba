"""The pre-fork server bootstrap and the backend client, as real processes.

A tiny WSGI app (written to a temp module) runs under
objstore.common.wsgi.run_server with two workers.
"""
import http.client
import os
import signal
import threading
import time

import pytest

from objstore.common import backend, signing

APP = '''
import os, sys
from objstore.common import concurrency, signing, wsgi
from objstore.common.config import backend_secret

def app_factory(conf):
    delay = float(conf.get('delay', '0'))
    pause = float(conf.get('fork_pause', '0'))
    if pause:
        # a worker that is slow to get going after its fork (a loaded
        # machine): it sleeps before the server's own code runs in it
        import time
        os.register_at_fork(after_in_child=lambda: time.sleep(pause))
    secret = backend_secret()
    def app(environ, start_response):
        if environ['PATH_INFO'] == '/slow':
            concurrency.sleep(delay)
        headers = {k[5:].replace('_', '-').title(): v
                   for k, v in environ.items() if k.startswith('HTTP_')}
        if 'CONTENT_LENGTH' in environ:
            headers['Content-Length'] = environ['CONTENT_LENGTH']
        wire = environ.get('RAW_PATH_INFO', environ['PATH_INFO'])
        why = signing.verify(secret, environ['REQUEST_METHOD'], wire,
                             headers, environ.get('QUERY_STRING', ''))
        body = ('%d %s' % (os.getpid(), why or 'signed')).encode()
        start_response('200 OK', [('Content-Length', str(len(body)))])
        return [body]
    return app

if __name__ == '__main__':
    sys.exit(wsgi.run_server(sys.argv[1], 'test-app', app_factory, 0))
'''


@pytest.fixture
def app_server(tmp_path, monkeypatch, start_server):
    (tmp_path / 'tinyapp.py').write_text(APP)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
        [str(tmp_path)] + [p for p in [os.environ.get('PYTHONPATH')] if p]))

    def start(**settings):
        return start_server('tinyapp', 'test-app', **settings)
    return start


def get(port, path, timeout=10):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request('GET', path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def children(pid):
    with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
        return {int(p) for p in f.read().split()}


def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_workers_are_forked_and_restarted(app_server):
    server = app_server(workers=2)
    assert wait_until(lambda: len(children(server.proc.pid)) == 2)
    first = children(server.proc.pid)
    status, body = get(server.port, '/')
    assert status == 200 and int(body.split()[0]) in first
    victim = sorted(first)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(children(server.proc.pid) - {victim}) == 2)
    assert get(server.port, '/')[0] == 200


WAIT4 = 61  # x86_64 syscall number, as /proc/<pid>/syscall names it


def current_syscall(pid):
    with open('/proc/%d/syscall' % pid) as f:
        return f.read().split()[0]


@pytest.mark.skipif(os.uname().machine != 'x86_64' or os.geteuid() != 0,
                    reason='reads /proc/<pid>/syscall (root, x86_64)')
def test_idle_supervisor_sleeps_in_the_kernel(app_server):
    """The supervisor blocks in wait4 rather than polling: eventlet's
    waitpid woke it every 10 ms, 13 ms of CPU a second per server."""
    server = app_server(workers=1)
    assert wait_until(lambda: len(children(server.proc.pid)) == 1)
    assert wait_until(
        lambda: current_syscall(server.proc.pid) == str(WAIT4))
    # and it still notices a worker dying and replaces it
    victim, = children(server.proc.pid)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: children(server.proc.pid) - {victim})
    assert get(server.port, '/')[0] == 200


@pytest.mark.parametrize('setting, policy', [
    ('true', os.SCHED_BATCH), ('false', os.SCHED_OTHER)])
def test_sched_batch_setting(app_server, setting, policy):
    """sched_batch = true runs the supervisor, its workers and their
    threads under SCHED_BATCH (storage servers default to it)."""
    server = app_server(workers=1, sched_batch=setting)
    assert wait_until(lambda: len(children(server.proc.pid)) == 1)
    worker, = children(server.proc.pid)
    assert get(server.port, '/')[0] == 200
    for pid in (server.proc.pid, worker):
        for tid in os.listdir('/proc/%d/task' % pid):
            assert os.sched_getscheduler(int(tid)) == policy


def test_sigterm_lets_requests_in_flight_finish(app_server):
    server = app_server(workers=1, delay=1.5)
    result = {}

    def slow():
        result['answer'] = get(server.port, '/slow')
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)  # the request is in the worker, sleeping
    os.kill(server.proc.pid, signal.SIGTERM)
    t.join(10)
    assert result['answer'][0] == 200
    assert server.proc.wait(10) == 0
    # and nothing listens any more
    with pytest.raises(OSError):
        get(server.port, '/', timeout=2)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_a_stop_before_the_workers_are_ready_still_stops_them(app_server,
                                                               signum):
    """Sent to the whole group (as `kill -- -PGID`, a terminal's Ctrl-C
    or a service manager do) while the workers are still starting, a
    stop used to run the supervisor's handler in them, inherited over the
    fork, and was lost there: they served on until the grace ran out and
    the supervisor killed them, 30 s later."""
    server = app_server(workers=2, fork_pause=1.0)
    assert wait_until(lambda: len(children(server.proc.pid)) == 2)
    started = time.monotonic()
    os.killpg(server.proc.pid, signum)
    assert server.proc.wait(15) == 0
    assert time.monotonic() - started < 10
    with pytest.raises(OSError):
        get(server.port, '/', timeout=2)


def test_single_process_mode_stops_on_sigterm(app_server):
    server = app_server(workers=0)
    assert children(server.proc.pid) == set()
    assert get(server.port, '/')[0] == 200
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(10) == 0


def test_backend_requests_are_signed_end_to_end(app_server, cluster_conf):
    server = app_server(workers=0)
    status, headers, body = backend.request(
        cluster_conf['secret'], '127.0.0.1', server.port, 'PUT',
        '/sda/1/AUTH_a/c/caf\u00e9 o', headers={'X-Timestamp': '1.00000'},
        body=b'data', query='x=1')
    assert status == 200 and body.endswith(b'signed'), body
    # a wrong secret is caught by the receiving side
    status, _, body = backend.request(
        b'wrong', '127.0.0.1', server.port, 'GET', '/sda/1/a')
    assert body.endswith(b'bad signature')


def test_backend_error_when_nothing_listens(cluster_conf):
    import socket
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    with pytest.raises(backend.BackendError):
        backend.request(cluster_conf['secret'], '127.0.0.1', port, 'GET',
                        '/sda/1/a', timeout=2)


def test_bad_config_exits_with_a_clear_line(tmp_path, cluster_conf):
    import subprocess
    import sys
    conf = tmp_path / 'bad.conf'
    conf.write_text('[other]\nx = 1\n')
    proc = subprocess.run(
        [sys.executable, '-c', 'import sys; from objstore.common import wsgi;'
         'sys.exit(wsgi.run_server(sys.argv[1], "test-app", None, 0))',
         str(conf)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith('no [test-app] section')
    assert signing.SIGNATURE_HEADER  # the module under test is importable
