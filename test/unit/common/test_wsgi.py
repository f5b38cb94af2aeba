"""What the server runner writes: access lines shaped like log lines."""
import io
import logging
import re

from objstore.common import wsgi

LINE = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\S+) (.*)\n')


def test_access_lines_look_like_the_logging_lines():
    stream = io.StringIO()
    wsgi.AccessLog('object-server', stream)('127.0.0.1 - - "GET /" 200')
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter(wsgi.LOG_FORMAT % 'object-server'))
    record = logging.LogRecord('x', logging.INFO, __file__, 1,
                               '127.0.0.1 - - "GET /" 200', None, None)
    handler.emit(record)
    ours = LINE.fullmatch(stream.getvalue())
    theirs = LINE.fullmatch(handler.stream.getvalue())
    assert ours and theirs
    assert ours.groups() == theirs.groups() == (
        'object-server', '127.0.0.1 - - "GET /" 200')


def test_one_line_per_call():
    stream = io.StringIO()
    log = wsgi.AccessLog('proxy-server', stream)
    for i in range(3):
        log('request %d' % i)
    lines = stream.getvalue().splitlines()
    assert [line.split(' ', 3)[3] for line in lines] == [
        'request 0', 'request 1', 'request 2']
