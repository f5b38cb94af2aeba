"""The `swift` command line of python-swiftclient against a real cluster.

The all-in-one cluster of the `aio_cluster` fixture (four storage nodes
and a proxy with tempauth) serves every test of this module; each test
runs `swift -A AUTH_URL -U USER -K KEY ...` as a subprocess in its own
temporary directory and works in containers of its own, so the tests do
not depend on each other. The outcomes checked are what a user sees:
exit codes, the names and headers printed, and the bytes that come back.
"""
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest
import requests

SWIFT = os.path.join(os.path.dirname(sys.executable), 'swift')
TIMEOUT = 60

pytestmark = pytest.mark.skipif(not os.path.exists(SWIFT),
                                reason='no swift command line in the venv')


def md5(data):
    return hashlib.md5(data).hexdigest()


def file_md5(path):
    with open(path, 'rb') as f:
        return md5(f.read())


def clean_env():
    """The environment without anything that would steer swiftclient
    (ST_* and OS_* settings of whoever runs the tests)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(('ST_', 'OS_', 'SWIFTCLIENT_'))}


def parse_stat(text):
    """`swift stat` output -> {field: value}, e.g. {'Objects': '1'}."""
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(':')
        if sep:
            fields[name.strip()] = value.strip()
    return fields


class Swift:
    """Runs the swift command line as one user of the cluster."""

    def __init__(self, cluster, cwd, user='test:tester', key='testing',
                 storage_url=None):
        self.cluster, self.cwd = cluster, str(cwd)
        self.user, self.key, self.storage_url = user, key, storage_url

    def as_user(self, user, key, storage_url=None):
        return Swift(self.cluster, self.cwd, user, key, storage_url)

    def run(self, *args, stdin=None, cwd=None):
        """Run `swift <auth options> ARGS`; return the CompletedProcess
        (text output)."""
        cmd = [SWIFT, '-A', self.cluster['auth_url'], '-U', self.user,
               '-K', self.key]
        if self.storage_url:
            cmd += ['--os-storage-url', self.storage_url]
        cmd += [str(a) for a in args]
        return subprocess.run(
            cmd, input=stdin, capture_output=True, timeout=TIMEOUT,
            cwd=cwd or self.cwd, env=clean_env(),
            text=not isinstance(stdin, bytes))

    def ok(self, *args, **kwargs):
        """Run and insist on success; return stdout (as text)."""
        proc = self.run(*args, **kwargs)
        out = proc.stdout if isinstance(proc.stdout, str) else \
            proc.stdout.decode('utf-8', 'replace')
        err = proc.stderr if isinstance(proc.stderr, str) else \
            proc.stderr.decode('utf-8', 'replace')
        assert proc.returncode == 0, (args, out, err)
        return out

    def fails(self, *args, **kwargs):
        """Run and insist on failure; return stdout + stderr."""
        proc = self.run(*args, **kwargs)
        assert proc.returncode != 0, (args, proc.stdout, proc.stderr)
        return proc.stdout + proc.stderr

    def lines(self, *args):
        return self.ok(*args).splitlines()

    def stat(self, *args):
        return parse_stat(self.ok('stat', *args))


@pytest.fixture
def swift(aio_cluster, tmp_path):
    workdir = tmp_path / 'work'
    workdir.mkdir()
    return Swift(aio_cluster, workdir)


@pytest.fixture
def storage_url(aio_cluster):
    return aio_cluster['url'] + '/v1/AUTH_test'


def eventually(fetch, check, timeout=10.0):
    """fetch() until check(result) holds or TIMEOUT seconds passed;
    return the last result. Containers report their stats to the account
    a moment after the fact (batched, account_update_delay), so account
    figures are only eventually right."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if check(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def swift_path(swift, name):
    """NAME inside the working directory of the swift commands."""
    return pathlib.Path(swift.cwd) / name


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


# -- stat, list, capabilities, auth ------------------------------------------

def test_account_stat_counts_what_is_stored(swift):
    acct = swift.stat()
    assert acct['Account'] == 'AUTH_test'
    for field in ('Containers', 'Objects', 'Bytes'):
        assert acct[field].isdigit(), acct
    assert acct['X-Trans-Id'].startswith('tx')
    # counting is done in the reseller admin's own account, which no
    # other test writes to (so nothing else is still being reported)
    admin = swift.as_user('admin:admin', 'admin')
    fields = ('Containers', 'Objects', 'Bytes')
    before = admin.stat()
    assert before['Account'] == 'AUTH_admin'
    blobs = [os.urandom(1000), os.urandom(234)]
    for i, data in enumerate(blobs):
        write(swift_path(swift, 'acct/%d.bin' % i), data)
    admin.ok('upload', 'cli-acct', 'acct')
    expected = [int(before['Containers']) + 1,
                int(before['Objects']) + len(blobs),
                int(before['Bytes']) + sum(map(len, blobs))]
    after = eventually(admin.stat, lambda st: [
        int(st[f]) for f in fields] == expected)
    assert [int(after[f]) for f in fields] == expected, after
    # and back down when the objects go
    admin.ok('delete', 'cli-acct', 'acct/0.bin')
    expected[1:] = [expected[1] - 1, expected[2] - len(blobs[0])]
    after = eventually(admin.stat, lambda st: [
        int(st[f]) for f in fields] == expected)
    assert [int(after[f]) for f in fields] == expected, after


def test_container_and_object_stat(swift):
    data = write(swift_path(swift, 'hello.txt'), b'hello, world\n')
    out = swift.ok('upload', 'cli-stat', 'hello.txt')
    assert out.split() == ['hello.txt']
    cont = swift.stat('cli-stat')
    assert cont['Account'] == 'AUTH_test'
    assert cont['Container'] == 'cli-stat'
    assert cont['Objects'] == '1'
    assert cont['Bytes'] == str(len(data))
    assert cont['Read ACL'] == '' and cont['Write ACL'] == ''
    obj = swift.stat('cli-stat', 'hello.txt')
    assert obj['Container'] == 'cli-stat'
    assert obj['Object'] == 'hello.txt'
    assert obj['Content Type'] == 'text/plain'
    assert obj['Content Length'] == str(len(data))
    assert obj['ETag'] == md5(data)
    assert obj['Last Modified'].endswith('GMT')
    # swiftclient records the file's mtime as metadata on upload
    assert float(obj['Meta Mtime']) == pytest.approx(
        os.path.getmtime(swift_path(swift, 'hello.txt')), abs=1e-3)
    # --lh prints human readable sizes
    lh = parse_stat(swift.ok('stat', '--lh', 'cli-stat'))
    assert lh['Objects'] == '1' and lh['Bytes'] == str(len(data))


def test_stat_of_missing_things_fails(swift):
    swift.ok('post', 'cli-missing')
    out = swift.fails('stat', 'cli-missing', 'no-such-object')
    assert '404' in out or 'not found' in out
    out = swift.fails('stat', 'cli-no-such-container')
    assert 'not found' in out
    out = swift.fails('stat', 'cli-no-such-container', 'obj')
    assert '404' in out or 'not found' in out


def test_capabilities_and_auth(swift, storage_url):
    out = swift.ok('capabilities')
    assert 'Core: swift' in out
    assert 'max_file_size' in out
    assert 'tempauth' in out
    caps = json.loads(swift.ok('capabilities', '--json'))
    assert caps['swift']['max_object_name_length'] > 0
    env = {}
    for line in swift.lines('auth'):
        assert line.startswith('export ')
        name, _, value = line[len('export '):].partition('=')
        env[name] = value
    assert env['OS_STORAGE_URL'] == storage_url
    assert env['OS_AUTH_TOKEN'].startswith('AUTH_tk')
    # the printed token and URL work without the user's key
    proc = subprocess.run(
        [SWIFT, '--os-auth-token', env['OS_AUTH_TOKEN'],
         '--os-storage-url', env['OS_STORAGE_URL'], 'stat'],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=swift.cwd,
        env=clean_env())
    assert proc.returncode == 0, proc.stderr
    assert parse_stat(proc.stdout)['Account'] == 'AUTH_test'


# -- post: containers, metadata, ACLs ----------------------------------------

def test_post_creates_container_and_sets_metadata(swift):
    swift.ok('post', 'cli-post', '-m', 'Color:Blue', '-m', 'Size:Large')
    assert 'cli-post' in swift.lines('list')
    cont = swift.stat('cli-post')
    assert cont['Meta Color'] == 'Blue'
    assert cont['Meta Size'] == 'Large'
    assert cont['Objects'] == '0'
    # a later post changes one item and keeps the other
    swift.ok('post', 'cli-post', '-m', 'Color:Red')
    cont = swift.stat('cli-post')
    assert cont['Meta Color'] == 'Red' and cont['Meta Size'] == 'Large'
    # an empty value removes the item
    swift.ok('post', 'cli-post', '-m', 'Size:')
    assert 'Meta Size' not in swift.stat('cli-post')


def test_post_account_metadata(swift):
    swift.ok('post', '-m', 'Cli-Test:account-value')
    assert swift.stat()['Meta Cli-Test'] == 'account-value'
    swift.ok('post', '-m', 'Cli-Test:')
    assert 'Meta Cli-Test' not in swift.stat()


def test_post_object_metadata_and_content_type(swift):
    write(swift_path(swift, 'o.txt'), b'object with metadata')
    swift.ok('upload', 'cli-objmeta', 'o.txt', '-m', 'Kind:first')
    assert swift.stat('cli-objmeta', 'o.txt')['Meta Kind'] == 'first'
    swift.ok('post', 'cli-objmeta', 'o.txt', '-m', 'Flavor:Mint',
             '-H', 'Content-Type: application/x-cli-test')
    obj = swift.stat('cli-objmeta', 'o.txt')
    assert obj['Meta Flavor'] == 'Mint'
    # an object POST replaces the user metadata
    assert 'Meta Kind' not in obj
    assert obj['Content Type'] == 'application/x-cli-test'
    assert obj['ETag'] == md5(b'object with metadata')
    out = swift.fails('post', 'cli-objmeta', 'no-such-object', '-m', 'A:b')
    assert '404' in out


def test_public_read_acl(swift, aio_cluster, storage_url):
    data = write(swift_path(swift, 'pub.txt'), b'for everyone\n')
    swift.ok('post', 'cli-public')
    swift.ok('upload', 'cli-public', 'pub.txt')
    url = storage_url + '/cli-public'
    assert requests.get(url + '/pub.txt', timeout=10).status_code == 401
    swift.ok('post', 'cli-public', '-r', '.r:*,.rlistings')
    assert swift.stat('cli-public')['Read ACL'] == '.r:*,.rlistings'
    resp = requests.get(url + '/pub.txt', timeout=10)
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers['Etag'] == md5(data)
    listing = requests.get(url, timeout=10)
    assert listing.status_code == 200
    assert listing.text.split() == ['pub.txt']
    # writes still need a token
    assert requests.put(url + '/other', data=b'x',
                        timeout=10).status_code == 401
    # removing the ACL closes the container again
    swift.ok('post', 'cli-public', '-r', '')
    assert requests.get(url + '/pub.txt', timeout=10).status_code == 401


def test_user_acls_for_other_users(swift, storage_url):
    data = write(swift_path(swift, 'shared.txt'), b'shared data\n')
    swift.ok('post', 'cli-shared', '-r', 'test:tester3', '-w', 'test2')
    cont = swift.stat('cli-shared')
    assert cont['Read ACL'] == 'test:tester3'
    assert cont['Write ACL'] == 'test2'
    reader = swift.as_user('test:tester3', 'testing3', storage_url)
    writer = swift.as_user('test2:tester2', 'testing2', storage_url)
    # the writer may put (swiftclient HEADs first unless told not to,
    # and a write-only user may not HEAD) but not read
    writer.ok('upload', '--skip-container-put', '--leave-segments',
              'cli-shared', 'shared.txt')
    assert '403' in writer.fails('list', 'cli-shared')
    # the reader may list and read but not write
    assert reader.lines('list', 'cli-shared') == ['shared.txt']
    assert reader.ok('download', 'cli-shared', 'shared.txt', '-o', '-') \
        == data.decode()
    assert '403' in reader.fails('upload', '--skip-container-put',
                                 '--leave-segments', 'cli-shared',
                                 'shared.txt')
    # the reader may stat the container, but only its owner sees the ACLs
    seen = reader.stat('cli-shared')
    assert seen['Objects'] == '1'
    assert seen['Read ACL'] == '' and seen['Write ACL'] == ''
    # neither may touch the account or the container's metadata
    assert '403' in reader.fails('list')
    assert '403' in writer.fails('stat')
    assert '403' in reader.fails('post', 'cli-shared', '-m', 'X:y')
    writer.ok('delete', '--leave-segments', 'cli-shared', 'shared.txt')
    assert swift.lines('list', 'cli-shared') == []


# -- upload ------------------------------------------------------------------

def test_upload_and_download_single_files(swift):
    blobs = {'small.txt': b'small\n', 'empty': b'',
             'random.bin': os.urandom(1024 * 1024 + 7)}
    for name, data in blobs.items():
        write(swift_path(swift, name), data)
    out = swift.ok('upload', 'cli-files', *blobs)
    assert sorted(out.split()) == sorted(blobs)
    assert sorted(swift.lines('list', 'cli-files')) == sorted(blobs)
    outdir = swift_path(swift, 'out')
    outdir.mkdir()
    for name, data in blobs.items():
        target = outdir / (name + '.copy')
        swift.ok('download', 'cli-files', name, '-o', target)
        assert file_md5(target) == md5(data)
        assert swift.stat('cli-files', name)['ETag'] == md5(data)
    # -o - streams to stdout
    proc = subprocess.run(
        [SWIFT, '-A', swift.cluster['auth_url'], '-U', 'test:tester',
         '-K', 'testing', 'download', 'cli-files', 'random.bin', '-o', '-'],
        capture_output=True, timeout=TIMEOUT, cwd=swift.cwd, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    assert md5(proc.stdout) == md5(blobs['random.bin'])


def test_upload_with_object_name_headers_and_metadata(swift):
    data = write(swift_path(swift, 'local-name.dat'), b'renamed on upload')
    swift.ok('upload', 'cli-named', 'local-name.dat',
             '--object-name', 'remote/name.dat',
             '-H', 'Content-Type: application/x-renamed',
             '-m', 'Origin:cli')
    assert swift.lines('list', 'cli-named') == ['remote/name.dat']
    obj = swift.stat('cli-named', 'remote/name.dat')
    assert obj['Content Type'] == 'application/x-renamed'
    assert obj['Meta Origin'] == 'cli'
    assert obj['ETag'] == md5(data)


def test_upload_from_stdin(swift):
    data = b'read from standard input\n' * 100
    swift.ok('upload', 'cli-stdin', '-', '--object-name', 'piped',
             stdin=data)
    assert 'piped' in swift.lines('list', 'cli-stdin')
    obj = swift.stat('cli-stdin', 'piped')
    assert obj['Content Length'] == str(len(data))
    assert obj['ETag'] == md5(data)
    target = swift_path(swift, 'piped.out')
    swift.ok('download', 'cli-stdin', 'piped', '-o', target)
    assert target.read_bytes() == data


def test_upload_directory_tree_and_download_container(swift):
    tree = {'tree/top.txt': b'top\n',
            'tree/sub/mid.txt': b'mid\n' * 10,
            'tree/sub/deep/low.bin': os.urandom(5000),
            'tree/other/ünï cødé.txt': 'unicode ✓\n'.encode()}
    for name, data in tree.items():
        write(swift_path(swift, name), data)
    out = swift.ok('upload', 'cli-tree', 'tree')
    assert sorted(out.splitlines()) == sorted(tree)
    assert sorted(swift.lines('list', 'cli-tree')) == sorted(tree)
    cont = swift.stat('cli-tree')
    assert cont['Objects'] == str(len(tree))
    assert cont['Bytes'] == str(sum(map(len, tree.values())))
    # the whole container into another directory
    dest = swift_path(swift, 'restored')
    swift.ok('download', 'cli-tree', '-D', dest)
    found = {str(p.relative_to(dest)): p.read_bytes()
             for p in dest.rglob('*') if p.is_file()}
    assert {k: md5(v) for k, v in found.items()} == \
        {k: md5(v) for k, v in tree.items()}
    # part of it, with the prefix taken off the local names
    part = swift_path(swift, 'part')
    swift.ok('download', 'cli-tree', '--prefix', 'tree/sub/',
             '--remove-prefix', '-D', part)
    found = sorted(str(p.relative_to(part)) for p in part.rglob('*')
                   if p.is_file())
    assert found == ['deep/low.bin', 'mid.txt']
    assert file_md5(part / 'deep' / 'low.bin') == \
        md5(tree['tree/sub/deep/low.bin'])


def test_upload_skip_identical_and_changed(swift):
    path = swift_path(swift, 'same.txt')
    write(path, b'identical\n')
    swift.ok('upload', 'cli-skip', 'same.txt')
    first = swift.stat('cli-skip', 'same.txt')['X-Timestamp']
    time.sleep(0.02)
    swift.ok('upload', '--skip-identical', 'cli-skip', 'same.txt')
    assert swift.stat('cli-skip', 'same.txt')['X-Timestamp'] == first
    swift.ok('upload', '--changed', 'cli-skip', 'same.txt')
    assert swift.stat('cli-skip', 'same.txt')['X-Timestamp'] == first
    write(path, b'different now\n')
    swift.ok('upload', '--skip-identical', 'cli-skip', 'same.txt')
    obj = swift.stat('cli-skip', 'same.txt')
    assert obj['X-Timestamp'] != first
    assert obj['ETag'] == md5(b'different now\n')


def test_download_skip_identical_and_range(swift):
    data = write(swift_path(swift, 'r.txt'), b'0123456789abcdef')
    swift.ok('upload', 'cli-dlskip', 'r.txt')
    dl = swift_path(swift, 'dl')
    dl.mkdir()
    swift.ok('download', 'cli-dlskip', 'r.txt', cwd=dl)
    assert (dl / 'r.txt').read_bytes() == data
    out = swift.ok('download', '--skip-identical', 'cli-dlskip', 'r.txt',
                   cwd=dl)
    assert 'Skipped identical' in out
    (dl / 'r.txt').write_bytes(b'local change')
    out = swift.ok('download', '--skip-identical', 'cli-dlskip', 'r.txt',
                   cwd=dl)
    assert 'Skipped' not in out
    assert (dl / 'r.txt').read_bytes() == data
    assert swift.ok('download', 'cli-dlskip', 'r.txt', '-o', '-',
                    '-H', 'Range: bytes=3-6') == '3456'


def test_upload_into_missing_container_without_creating_it_fails(swift):
    write(swift_path(swift, 'x.txt'), b'x')
    out = swift.fails('upload', '--skip-container-put', 'cli-never-made',
                      'x.txt')
    assert '404' in out
    assert swift.run('stat', 'cli-never-made').returncode != 0


def test_upload_of_missing_local_file_fails(swift):
    out = swift.fails('upload', 'cli-nofile', 'does-not-exist.txt')
    assert 'not found' in out


def test_delete_after(swift):
    write(swift_path(swift, 'brief.txt'), b'gone soon')
    swift.ok('upload', 'cli-expire', 'brief.txt', '-H', 'X-Delete-After: 1')
    obj = swift.stat('cli-expire', 'brief.txt')
    assert int(obj['X-Delete-At']) <= time.time() + 2
    time.sleep(2.1)
    assert swift.run('stat', 'cli-expire', 'brief.txt').returncode != 0
    assert swift.run('download', 'cli-expire', 'brief.txt',
                     '-o', '-').returncode != 0


# -- list --------------------------------------------------------------------

@pytest.fixture
def listed(swift):
    """A container 'cli-list' with a small tree of known objects."""
    objects = {'a/1.txt': b'1' * 10, 'a/2.txt': b'2' * 20,
               'a/b/3.txt': b'3' * 30, 'c.txt': b'c' * 40,
               'd/4.txt': b'4' * 50}
    for name, data in objects.items():
        write(swift_path(swift, 'src/' + name), data)
    swift.ok('upload', 'cli-list', 'a', 'c.txt', 'd',
             cwd=swift_path(swift, 'src'))
    return objects


def test_list_plain_prefix_and_delimiter(swift, listed):
    names = swift.lines('list', 'cli-list')
    assert names == sorted(listed)
    assert swift.lines('list', 'cli-list', '--prefix', 'a/') == \
        ['a/1.txt', 'a/2.txt', 'a/b/3.txt']
    assert swift.lines('list', 'cli-list', '--delimiter', '/') == \
        ['a/', 'c.txt', 'd/']
    assert swift.lines('list', 'cli-list', '--prefix', 'a/',
                       '--delimiter', '/') == ['a/1.txt', 'a/2.txt', 'a/b/']
    assert swift.lines('list', 'cli-list', '--prefix', 'zzz') == []
    # account listing with a prefix
    assert 'cli-list' in swift.lines('list', '--prefix', 'cli-l')
    assert swift.lines('list', '--prefix', 'no-such-prefix-') == []


def test_list_long_lh_totals_and_json(swift, listed):
    rows = swift.lines('list', '--long', 'cli-list')
    # one row per object and a totals row
    assert len(rows) == len(listed) + 1
    for row, name in zip(rows, sorted(listed)):
        cols = row.split()
        assert cols[0] == str(len(listed[name]))
        assert cols[-1] == name
        assert cols[-2] == 'text/plain'
    assert rows[-1].split() == [str(sum(map(len, listed.values())))]
    assert swift.ok('list', '--long', '--totals', 'cli-list').split() == \
        [str(sum(map(len, listed.values())))]
    lh = swift.lines('list', '--lh', 'cli-list')
    assert len(lh) == len(listed) + 1
    assert [row.split()[-1] for row in lh[:-1]] == sorted(listed)
    entries = json.loads(swift.ok('list', '--json', 'cli-list'))
    assert [e['name'] for e in entries] == sorted(listed)
    for e in entries:
        assert e['bytes'] == len(listed[e['name']])
        assert e['hash'] == md5(listed[e['name']])
        assert e['content_type'] == 'text/plain'
    # account long listing: count and bytes of the container (the
    # account learns them from the container a moment later)
    expected = [str(len(listed)), str(sum(map(len, listed.values())))]

    def account_row():
        for row in swift.lines('list', '--long', '--prefix', 'cli-list'):
            cols = row.split()
            if cols[-1] == 'cli-list':
                return cols
        return []
    cols = eventually(account_row, lambda cols: cols[:2] == expected)
    assert cols[:2] == expected, cols
    totals = swift.ok('list', '--long', '--totals', '--prefix', 'cli-list')
    assert totals.split() == expected


def test_list_of_missing_container_fails(swift):
    out = swift.fails('list', 'cli-no-such-container')
    assert 'not found' in out


# -- copy --------------------------------------------------------------------

def test_copy_to_other_container_with_metadata(swift):
    data = write(swift_path(swift, 'orig.bin'), os.urandom(70000))
    swift.ok('upload', 'cli-copy-src', 'orig.bin', '-m', 'Source:yes')
    out = swift.ok('copy', 'cli-copy-src', 'orig.bin',
                   '-d', '/cli-copy-dst/renamed.bin', '-m', 'Copied:yes')
    assert 'copied to /cli-copy-dst/renamed.bin' in out
    dst = swift.stat('cli-copy-dst', 'renamed.bin')
    assert dst['ETag'] == md5(data)
    assert dst['Content Length'] == str(len(data))
    assert dst['Meta Copied'] == 'yes'
    assert dst['Meta Source'] == 'yes'
    target = swift_path(swift, 'copy.bin')
    swift.ok('download', 'cli-copy-dst', 'renamed.bin', '-o', target)
    assert file_md5(target) == md5(data)
    # the source is unchanged
    src = swift.stat('cli-copy-src', 'orig.bin')
    assert 'Meta Copied' not in src and src['ETag'] == md5(data)
    # destination container only: the object keeps its name
    swift.ok('copy', 'cli-copy-src', 'orig.bin', '-d', '/cli-copy-dst')
    assert sorted(swift.lines('list', 'cli-copy-dst')) == \
        ['orig.bin', 'renamed.bin']


def test_copy_fresh_metadata_and_in_place(swift):
    write(swift_path(swift, 'm.txt'), b'metadata copy')
    swift.ok('upload', 'cli-copy-meta', 'm.txt', '-m', 'Old:1',
             '-H', 'Content-Type: application/x-kept')
    swift.ok('copy', 'cli-copy-meta', 'm.txt', '-d', '/cli-copy-meta/fresh',
             '-M', '-m', 'New:2')
    fresh = swift.stat('cli-copy-meta', 'fresh')
    assert fresh['Meta New'] == '2'
    assert 'Meta Old' not in fresh and 'Meta Mtime' not in fresh
    assert fresh['Content Type'] == 'application/x-kept'
    # no destination: the object is copied onto itself with added metadata
    out = swift.ok('copy', 'cli-copy-meta', 'm.txt', '-m', 'Added:3')
    assert 'copied to <self>' in out
    obj = swift.stat('cli-copy-meta', 'm.txt')
    assert obj['Meta Old'] == '1' and obj['Meta Added'] == '3'
    assert obj['ETag'] == md5(b'metadata copy')


def test_copy_of_missing_object_fails(swift):
    swift.ok('post', 'cli-copy-none')
    out = swift.fails('copy', 'cli-copy-none', 'nothing', '-d',
                      '/cli-copy-none/x')
    assert '404' in out
    assert swift.lines('list', 'cli-copy-none') == []


# -- delete ------------------------------------------------------------------

def test_delete_objects_prefix_and_container(swift):
    for name in ('keep.txt', 'gone.txt', 'tmp/1', 'tmp/2', 'tmp/3'):
        write(swift_path(swift, 'd/' + name), name.encode())
    swift.ok('upload', 'cli-delete', 'keep.txt', 'gone.txt', 'tmp',
             cwd=swift_path(swift, 'd'))
    out = swift.ok('delete', 'cli-delete', 'gone.txt')
    assert out.split() == ['gone.txt']
    assert swift.lines('list', 'cli-delete') == \
        ['keep.txt', 'tmp/1', 'tmp/2', 'tmp/3']
    assert swift.run('stat', 'cli-delete', 'gone.txt').returncode != 0
    swift.ok('delete', 'cli-delete', '--prefix', 'tmp/')
    assert swift.lines('list', 'cli-delete') == ['keep.txt']
    assert swift.stat('cli-delete')['Objects'] == '1'
    # deleting what is not there fails
    assert '404' in swift.fails('delete', 'cli-delete', 'gone.txt')
    # an empty container goes with a plain delete
    swift.ok('post', 'cli-delete-empty')
    swift.ok('delete', 'cli-delete-empty')
    assert 'cli-delete-empty' not in swift.lines('list')
    # a container with objects: swift deletes the objects, then it
    swift.ok('delete', 'cli-delete')
    assert 'cli-delete' not in swift.lines('list')
    assert 'not found' in swift.fails('list', 'cli-delete')
    assert 'not found' in swift.fails('delete', 'cli-delete')


def test_delete_all_empties_an_account(swift, aio_cluster):
    other = swift.as_user('test2:tester2', 'testing2')
    for i in range(3):
        write(swift_path(swift, 'all/f%d' % i), b'%d' % i)
        other.ok('upload', 'cli-all-%d' % i, 'all')
    assert len([c for c in other.lines('list')
                if c.startswith('cli-all-')]) == 3
    other.ok('delete', '--all')
    assert other.lines('list') == []
    acct = other.stat()
    assert acct['Containers'] == '0' and acct['Objects'] == '0'
    # the first account is untouched
    assert swift.stat()['Account'] == 'AUTH_test'


# -- authentication and authorization errors --------------------------------

def test_wrong_key_is_an_auth_error(swift):
    # (swiftclient retries a 401 once, after a second's back-off)
    bad = swift.as_user('test:tester', 'not-the-key')
    out = bad.fails('stat')
    assert 'Auth GET failed' in out and '401' in out, out
    unknown = swift.as_user('nobody:nobody', 'nothing')
    out = unknown.fails('download', 'c', 'o', '-o', '-')
    assert 'Auth GET failed' in out and '401' in out, out


def test_non_admin_user_cannot_use_the_account(swift):
    swift.ok('post', 'cli-private')
    user3 = swift.as_user('test:tester3', 'testing3')
    assert '403' in user3.fails('list')
    assert '403' in user3.fails('stat')
    assert '403' in user3.fails('list', 'cli-private')
    assert '403' in user3.fails('post', 'cli-user3-new')
    assert 'cli-user3-new' not in swift.lines('list')


def test_users_cannot_reach_other_accounts(swift, storage_url):
    swift.ok('post', 'cli-not-for-test2')
    intruder = swift.as_user('test2:tester2', 'testing2', storage_url)
    assert '403' in intruder.fails('list')
    assert '403' in intruder.fails('stat', 'cli-not-for-test2')
    assert '403' in intruder.fails('delete', 'cli-not-for-test2')
    assert 'cli-not-for-test2' in swift.lines('list')
    # the reseller admin may
    admin = swift.as_user('admin:admin', 'admin', storage_url)
    assert 'cli-not-for-test2' in admin.lines('list')


# -- names, headers and limits -----------------------------------------------

def test_awkward_object_names_round_trip(swift):
    names = ['with space.txt', 'percent%25.txt', 'question?.txt',
             'hash#tag.txt', 'plus+and&amp.txt', 'ünï cødé ✓.txt',
             "quote'dbl\".txt", 'semi;colon=eq.txt']
    src = swift_path(swift, 'names')
    blobs = {n: ('data of %s\n' % n).encode() for n in names}
    for name, data in blobs.items():
        write(src / name, data)
    swift.ok('upload', 'cli-names', *names, cwd=src)
    assert sorted(swift.lines('list', 'cli-names')) == sorted(names)
    for name, data in blobs.items():
        obj = swift.stat('cli-names', name)
        assert obj['Object'] == name
        assert obj['ETag'] == md5(data)
    dest = swift_path(swift, 'names-back')
    swift.ok('download', 'cli-names', '-D', dest)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == blobs
    swift.ok('delete', 'cli-names', *names)
    assert swift.lines('list', 'cli-names') == []


def test_standard_object_headers_are_kept(swift):
    data = write(swift_path(swift, 'h.txt'), b'headers')
    swift.ok('upload', 'cli-headers', 'h.txt',
             '-H', 'Content-Disposition: attachment; filename="h.txt"',
             '-H', 'Content-Encoding: identity',
             '-H', 'Content-Type: text/x-headers')
    obj = swift.stat('cli-headers', 'h.txt')
    assert obj['Content-Disposition'] == 'attachment; filename="h.txt"'
    assert obj['Content-Encoding'] == 'identity'
    assert obj['Content Type'] == 'text/x-headers'
    assert obj['ETag'] == md5(data)
    swift.ok('post', 'cli-headers', 'h.txt',
             '-H', 'Content-Disposition: inline')
    obj = swift.stat('cli-headers', 'h.txt')
    assert obj['Content-Disposition'] == 'inline'


def test_limits_are_enforced(swift):
    write(swift_path(swift, 'l.txt'), b'limits')
    swift.ok('post', 'cli-limits')
    # metadata value longer than max_meta_value_length (256)
    out = swift.fails('post', 'cli-limits', '-m', 'Big:' + 'v' * 300)
    assert '400' in out
    assert 'Meta Big' not in swift.stat('cli-limits')
    # container name longer than max_container_name_length (256)
    assert '400' in swift.fails('post', 'c' * 300)
    # an X-Delete-At in the past
    out = swift.fails('upload', 'cli-limits', 'l.txt',
                      '-H', 'X-Delete-At: %d' % (time.time() - 100))
    assert '400' in out
    assert swift.lines('list', 'cli-limits') == []
