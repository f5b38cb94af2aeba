"""Container ACLs: cleaning, parsing, referrer and group matching."""
import pytest

from objstore.middleware.acl import (
    clean_acl, grants, parse_acl, referrer_allowed, referrer_host)


@pytest.mark.parametrize('value,cleaned', [
    ('.r:*', '.r:*'),
    ('.r : * , .rlistings', '.r:*,.rlistings'),
    ('.referrer:www.Example.com', '.r:www.example.com'),
    ('.ref:*.example.com,.referer:-thief.example.com',
     '.r:.example.com,.r:-thief.example.com'),
    ('test, test : tester,,AUTH_other', 'test,test:tester,AUTH_other'),
    ('', ''),
])
def test_clean_read_acl(value, cleaned):
    assert clean_acl('X-Container-Read', value) == cleaned


@pytest.mark.parametrize('value', [
    '.r:', '.r:-', '.r', '.unknown', '.x:y', '.r:*.', 'a,.bogus:1'])
def test_clean_read_acl_refuses(value):
    with pytest.raises(ValueError):
        clean_acl('X-Container-Read', value)


def test_clean_write_acl_refuses_referrers():
    assert clean_acl('X-Container-Write', 'test:tester, .rlistings') == \
        'test:tester,.rlistings'
    with pytest.raises(ValueError, match='not allowed'):
        clean_acl('x-container-write', '.r:*')


def test_parse_acl():
    refs, groups = parse_acl('.r:*,.r:-Bad.com, .rlistings, test:tester,'
                             '.bogus, .r:, test')
    assert refs == [(False, '*'), (True, 'bad.com')]
    assert groups == ['.rlistings', 'test:tester', 'test']
    assert parse_acl(None) == ([], [])


@pytest.mark.parametrize('referer,host', [
    ('http://www.Example.com/page', 'www.example.com'),
    ('https://user@h.example.com:8080/x', 'h.example.com'),
    ('http://[::1', None), ('', None), (None, None), ('garbage', None)])
def test_referrer_host(referer, host):
    assert referrer_host(referer) == host


@pytest.mark.parametrize('acl,referer,allowed', [
    ('.r:*', None, True),
    ('.r:*', 'http://anything/', True),
    ('.r:.example.com', 'http://www.example.com/', True),
    ('.r:.example.com', 'http://example.com/', False),
    ('.r:.example.com', 'http://www.example.com.evil.org/', False),
    ('.r:.example.com', None, False),
    ('.r:www.example.com', 'http://www.example.com/x', True),
    ('.r:www.example.com', 'http://ww.example.com/x', False),
    ('.r:*,.r:-thief.example.com', 'http://thief.example.com/', False),
    ('.r:*,.r:-thief.example.com', 'http://good.example.com/', True),
    ('.r:*,.r:-thief.example.com', None, True),
    ('.r:-thief.example.com,.r:*', 'http://thief.example.com/', True),
    ('.r:.example.com,.r:-.bad.example.com', 'http://x.bad.example.com/',
     False),
    ('.r:*,.r:-*', 'http://a/', False),
    ('test:tester', 'http://a/', False),
])
def test_referrer_allowed(acl, referer, allowed):
    assert referrer_allowed(referer, parse_acl(acl)[0]) is allowed


TESTER = ['test', 'test:tester']


@pytest.mark.parametrize('acl,groups,referer,reading,listing,ok', [
    # referrers grant object reads, listings only with .rlistings
    ('.r:*', [], None, True, False, True),
    ('.r:*', [], None, True, True, False),
    ('.r:*,.rlistings', [], None, True, True, True),
    ('.rlistings', [], None, True, True, False),
    # ... and never writes
    ('.r:*', [], None, False, False, False),
    ('.r:*,.rlistings', TESTER, None, False, False, False),
    # groups: the account or the account:user
    ('test', TESTER, None, False, False, True),
    ('test:tester', TESTER, None, True, True, True),
    ('test:other', TESTER, None, True, False, False),
    ('test2', TESTER, None, True, False, False),
    ('AUTH_test', TESTER + ['AUTH_test'], None, True, False, True),
    # no wildcards, no designators as groups
    ('*', TESTER, None, True, False, False),
    ('test:*', TESTER, None, True, False, False),
    ('.rlistings', ['.rlistings'], None, True, True, False),
    (None, TESTER, None, True, False, False),
    ('', [], None, True, False, False),
])
def test_grants(acl, groups, referer, reading, listing, ok):
    assert grants(acl, groups, referer, reading, listing) is ok
