"""Where the object server sends its container updates, and how."""
import socket

import pytest

from objstore.obj import updates


def test_no_container_named():
    assert updates.parse_targets({}) == ([], None)


def test_targets_parse():
    targets, part = updates.parse_targets({
        'X-Container-Host': '10.0.0.1:6201, [::1]:6301',
        'X-Container-Partition': '17',
        'X-Container-Device': 'sda, sdb'})
    assert targets == [('10.0.0.1', 6201, 'sda'), ('::1', 6301, 'sdb')]
    assert part == '17'


@pytest.mark.parametrize('headers', [
    {'X-Container-Host': '1.2.3.4:5'},
    {'X-Container-Host': 'nohost', 'X-Container-Partition': '1',
     'X-Container-Device': 'sda'},
    {'X-Container-Host': '1.2.3.4:99999', 'X-Container-Partition': '1',
     'X-Container-Device': 'sda'},
    {'X-Container-Host': '1.2.3.4:5', 'X-Container-Partition': 'x',
     'X-Container-Device': 'sda'},
    {'X-Container-Host': '1.2.3.4:5,1.2.3.4:6',
     'X-Container-Partition': '1', 'X-Container-Device': 'sda'},
    {'X-Container-Host': '1.2.3.4:5', 'X-Container-Partition': '1',
     'X-Container-Device': 'a/b'}])
def test_malformed_targets_raise(headers):
    with pytest.raises(ValueError):
        updates.parse_targets(headers)


def test_unreachable_container_server_fails_and_is_saved(tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    failed = updates.update_container(
        b'secret', [('127.0.0.1', port, 'sdc')], '3', 'DELETE', 'a', 'c',
        'o', {'X-Timestamp': '1700000000.00000'}, timeout=2)
    assert failed == [('127.0.0.1', port, 'sdc')]
    from objstore.obj import async_pending
    updates.save_pending(str(tmp_path), 'f' * 32, '1700000000.00000',
                         failed, '3', 'DELETE', 'a', 'c', 'o',
                         {'X-Timestamp': '1700000000.00000'})
    path, = list(async_pending.iter_pending(str(tmp_path)))
    assert path.endswith('/async_pending/fff/' + 'f' * 32 +
                         '-1700000000.00000')
    update = async_pending.load(path)
    assert update['op'] == 'DELETE'
    assert update['container_host'] == '127.0.0.1:%d' % port


# -- UpdateBatcher (with a real container server: functional tests) ------

def test_an_unreachable_container_server_fails_the_update():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    batcher = updates.UpdateBatcher(b'secret', 2)
    assert batcher.update([('127.0.0.1', port, 'sdc')], '3', 'PUT', 'a',
                          'c', 'o', {'X-Timestamp': '1700000000.00000',
                                     'X-Size': '1'}) == \
        [('127.0.0.1', port, 'sdc')]


def test_put_update_headers_take_the_overrides():
    plain = updates.put_update_headers({'X-Object-Meta-A': 'b'}, 3,
                                       'text/plain', 'e')
    assert plain == {'X-Size': '3', 'X-Content-Type': 'text/plain',
                     'X-Etag': 'e'}
    meta = {'X-Object-Sysmeta-Container-Update-Override-Size': '99',
            'X-Object-Sysmeta-Container-Update-Override-Etag': 'm; slo_etag=s',
            'X-Object-Sysmeta-Container-Update-Override-Content-Type':
                'a/b;symlink_target=c/o'}
    assert updates.put_update_headers(meta, 3, 'text/plain', 'e') == {
        'X-Size': '99', 'X-Content-Type': 'a/b;symlink_target=c/o',
        'X-Etag': 'm; slo_etag=s'}


def test_a_bad_size_override_is_ignored():
    meta = {'x-object-sysmeta-container-update-override-size': 'lots'}
    assert updates.put_update_headers(meta, 3, 't', 'e')['X-Size'] == '3'
