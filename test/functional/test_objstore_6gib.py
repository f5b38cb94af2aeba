"""A 6 GiB object through the `objstore` command line, in SLO segments.

Issue 8 asks to show an object beyond the 5 GiB single-object limit go up
in segments and come back with a matching checksum. The file is sparse
(truncate to 6 GiB, then random blocks at known offsets, including both
sides of a segment boundary and the last bytes) so making it costs no
time, yet a segment shifted, dropped or swapped changes the MD5.

To keep disk and time low the test runs a cluster of its own: one storage
node and one replica, so the object lives on disk once (plus the
download). The round trip is CPU-bound on the proxy and the object server
(every byte is hashed by the client, the proxy path and the object
server); on a 2-core machine it takes well under two minutes.

python-swiftclient's `swift download` of the same object is checked too
(interoperability at a size beyond 5 GiB), streamed into an MD5 so it
costs no disk; the smaller SLO interop tests, both ways, are in
test_objstore_cli.py.
"""
import hashlib
import io
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
import requests

from objstore.cli import aio
from test.conftest import free_aio_base, free_port

GIB = 1024 ** 3
SIZE = 6 * GIB
SEGMENT = 256 * 1024 ** 2
JOBS = 4
BLOCK = 4096
# disk needed: the stored segments + the source's written blocks + the
# download, with some room to spare
NEEDED = 2 * SIZE + 2 * GIB
TIMEOUT = 600


def block_offsets(size=SIZE, segment=SEGMENT):
    """Where random blocks go: the start, both sides of the boundary
    after segment 0 and in the middle, a third of the way, the end."""
    middle = (size // segment // 2) * segment
    return sorted({0, segment - BLOCK, segment, middle - BLOCK, middle,
                   size // 3, size - BLOCK})


def make_sparse_file(path, size=SIZE):
    with open(path, 'wb') as f:
        f.truncate(size)
        for offset in block_offsets(size):
            f.seek(offset)
            f.write(os.urandom(BLOCK))


@pytest.fixture(scope='module')
def small_cluster(tmp_path_factory):
    """An all-in-one cluster with one node and one replica; its storage
    is removed afterwards (pytest keeps old temp dirs, 6 GiB each)."""
    root = tmp_path_factory.mktemp('six-gib')
    free = shutil.disk_usage(str(root)).free
    if free < NEEDED:
        pytest.skip('needs %.1f GiB free disk for a 6 GiB object, %s has '
                    '%.1f GiB' % (NEEDED / GIB, root, free / GIB))
    var = str(root / 'var')
    aio.setup(var, out=io.StringIO(), base_port=free_aio_base(1), nodes=1,
              replicas=1, workers=2, port=free_port())
    conf = os.path.join(var, 'etc', 'objstore.conf')
    saved = os.environ.get('OBJSTORE_CONF')
    os.environ['OBJSTORE_CONF'] = conf
    try:
        aio.start(var, out=io.StringIO(), with_daemons=False)
        url = 'http://127.0.0.1:%d' % aio.proxy_port(var)
        yield {'var': var, 'url': url, 'auth_url': url + '/auth/v1.0',
               'root': root}
    finally:
        aio.stop(var, out=io.StringIO())
        shutil.rmtree(os.path.join(var, 'srv'), ignore_errors=True)
        if saved is None:
            os.environ.pop('OBJSTORE_CONF', None)
        else:
            os.environ['OBJSTORE_CONF'] = saved


SWIFT = os.path.join(os.path.dirname(sys.executable), 'swift')


def clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith(('ST_', 'OS_', 'SWIFTCLIENT_'))}


def objstore(cluster, *args):
    argv = [sys.executable, '-m', 'objstore.cli.client.main',
            '-A', cluster['auth_url'], '-U', 'test:tester', '-K', 'testing']
    proc = subprocess.run(argv + [str(a) for a in args], capture_output=True,
                          text=True, timeout=TIMEOUT, env=clean_env())
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


class Background:
    """fn() in a thread; result() waits for it (and re-raises)."""

    def __init__(self, fn, *args):
        self.out, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(fn,) + args)
        self.thread.start()

    def _run(self, fn, *args):
        try:
            self.out = fn(*args)
        except BaseException as e:  # handed to the test by result()
            self.error = e

    def result(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.out


def file_md5(path):
    """Hex MD5 of a file (hashlib drops the GIL on large buffers, so
    this runs beside the test's other work in a thread)."""
    digest = hashlib.md5()
    with open(path, 'rb') as f:
        while True:
            chunk = f.read(8 * 1024 ** 2)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def test_block_offsets_straddle_segment_boundaries():
    offsets = block_offsets()
    assert offsets[0] == 0 and offsets[-1] == SIZE - BLOCK
    assert SEGMENT - BLOCK in offsets and SEGMENT in offsets
    # the blocks do not overlap
    assert all(b - a >= BLOCK for a, b in zip(offsets, offsets[1:]))


@pytest.fixture(scope='module')
def uploaded(small_cluster):
    """The 6 GiB file uploaded with `objstore upload --segment-size`;
    yields (cluster, Background giving the source's MD5)."""
    cluster, root = small_cluster, small_cluster['root']
    source = str(root / 'six.bin')
    make_sparse_file(source)
    try:
        started = time.monotonic()
        out = objstore(cluster, 'upload', 'big', source, '--object-name',
                       'six.bin', '--segment-size', SEGMENT, '--jobs', JOBS,
                       '--json')
        print('\n6 GiB upload via objstore: %.1f s'
              % (time.monotonic() - started))
        assert '"segments": %d' % (SIZE // SEGMENT) in out, out
        assert '"bytes": %d' % SIZE in out, out
        # hashed while the downloads run
        yield cluster, Background(file_md5, source)
    finally:
        os.unlink(source)


def test_six_gib_object_is_a_large_object(uploaded):
    cluster, _ = uploaded
    token = requests.get(cluster['auth_url'], headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'}).headers
    head = requests.head(token['X-Storage-Url'] + '/big/six.bin',
                         headers={'X-Auth-Token': token['X-Auth-Token']})
    assert head.status_code == 200
    assert int(head.headers['Content-Length']) == SIZE > 5 * GIB
    assert head.headers['X-Static-Large-Object'] == 'True'


def test_objstore_download_has_the_same_md5(uploaded):
    cluster, source_md5 = uploaded
    back = str(cluster['root'] / 'six.back')
    try:
        started = time.monotonic()
        objstore(cluster, 'download', 'big', 'six.bin', '--output', back,
                 '--jobs', JOBS, '--json')
        downloaded = time.monotonic()
        assert os.path.getsize(back) == SIZE
        assert file_md5(back) == source_md5.result()
        print('\n6 GiB download via objstore: %.1f s, md5 check %.1f s'
              % (downloaded - started, time.monotonic() - downloaded))
    finally:
        if os.path.exists(back):
            os.unlink(back)


@pytest.mark.skipif(not os.path.exists(SWIFT),
                    reason='python-swiftclient\'s swift is not installed')
def test_swift_download_has_the_same_md5(uploaded):
    """`swift download -o -` of what `objstore upload` wrote, hashed as
    it streams (no second copy on disk)."""
    cluster, source_md5 = uploaded
    started = time.monotonic()
    proc = subprocess.Popen(
        [SWIFT, '-A', cluster['auth_url'], '-U', 'test:tester', '-K',
         'testing', 'download', 'big', 'six.bin', '-o', '-'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    errors = Background(proc.stderr.read)
    digest, size = hashlib.md5(), 0
    while True:
        chunk = proc.stdout.read(8 * 1024 ** 2)
        if not chunk:
            break
        size += len(chunk)
        digest.update(chunk)
    assert proc.wait(TIMEOUT) == 0, errors.result()
    assert size == SIZE
    assert digest.hexdigest() == source_md5.result()
    print('\n6 GiB download via swift: %.1f s' % (time.monotonic() - started))
