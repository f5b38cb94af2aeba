"""Planning parallel downloads (objstore/cli/client/parts.py) and writing
parts at their offsets (part_fetch.py) against a fake connection: which
GET fills which bytes, what is verified, and that a bad part fails the
whole download. No server, no network."""
import argparse
import hashlib
import os

import pytest

from objstore.cli.client import parts
from objstore.cli.client.errors import ClientError
from objstore.cli.client.part_fetch import PartFetcher


def md5(data):
    return hashlib.md5(data).hexdigest()


# -- planning ------------------------------------------------------------------

def test_slo_plan_offsets_follow_the_manifest_with_an_uneven_last_segment():
    manifest = [
        {'name': '/segs/big/000', 'bytes': 100, 'hash': 'a' * 32},
        {'name': '/segs/big/001', 'bytes': 100, 'hash': 'b' * 32},
        {'name': '/segs/big/002', 'bytes': 37, 'hash': 'c' * 32},
    ]
    plan = parts.slo_plan(manifest)
    assert [(p.index, p.offset, p.length) for p in plan] == \
        [(0, 0, 100), (1, 100, 100), (2, 200, 37)]
    assert [(p.container, p.obj) for p in plan] == \
        [('segs', 'big/000'), ('segs', 'big/001'), ('segs', 'big/002')]
    assert [p.md5 for p in plan] == ['a' * 32, 'b' * 32, 'c' * 32]
    assert all(p.range is None and p.if_match is None for p in plan)
    assert parts.plan_size(plan) == 237


def test_slo_plan_ranges_nested_and_empty_entries():
    manifest = [
        {'name': '/s/one', 'bytes': 1000, 'hash': 'a' * 32,
         'range': '10-19'},
        {'name': '/s/empty', 'bytes': 0, 'hash': md5(b'')},
        {'name': '/s/sub', 'bytes': 50, 'hash': 'd' * 32, 'sub_slo': True},
        # the PUT form is read too
        {'path': '/s/two', 'size_bytes': 5, 'etag': 'e' * 32},
    ]
    plan = parts.slo_plan(manifest)
    assert [(p.offset, p.length, p.obj) for p in plan] == \
        [(0, 10, 'one'), (10, 50, 'sub'), (60, 5, 'two')]
    # a range fetches that range of the segment, unverifiable by MD5
    assert plan[0].range == 'bytes=10-19' and plan[0].md5 is None
    # a nested SLO is fetched whole, as the large object it is
    assert plan[1].range is None and plan[1].md5 is None
    assert plan[2].md5 == 'e' * 32
    assert [p.index for p in plan] == [0, 1, 2]


@pytest.mark.parametrize('manifest', [
    [{'name': 'no-slash', 'bytes': 1, 'hash': 'a'}],
    [{'name': '/container-only', 'bytes': 1, 'hash': 'a'}],
    [{'name': '/c/o', 'hash': 'a'}],               # no size
    [{'name': '/c/o', 'bytes': 5, 'range': 'x-y'}],
])
def test_slo_plan_refuses_unreadable_entries(manifest):
    with pytest.raises(ValueError):
        parts.slo_plan(manifest)


def test_plain_plan_covers_every_byte_once_with_if_match():
    plan = parts.plain_plan('c', 'o', 10 * 1024 + 1, 'abc', part_size=1024)
    assert len(plan) == 11
    assert plan[0].range == 'bytes=0-1023'
    assert plan[-1].range == 'bytes=10240-10240' and plan[-1].length == 1
    assert all(p.if_match == '"abc"' and p.md5 is None for p in plan)
    covered = sorted((p.offset, p.offset + p.length) for p in plan)
    assert covered[0][0] == 0 and covered[-1][1] == 10 * 1024 + 1
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))
    assert parts.plain_plan('c', 'o', 0, 'abc') == []
    with pytest.raises(ValueError):
        parts.plain_plan('c', 'o', 10, 'abc', part_size=0)


def test_split_plain_threshold_and_segment_jobs():
    assert not parts.split_plain(parts.PLAIN_THRESHOLD)
    assert parts.split_plain(parts.PLAIN_THRESHOLD + 1)
    assert not parts.split_plain(None)
    ns = argparse.Namespace
    assert parts.segment_jobs(ns(jobs=10)) == parts.DEFAULT_SEGMENT_JOBS
    assert parts.segment_jobs(ns(jobs=1)) == 1
    assert parts.segment_jobs(ns(jobs=10, segment_jobs=7)) == 7
    assert parts.segment_jobs(ns(jobs=2, segment_jobs=None)) == 2


def test_content_range_matches():
    part = parts.plain_plan('c', 'o', 100, 'e', part_size=40)[1]
    assert parts.content_range_matches(part, 'bytes 40-79/100')
    assert not parts.content_range_matches(part, 'bytes 0-39/100')
    assert not parts.content_range_matches(part, None)


# -- fetching parts into a file ----------------------------------------------

class FakeResponse:
    def __init__(self, data, status=200, headers=None, chunk=7):
        self.data, self.status_code = data, status
        self.headers = headers or {}
        self.chunk = chunk
        self.closed = False

    def iter_content(self, size):
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i:i + self.chunk]

    def close(self):
        self.closed = True


class FakeConn:
    """Objects in a dict; answers Range the way a proxy does."""

    def __init__(self, objects):
        self.objects = objects
        self.requests = []

    def request(self, method, container, obj, headers=None, stream=False):
        self.requests.append((container, obj, dict(headers or {})))
        data = self.objects[(container, obj)]
        rng = (headers or {}).get('Range')
        if rng:
            first, last = (int(x) for x in rng[6:].split('-'))
            return FakeResponse(data[first:last + 1], 206, {
                'Content-Range': 'bytes %d-%d/%d' % (first, last,
                                                     len(data))})
        return FakeResponse(data, 200, {'ETag': md5(data)})


class Count:
    def __init__(self):
        self.done = 0

    def add(self, n):
        self.done += n


def fetch_into(tmp_path, conn, plan, jobs=3):
    path = tmp_path / 'out'
    progress = Count()
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT)
    try:
        os.ftruncate(fd, parts.plan_size(plan))
        PartFetcher(conn, fd, plan, progress, jobs).run()
    finally:
        os.close(fd)
    return path.read_bytes(), progress.done


def test_segments_land_at_their_offsets(tmp_path):
    segs = [os.urandom(100), os.urandom(100), os.urandom(37)]
    conn = FakeConn({('s', 'seg%d' % i): d for i, d in enumerate(segs)})
    plan = parts.slo_plan([{'name': '/s/seg%d' % i, 'bytes': len(d),
                            'hash': md5(d)} for i, d in enumerate(segs)])
    data, done = fetch_into(tmp_path, conn, plan)
    assert data == b''.join(segs) and done == 237
    assert len(conn.requests) == 3


def test_plain_ranges_reassemble_the_object(tmp_path):
    body = os.urandom(1000)
    conn = FakeConn({('c', 'o'): body})
    plan = parts.plain_plan('c', 'o', len(body), md5(body), part_size=128)
    data, done = fetch_into(tmp_path, conn, plan, jobs=4)
    assert data == body and done == 1000
    assert all(h['If-Match'] == '"%s"' % md5(body)
               for _, _, h in conn.requests)


def test_a_replaced_segment_fails_on_its_etag(tmp_path):
    good, bad = os.urandom(50), os.urandom(50)
    conn = FakeConn({('s', 'a'): good, ('s', 'b'): bad})
    plan = parts.slo_plan([
        {'name': '/s/a', 'bytes': 50, 'hash': md5(good)},
        {'name': '/s/b', 'bytes': 50, 'hash': md5(os.urandom(50))}])
    with pytest.raises(ClientError) as err:
        fetch_into(tmp_path, conn, plan)
    assert 'part 2 of 2 (s/b)' in str(err.value)
    assert 'does not match the manifest' in str(err.value)


def test_wrong_bytes_without_an_etag_fail_on_md5(tmp_path):
    real = os.urandom(64)

    class NoEtag(FakeConn):
        def request(self, *args, **kwargs):
            resp = super().request(*args, **kwargs)
            resp.headers.pop('ETag', None)
            return resp

    conn = NoEtag({('s', 'a'): real})
    plan = parts.slo_plan([{'name': '/s/a', 'bytes': 64,
                            'hash': md5(b'x' * 64)}])
    with pytest.raises(ClientError) as err:
        fetch_into(tmp_path, conn, plan)
    assert 'MD5 %s' % md5(real) in str(err.value)


def test_short_and_long_parts_fail(tmp_path):
    conn = FakeConn({('s', 'a'): b'12345'})
    short = [parts.Part(0, 0, 9, 's', 'a', None, None, None)]
    with pytest.raises(ClientError) as err:
        fetch_into(tmp_path, conn, short)
    assert 'got 5 of 9 bytes' in str(err.value)
    long = [parts.Part(0, 0, 3, 's', 'a', None, None, None)]
    with pytest.raises(ClientError) as err:
        fetch_into(tmp_path, conn, long)
    assert 'more than the 3 bytes expected' in str(err.value)


def test_an_unanswered_range_fails(tmp_path):
    class IgnoresRange(FakeConn):
        def request(self, method, container, obj, headers=None,
                    stream=False):
            return FakeResponse(self.objects[(container, obj)], 200)

    body = os.urandom(300)
    conn = IgnoresRange({('c', 'o'): body})
    plan = parts.plain_plan('c', 'o', 300, md5(body), part_size=100)
    with pytest.raises(ClientError) as err:
        fetch_into(tmp_path, conn, plan)
    assert 'the range was not answered (200)' in str(err.value)


def test_a_changed_object_is_named(tmp_path):
    class Changed(FakeConn):
        def request(self, *args, **kwargs):
            raise ClientError('GET c/o: 412 Precondition Failed', 412)

    plan = parts.plain_plan('c', 'o', 10, 'e', part_size=5)
    with pytest.raises(ClientError) as err:
        fetch_into(tmp_path, Changed({}), plan)
    assert 'the object changed during the download' in str(err.value)
