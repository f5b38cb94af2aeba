"""tempurl_rules: signatures, expiry, prefixes, address ranges, scopes."""
import base64
import hashlib
import hmac

import pytest

from objstore.cli.client import tempurl as client_tempurl
from objstore.middleware import tempurl_rules as rules

PATH = '/v1/AUTH_test/c/dir/obj'
NOW = 1700000000


def query(sig, expires, prefix=None, ip_range=None, filename=None,
          inline=False):
    return rules.TempURLQuery(sig, str(expires), prefix, ip_range, filename,
                              inline)


def hexsig(key, method, expires, path, digest='sha256', ip_range=None):
    return rules.sign(key, method, expires, path, digest, ip_range).hex()


def check(q, method='GET', path=PATH, keys=(('k', 'account'),),
          client_ip='127.0.0.1', **kw):
    return rules.validate(q, method, path, list(keys), NOW, client_ip, **kw)


# -- parsing ------------------------------------------------------------

def test_parse_query_needs_sig_or_expires():
    assert rules.parse_query('') is None
    assert rules.parse_query('multipart-manifest=get') is None
    q = rules.parse_query('temp_url_sig=ab&temp_url_expires=5&inline'
                          '&filename=a%20b.txt&temp_url_prefix=')
    assert q == rules.TempURLQuery('ab', '5', '', None, 'a b.txt', True)
    assert rules.parse_query('temp_url_expires=5').sig is None


def test_parse_expires_unix_and_iso8601():
    assert rules.parse_expires('1700000000') == 1700000000
    assert rules.parse_expires('2023-11-14T22:13:20Z') == 1700000000
    for bad in ('', None, '-5', '1.5', 'tomorrow', '2023-11-14 22:13:20',
                '2023-11-14T22:13:20+01:00', '\u0661\u0662'):
        with pytest.raises(rules.Invalid):
            rules.parse_expires(bad)


def test_parse_signature_hex_lengths_name_the_digest():
    for digest, size in (('sha1', 20), ('sha256', 32), ('sha512', 64)):
        raw = bytes(range(size))
        assert rules.parse_signature(raw.hex()) == (digest, raw)
    for bad in ('', 'abc', 'zz' * 32, 'a' * 63):
        with pytest.raises(rules.Invalid):
            rules.parse_signature(bad)


def test_parse_signature_prefixed_base64():
    raw = hashlib.sha512(b'x').digest()
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip('=')
    assert rules.parse_signature('sha512:' + urlsafe) == ('sha512', raw)
    standard = base64.b64encode(raw).decode()
    assert rules.parse_signature('sha512:' + standard) == ('sha512', raw)
    # a '+' sent unescaped arrives as a space
    assert rules.parse_signature(
        'sha512:' + standard.replace('+', ' ')) == ('sha512', raw)
    raw256 = hashlib.sha256(b'x').digest()
    assert rules.parse_signature('sha256:' + base64.urlsafe_b64encode(
        raw256).decode()) == ('sha256', raw256)
    for bad in ('md5:' + urlsafe, 'sha512:' + urlsafe[:-4], 'sha512:!!'):
        with pytest.raises(rules.Invalid):
            rules.parse_signature(bad)


# -- signatures -----------------------------------------------------------

def test_client_tools_signature_validates():
    """What `objstore tempurl` makes, the middleware accepts."""
    exp = NOW + 60
    for digest in ('sha256', 'sha512'):
        sig = client_tempurl.signature('k', 'GET', exp, PATH, digest)
        grant = check(query(sig, exp))
        assert grant == rules.Grant('account', 'AUTH_test', 'c')


def test_sha1_only_when_allowed():
    exp = NOW + 60
    sig = hexsig('k', 'GET', exp, PATH, 'sha1')
    with pytest.raises(rules.Invalid, match='digest sha1'):
        check(query(sig, exp))
    assert check(query(sig, exp), allowed_digests=('sha1', 'sha256'))


def test_wrong_key_method_path_or_expiry_are_invalid():
    exp = NOW + 60
    sig = hexsig('k', 'GET', exp, PATH)
    assert check(query(sig, exp))
    with pytest.raises(rules.Invalid):
        check(query(sig, exp), keys=[('other', 'account')])
    with pytest.raises(rules.Invalid):
        check(query(sig, exp), keys=[])
    with pytest.raises(rules.Invalid):
        check(query(sig, exp), method='PUT')
    with pytest.raises(rules.Invalid):
        check(query(sig, exp), path='/v1/AUTH_test/c/dir/other')
    with pytest.raises(rules.Invalid):
        check(query(sig, exp + 1))          # expires was tampered with
    old = NOW - 1
    with pytest.raises(rules.Invalid, match='expired'):
        check(query(hexsig('k', 'GET', old, PATH), old))


def test_iso8601_expiry_signs_unix_seconds():
    exp = NOW + 3600
    sig = hexsig('k', 'GET', exp, PATH)
    iso = '2023-11-14T23:13:20Z'
    assert rules.parse_expires(iso) == exp
    assert check(query(sig, iso))


def test_head_accepts_get_put_post_signatures_but_not_delete():
    exp = NOW + 60
    for signed in ('HEAD', 'GET', 'PUT', 'POST'):
        assert check(query(hexsig('k', signed, exp, PATH), exp),
                     method='HEAD')
    with pytest.raises(rules.Invalid):
        check(query(hexsig('k', 'DELETE', exp, PATH), exp), method='HEAD')
    # a GET signature says nothing about PUT
    with pytest.raises(rules.Invalid):
        check(query(hexsig('k', 'GET', exp, PATH), exp), method='PUT')


def test_methods_configurable():
    exp = NOW + 60
    sig = hexsig('k', 'DELETE', exp, PATH)
    assert check(query(sig, exp), method='DELETE')
    with pytest.raises(rules.Invalid, match='not allowed'):
        check(query(sig, exp), method='DELETE', methods=('GET', 'HEAD'))
    # HEAD with a GET signature needs GET enabled
    gsig = hexsig('k', 'GET', exp, PATH)
    with pytest.raises(rules.Invalid):
        check(query(gsig, exp), method='HEAD', methods=('HEAD', 'PUT'))


def test_container_key_gives_container_scope_second_key_works():
    exp = NOW + 60
    sig = hexsig('k2', 'GET', exp, PATH)
    grant = check(query(sig, exp), keys=[('k1', 'account'),
                                         ('k2', 'container')])
    assert grant.scope == 'container'


# -- prefixes and addresses ---------------------------------------------------

def test_prefix_signature_covers_objects_under_prefix():
    exp = NOW + 60
    sig = hexsig('k', 'GET', exp, 'prefix:/v1/AUTH_test/c/dir/')
    q = query(sig, exp, prefix='dir/')
    assert check(q)
    assert check(q, path='/v1/AUTH_test/c/dir/sub/other')
    with pytest.raises(rules.Invalid, match='outside'):
        check(q, path='/v1/AUTH_test/c/elsewhere')
    with pytest.raises(rules.Invalid):
        check(q, path='/v1/AUTH_test/c2/dir/obj')
    # the same signature is no object signature, nor another prefix's
    with pytest.raises(rules.Invalid):
        check(query(sig, exp))
    with pytest.raises(rules.Invalid):
        check(query(sig, exp, prefix='di'))
    empty = query(hexsig('k', 'GET', exp, 'prefix:/v1/AUTH_test/c/'), exp,
                  prefix='')
    assert check(empty, path='/v1/AUTH_test/c/anything')


def test_ip_range_is_signed_and_enforced():
    exp = NOW + 60
    sig = hexsig('k', 'GET', exp, PATH, ip_range='10.1.0.0/16')
    q = query(sig, exp, ip_range='10.1.0.0/16')
    assert check(q, client_ip='10.1.2.3')
    with pytest.raises(rules.Invalid, match='outside'):
        check(q, client_ip='10.2.0.1')
    with pytest.raises(rules.Invalid):
        check(q, client_ip=None)
    with pytest.raises(rules.Invalid):       # range swapped after signing
        check(query(sig, exp, ip_range='0.0.0.0/0'), client_ip='10.1.2.3')
    single = query(hexsig('k', 'GET', exp, PATH, ip_range='::1'), exp,
                   ip_range='::1')
    assert check(single, client_ip='::1')
    with pytest.raises(rules.Invalid):
        check(query(sig, exp, ip_range='not-an-ip'), client_ip='10.1.2.3')


def test_hmac_body_matches_documented_layout():
    assert rules.hmac_body('GET', 5, '/v1/a/c/o') == 'GET\n5\n/v1/a/c/o'
    assert rules.hmac_body('PUT', 5, 'prefix:/v1/a/c/p', '1.2.3.4') == \
        'ip=1.2.3.4\nPUT\n5\nprefix:/v1/a/c/p'
    expected = hmac.new(b'k', b'GET\n5\n/v1/a/c/o', hashlib.sha1).digest()
    assert rules.sign('k', 'GET', 5, '/v1/a/c/o', 'sha1') == expected


def test_only_object_paths():
    exp = NOW + 60
    for path in ('/v1/AUTH_test', '/v1/AUTH_test/c', '/v1/AUTH_test/c/',
                 '/info', '/v1//c/o'):
        sig = hexsig('k', 'GET', exp, path)
        with pytest.raises(rules.Invalid):
            check(query(sig, exp), path=path)


# -- scope, headers, disposition --------------------------------------------

def test_within_scope():
    acct = rules.Grant('account', 'AUTH_test', 'c')
    cont = rules.Grant('container', 'AUTH_test', 'c')
    assert rules.within(acct, '/v1/AUTH_test/segs/s1')
    assert not rules.within(acct, '/v1/AUTH_other/c/o')
    assert rules.within(cont, '/v1/AUTH_test/c/o2')
    assert not rules.within(cont, '/v1/AUTH_test/segs/s1')
    assert not rules.within(cont, '/v1/AUTH_test')
    assert not rules.within(acct, 'garbage')


def test_keys_from_headers():
    headers = {'X-Account-Meta-Temp-URL-Key': 'a',
               'x-account-meta-temp-url-key-2': '', 'Other': 'x'}
    assert rules.keys_from(headers, rules.ACCOUNT_KEYS) == ['a']
    assert rules.keys_from({}, rules.CONTAINER_KEYS) == []


def test_header_matcher():
    match = rules.header_matcher(('x-object-meta-*', 'x-timestamp'))
    assert match('X-Object-Meta-Color') and match('x-timestamp')
    assert not match('x-object-metadata') and not match('content-type')
    assert not rules.header_matcher(())('x-anything')


def test_content_disposition():
    assert rules.content_disposition('dir/a b.txt') == \
        'attachment; filename="a b.txt"; filename*=UTF-8\'\'a%20b.txt'
    assert rules.content_disposition('o', existing='inline') == 'inline'
    assert rules.content_disposition('o', inline=True) == 'inline'
    assert rules.content_disposition('o', 'r\u00e9sum\u00e9.pdf',
                                     inline=True) == (
        'inline; filename="r%C3%A9sum%C3%A9.pdf"; '
        'filename*=UTF-8\'\'r%C3%A9sum%C3%A9.pdf')
    assert rules.content_disposition('o', 'x"\n.txt').startswith(
        'attachment; filename="x%22%0A.txt"')
