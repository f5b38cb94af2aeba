"""healthcheck: ``GET /healthcheck`` answers 200 "OK", no auth needed.

Load balancers poll it. An operator takes a proxy out of rotation without
stopping it by creating the file named by ``disable_path``: the answer
becomes 503 "DISABLED BY FILE" while requests in flight and other paths
carry on. Put it first in the pipeline so no auth is asked for.

    [filter:healthcheck]
    use = objstore.middleware.healthcheck
    # disable_path = /etc/objstore/proxy.disabled
"""
import os

from objstore.common import info
from objstore.common.http import Response, error_response

PATH = '/healthcheck'


class HealthCheck:
    def __init__(self, app, disable_path=''):
        self.app = app
        self.disable_path = disable_path

    def answer(self, method):
        if method not in ('GET', 'HEAD'):
            return error_response(405, 'healthcheck takes GET or HEAD',
                                  {'Allow': 'GET, HEAD'})
        if self.disable_path and os.path.exists(self.disable_path):
            status, body = 503, b'DISABLED BY FILE'
        else:
            status, body = 200, b'OK'
        return Response(status=status, body=body, content_type='text/plain',
                        charset='utf-8')

    def __call__(self, environ, start_response):
        if environ.get('PATH_INFO') != PATH:
            return self.app(environ, start_response)
        resp = self.answer(environ.get('REQUEST_METHOD', 'GET'))
        return resp(environ, start_response)


def filter_factory(global_conf, local_conf):
    disable_path = local_conf.get('disable_path', '').strip()
    info.register('healthcheck')

    def wrap(app):
        return HealthCheck(app, disable_path)
    return wrap
