"""Signed requests between the compute API and its agents.

The same HMAC scheme as objstore's internal requests
(objstore.common.signing: method, path, query, signing time and key
headers under the shared secret, refused when stale) plus one more
header binding the body: an agent request's body says which image to
boot with whose token, so it must not be changeable in flight either.
"""
import hashlib
import hmac
import json

import requests

from objstore.common import signing

BODY_SIGNATURE_HEADER = 'X-Compute-Body-Signature'
_BODY_ENVIRON_KEY = 'HTTP_X_COMPUTE_BODY_SIGNATURE'
DEFAULT_TIMEOUT = 60.0


def _body_signature(secret, signature, body):
    key = secret.encode('utf-8') if isinstance(secret, str) else secret
    message = signature.encode('ascii') + hashlib.sha256(body).digest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_headers(secret, method, path, body=b'', headers=None, query=''):
    """``headers`` plus the signature headers for this request."""
    signed = signing.sign(secret, method, path, dict(headers or {}), query)
    signed[BODY_SIGNATURE_HEADER] = _body_signature(
        secret, signed[signing.SIGNATURE_HEADER], body)
    return signed


def verify_request(secret, environ, body=b''):
    """None when the request and its body are signed and fresh, else why."""
    reason = signing.verify_environ(secret, environ)
    if reason:
        return reason
    given = environ.get(_BODY_ENVIRON_KEY, '')
    signature = environ.get('HTTP_' + signing.SIGNATURE_HEADER.upper()
                            .replace('-', '_'), '')
    if not hmac.compare_digest(_body_signature(secret, signature, body),
                               given):
        return 'bad body signature'
    return None


class SignedClientError(Exception):
    """The peer could not be reached or answered something that is not
    JSON; the message says which, for an instance's fault."""


class SignedClient:
    """A keep-alive client that signs every request with ``secret``."""

    def __init__(self, base_url, secret, timeout=DEFAULT_TIMEOUT):
        self.base_url = base_url.rstrip('/')
        self.secret = secret
        self.timeout = timeout
        self.http = requests.Session()

    def request(self, method, path, json_body=None, timeout=None,
                query=''):
        """(status, decoded JSON or None) of a signed request."""
        body = b'' if json_body is None else json.dumps(
            json_body, separators=(',', ':')).encode('utf-8')
        headers = {'Content-Length': str(len(body))}
        if body:
            headers['Content-Type'] = 'application/json'
        headers = sign_headers(self.secret, method, path, body, headers,
                               query)
        url = self.base_url + path + ('?' + query if query else '')
        try:
            resp = self.http.request(method, url, data=body, headers=headers,
                                     timeout=timeout or self.timeout)
        except requests.RequestException as exc:
            raise SignedClientError('cannot reach %s: %s'
                                    % (self.base_url, exc))
        if not resp.content:
            return resp.status_code, None
        try:
            return resp.status_code, resp.json()
        except ValueError:
            raise SignedClientError('%s answered %d with a body that is '
                                    'not JSON' % (url, resp.status_code))

    def close(self):
        self.http.close()
