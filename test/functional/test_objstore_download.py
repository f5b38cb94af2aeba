"""`objstore download` of large objects in parallel parts, against a real
all-in-one cluster.

An SLO comes down segment by segment (each GET of a segment checked
against the manifest), written at its offset in a temporary file that is
renamed only when every part is verified; a plain object above the size
threshold comes down in ranges and is checked against its ETag as a
whole. A damaged segment fails the download with one line and exit 1,
leaving no file (and an existing file untouched). ``--output -`` keeps
one stream.
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest
import requests

from objstore.cli.client.parts import PLAIN_THRESHOLD
from test.conftest import load_test_module

cli_helpers = load_test_module('cli_helpers')
clean_env = cli_helpers.clean_env
run_in_terminal = cli_helpers.run_in_terminal

TIMEOUT = 60
SEG = 100000


def md5(data):
    return hashlib.md5(data).hexdigest()


class Cli:
    def __init__(self, cluster, cwd):
        self.cluster, self.cwd = cluster, str(cwd)

    def argv(self, *args):
        return [sys.executable, '-m', 'objstore.cli.client.main',
                '-A', self.cluster['auth_url'], '-U', 'test:tester',
                '-K', 'testing'] + [str(a) for a in args]

    def run(self, *args, binary=False):
        return subprocess.run(self.argv(*args), capture_output=True,
                              timeout=TIMEOUT,
                              cwd=self.cwd, env=clean_env(),
                              text=not binary)

    def ok(self, *args, **kwargs):
        proc = self.run(*args, **kwargs)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc


@pytest.fixture
def work(tmp_path):
    path = tmp_path / 'work'
    path.mkdir()
    return path


@pytest.fixture
def cli(aio_cluster, work):
    if 'slo' not in requests.get(aio_cluster['url'] + '/info').json():
        pytest.skip('the proxy does not advertise slo in /info')
    return Cli(aio_cluster, work)


@pytest.fixture
def api(aio_cluster):
    resp = requests.get(aio_cluster['auth_url'], headers={
        'X-Auth-User': 'test:tester', 'X-Auth-Key': 'testing'})
    return resp.headers['X-Storage-Url'], {
        'X-Auth-Token': resp.headers['X-Auth-Token']}


def leftovers(directory):
    return [n for n in os.listdir(str(directory))
            if n.startswith('.objstore-')]


def upload_slo(cli, work, container, name, size):
    data = os.urandom(size)
    (work / name).write_bytes(data)
    cli.ok('upload', container, name, '--segment-size', SEG)
    (work / name).unlink()
    return data


def test_slo_with_an_uneven_last_segment(cli, work, api):
    data = upload_slo(cli, work, 'dl-slo', 'big.bin', 5 * SEG + 123)
    url, headers = api
    manifest = requests.get(url + '/dl-slo/big.bin', headers=headers,
                            params={'multipart-manifest': 'get'}).json()
    assert [e['bytes'] for e in manifest] == [SEG] * 5 + [123]
    proc = cli.ok('download', 'dl-slo', 'big.bin', '--jobs', '3', '--json')
    assert (work / 'big.bin').read_bytes() == data
    assert json.loads(proc.stdout) == [
        {'object': 'big.bin', 'path': 'big.bin', 'bytes': len(data)}]
    assert leftovers(work) == []
    # one part at a time gives the same bytes
    cli.ok('download', 'dl-slo', 'big.bin', '--jobs', '1', '-o', 'one.bin')
    assert (work / 'one.bin').read_bytes() == data


def test_corrupted_segment_leaves_no_file(cli, work, api):
    data = upload_slo(cli, work, 'dl-bad', 'big.bin', 3 * SEG + 7)
    url, headers = api
    manifest = requests.get(url + '/dl-bad/big.bin', headers=headers,
                            params={'multipart-manifest': 'get'}).json()
    # overwrite the second segment after the manifest was written
    seg = manifest[1]['name']
    resp = requests.put(url + seg, headers=headers, data=os.urandom(SEG))
    assert resp.status_code == 201
    proc = cli.run('download', 'dl-bad', 'big.bin')
    assert proc.returncode == 1, proc.stderr
    assert 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('objstore: error: ')
    assert 'part 2 of 4' in proc.stderr
    assert 'does not match the manifest' in proc.stderr
    assert not (work / 'big.bin').exists()
    assert leftovers(work) == []
    # a good file already there is not replaced by a damaged download
    (work / 'keep.bin').write_bytes(b'mine')
    proc = cli.run('download', 'dl-bad', 'big.bin', '-o', 'keep.bin')
    assert proc.returncode == 1
    assert (work / 'keep.bin').read_bytes() == b'mine'
    assert leftovers(work) == []
    # with the segment put back, the same download succeeds
    good = data[SEG:2 * SEG]
    requests.put(url + seg, headers=headers, data=good)
    cli.ok('download', 'dl-bad', 'big.bin')
    assert (work / 'big.bin').read_bytes() == data


def test_missing_segment_fails_cleanly(cli, work, api):
    upload_slo(cli, work, 'dl-gone', 'big.bin', 2 * SEG + 1)
    url, headers = api
    manifest = requests.get(url + '/dl-gone/big.bin', headers=headers,
                            params={'multipart-manifest': 'get'}).json()
    requests.delete(url + manifest[0]['name'], headers=headers)
    proc = cli.run('download', 'dl-gone', 'big.bin')
    assert proc.returncode == 1
    assert 'part 1 of 3' in proc.stderr and 'not found' in proc.stderr
    assert not (work / 'big.bin').exists() and leftovers(work) == []


def test_stdout_keeps_one_stream(cli, work):
    data = upload_slo(cli, work, 'dl-out', 'big.bin', 3 * SEG + 11)
    proc = cli.ok('download', 'dl-out', 'big.bin', '-o', '-', binary=True)
    assert proc.stdout == data
    assert os.listdir(str(work)) == []


def test_dlo_still_downloads(cli, work, api):
    url, headers = api
    pieces = [os.urandom(1000), os.urandom(500)]
    requests.put(url + '/dl-dlo', headers=headers)
    for i, piece in enumerate(pieces):
        requests.put(url + '/dl-dlo/parts/%d' % i, headers=headers,
                     data=piece)
    requests.put(url + '/dl-dlo/whole', data=b'', headers=dict(
        headers, **{'X-Object-Manifest': 'dl-dlo/parts/'}))
    proc = cli.ok('download', 'dl-dlo', 'whole')
    assert (work / 'whole').read_bytes() == b''.join(pieces)
    assert 'not verified' in proc.stderr


def test_large_plain_object_in_ranges(cli, work, api):
    url, headers = api
    data = os.urandom(PLAIN_THRESHOLD + 12345)
    requests.put(url + '/dl-plain', headers=headers)
    resp = requests.put(url + '/dl-plain/large', headers=headers, data=data)
    assert resp.status_code == 201
    cli.ok('download', 'dl-plain', 'large', '--jobs', '4')
    got = (work / 'large').read_bytes()
    assert len(got) == len(data) and md5(got) == md5(data)
    assert leftovers(work) == []


def test_progress_bar_counts_every_part(cli, work):
    data = upload_slo(cli, work, 'dl-pty', 'big.bin', 20 * SEG)
    status, text = run_in_terminal(
        cli.argv('download', 'dl-pty', '--jobs', '4'), cli.cwd, TIMEOUT)
    assert status == 0, text
    # the listing gave the total; the parts' bytes add up to all of it
    assert '\rdownload [' in text and '100%' in text
    assert '1.9M/1.9M' in text
    assert (work / 'big.bin').read_bytes() == data
