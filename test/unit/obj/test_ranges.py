"""Range header parsing and multipart layout (pure functions)."""
import pytest

from objstore.obj import ranges


@pytest.mark.parametrize('header, specs', [
    ('bytes=0-9', [(0, 9)]), ('bytes=5-', [(5, None)]),
    ('bytes=-3', [(None, 3)]), (' bytes = 1-2 , 4-5 ', [(1, 2), (4, 5)]),
    ('BYTES=0-0', [(0, 0)]), ('bytes=1-2,', [(1, 2)])])
def test_parse_range(header, specs):
    assert ranges.parse_range(header) == specs


@pytest.mark.parametrize('header', [
    None, '', 'bytes', 'bytes=', 'items=0-1', 'bytes=a-b', 'bytes=5-1',
    'bytes=-', 'bytes=1', 'bytes=--1', 'bytes=0-1,' + ','.join(
        ['%d-%d' % (i, i) for i in range(200)])])
def test_unparseable_ranges_are_none(header):
    assert ranges.parse_range(header) is None


def test_satisfiable():
    assert ranges.satisfiable([(0, 9)], 5) == [(0, 5)]
    assert ranges.satisfiable([(None, 3)], 10) == [(7, 10)]
    assert ranges.satisfiable([(None, 30)], 10) == [(0, 10)]
    assert ranges.satisfiable([(10, None)], 10) == []
    assert ranges.satisfiable([(None, 0)], 10) == []
    assert ranges.satisfiable([(0, None)], 0) == []
    assert ranges.satisfiable([(20, 30), (1, 1)], 10) == [(1, 2)]


def test_multipart_layout_lengths_add_up():
    spans = [(0, 2), (5, 10)]
    parts, trailer, total = ranges.multipart_layout(spans, 10, 'a/b', 'BB')
    body = b''
    data = b'0123456789'
    for head, start, stop in parts:
        body += head + data[start:stop]
    body += trailer
    assert len(body) == total
    assert body == (b'--BB\r\nContent-Type: a/b\r\nContent-Range: bytes '
                    b'0-1/10\r\n\r\n01\r\n--BB\r\nContent-Type: a/b\r\n'
                    b'Content-Range: bytes 5-9/10\r\n\r\n56789\r\n'
                    b'--BB--\r\n')
