"""The CLI's HTTP layer: error lines, auth and API failures on real
(closed) sockets, the md5 pass and the streamed upload body."""
import hashlib
import io
import os
import socket

import pytest

from compute.cli import client
from compute.cli.client import CLIError


def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Counter:
    def __init__(self):
        self.calls = []

    def add(self, n):
        self.calls.append(n)


def test_error_message_prefers_the_api_error_shape():
    body = {'error': {'code': 409, 'message': 'cannot stop a SHUTOFF server'}}
    assert client.error_message(409, body) == \
        'cannot stop a SHUTOFF server (HTTP 409)'


def test_error_message_takes_a_plain_error_string():
    assert client.error_message(401, {'error': 'bad signature'}) == \
        'bad signature (HTTP 401)'


def test_error_message_falls_back_to_the_first_line_of_the_body():
    assert client.error_message(502, None, '<h1>Bad Gateway</h1>\nmore') == \
        '<h1>Bad Gateway</h1> (HTTP 502)'
    assert client.error_message(500, None, '') == \
        'no details given (HTTP 500)'
    assert client.error_message(400, {'other': 1}, '') == \
        'no details given (HTTP 400)'


def test_error_message_keeps_to_one_line():
    body = {'error': {'message': 'first\nsecond'}}
    assert '\n' not in client.error_message(400, body)


def test_connection_refused_names_the_compute_url():
    url = 'http://127.0.0.1:%d' % closed_port()
    api = client.ComputeClient(url, 'token', timeout=5)
    with pytest.raises(CLIError) as info:
        api.request('GET', '/v2.1/servers')
    assert str(info.value) == \
        'cannot connect to the compute API at %s (is it running?)' % url


def test_auth_connection_refused_names_the_auth_url():
    url = 'http://127.0.0.1:%d/auth/v1.0' % closed_port()
    with pytest.raises(CLIError) as info:
        client.auth_v1(url, 'test:tester', 'testing', timeout=5)
    assert url in str(info.value)
    assert 'auth service' in str(info.value)


def test_file_md5_streams_in_chunks_and_reports_progress(tmp_path):
    data = os.urandom(10 * 1000 + 7)
    path = tmp_path / 'img'
    path.write_bytes(data)
    counter = Counter()
    digest, size = client.file_md5(str(path), counter, chunk=1000)
    assert digest == hashlib.md5(data).hexdigest()
    assert size == len(data)
    assert counter.calls == [1000] * 10 + [7]


def test_file_md5_of_an_empty_file(tmp_path):
    path = tmp_path / 'empty'
    path.write_bytes(b'')
    assert client.file_md5(str(path)) == (hashlib.md5(b'').hexdigest(), 0)


def test_counting_file_has_a_length_and_stops_at_it():
    counter = Counter()
    body = client.CountingFile(io.BytesIO(b'0123456789 grown later'), 10,
                               counter)
    assert len(body) == 10
    assert body.read(4) == b'0123'
    assert body.read(100) == b'456789'
    assert body.read(100) == b''
    assert counter.calls == [4, 6, 0]
    assert body.sent == 10


def test_counting_file_read_all():
    body = client.CountingFile(io.BytesIO(b'abcdef'), 6, Counter())
    assert body.read() == b'abcdef'


def test_regular_file_size(tmp_path):
    path = tmp_path / 'img'
    path.write_bytes(b'x' * 123)
    assert client.regular_file_size(str(path)) == 123
    with pytest.raises(CLIError, match='not a regular file'):
        client.regular_file_size(str(tmp_path))
    with pytest.raises(CLIError, match='cannot read .*missing: No such'):
        client.regular_file_size(str(tmp_path / 'missing'))
