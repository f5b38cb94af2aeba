"""Tests for the ring file format (rings/ringdata.py)."""
import array
import gzip
import io
import os
import struct

import msgpack
import pytest

from rings.ringdata import DEV_FIELDS, MAGIC, RingData, RingFileError


def make_dev(dev_id, **extra):
    d = {'id': dev_id, 'region': 1 + dev_id % 2, 'zone': dev_id % 3,
         'ip': '10.0.0.%d' % dev_id, 'port': 6200 + dev_id,
         'replication_ip': '10.1.0.%d' % dev_id,
         'replication_port': 6300 + dev_id, 'device': 'sd%d' % dev_id,
         'weight': 100.0 + dev_id, 'meta': 'rack %d' % dev_id}
    d.update(extra)
    return d


def make_ring(part_power=4, replicas=3, ndevs=5, holes=(), version=7):
    devs = [None if i in holes else make_dev(i) for i in range(ndevs)]
    live = [i for i in range(ndevs) if i not in holes]
    parts = 1 << part_power
    rows = [array.array('I', [live[(p + r) % len(live)] for p in range(parts)])
            for r in range(replicas)]
    return RingData(rows, devs, part_power, version)


def raw_file(magic=MAGIC, header=None, rows_bytes=b'', hlen=None):
    """Build an uncompressed ring body by hand (to break it on purpose)."""
    blob = msgpack.packb(header, use_bin_type=True)
    return (magic + struct.pack('>I', len(blob) if hlen is None else hlen)
            + blob + rows_bytes)


def good_header(**changes):
    h = {'format': 1, 'version': 1, 'part_power': 2, 'replicas': 1,
         'devs': [make_dev(0), make_dev(1)], 'id_bytes': 2,
         'byteorder': 'little'}
    h.update(changes)
    return h


class TestRoundTrip:
    def test_round_trip(self, tmp_path):
        ring = make_ring(part_power=6, replicas=3, ndevs=6, holes=(2, 4))
        path = str(tmp_path / 'object.ring.gz')
        ring.save(path)
        back = RingData.load(path)
        assert back.part_power == 6
        assert back.parts == 64
        assert back.replicas == 3
        assert back.version == 7
        assert back.devs == ring.devs
        assert back.devs[2] is None and back.devs[4] is None
        assert [list(r) for r in back.replica2part2dev] == \
            [list(r) for r in ring.replica2part2dev]

    def test_only_server_fields_saved(self, tmp_path):
        devs = [make_dev(0, parts=12, builder_secret='x'), make_dev(1)]
        ring = RingData([array.array('I', [0, 1])], devs, 1)
        path = str(tmp_path / 'r.ring.gz')
        ring.save(path)
        back = RingData.load(path)
        assert set(back.devs[0]) == set(DEV_FIELDS)
        assert back.devs[0]['meta'] == 'rack 0'

    def test_unicode_meta_and_device(self, tmp_path):
        devs = [make_dev(0, meta='b\u00e2timent \u2603', device='d\u00e9v')]
        ring = RingData([array.array('I', [0] * 4)], devs, 2)
        path = str(tmp_path / 'r.ring.gz')
        ring.save(path)
        assert RingData.load(path).devs == devs

    def test_many_devices_use_wide_ids(self, tmp_path):
        n = 0x10000 + 3
        devs = [None] * n
        devs[0] = make_dev(0)
        devs[n - 1] = make_dev(n - 1)
        row = array.array('I', [0, n - 1, 0, n - 1])
        ring = RingData([row], devs, 2)
        assert ring.header()['id_bytes'] == 4
        path = str(tmp_path / 'r.ring.gz')
        ring.save(path)
        back = RingData.load(path)
        assert list(back.replica2part2dev[0]) == [0, n - 1, 0, n - 1]
        assert back.devs[n - 1]['id'] == n - 1

    def test_same_ring_same_bytes(self, tmp_path):
        a, b = str(tmp_path / 'a.gz'), str(tmp_path / 'b.gz')
        make_ring().save(a)
        make_ring().save(b)
        with open(a, 'rb') as fa, open(b, 'rb') as fb:
            assert fa.read() == fb.read()

    def test_different_ring_different_bytes(self, tmp_path):
        a, b = str(tmp_path / 'a.gz'), str(tmp_path / 'b.gz')
        make_ring(version=1).save(a)
        make_ring(version=2).save(b)
        with open(a, 'rb') as fa, open(b, 'rb') as fb:
            assert fa.read() != fb.read()

    def test_file_layout_is_documented_one(self, tmp_path):
        ring = make_ring(part_power=3, replicas=2, ndevs=3)
        path = str(tmp_path / 'r.ring.gz')
        ring.save(path)
        with gzip.open(path, 'rb') as f:
            body = f.read()
        assert body[:8] == b'OBJRING1'
        (hlen,) = struct.unpack('>I', body[8:12])
        header = msgpack.unpackb(body[12:12 + hlen], raw=False)
        assert header['part_power'] == 3 and header['replicas'] == 2
        assert header['id_bytes'] == 2 and header['byteorder'] == 'little'
        rows = body[12 + hlen:]
        assert len(rows) == 2 * 8 * 2
        first = struct.unpack('<8H', rows[:16])
        assert list(first) == list(ring.replica2part2dev[0])

    def test_save_replaces_existing(self, tmp_path):
        path = str(tmp_path / 'r.ring.gz')
        make_ring(version=1).save(path)
        make_ring(version=2).save(path)
        assert RingData.load(path).version == 2


class TestAtomicSave:
    def test_no_temp_files_left(self, tmp_path):
        path = str(tmp_path / 'r.ring.gz')
        make_ring().save(path)
        make_ring(version=9).save(path)
        assert os.listdir(tmp_path) == ['r.ring.gz']

    def test_failed_save_leaves_old_file_and_no_temp(self, tmp_path):
        path = str(tmp_path / 'r.ring.gz')
        make_ring(version=1).save(path)
        broken = make_ring()
        broken.replica2part2dev[1] = array.array('I', [0, 1])  # short row
        with pytest.raises(ValueError):
            broken.save(path)
        assert os.listdir(tmp_path) == ['r.ring.gz']
        assert RingData.load(path).version == 1

    def test_file_is_readable_by_others(self, tmp_path):
        path = str(tmp_path / 'r.ring.gz')
        make_ring().save(path)
        assert os.stat(path).st_mode & 0o777 == 0o644


class TestBadFiles:
    def _write_gz(self, path, body):
        with gzip.open(path, 'wb') as f:
            f.write(body)

    def test_missing_file(self, tmp_path):
        with pytest.raises(RingFileError):
            RingData.load(str(tmp_path / 'absent'))

    def test_garbage_not_gzip(self, tmp_path):
        path = tmp_path / 'r.gz'
        path.write_bytes(b'this is plainly not gzip data' * 10)
        with pytest.raises(RingFileError):
            RingData.load(str(path))

    def test_empty_file(self, tmp_path):
        path = tmp_path / 'r.gz'
        path.write_bytes(b'')
        with pytest.raises(RingFileError):
            RingData.load(str(path))

    def test_gzip_with_corrupt_stream(self, tmp_path):
        good = str(tmp_path / 'good.gz')
        make_ring(part_power=8).save(good)
        with open(good, 'rb') as f:
            data = bytearray(f.read())
        for i in range(20, len(data) - 8):
            data[i] ^= 0x5A
        path = tmp_path / 'r.gz'
        path.write_bytes(bytes(data))
        with pytest.raises(RingFileError):
            RingData.load(str(path))

    def test_wrong_magic(self, tmp_path):
        path = str(tmp_path / 'r.gz')
        self._write_gz(path, raw_file(b'NOTARING', good_header(),
                                      b'\0' * 8))
        with pytest.raises(RingFileError):
            RingData.load(path)

    def test_pickle_is_not_a_ring(self, tmp_path):
        import pickle
        path = str(tmp_path / 'r.gz')
        self._write_gz(path, pickle.dumps({'devs': []}))
        with pytest.raises(RingFileError):
            RingData.load(path)

    @pytest.mark.parametrize('keep', [0, 5, 8, 10, 12, 30])
    def test_truncated_body(self, tmp_path, keep):
        good = str(tmp_path / 'good.gz')
        make_ring(part_power=5).save(good)
        with gzip.open(good, 'rb') as f:
            body = f.read()
        path = str(tmp_path / 'r.gz')
        self._write_gz(path, body[:keep])
        with pytest.raises(RingFileError):
            RingData.load(path)

    @pytest.mark.parametrize('cut', [1, 2, 50])
    def test_truncated_rows(self, tmp_path, cut):
        good = str(tmp_path / 'good.gz')
        make_ring(part_power=5).save(good)
        with gzip.open(good, 'rb') as f:
            body = f.read()
        path = str(tmp_path / 'r.gz')
        self._write_gz(path, body[:-cut])
        with pytest.raises(RingFileError):
            RingData.load(path)

    @pytest.mark.parametrize('fraction', [0.3, 0.6, 0.95])
    def test_truncated_compressed_file(self, tmp_path, fraction):
        good = str(tmp_path / 'good.gz')
        make_ring(part_power=8).save(good)
        with open(good, 'rb') as f:
            data = f.read()
        path = tmp_path / 'r.gz'
        path.write_bytes(data[:int(len(data) * fraction)])
        with pytest.raises(RingFileError):
            RingData.load(str(path))

    def test_row_names_unknown_device(self, tmp_path):
        devs = [make_dev(0), make_dev(1)]
        ring = RingData([array.array('I', [0, 1, 2, 1])], devs, 2)
        path = str(tmp_path / 'r.gz')
        ring.save(path)
        with pytest.raises(RingFileError):
            RingData.load(path)

    def test_row_names_removed_device(self, tmp_path):
        # id 1 is a hole (a removed device): a server could not use it
        devs = [make_dev(0), None, make_dev(2)]
        ring = RingData([array.array('I', [0, 2, 1, 0])], devs, 2)
        path = str(tmp_path / 'r.gz')
        ring.save(path)
        with pytest.raises(RingFileError):
            RingData.load(path)

    def test_header_length_beyond_file(self, tmp_path):
        path = str(tmp_path / 'r.gz')
        self._write_gz(path, raw_file(header=good_header(), hlen=10 ** 6))
        with pytest.raises(RingFileError):
            RingData.load(path)

    @pytest.mark.parametrize('changes', [
        {'format': 99},
        {'id_bytes': 3},
        {'part_power': -1},
        {'part_power': 'x'},
        {'replicas': 0},
    ])
    def test_bad_header_values(self, tmp_path, changes):
        path = str(tmp_path / 'r.gz')
        self._write_gz(path, raw_file(header=good_header(**changes),
                                      rows_bytes=b'\0' * 8))
        with pytest.raises(RingFileError):
            RingData.load(path)

    def test_missing_header_key(self, tmp_path):
        header = good_header()
        del header['devs']
        path = str(tmp_path / 'r.gz')
        self._write_gz(path, raw_file(header=header, rows_bytes=b'\0' * 8))
        with pytest.raises(RingFileError):
            RingData.load(path)

    def test_header_not_msgpack(self, tmp_path):
        body = MAGIC + struct.pack('>I', 4) + b'\xc1\xc1\xc1\xc1'
        path = str(tmp_path / 'r.gz')
        self._write_gz(path, body)
        with pytest.raises(RingFileError):
            RingData.load(path)

    def test_hand_built_file_loads(self, tmp_path):
        # the same helper with a valid header gives a loadable ring, so the
        # failures above are due to the one thing each breaks
        path = str(tmp_path / 'r.gz')
        rows = struct.pack('<4H', 0, 1, 1, 0)
        self._write_gz(path, raw_file(header=good_header(), rows_bytes=rows))
        ring = RingData.load(path)
        assert list(ring.replica2part2dev[0]) == [0, 1, 1, 0]
        assert ring.version == 1


def test_serialize_to_memory_matches_file(tmp_path):
    ring = make_ring()
    buf = io.BytesIO()
    ring.serialize(buf)
    path = str(tmp_path / 'r.gz')
    ring.save(path)
    with gzip.open(path, 'rb') as f:
        assert f.read() == buf.getvalue()
