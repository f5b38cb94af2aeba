"""The pure parts of the `objstore` client: argument parsing, sizes,
segment plans and names, temp URL signatures, output, progress and the
download verifiers. No server, no network."""
import hashlib
import hmac
import io
import json
import os

import pytest

from objstore.cli.client import (auth, listing, main, output, progress,
                                 segments, sizes, tempurl, upload, verify)
from objstore.cli.client.download import local_path
from objstore.cli.client.errors import UsageError


def md5(data):
    return hashlib.md5(data).hexdigest()


# -- sizes ---------------------------------------------------------------------

@pytest.mark.parametrize('text,size', [
    ('1', 1), ('100', 100), ('2K', 2048), ('5m', 5 * 1024 ** 2),
    ('1G', 1024 ** 3), ('3GiB', 3 * 1024 ** 3), ('10MB', 10 * 1024 ** 2),
    ('7B', 7)])
def test_parse_size(text, size):
    assert sizes.parse_size(text) == size


@pytest.mark.parametrize('text', ['', 'K', '-1', '0', '1.5M', '12X', 'M5'])
def test_parse_size_refuses(text):
    with pytest.raises(UsageError):
        sizes.parse_size(text)


def test_human_size():
    assert sizes.human_size(512) == '512'
    assert sizes.human_size(1536) == '1.5K'
    assert sizes.human_size(6 * 1024 ** 3) == '6.0G'


# -- arguments -----------------------------------------------------------------

def test_options_before_or_after_the_command():
    args = main.parse_args(['-A', 'http://a/auth/v1.0', 'list', 'c',
                            '--json', '-U', 'u', '--prefix', 'p/'])
    assert (args.auth, args.user, args.json, args.quiet) == (
        'http://a/auth/v1.0', 'u', True, False)
    assert (args.command, args.container, args.prefix) == ('list', 'c', 'p/')
    args = main.parse_args(['upload', 'c', 'f1', 'd2', '-S', '10M', '-j',
                            '4', '-H', 'X-A: b'])
    assert args.paths == ['f1', 'd2'] and args.segment_size == 10 * 2 ** 20
    assert args.jobs == 4 and args.header == ['X-A: b']
    assert args.key is None and args.json is False


def test_usage_errors_are_one_line_and_exit_2():
    err = io.StringIO()
    assert main.main(['upload', 'c'], env={}, stderr=err) == 2
    assert err.getvalue().startswith('objstore: error: ')
    assert len(err.getvalue().splitlines()) == 1
    err = io.StringIO()
    assert main.main(['frobnicate'], env={}, stderr=err) == 2
    err = io.StringIO()
    assert main.main(['stat'], env={}, stderr=err) == 2
    assert 'no credentials' in err.getvalue()


def test_credentials_from_options_then_environment():
    args = main.parse_args(['-U', 'opt:user', 'stat'])
    env = {'ST_AUTH': 'http://x/auth/v1.0', 'ST_USER': 'env:user',
           'ST_KEY': 'k'}
    creds = auth.settings(args, env)
    assert (creds.auth_url, creds.user, creds.key) == (
        'http://x/auth/v1.0', 'opt:user', 'k')
    auth.check(creds)
    creds = auth.settings(main.parse_args(['stat']), {
        'OS_AUTH_TOKEN': 't', 'OS_STORAGE_URL': 'http://x/v1/AUTH_a'})
    assert auth.authenticate(creds) == ('http://x/v1/AUTH_a', 't')
    with pytest.raises(UsageError) as e:
        auth.check(auth.settings(main.parse_args(['stat']),
                                 {'ST_USER': 'u'}))
    assert '--auth/ST_AUTH' in str(e.value) and '--key/ST_KEY' in str(e.value)


def test_info_url():
    assert auth.info_url('http://h:8080/auth/v1.0') == 'http://h:8080/info'
    assert auth.info_url('https://h/v1/AUTH_a') == 'https://h/info'
    assert auth.info_url('https://h/swift/v1/AUTH_a') == 'https://h/swift/info'


# -- segments ------------------------------------------------------------------

def test_plan_segments():
    plan = segments.plan_segments(250, 100)
    assert plan == [(0, 0, 100), (1, 100, 100), (2, 200, 50)]
    assert segments.plan_segments(200, 100)[-1] == (1, 100, 100)
    assert segments.plan_segments(0, 100) == [(0, 0, 0)]
    six_gib = segments.plan_segments(6 * 1024 ** 3, 1024 ** 3)
    assert len(six_gib) == 6 and sum(s.length for s in six_gib) == \
        6 * 1024 ** 3
    assert not segments.needs_segments(100, 100)
    assert segments.needs_segments(101, 100)
    assert not segments.needs_segments(10 ** 12, None)


def test_segment_names_follow_swiftclient():
    name = segments.segment_name('dir/big.iso', 1700000000.5, 250, 100, 2)
    assert name == 'dir/big.iso/slo/1700000000.500000/250/100/00000002'
    assert segments.segments_container('c') == 'c_segments'
    assert segments.segments_container('c', 'segs') == 'segs'


def test_manifest_body_is_swifts_put_format():
    body = json.loads(segments.manifest_body(
        'c_segments', [('o/slo/1/2/1/00000000', 'e0', 1),
                       ('o/slo/1/2/1/00000001', 'e1', 1)]))
    assert body == [
        {'path': '/c_segments/o/slo/1/2/1/00000000', 'etag': 'e0',
         'size_bytes': 1},
        {'path': '/c_segments/o/slo/1/2/1/00000001', 'etag': 'e1',
         'size_bytes': 1}]


def test_segment_count_limit():
    assert segments.check_segment_count(1000) is None
    assert 'larger --segment-size' in segments.check_segment_count(1001)


# -- upload naming -------------------------------------------------------------

def fake_walk(tree):
    def walk(path):
        yield from tree[path]
    return walk


def test_collect_names():
    tree = {'d': [('d', ['s'], ['b', 'a']), ('d/s', [], ['c'])]}
    isdir = lambda p: p == 'd'   # noqa: E731
    assert upload.collect(['./f.txt', '/abs/g'], isdir=isdir) == [
        ('./f.txt', 'f.txt'), ('/abs/g', 'abs/g')]
    assert upload.collect(['d'], walk=fake_walk(tree), isdir=isdir) == [
        ('d/a', 'd/a'), ('d/b', 'd/b'), ('d/s/c', 'd/s/c')]
    assert upload.collect(['d'], 'x/y', walk=fake_walk(tree),
                          isdir=isdir)[0] == ('d/a', 'x/y/a')
    assert upload.collect(['d'], '', walk=fake_walk(tree),
                          isdir=isdir)[0] == ('d/a', 'a')
    assert upload.collect(['f'], 'renamed', isdir=isdir) == [('f', 'renamed')]
    with pytest.raises(UsageError):
        upload.collect(['f', 'g'], 'name', isdir=isdir)


def test_download_paths_stay_below_the_directory():
    assert local_path('a/b/c.txt') == 'a/b/c.txt'
    assert local_path('a//b') == 'a/b'
    for bad in ('/etc/passwd', 'a/../../x', '..', ''):
        assert local_path(bad) is None


# -- temp URLs -----------------------------------------------------------------

def test_tempurl_signature_is_the_documented_hmac():
    path, key = '/v1/AUTH_account/container/object', 'mykey'
    url = tempurl.temp_url('get', 60, path, key, 'sha1', now=1000)
    body = 'GET\n1060\n%s' % path
    sig = hmac.new(b'mykey', body.encode(), hashlib.sha1).hexdigest()
    assert url == '%s?temp_url_sig=%s&temp_url_expires=1060' % (path, sig)
    url = tempurl.temp_url('PUT', 2000000000, path, key, absolute=True)
    sig = hmac.new(b'mykey', ('PUT\n2000000000\n%s' % path).encode(),
                   hashlib.sha256).hexdigest()
    assert url.endswith('temp_url_sig=%s&temp_url_expires=2000000000' % sig)
    sig = tempurl.signature(key, 'GET', 1060, path, 'sha512')
    assert sig.startswith('sha512:') and '=' not in sig


@pytest.mark.parametrize('args', [
    ('FETCH', 60, '/v1/a/c/o', 'k'), ('GET', 'soon', '/v1/a/c/o', 'k'),
    ('GET', -5, '/v1/a/c/o', 'k'), ('GET', 60, '/v1/a/c', 'k'),
    ('GET', 60, 'v1/a/c/o', 'k')])
def test_tempurl_refuses(args):
    with pytest.raises(UsageError):
        tempurl.temp_url(*args)


# -- output --------------------------------------------------------------------

def test_table_aligns_numbers_right_and_text_left():
    lines = output.format_table([[5, 'x', 'a'], [1234, 'long', 'b']])
    assert lines == ['   5  x     a', '1234  long  b']
    assert output.format_fields([('Account', 'A'), ('Objects', '3'),
                                 ('Meta Color', 'x')]) == [
        '   Account: A', '   Objects: 3', 'Meta Color: x']


def test_listing_rows_and_totals():
    objs = [{'name': 'a', 'bytes': 10, 'hash': 'h',
             'last_modified': '2024-05-01T10:20:30.123456',
             'content_type': 'text/plain'}, {'subdir': 'd/'},
            {'name': 'b', 'bytes': 5, 'last_modified': '', 'content_type':
             'x/y'}]
    assert listing.rows(objs, True)[0] == [10, '2024-05-01 10:20:30',
                                           'text/plain', 'a']
    assert listing.rows(objs, True)[1] == ['', '', '', 'd/']
    assert listing.totals(objs, True) == {'objects': 2, 'bytes': 15}
    conts = [{'name': 'c1', 'count': 2, 'bytes': 7},
             {'name': 'c2', 'count': 1, 'bytes': 3}]
    assert listing.totals(conts, False) == {'containers': 2, 'objects': 3,
                                            'bytes': 10}
    assert listing.totals_line(listing.totals(conts, False)) == \
        'total: 2 containers, 3 objects, 10 bytes'


def test_quiet_and_json_drop_per_item_lines():
    out, err = io.StringIO(), io.StringIO()
    o = output.Output(out, err, quiet=True)
    o.done('name')
    o.note('chatter')
    o.warn('problem')
    assert out.getvalue() == '' and err.getvalue() == \
        'objstore: warning: problem\n'
    o = output.Output(out, err, as_json=True)
    o.done('name')
    o.json({'a': 1})
    assert json.loads(out.getvalue()) == {'a': 1}


# -- progress ------------------------------------------------------------------

def test_render_progress():
    line = progress.render('upload', 512 * 1024, 1024 * 1024, 2.0, width=10)
    assert line == 'upload [#####.....]  50%  512.0K/1.0M  256.0K/s'
    assert progress.render('x', 10, None, 0, width=4) == 'x [####]  10  0/s'


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_redraws_in_place_and_ends_the_line():
    stream, clock = io.StringIO(), Clock()
    bar = progress.Progress(stream, 'up', 100, enabled=True, every=1.0,
                            clock=clock)
    bar.add(10)
    clock.now = 0.5
    bar.add(10)           # too soon: not drawn
    clock.now = 2.0
    bar.add(80)
    bar.finish()
    text = stream.getvalue()
    assert text.count('\r') == 3 and text.endswith('\n')
    assert ' 10%' in text and '100%' in text and ' 20%' not in text
    quiet = io.StringIO()
    bar = progress.Progress(quiet, 'up', 100)   # StringIO is no terminal
    bar.add(100)
    bar.finish()
    assert quiet.getvalue() == ''


# -- download verification -----------------------------------------------------

def feed_in_pieces(checker, data, size):
    for i in range(0, len(data), size):
        checker.feed(data[i:i + size])


def test_segment_checker():
    segs = [b'a' * 10, b'b' * 7, b'c' * 3]
    manifest = [{'name': '/s/%d' % i, 'hash': md5(s), 'bytes': len(s)}
                for i, s in enumerate(segs)]
    pieces = verify.manifest_pieces(manifest)
    for size in (1, 4, 100):
        checker = verify.SegmentChecker(pieces)
        feed_in_pieces(checker, b''.join(segs), size)
        assert checker.problem() is None and checker.unverified == 0
    checker = verify.SegmentChecker(pieces)
    checker.feed(b'a' * 10 + b'X' * 7 + b'c' * 3)
    assert 'segment 2' in checker.problem()
    checker = verify.SegmentChecker(pieces)
    checker.feed(b'a' * 10)
    assert 'ended in segment 2' in checker.problem()
    checker = verify.SegmentChecker(pieces)
    checker.feed(b''.join(segs) + b'more')
    assert 'more than the manifest' in checker.problem()


def test_manifest_ranges_and_nested_slos_are_unverified():
    pieces = verify.manifest_pieces([
        {'name': '/s/0', 'hash': md5(b'abcdef'), 'bytes': 6,
         'range': '1-3'},
        {'name': '/s/1', 'hash': 'x', 'bytes': 4, 'sub_slo': True},
        {'path': '/s/2', 'etag': md5(b'zz'), 'size_bytes': 2}])
    assert pieces == [(3, None), (4, None), (2, md5(b'zz'))]
    checker = verify.SegmentChecker(pieces)
    checker.feed(b'bcd' + b'1234' + b'zz')
    assert checker.problem() is None and checker.unverified == 2


def test_whole_checker():
    checker = verify.WholeChecker('"%s"' % md5(b'data'))
    checker.feed(b'da')
    checker.feed(b'ta')
    assert checker.problem() is None
    checker.feed(b'!')
    assert 'does not match' in checker.problem()


# -- bounded readers ------------------------------------------------------------

def test_range_reader_streams_a_range_with_its_md5(tmp_path):
    import requests
    from objstore.cli.client.streams import RangeReader, range_md5
    path = tmp_path / 'f'
    data = bytes(range(256)) * 1000
    path.write_bytes(data)
    seen = []
    with RangeReader(str(path), 1000, 70000, on_bytes=seen.append,
                     chunk=4096) as body:
        prepared = requests.Request('PUT', 'http://127.0.0.1:1/x',
                                    data=body).prepare()
        assert prepared.headers['Content-Length'] == '70000'
        assert 'Transfer-Encoding' not in prepared.headers
        got = b''.join(iter(lambda: body.read(10 ** 6), b''))
    assert got == data[1000:71000] and max(seen) == 4096
    assert body.hexdigest() == md5(got) == range_md5(str(path), 1000, 70000)
    assert range_md5(str(path)) == md5(data)


# -- what the cluster or the user may hand us ------------------------------------

def test_restore_mtime_ignores_values_no_clock_has(tmp_path):
    from objstore.cli.client.download import restore_mtime
    path = tmp_path / 'f'
    path.write_bytes(b'x')
    before = os.path.getmtime(path)
    for bad in ('nan', 'inf', '-inf', '1e400', 'soon', None):
        restore_mtime(str(path), bad)   # must not raise
        assert os.path.getmtime(path) == before
    restore_mtime(str(path), '1000000.5')
    assert os.path.getmtime(path) == 1000000.5


def test_header_values_go_out_as_utf8():
    from objstore.cli.client.connection import wire_headers
    assert wire_headers({'X-Object-Meta-Sym': '\u20ac', 'Range': 'bytes=0-1'}) \
        == {'X-Object-Meta-Sym': '\u20ac'.encode('utf-8'),
            'Range': b'bytes=0-1'}


def test_names_that_are_not_utf8_are_one_clear_error():
    from objstore.cli.client.connection import Connection
    from objstore.cli.client.errors import ClientError
    conn = Connection('http://127.0.0.1:1/v1/AUTH_a', 'token')
    with pytest.raises(ClientError) as e:
        conn.request('PUT', 'c', 'caf\udce9')   # a Latin-1 file name
    assert 'not valid UTF-8' in str(e.value)


def test_header_and_metadata_names_must_be_ascii_tokens():
    from objstore.cli.client.common import parse_headers, parse_meta
    assert parse_meta(['Sym:\u20ac'], 'Object') == {
        'X-Object-Meta-Sym': '\u20ac'}
    for bad in ('N\u00e9v: x', 'a b: x'):
        with pytest.raises(UsageError):
            parse_headers([bad])
    with pytest.raises(UsageError):
        parse_meta(['k\u00e9y:x'], 'Object')


def test_file_matches_pieces(tmp_path):
    from objstore.cli.client.streams import file_matches_pieces
    path = tmp_path / 'f'
    path.write_bytes(b'aaabbbbc')
    pieces = [(3, md5(b'aaa')), (4, '"%s"' % md5(b'bbbb')), (1, md5(b'c'))]
    assert file_matches_pieces(str(path), pieces)
    assert not file_matches_pieces(str(path), pieces[:2])       # too short
    assert not file_matches_pieces(str(path), [(3, md5(b'aaa')),
                                               (5, None)])      # unknown
    assert not file_matches_pieces(str(path), [(3, md5(b'aab')),
                                               (5, md5(b'bbbbc'))])
