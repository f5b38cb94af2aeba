"""The thin HTTP layer of the compute CLI (requests).

Everything that can go wrong on the wire becomes a CLIError carrying one
line for the user: the API's own `{"error": {"message": ...}}` when it
sent one, otherwise the status, and for a connection failure the URL
that could not be reached, so the user knows which setting to fix.
"""
import hashlib
import json
import os
import stat

import requests

CHUNK = 64 * 1024
DEFAULT_TIMEOUT = 60.0
# An upload may stall after its last byte while the API stores segments
# and checks the checksum: a long read timeout, a short connect one.
UPLOAD_TIMEOUT = (10.0, 900.0)


class CLIError(Exception):
    """A failure to show as `compute: error: <message>`, exit status 1."""


def error_message(status, body, text=''):
    """The one line to show for an HTTP error answer.

    `body` is the decoded JSON (or None); `text` the raw body, used when
    the answer was not the API's JSON error shape (a proxy, a crash page).
    """
    err = body.get('error') if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get('message'):
        message = str(err['message'])
    elif isinstance(err, str) and err:
        message = err
    else:
        first = (text or '').strip().splitlines()
        message = first[0][:200] if first else 'no details given'
    return '%s (HTTP %d)' % (' '.join(message.splitlines()), status)


def _decode(resp):
    """The answer's JSON, or None when there is none (204, HTML...)."""
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _wire_error(exc, what, url):
    """A requests exception -> CLIError naming what we tried to reach."""
    if isinstance(exc, requests.Timeout):
        return CLIError('timed out talking to %s at %s' % (what, url))
    if isinstance(exc, requests.ConnectionError):
        return CLIError('cannot connect to %s at %s (is it running?)'
                        % (what, url))
    return CLIError('request to %s at %s failed: %s' % (what, url, exc))


def auth_v1(auth_url, user, key, timeout=DEFAULT_TIMEOUT):
    """Swift auth v1.0: (token, storage_url) for `user` with `key`."""
    try:
        resp = requests.get(auth_url, timeout=timeout,
                            headers={'X-Auth-User': user, 'X-Auth-Key': key})
    except requests.RequestException as exc:
        raise _wire_error(exc, 'the auth service', auth_url) from None
    if resp.status_code // 100 != 2:
        raise CLIError('authentication at %s failed: %s' % (
            auth_url, error_message(resp.status_code, _decode(resp),
                                    resp.text)))
    token = resp.headers.get('X-Auth-Token')
    storage_url = resp.headers.get('X-Storage-Url')
    if not token:
        raise CLIError('authentication at %s gave no X-Auth-Token'
                       % auth_url)
    return token, storage_url


class ComputeClient:
    """Requests to the compute API with the user's token."""

    def __init__(self, base_url, token, timeout=DEFAULT_TIMEOUT):
        self.base_url = base_url.rstrip('/')
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()

    def url(self, path):
        return self.base_url + path

    def request(self, method, path, json_body=None, ok=(200,), **kwargs):
        """Send one request; the decoded JSON answer (None if empty).

        Any status outside `ok` raises CLIError with the API's message.
        """
        return self.call(method, path, json_body=json_body, ok=ok,
                         **kwargs)[1]

    def call(self, method, path, json_body=None, params=None,
             data=None, headers=None, timeout=None, ok=(200,)):
        """Like request, but (status, answer): for callers to whom some
        error statuses are news rather than failures (404 once deleted)."""
        hdrs = {'X-Auth-Token': self.token, 'Accept': 'application/json'}
        hdrs.update(headers or {})
        if json_body is not None:
            data = json.dumps(json_body).encode('utf-8')
            hdrs['Content-Type'] = 'application/json'
        try:
            resp = self.session.request(
                method, self.url(path), params=params, data=data,
                headers=hdrs, timeout=timeout or self.timeout)
        except requests.RequestException as exc:
            raise _wire_error(exc, 'the compute API', self.base_url) \
                from None
        body = _decode(resp)
        if resp.status_code not in ok:
            raise CLIError(error_message(resp.status_code, body, resp.text))
        return resp.status_code, body


def file_md5(path, progress=None, chunk=CHUNK):
    """(md5 hex, size) of a file, read in chunks: memory stays flat for
    an image of any size. `progress.add(n)` is called per chunk."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, 'rb') as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            digest.update(block)
            size += len(block)
            if progress is not None:
                progress.add(len(block))
    return digest.hexdigest(), size


class CountingFile:
    """A file for requests to stream as a body of known length.

    `__len__` makes requests send Content-Length rather than chunked;
    each read reports its bytes to `progress`. Reading stops at `size`,
    the length checksummed, so a file that grew since is not sent past
    what the Content-Length and checksum promise.
    """

    def __init__(self, f, size, progress):
        self.f, self.size, self.progress = f, size, progress
        self.sent = 0

    def __len__(self):
        return self.size

    def read(self, n=-1):
        left = self.size - self.sent
        if n is None or n < 0 or n > left:
            n = left
        block = self.f.read(n) if n else b''
        self.sent += len(block)
        self.progress.add(len(block))
        return block


def regular_file_size(path):
    """The size of `path`; CLIError unless it is a readable regular file
    (an image is read twice, checksum then upload, so no pipes)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CLIError('cannot read %s: %s' % (path, exc.strerror)) from None
    if not stat.S_ISREG(st.st_mode):
        raise CLIError('%s is not a regular file (an image is read twice: '
                       'once for its checksum, once to upload it)' % path)
    return st.st_size
