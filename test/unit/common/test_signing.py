"""Backend request signatures: what they cover and what they refuse."""
import urllib.parse

import pytest

from objstore.common import signing

SECRET = b'cluster-secret'
NOW = 1_800_000_000.0


def signed(**kw):
    args = dict(method='PUT', path='/sda/3/AUTH_a/c/o%20x',
                headers={'X-Timestamp': '1700000000.00000',
                         'Content-Length': '5', 'X-Object-Meta-A': 'b'},
                query='', now=NOW)
    args.update(kw)
    return args, signing.sign(SECRET, args['method'], args['path'],
                              args['headers'], query=args['query'],
                              now=args['now'])


def test_good_signature_verifies():
    args, headers = signed()
    assert signing.verify(SECRET, 'PUT', args['path'], headers,
                          now=NOW + 5) is None


@pytest.mark.parametrize('change', [
    {'method': 'DELETE'}, {'path': '/sda/3/AUTH_a/c/other'},
    {'query': 'multipart-manifest=get'},
    {'header': ('X-Timestamp', '1700000001.00000')},
    {'header': ('Content-Length', '6')},
    {'header': ('X-Container-Host', '10.0.0.9:6201')},
])
def test_tampering_breaks_the_signature(change):
    args, headers = signed()
    method, path, query = args['method'], args['path'], args['query']
    if 'method' in change:
        method = change['method']
    if 'path' in change:
        path = change['path']
    if 'query' in change:
        query = change['query']
    if 'header' in change:
        headers = dict(headers)
        headers[change['header'][0]] = change['header'][1]
    assert signing.verify(SECRET, method, path, headers, query=query,
                          now=NOW) == 'bad signature'


def test_user_metadata_is_not_part_of_the_signature():
    # a proxy may add/strip user metadata as it passes: not a steering
    # header, so it does not invalidate the request
    args, headers = signed()
    headers = dict(headers, **{'X-Object-Meta-A': 'changed'})
    assert signing.verify(SECRET, 'PUT', args['path'], headers,
                          now=NOW) is None


def test_wrong_secret_stale_and_unsigned():
    args, headers = signed()
    assert signing.verify(b'other', 'PUT', args['path'], headers,
                          now=NOW) == 'bad signature'
    assert signing.verify(SECRET, 'PUT', args['path'], headers,
                          now=NOW + 61) == 'stale signature'
    assert signing.verify(SECRET, 'PUT', args['path'], headers,
                          now=NOW - 61) == 'stale signature'
    assert signing.verify(SECRET, 'PUT', args['path'],
                          args['headers']) == 'request is not signed'
    bad_time = dict(headers, **{signing.SIGN_TIME_HEADER: 'soon'})
    assert signing.verify(SECRET, 'PUT', args['path'],
                          bad_time) == 'bad signing time'


def test_header_names_are_case_insensitive():
    args, headers = signed()
    lowered = {k.lower(): v for k, v in headers.items()}
    assert signing.verify(SECRET, 'PUT', args['path'], lowered,
                          now=NOW) is None


def test_signing_needs_a_secret():
    with pytest.raises(ValueError):
        signing.sign(b'', 'GET', '/', {})


def as_environ(method, path, headers, query='', raw=True):
    """The environ a WSGI server builds for these request headers."""
    env = {'REQUEST_METHOD': method, 'QUERY_STRING': query,
           'PATH_INFO': urllib.parse.unquote(path, encoding='latin-1')}
    if raw:
        env['RAW_PATH_INFO'] = path
    for name, value in headers.items():
        key = name.upper().replace('-', '_')
        env[key if key in ('CONTENT_LENGTH', 'CONTENT_TYPE')
            else 'HTTP_' + key] = value
    return env


@pytest.mark.parametrize('raw', [True, False])
def test_environ_verification_agrees_with_header_verification(raw):
    """verify_environ reads the environ directly; it must accept and
    refuse exactly what verify() does with the same request."""
    signed_headers = dict.fromkeys(signing.SIGNED_HEADERS, 'v')
    args, headers = signed(headers=dict(signed_headers, **{
        'X-Timestamp': '1700000000.00000', 'Content-Length': '5'}))
    env = as_environ('PUT', args['path'], headers, raw=raw)
    assert signing.verify_environ(SECRET, env, now=NOW) is None
    for name in signing.SIGNED_HEADERS:
        key = 'CONTENT_LENGTH' if name == 'content-length' \
            else 'HTTP_' + name.upper().replace('-', '_')
        tampered = dict(env, **{key: env[key] + '1'})
        assert signing.verify_environ(SECRET, tampered, now=NOW) == \
            'bad signature', name
        missing = {k: v for k, v in env.items() if k != key}
        assert signing.verify_environ(SECRET, missing, now=NOW) == \
            'bad signature', name
    unsigned = {k: v for k, v in env.items()
                if k != 'HTTP_X_BACKEND_SIGNATURE'}
    assert signing.verify_environ(SECRET, unsigned, now=NOW) == \
        'request is not signed'


def test_an_empty_content_length_counts_as_none():
    args, headers = signed(headers={'X-Timestamp': '1700000000.00000'})
    env = as_environ('PUT', args['path'], headers)
    env['CONTENT_LENGTH'] = ''
    assert signing.verify_environ(SECRET, env, now=NOW) is None
