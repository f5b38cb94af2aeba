"""Which headers cross the proxy in each direction."""
import re
import time

from objstore.proxy.headers import (backend_headers, client_headers,
                                    is_internal, new_trans_id)


def test_clients_cannot_steer_the_storage_nodes():
    sent = {
        'X-Object-Meta-Color': 'blue', 'Content-Type': 'a/b',
        'ETag': 'abc', 'X-Delete-At': '2000000000', 'Range': 'bytes=1-2',
        'If-None-Match': '*', 'X-Container-Read': '.r:*',
        'X-Remove-Container-Meta-A': 'x',
        # none of these may reach a node
        'X-Timestamp': '1.0', 'X-Backend-Replication': 'true',
        'X-Backend-Anything': 'x', 'X-Object-Sysmeta-Secret': 's',
        'X-Container-Sysmeta-S': 's', 'X-Remove-Account-Sysmeta-S': 'x',
        'X-Container-Host': '1.2.3.4:5', 'X-Container-Partition': '1',
        'X-Container-Device': 'sda', 'X-Account-Host': '1.2.3.4:5',
        'X-Size': '1', 'X-Etag': 'e', 'X-Put-Timestamp': '1',
        'X-Object-Count': '9', 'X-Bytes-Used': '9',
        'Content-Length': '5', 'Transfer-Encoding': 'chunked',
        'Connection': 'close', 'Host': 'h', 'Expect': '100-continue',
        'X-Auth-Token': 'AUTH_tk', 'X-Delete-After': '5',
        'X-Copy-From': 'c/o',
    }
    assert backend_headers(sent) == {
        'X-Object-Meta-Color': 'blue', 'Content-Type': 'a/b',
        'ETag': 'abc', 'X-Delete-At': '2000000000', 'Range': 'bytes=1-2',
        'If-None-Match': '*', 'X-Container-Read': '.r:*',
        'X-Remove-Container-Meta-A': 'x'}


def test_answers_lose_internal_headers():
    pairs = [('Content-Length', '3'), ('Etag', 'x'),
             ('X-Backend-Timestamp', '1'), ('X-Object-Sysmeta-A', 'b'),
             ('Connection', 'keep-alive'), ('Date', 'then'),
             ('X-Object-Meta-A', 'b')]
    assert client_headers(pairs) == [('Content-Length', '3'), ('Etag', 'x'),
                                     ('X-Object-Meta-A', 'b')]


def test_is_internal():
    assert is_internal('X-Backend-Foo') and is_internal('x-remove-object-'
                                                         'sysmeta-a')
    assert not is_internal('X-Object-Meta-Backend')


def test_trans_ids_are_unique_and_carry_the_time():
    ids = {new_trans_id('-r1') for _ in range(100)}
    assert len(ids) == 100
    one = ids.pop()
    match = re.match(r'^tx[0-9a-f]{21}-([0-9a-f]{10})-r1$', one)
    assert match
    assert abs(int(match.group(1), 16) - time.time()) < 5


def test_trusted_requests_carry_system_metadata_but_no_backend_headers():
    sent = {'X-Object-Sysmeta-Slo-Size': '10', 'X-Remove-Container-Sysmeta'
            '-A': 'x', 'X-Backend-Storage-Policy': '1', 'X-Object-Meta-A': 'b'}
    assert set(backend_headers(sent, trusted=True)) == {
        'X-Object-Sysmeta-Slo-Size', 'X-Remove-Container-Sysmeta-A',
        'X-Object-Meta-A'}
    assert set(backend_headers(sent)) == {'X-Object-Meta-A'}


def test_trusted_answers_keep_system_metadata_for_middleware():
    pairs = [('X-Object-Sysmeta-Symlink-Target', 'c/o'),
             ('X-Backend-Timestamp', '1'), ('Content-Length', '0')]
    assert client_headers(pairs, trusted=True) == [
        ('X-Object-Sysmeta-Symlink-Target', 'c/o'), ('Content-Length', '0')]
    assert client_headers(pairs) == [('Content-Length', '0')]
