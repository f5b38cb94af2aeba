"""The `objstore` command line against a real all-in-one cluster.

Every test runs ``python -m objstore.cli.client.main`` as a subprocess
(the way users run it) in its own working directory and containers, and
checks what a user sees: exit codes, printed lines and the bytes that come
back. Interoperability with python-swiftclient's `swift` command is
checked both ways, segmented (SLO) uploads included.
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest
import requests

from test.conftest import load_test_module

cli_helpers = load_test_module('cli_helpers')
clean_env = cli_helpers.clean_env
run_in_terminal = cli_helpers.run_in_terminal

TIMEOUT = 60
SWIFT = os.path.join(os.path.dirname(sys.executable), 'swift')


def md5(data):
    return hashlib.md5(data).hexdigest()


class Cli:
    """Runs `objstore` as test:tester of the cluster."""

    def __init__(self, cluster, cwd, user='test:tester', key='testing'):
        self.cluster, self.cwd = cluster, str(cwd)
        self.user, self.key = user, key

    def argv(self, *args):
        return [sys.executable, '-m', 'objstore.cli.client.main',
                '-A', self.cluster['auth_url'], '-U', self.user,
                '-K', self.key] + [str(a) for a in args]

    def run(self, *args, stdin=None, env=None, binary=False):
        return subprocess.run(
            self.argv(*args), input=stdin, capture_output=True,
            timeout=TIMEOUT, cwd=self.cwd, env=env or clean_env(),
            text=not binary)

    def ok(self, *args, **kwargs):
        proc = self.run(*args, **kwargs)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout

    def fails(self, *args, code=1, **kwargs):
        proc = self.run(*args, **kwargs)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        assert 'Traceback' not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith('objstore: error: '), proc.stderr
        return proc.stderr


@pytest.fixture
def cli(aio_cluster, tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    return Cli(aio_cluster, work)


@pytest.fixture
def api(aio_cluster):
    """(storage_url, headers) of test:tester for direct checks."""
    return token_for(aio_cluster)


def get(api, path, **kwargs):
    url, headers = api
    return requests.get(url + path, headers=headers, **kwargs)


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def token_for(cluster):
    resp = requests.get(cluster['auth_url'], headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
    return resp.headers['X-Storage-Url'], {
        'X-Auth-Token': resp.headers['X-Auth-Token']}


# -- auth and errors ---------------------------------------------------------

def test_auth_from_environment_and_token(cli, api):
    env = clean_env(ST_AUTH=cli.cluster['auth_url'], ST_USER='test:tester',
                    ST_KEY='testing')
    proc = subprocess.run(
        [sys.executable, '-m', 'objstore.cli.client.main', 'stat'],
        capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert 'Account: AUTH_test' in proc.stdout
    url, headers = api
    env = clean_env(OS_AUTH_TOKEN=headers['X-Auth-Token'],
                    OS_STORAGE_URL=url)
    proc = subprocess.run(
        [sys.executable, '-m', 'objstore.cli.client.main', 'stat', '--json'],
        capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)['account'] == 'AUTH_test'


def test_clear_errors(cli, tmp_path):
    err = Cli(cli.cluster, cli.cwd, key='wrong').fails('stat')
    assert 'authentication failed' in err
    err = cli.fails('stat', 'no-such-container')
    assert 'not found' in err
    # nothing listens: the error names the URL
    dead = 'http://127.0.0.1:1/auth/v1.0'
    proc = subprocess.run(
        [sys.executable, '-m', 'objstore.cli.client.main', '-A', dead,
         '-U', 'a:b', '-K', 'c', 'list'], capture_output=True, text=True,
        env=clean_env(), timeout=TIMEOUT)
    assert proc.returncode == 1
    assert proc.stderr.strip() == \
        'objstore: error: cannot connect to %s (connection refused)' % dead
    # usage errors exit 2 with one line
    err = cli.fails('upload', code=2)
    assert len(err.strip().splitlines()) == 1
    err = cli.fails('upload', 'c', '--segment-size', '12X', 'f', code=2)
    assert 'invalid size' in err
    proc = subprocess.run(
        [sys.executable, '-m', 'objstore.cli.client.main', 'stat'],
        capture_output=True, text=True, env=clean_env(), timeout=TIMEOUT)
    assert proc.returncode == 2 and 'no credentials' in proc.stderr


# -- stat, list --------------------------------------------------------------

def test_stat_container_and_object(cli, tmp_path):
    tmp = tmp_path / 'work'
    data = write(tmp / 'hello.txt', b'hello, world\n')
    assert cli.ok('upload', 'ocli-stat', 'hello.txt').split() == [
        'hello.txt']
    out = cli.ok('stat', 'ocli-stat')
    fields = dict(line.strip().split(': ', 1) for line in out.splitlines()
                  if ': ' in line)
    assert fields['Container'] == 'ocli-stat'
    assert fields['Objects'] == '1' and fields['Bytes'] == str(len(data))
    out = cli.ok('stat', 'ocli-stat', 'hello.txt')
    fields = dict(line.strip().split(': ', 1) for line in out.splitlines()
                  if ': ' in line)
    assert fields['ETag'] == md5(data)
    assert fields['Content Type'] == 'text/plain'
    assert float(fields['Meta Mtime']) == pytest.approx(
        os.path.getmtime(tmp / 'hello.txt'), abs=1e-3)
    as_json = json.loads(cli.ok('stat', 'ocli-stat', 'hello.txt', '--json'))
    assert as_json['object'] == 'hello.txt'
    assert as_json['headers']['etag'].strip('"') == md5(data)


def test_list_prefix_delimiter_long_totals(cli, tmp_path):
    src = tmp_path / 'src'
    sizes = {'a/1.txt': 10, 'a/2.txt': 20, 'b/3.bin': 30, 'top.txt': 5}
    for name, size in sizes.items():
        write(src / name, b'x' * size)
    cli.ok('upload', 'ocli-list', '--object-name', '', str(src))
    assert cli.ok('list', 'ocli-list').split() == sorted(sizes)
    assert cli.ok('list', 'ocli-list', '--prefix', 'a/').split() == [
        'a/1.txt', 'a/2.txt']
    assert cli.ok('list', 'ocli-list', '--delimiter', '/').split() == [
        'a/', 'b/', 'top.txt']
    long = cli.ok('list', 'ocli-list', '--long', '--totals').splitlines()
    assert long[-1] == 'total: 4 objects, 65 bytes'
    row = [line for line in long if line.endswith('b/3.bin')][0].split()
    assert row[0] == '30' and row[-1] == 'b/3.bin'
    listed = json.loads(cli.ok('list', 'ocli-list', '--json'))
    assert {e['name']: e['bytes'] for e in listed} == sizes
    # the account listing knows the container
    assert 'ocli-list' in cli.ok('list').split()
    totals = json.loads(cli.ok('list', '--json', '--totals'))['totals']
    assert totals['containers'] >= 1


# -- upload and download -----------------------------------------------------

def test_upload_and_download_directory(cli, tmp_path):
    src = tmp_path / 'work' / 'tree'
    files = {'tree/x.bin': os.urandom(70000), 'tree/sub/y.txt': b'why\n',
             'tree/sub/deeper/z': b''}
    for name, data in files.items():
        write(tmp_path / 'work' / name, data)
    out = cli.ok('upload', 'ocli-tree', 'tree', '--jobs', '3')
    assert sorted(out.split()) == sorted(files)
    assert src.is_dir()
    dest = tmp_path / 'dest'
    dest.mkdir()
    down = Cli(cli.cluster, dest)
    out = down.ok('download', 'ocli-tree', '--jobs', '2')
    assert sorted(out.split()) == sorted(files)
    umask = os.umask(0o022)
    os.umask(umask)
    for name, data in files.items():
        assert (dest / name).read_bytes() == data
        # as open() would make it (not the temporary file's 0600)
        assert (dest / name).stat().st_mode & 0o777 == 0o666 & ~umask
    # one object to a named file, and to stdout
    down.ok('download', 'ocli-tree', 'tree/x.bin', '--output', 'copy.bin')
    assert (dest / 'copy.bin').read_bytes() == files['tree/x.bin']
    proc = down.run('download', 'ocli-tree', 'tree/sub/y.txt', '-o', '-',
                    binary=True)
    assert proc.returncode == 0 and proc.stdout == b'why\n'
    # --prefix
    other = tmp_path / 'other'
    other.mkdir()
    Cli(cli.cluster, other).ok('download', 'ocli-tree', '--prefix',
                               'tree/sub/')
    assert sorted(str(p.relative_to(other)) for p in other.rglob('*')
                  if p.is_file()) == ['tree/sub/deeper/z', 'tree/sub/y.txt']
    # a missing object fails, nothing is written
    err = down.fails('download', 'ocli-tree', 'nope', '-o', 'nope.bin')
    assert 'not found' in err and not (dest / 'nope.bin').exists()


def test_upload_changed_and_skip_identical(cli, tmp_path):
    path = tmp_path / 'work' / 'f.txt'
    write(path, b'one')
    cli.ok('upload', 'ocli-skip', 'f.txt')
    proc = cli.run('upload', 'ocli-skip', 'f.txt', '--changed')
    assert proc.returncode == 0 and proc.stdout == ''
    assert 'skipped f.txt: unchanged' in proc.stderr
    proc = cli.run('upload', 'ocli-skip', 'f.txt', '--skip-identical')
    assert proc.returncode == 0 and proc.stdout == ''
    assert 'skipped f.txt: identical' in proc.stderr
    # same content, new mtime: --changed uploads, --skip-identical not
    os.utime(path, (1000000, 1000000))
    assert cli.run('upload', 'ocli-skip', 'f.txt',
                   '--skip-identical').stdout == ''
    assert cli.ok('upload', 'ocli-skip', 'f.txt', '--changed').split() == [
        'f.txt']
    write(path, b'two')
    assert cli.ok('upload', 'ocli-skip', 'f.txt',
                  '--skip-identical').split() == ['f.txt']
    # download --skip-identical leaves a matching local file alone
    proc = cli.run('download', 'ocli-skip', 'f.txt', '--skip-identical')
    assert proc.returncode == 0 and 'identical' in proc.stderr
    write(path, b'local change')
    cli.ok('download', 'ocli-skip', 'f.txt', '--skip-identical')
    assert path.read_bytes() == b'two'


def test_download_refuses_names_outside_the_directory(cli, api):
    url, headers = api
    requests.put(url + '/ocli-evil', headers=headers)
    # an absolute object name (the server itself refuses '..' segments)
    name = '/tmp/ocli-escape-%s' % os.getpid()
    resp = requests.put(url + '/ocli-evil/' + name, data=b'bad',
                        headers=headers)
    assert resp.status_code == 201
    requests.put(url + '/ocli-evil/fine', data=b'ok', headers=headers)
    err = cli.fails('download', 'ocli-evil')
    assert 'outside the current directory' in err
    assert not os.path.exists(name)
    assert not os.path.exists(os.path.join(cli.cwd, 'tmp'))
    assert open(os.path.join(cli.cwd, 'fine'), 'rb').read() == b'ok'


def test_download_survives_a_stored_mtime_no_clock_has(cli, api):
    url, headers = api
    requests.put(url + '/ocli-nan', headers=headers)
    resp = requests.put(url + '/ocli-nan/o', data=b'data', headers=dict(
        headers, **{'X-Object-Meta-Mtime': 'nan'}))
    assert resp.status_code == 201
    assert cli.ok('download', 'ocli-nan', 'o').split() == ['o']
    assert open(os.path.join(cli.cwd, 'o'), 'rb').read() == b'data'


def test_utf8_metadata_and_names_that_are_not(cli, tmp_path):
    cli.ok('post', 'ocli-utf8', '-m', 'sym:\u20ac', '-m', 'word:caf\u00e9')
    out = cli.ok('stat', 'ocli-utf8')
    assert 'Meta Sym: \u20ac' in out and 'Meta Word: caf\u00e9' in out
    as_json = json.loads(cli.ok('stat', 'ocli-utf8', '--json'))
    assert as_json['headers']['x-container-meta-sym'] == '\u20ac'
    if os.path.exists(SWIFT):   # the UTF-8 bytes swift reads
        proc = subprocess.run(
            [SWIFT, '-A', cli.cluster['auth_url'], '-U', 'test:tester',
             '-K', 'testing', 'stat', 'ocli-utf8'], capture_output=True,
            text=True, env=clean_env(), timeout=TIMEOUT)
        assert proc.returncode == 0 and 'Meta Sym: \u20ac' in proc.stdout
    cli.fails('post', 'ocli-utf8', '-H', 'N\u00e9v: x', code=2)
    # a file name in Latin-1 (not UTF-8): one warning line, the rest go up
    work = os.fsencode(cli.cwd)
    with open(os.path.join(work, b'caf\xe9.txt'), 'wb') as f:
        f.write(b'x')
    write(tmp_path / 'work' / 'fine.txt', b'y')
    proc = cli.run('upload', 'ocli-utf8', 'caf\udce9.txt', 'fine.txt')
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'not valid UTF-8' in proc.stderr
    assert cli.ok('list', 'ocli-utf8').split() == ['fine.txt']


# -- delete, post, copy ------------------------------------------------------

def test_delete_objects_containers_and_all(aio_cluster, tmp_path):
    # the test2 account is used by nothing else in this module
    cli = Cli(aio_cluster, tmp_path, user='test2:tester2', key='testing2')
    for c in ('ocli-d1', 'ocli-d2'):
        write(tmp_path / c / 'o1', b'1')
        write(tmp_path / c / 'o2', b'2')
        cli.ok('upload', c, '--object-name', '', c)
    assert cli.ok('delete', 'ocli-d1', 'o1').split() == ['ocli-d1/o1']
    assert cli.ok('list', 'ocli-d1').split() == ['o2']
    cli.fails('delete', 'ocli-d1', 'o1')
    cli.ok('delete', 'ocli-d1')
    cli.fails('stat', 'ocli-d1')
    # --all asks first; "no" keeps everything
    err = cli.fails('delete', '--all', stdin='n\n')
    assert 'not confirmed' in err
    assert cli.ok('list', 'ocli-d2').split() == ['o1', 'o2']
    cli.ok('delete', '--all', stdin='y\n')
    assert cli.ok('list').split() == []
    write(tmp_path / 'again', b'x')
    cli.ok('upload', 'ocli-d3', 'again')
    cli.ok('delete', '--all', '--yes')
    assert cli.ok('list').split() == []


def test_post_metadata_and_acls(cli, aio_cluster, tmp_path):
    cli.ok('post', 'ocli-post', '-m', 'color:blue', '-r', '.r:*,.rlistings',
           '-w', 'test:tester3')
    out = cli.ok('stat', 'ocli-post')
    assert 'Meta Color: blue' in out
    assert 'Read ACL: .r:*,.rlistings' in out
    assert 'Write ACL: test:tester3' in out
    write(tmp_path / 'work' / 'o', b'data')
    cli.ok('upload', 'ocli-post', 'o')
    cli.ok('post', 'ocli-post', 'o', '-m', 'Shape:round')
    assert 'Meta Shape: round' in cli.ok('stat', 'ocli-post', 'o')
    # the read ACL lets anyone read, the write ACL lets tester3 write
    public = requests.get(aio_cluster['url'] + '/v1/AUTH_test/ocli-post/o')
    assert public.status_code == 200 and public.content == b'data'
    tester3 = Cli(aio_cluster, cli.cwd, user='test:tester3', key='testing3')
    tester3.ok('upload', 'ocli-post', 'o', '--object-name', 'by3')
    assert cli.ok('list', 'ocli-post').split() == ['by3', 'o']
    # account metadata; removing an item with an empty value
    cli.ok('post', '-m', 'ocli:yes')
    assert 'Meta Ocli: yes' in cli.ok('stat')
    cli.ok('post', '-m', 'ocli:')
    assert 'Meta Ocli' not in cli.ok('stat')
    cli.fails('post', '-r', '.r:*', code=2)


def test_copy(cli, api, tmp_path):
    data = write(tmp_path / 'work' / 'src.bin', os.urandom(3000))
    cli.ok('upload', 'ocli-copy', 'src.bin')
    cli.ok('post', 'ocli-copy2')
    cli.ok('copy', 'ocli-copy', 'src.bin', '--destination',
           '/ocli-copy2/dst.bin', '-m', 'copied:yes')
    resp = get(api, '/ocli-copy2/dst.bin')
    assert resp.content == data
    assert resp.headers['X-Object-Meta-Copied'] == 'yes'
    cli.ok('copy', 'ocli-copy', 'src.bin', '-d', '/ocli-copy2')
    assert get(api, '/ocli-copy2/src.bin').content == data
    cli.fails('copy', 'ocli-copy', 'src.bin', '-d', 'nocontainer', code=2)
    cli.fails('copy', 'ocli-copy', 'missing', '-d', '/ocli-copy2/x')
    # a missing destination container is named too, not only the source
    err = cli.fails('copy', 'ocli-copy', 'src.bin', '-d', '/ocli-nocont/x')
    assert 'the container ocli-nocont' in err


def test_tempurl_and_capabilities(cli):
    out = cli.ok('tempurl', 'GET', '60', '/v1/AUTH_test/c/o', 'secret')
    assert out.startswith('/v1/AUTH_test/c/o?temp_url_sig=')
    info = json.loads(cli.ok('capabilities', '--json'))
    assert 'swift' in info and 'tempauth' in info
    text = cli.ok('capabilities')
    assert text.splitlines()[0] == 'swift:'
    assert '  max_file_size: ' in text


# -- progress bar in a terminal ----------------------------------------------

def test_progress_bar_in_a_terminal(cli, tmp_path):
    write(tmp_path / 'work' / 'big.bin', os.urandom(3 * 1024 * 1024))
    status, text = run_in_terminal(
        cli.argv('upload', 'ocli-pty', 'big.bin'), cli.cwd, TIMEOUT)
    assert status == 0, text
    assert '\rupload [' in text and '100%' in text and '/s' in text
    assert '3.0M/3.0M' in text
    # not a terminal: no bar
    proc = cli.run('upload', 'ocli-pty', 'big.bin')
    assert proc.returncode == 0 and 'upload [' not in proc.stderr


# -- interoperability with python-swiftclient ---------------------------------

needs_swift = pytest.mark.skipif(not os.path.exists(SWIFT),
                                 reason='no swift command line in the venv')


def swift(cluster, cwd, *args):
    proc = subprocess.run(
        [SWIFT, '-A', cluster['auth_url'], '-U', 'test:tester',
         '-K', 'testing'] + list(args), capture_output=True, text=True,
        cwd=str(cwd), env=clean_env(), timeout=TIMEOUT)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


@needs_swift
def test_swift_reads_what_objstore_writes_and_back(cli, api, tmp_path):
    data = write(tmp_path / 'work' / 'ours.bin', os.urandom(100000))
    cli.ok('upload', 'ocli-interop', 'ours.bin')
    theirs = tmp_path / 'swift'
    theirs.mkdir()
    swift(cli.cluster, theirs, 'download', 'ocli-interop', 'ours.bin')
    assert (theirs / 'ours.bin').read_bytes() == data
    back = write(theirs / 'theirs.bin', os.urandom(50000))
    swift(cli.cluster, theirs, 'upload', 'ocli-interop', 'theirs.bin')
    cli.ok('download', 'ocli-interop', 'theirs.bin')
    assert (tmp_path / 'work' / 'theirs.bin').read_bytes() == back
    # swift's --changed sees our upload's mtime as its own: no new PUT
    stamp = get(api, '/ocli-interop/ours.bin').headers['X-Timestamp']
    swift(cli.cluster, tmp_path / 'work', 'upload', '--changed',
          'ocli-interop', 'ours.bin')
    assert get(api, '/ocli-interop/ours.bin').headers['X-Timestamp'] == stamp
    # and ours sees swift's
    out = cli.run('upload', 'ocli-interop', '--changed', 'theirs.bin',
                  '--object-name', 'theirs.bin')
    assert out.returncode == 0 and 'unchanged' in out.stderr


# -- large objects -------------------------------------------------------------

@pytest.fixture(scope='module')
def lo_cluster(aio_cluster):
    """The all-in-one cluster, whose proxy runs slo and dlo."""
    return aio_cluster


@pytest.fixture
def slo(lo_cluster, tmp_path):
    """(Cli, api) talking to the proxy with SLO support."""
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    if 'slo' not in requests.get(lo_cluster['url'] + '/info').json():
        pytest.skip('the proxy does not advertise slo in /info')
    return Cli(lo_cluster, work), token_for(lo_cluster)


def test_segmented_upload_resumes_and_downloads(slo, tmp_path):
    cli, api = slo
    data = write(tmp_path / 'work' / 'large.bin', os.urandom(5 * 100000 +
                                                             123))
    proc = cli.run('upload', 'ocli-slo', 'large.bin', '--segment-size',
                   '100000', '--jobs', '3', '--json')
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)[0]
    assert result['segments'] == 6 and result['segments_skipped'] == 0
    segs = cli.ok('list', 'ocli-slo_segments').split()
    assert len(segs) == 6 and segs[0].startswith('large.bin/slo/')
    assert segs[-1].endswith('/%d/100000/00000005' % len(data))
    assert get(api, '/ocli-slo/large.bin').content == data
    # a lost segment is put back, the others are not sent again
    url, headers = api
    requests.delete(url + '/ocli-slo_segments/' + segs[2], headers=headers)
    proc = cli.run('upload', 'ocli-slo', 'large.bin', '-S', '100000',
                   '--json')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]['segments_skipped'] == 5
    cli.ok('download', 'ocli-slo', 'large.bin', '-o', 'back.bin')
    assert (tmp_path / 'work' / 'back.bin').read_bytes() == data
    # the segments go with the manifest
    cli.ok('delete', 'ocli-slo', 'large.bin')
    assert cli.ok('list', 'ocli-slo_segments').split() == []


@needs_swift
def test_segmented_interop_with_swift(slo, tmp_path):
    cli, _ = slo
    data = write(tmp_path / 'work' / 'seg.bin', os.urandom(250000))
    cli.ok('upload', 'ocli-slo2', 'seg.bin', '-S', '100000')
    theirs = tmp_path / 'swift'
    theirs.mkdir()
    swift(cli.cluster, theirs, 'download', 'ocli-slo2', 'seg.bin')
    assert (theirs / 'seg.bin').read_bytes() == data
    back = write(theirs / 'tseg.bin', os.urandom(250000))
    swift(cli.cluster, theirs, 'upload', '--use-slo', '-S', '100000',
          'ocli-slo2', 'tseg.bin')
    cli.ok('download', 'ocli-slo2', 'tseg.bin')
    assert (tmp_path / 'work' / 'tseg.bin').read_bytes() == back
    # our resume logic recognises swift's segments
    proc = cli.run('upload', 'ocli-slo2', 'tseg.bin', '-S', '100000',
                   '--json')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]['segments_skipped'] == 3
