#!/usr/bin/env python3
"""What the slo, dlo and symlink filters cost on requests not about them.

    .venv/bin/python test/bench/pipeline_overhead.py [--calls 20000]
        [--json out.json]

They sit on every request of the proxy, so a plain object GET or PUT
must pay almost nothing for them. Each filter (and the three stacked in
the proxy's order, slo dlo symlink) is called in-process over a trivial
WSGI app that answers at once (a 200 with a plain object's headers and a
small body, a 201 for a PUT, a JSON listing for a container GET), and
the time per call is compared with calling the app alone. The app and
the WSGI driver are the same in every row, so "overhead" is what the
filter adds: no sockets, no proxy, nothing else.

Rows: ns per call for GET/HEAD/PUT/DELETE of an object, a container GET
(text and JSON listings), and the filter's overhead over the bare app
(best of 5 runs of ``--calls`` calls each).
"""
import argparse
import io
import json
import sys
import time

sys.path.insert(0, __file__.rsplit('/test/', 1)[0])

from objstore.common import info  # noqa: E402
from objstore.middleware import dlo, slo, symlink  # noqa: E402

OBJECT_HEADERS = [
    ('Content-Type', 'application/octet-stream'), ('Content-Length', '5'),
    ('Etag', '5d41402abc4b2a76b9719d911017c592'),
    ('Last-Modified', 'Sun, 22 Nov 2026 07:00:00 GMT'),
    ('X-Timestamp', '1795330800.00000'), ('Accept-Ranges', 'bytes'),
    ('X-Object-Meta-Color', 'blue'), ('X-Trans-Id', 'tx0123456789abcdef'),
    ('X-Openstack-Request-Id', 'tx0123456789abcdef'),
    ('Date', 'Sun, 22 Nov 2026 07:00:00 GMT')]
LISTING = json.dumps([{'name': 'o%d' % i, 'hash': 'h', 'bytes': 5,
                       'content_type': 'text/plain',
                       'last_modified': '2026-11-22T07:00:00.000000'}
                      for i in range(20)]).encode()


def trivial_app(environ, start_response):
    """Answers at once, as a storage node would for a plain object."""
    method = environ['REQUEST_METHOD']
    parts = environ['PATH_INFO'].split('/', 4)
    if len(parts) == 4:
        if 'format=json' in environ.get('QUERY_STRING', ''):
            start_response('200 OK', [
                ('Content-Type', 'application/json; charset=utf-8'),
                ('Content-Length', str(len(LISTING)))])
            return [LISTING]
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', '3')])
        return [b'o0\n']
    if method == 'PUT':
        start_response('201 Created', [('Content-Length', '0'),
                                       ('Etag', 'e')])
        return [b'']
    if method == 'DELETE':
        start_response('204 No Content', [])
        return [b'']
    start_response('200 OK', OBJECT_HEADERS)
    return [b''] if method == 'HEAD' else [b'hello']


def _start_response(status, headers, exc_info=None):
    return None


REQUESTS = {
    'GET object': ('GET', '/v1/AUTH_t/c/o', ''),
    'HEAD object': ('HEAD', '/v1/AUTH_t/c/o', ''),
    'PUT object': ('PUT', '/v1/AUTH_t/c/o', ''),
    'DELETE object': ('DELETE', '/v1/AUTH_t/c/o', ''),
    'GET container': ('GET', '/v1/AUTH_t/c', ''),
    'GET container json': ('GET', '/v1/AUTH_t/c', 'format=json'),
}


def environ_for(method, path, query):
    return {'REQUEST_METHOD': method, 'PATH_INFO': path,
            'RAW_PATH_INFO': path, 'QUERY_STRING': query,
            'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '8080',
            'SERVER_PROTOCOL': 'HTTP/1.1', 'wsgi.url_scheme': 'http',
            'wsgi.input': io.BytesIO(b''), 'CONTENT_LENGTH': '0',
            'CONTENT_TYPE': 'text/plain', 'HTTP_HOST': '127.0.0.1:8080',
            'HTTP_X_AUTH_TOKEN': 'AUTH_tk0123', 'REMOTE_USER': 'test:tester',
            'objstore.sysmeta_trusted': True}


def ns_per_call(app, method, path, query, calls):
    """Best of 5 runs: ns per request, body consumed and closed."""
    template = environ_for(method, path, query)
    best = None
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(calls):
            env = dict(template)
            body = app(env, _start_response)
            for _chunk in body:
                pass
            close = getattr(body, 'close', None)
            if close is not None:
                close()
        took = (time.perf_counter_ns() - start) / calls
        best = took if best is None else min(best, took)
    return best


def filters():
    made_slo = slo.filter_factory({}, {})
    made_dlo = dlo.filter_factory({}, {})
    made_symlink = symlink.filter_factory({}, {})
    return {
        'none': trivial_app,
        'slo': made_slo(trivial_app),
        'dlo': made_dlo(trivial_app),
        'symlink': made_symlink(trivial_app),
        'slo+dlo+symlink': made_slo(made_dlo(made_symlink(trivial_app))),
    }


def run(calls):
    apps = filters()
    out = {}
    for label, (method, path, query) in REQUESTS.items():
        row = {name: ns_per_call(app, method, path, query, calls)
               for name, app in apps.items()}
        out[label] = row
    for name in ('slo', 'dlo', 'symlink'):
        info.unregister(name)
    return out


def report(results):
    names = list(next(iter(results.values())))
    print('ns per call (best of 5); overhead = filter - bare app')
    print('%-20s' % 'request' + ''.join('%18s' % n for n in names))
    for label, row in results.items():
        base = row['none']
        cells = ['%18.0f' % base] + ['%10.0f (+%5.0f)' % (row[n],
                                                         row[n] - base)
                                     for n in names[1:]]
        print('%-20s' % label + ''.join(cells))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--calls', type=int, default=20000)
    parser.add_argument('--json', help='also write the numbers here')
    args = parser.parse_args(argv)
    results = run(args.calls)
    report(results)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
