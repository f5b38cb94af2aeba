"""The documented limits and the checks that enforce them."""
import pytest

from objstore.common import constraints as c


@pytest.mark.parametrize('name,ok', [
    ('photos', True), ('x' * 256, True), ('x' * 257, False),
    ('é' * 128, True), ('é' * 129, False), ('', False), ('a\x00b', False),
    ('.', False), ('..', False), ('...', True)])
def test_container_names(name, ok):
    err = c.check_name(name, c.MAX_CONTAINER_NAME_LENGTH, 'container')
    assert (err is None) == ok, err


@pytest.mark.parametrize('name,ok', [
    ('a/b/c.txt', True), ('x' * 1024, True), ('x' * 1025, False),
    ('a/../b', False), ('./a', False), ('a/.', False), ('a//b', True),
    ('.hidden', True)])
def test_object_names(name, ok):
    assert (c.check_object_name(name) is None) == ok


def meta(n, name_len=5, value_len=5):
    return {'X-Object-Meta-%s' % ('k%d' % i).ljust(name_len, 'x'):
            'v' * value_len for i in range(n)}


def test_metadata_within_limits():
    assert c.check_metadata(meta(90, 10, 10), 'object') is None
    # exactly 4096 bytes: 32 items of 28 + 100
    assert c.check_metadata(meta(32, 28, 100), 'object') is None


@pytest.mark.parametrize('headers,words', [
    (meta(91), 'too many'),
    (meta(33, 28, 100), 'too large'),
    ({'X-Object-Meta-' + 'n' * 129: 'v'}, 'name too long'),
    ({'X-Object-Meta-k': 'v' * 257}, 'value too long'),
    ({'X-Object-Meta-': 'v'}, 'name is empty'),
])
def test_metadata_over_limits(headers, words):
    assert words in c.check_metadata(headers, 'object')


def test_metadata_only_counts_its_own_kind():
    headers = dict(meta(91))
    assert c.check_metadata(headers, 'container') is None
    assert c.check_metadata({'X-Container-Meta-A': 'b'}, 'container') is None


@pytest.mark.parametrize('value,expect', [
    (None, (None, None)), ('0', (0, None)), ('12', (12, None)),
    (str(c.MAX_FILE_SIZE), (c.MAX_FILE_SIZE, None))])
def test_content_length_ok(value, expect):
    assert c.parse_content_length(value) == expect


@pytest.mark.parametrize('value', ['-1', 'abc', '1.5', '', str(
    c.MAX_FILE_SIZE + 1)])
def test_content_length_bad(value):
    length, err = c.parse_content_length(value)
    assert length is None and err


def test_listing_limit():
    assert c.parse_listing_limit(None, 10000) == (10000, None)
    assert c.parse_listing_limit('5', 10000) == (5, None)
    assert c.parse_listing_limit('10001', 10000)[1]
    assert c.parse_listing_limit('-3', 10000)[1]
