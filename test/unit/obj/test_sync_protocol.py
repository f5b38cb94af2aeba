"""The sync protocol's pure parts: frames, header checks, want decisions."""
import hashlib
import struct
import time

import msgpack
import pytest

from objstore.common.timestamp import Timestamp
from objstore.obj import sync_protocol as proto
from rings.ring import hash_path

NOW = time.time()
HASH = 'a' * 29 + 'abc'


def ts(offset):
    return Timestamp(NOW - 1000 + offset).internal


def data_meta(t, body=b'hello', name='/a/c/o'):
    return {'name': name, 'X-Timestamp': t, 'Content-Length': len(body),
            'ETag': hashlib.md5(body).hexdigest(),
            'Content-Type': 'text/plain'}


def events_of(stream, step):
    """Feed ``stream`` ``step`` bytes at a time; collect the events."""
    dec = proto.FrameDecoder()
    out = []
    for i in range(0, len(stream), step):
        dec.feed(stream[i:i + step])
        while True:
            event = dec.next_event()
            if event is proto.NEED_DATA:
                break
            out.append(event)
    dec.feed_eof()
    return out


# -- frames -----------------------------------------------------------------

@pytest.mark.parametrize('step', [1, 7, 65536])
def test_frames_roundtrip_in_any_pieces(step):
    body = bytes(range(256)) * 40
    t1, t2 = ts(1), ts(2)
    stream = (proto.encode_header(HASH, t1 + '.data', data_meta(t1, body),
                                  len(body)) + body +
              proto.encode_header(HASH, t2 + '.ts',
                                  {'name': '/a/c/o', 'X-Timestamp': t2}, 0) +
              proto.END_FRAME)
    events = events_of(stream, step)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == 'Header' and kinds[-1] == 'End'
    assert kinds.count('Header') == 2 and kinds.count('BodyEnd') == 2
    got = b''.join(e.data for e in events if isinstance(e, proto.Body))
    assert got == body
    # a piece of content is never bigger than what was fed
    assert all(len(e.data) <= step for e in events
               if isinstance(e, proto.Body))
    assert events[0].fields['file'] == t1 + '.data'
    assert events[-3].fields['size'] == 0


def test_truncated_stream_is_an_error():
    t1 = ts(1)
    stream = proto.encode_header(HASH, t1 + '.data', data_meta(t1), 5) + \
        b'hel'
    dec = proto.FrameDecoder()
    dec.feed(stream)
    while dec.next_event() is not proto.NEED_DATA:
        pass
    with pytest.raises(proto.ProtocolError, match='end marker'):
        dec.feed_eof()
    # a stream with no frame and no end marker is incomplete too
    with pytest.raises(proto.ProtocolError):
        proto.FrameDecoder().feed_eof()


def test_data_after_the_end_is_an_error():
    dec = proto.FrameDecoder()
    dec.feed(proto.END_FRAME + b'x')
    with pytest.raises(proto.ProtocolError, match='after the end'):
        dec.next_event()
    dec = proto.FrameDecoder()
    dec.feed(proto.END_FRAME)
    assert isinstance(dec.next_event(), proto.End)
    with pytest.raises(proto.ProtocolError):
        dec.feed(b'more')


@pytest.mark.parametrize('blob', [
    struct.pack('>I', proto.MAX_HEADER + 1),
    struct.pack('>I', 3) + b'\xc1\xc1\xc1',        # not msgpack
    struct.pack('>I', 1) + b'\x01',                # not a map
    struct.pack('>I', 9) + msgpack.packb({'size': -1}) + b'\0' * 5,
])
def test_bad_framing_is_refused(blob):
    dec = proto.FrameDecoder()
    dec.feed(blob)
    with pytest.raises(proto.ProtocolError):
        while dec.next_event() is not proto.NEED_DATA:
            pass


def test_header_too_large_to_send():
    meta = data_meta(ts(1))
    meta['X-Object-Meta-Big'] = 'x' * proto.MAX_HEADER
    with pytest.raises(proto.ProtocolError):
        proto.encode_header(HASH, ts(1) + '.data', meta, 5)


# -- header checks ----------------------------------------------------------

def header(**over):
    t = ts(1)
    fields = {'hash': HASH, 'file': t + '.data', 'metadata': data_meta(t),
              'size': 5}
    fields.update(over)
    return fields


def test_good_headers_pass():
    h = proto.check_header(header())
    assert h.ext == '.data' and h.size == 5 and h.timestamp == ts(1)
    t = ts(2)
    h = proto.check_header({'hash': HASH, 'file': t + '.meta', 'size': 0,
                            'metadata': {'name': '/a/c/o/with/slashes',
                                         'X-Timestamp': t,
                                         'X-Object-Meta-K': 'v'}})
    assert h.ext == '.meta'


@pytest.mark.parametrize('fields,reason', [
    ({'hash': 'xyz'}, 'bad hash'),
    ({'hash': HASH.upper()}, 'bad hash'),
    ({'file': '../../etc/passwd'}, 'bad file name'),
    ({'file': '1.data'}, 'bad file name'),          # not canonical
    ({'file': ts(1) + '.exe'}, 'bad file name'),
    ({'file': ts(9) + '.data'}, 'does not match file'),
    ({'size': 6}, 'Content-Length'),
    ({'size': -1}, 'bad size'),
    ({'size': True}, 'bad size'),
    ({'size': proto.MAX_FILE_SIZE + 1}, 'larger'),
    ({'metadata': dict(data_meta(ts(1)), ETag='nope')}, 'ETag'),
    ({'metadata': dict(data_meta(ts(1)), name='a/c/o')}, 'start with'),
    ({'metadata': dict(data_meta(ts(1)), name='/a//o')}, 'not /account'),
    ({'metadata': dict(data_meta(ts(1)), X={'nested': 1})}, 'strings'),
    ({'metadata': {'name': '/a/c/o', 'X-Timestamp': 'soon'}},
     'X-Timestamp'),
    ({'file': ts(1) + '.ts', 'size': 5}, 'no content'),
    ({'extra': 1}, 'must have'),
])
def test_bad_headers_are_refused(fields, reason):
    with pytest.raises(proto.ProtocolError, match=reason):
        proto.check_header(header(**fields))


def test_partition_of_agrees_with_the_ring():
    for i in range(50):
        digest = hash_path(b'pre', b'suf', 'a', 'c', 'o%d' % i)
        top = struct.unpack_from('>I', digest)[0]
        for power in (0, 1, 8, 18, 32):
            assert proto.partition_of(digest.hex(), power) == \
                top >> (32 - power)


def test_part_power_parsing():
    assert proto.parse_part_power('10') == 10
    for bad in (None, '', '-1', '33', 'x', '1.5'):
        with pytest.raises(proto.ProtocolError):
            proto.parse_part_power(bad)


# -- check messages ---------------------------------------------------------

def test_offers_roundtrip_and_checks():
    offers = {HASH: [ts(1) + '.data', ts(2) + '.meta']}
    assert proto.decode_offers(proto.encode_offers(offers)) == offers
    part = proto.partition_of(HASH, 10)
    assert proto.decode_offers(proto.encode_offers(offers), part, 10)
    with pytest.raises(proto.ProtocolError, match='not in partition'):
        proto.decode_offers(proto.encode_offers(offers), part + 1, 10)
    for bad in ({'nothex': []}, {HASH: 'x'}, {HASH: ['nope']},
                {HASH: [ts(1) + '.data'] * 9}, [HASH]):
        with pytest.raises(proto.ProtocolError):
            proto.decode_offers(proto.encode_offers(bad))
    with pytest.raises(proto.ProtocolError):
        proto.decode_offers(b'\xc1')


def test_wanted_answer_only_names_offered_files():
    offers = {HASH: [ts(1) + '.data']}
    body = proto.encode_wanted({HASH: [ts(1) + '.data']})
    assert proto.decode_wanted(body, offers) == offers
    assert proto.decode_wanted(proto.encode_wanted({HASH: []}), offers) == {}
    with pytest.raises(proto.ProtocolError):
        proto.decode_wanted(proto.encode_wanted({HASH: [ts(2) + '.data']}),
                            offers)
    with pytest.raises(proto.ProtocolError):
        proto.decode_wanted(proto.encode_wanted({'b' * 32: []}), offers)


# -- want decisions ---------------------------------------------------------

D1, D2, T1, T2 = ts(1) + '.data', ts(2) + '.data', ts(1) + '.ts', \
    ts(2) + '.ts'
M3, M4 = ts(3) + '.meta', ts(4) + '.meta'


@pytest.mark.parametrize('have,offered,want', [
    ([], [D1], [D1]),                     # missing object
    ([D1], [D2], [D2]),                   # newer data replaces older
    ([D2], [D1], []),                     # older data never replaces newer
    ([D1], [D1], []),                     # already there
    ([D1], [T2], [T2]),                   # newer tombstone wins
    ([T2], [D1], []),                     # no resurrection
    ([T1], [D2], [D2]),                   # a newer PUT after a DELETE
    ([D1], [T1], []),                     # a tie is not pushed
    ([D1], [D1, M3], [M3]),               # POSTed metadata
    ([D1, M4], [D1, M3], []),             # older metadata is not wanted
    ([D1, M3], [D1, M4], [M4]),
    ([], [D1, M3], [D1, M3]),             # both, data first
    ([T2], [D1, M3], []),                 # metadata on a deleted object
    ([], [M3], []),                       # metadata without its data
    ([D1], [M3], [M3]),                   # ... finds its data here
    ([ts(5) + '.data'], [D1, M4], []),    # metadata older than our data
])
def test_wanted_files(have, offered, want):
    assert proto.wanted_files(have, offered, now=NOW) == want


def test_tombstones_past_reclaim_age_are_wanted_only_to_delete():
    old = Timestamp(NOW - 100).internal + '.ts'
    assert proto.wanted_files([], [old], now=NOW, reclaim_age=50) == []
    assert proto.wanted_files([], [old], now=NOW, reclaim_age=500) == [old]
    # ... unless it still has older data to delete (no resurrection)
    older = Timestamp(NOW - 200).internal + '.data'
    assert proto.wanted_files([older], [old], now=NOW,
                              reclaim_age=50) == [old]


def test_push_limits():
    limits = proto.PushLimits(max_files=2, max_bytes=10)
    assert limits.fits(100)           # a first file always fits
    limits.add(100)
    assert not limits.fits(1)         # over the byte budget
    limits = proto.PushLimits(max_files=2, max_bytes=10)
    limits.add(3)
    assert limits.fits(7) and not limits.fits(8)
    limits.add(0)
    assert not limits.fits(0)         # file count reached


def test_summary_roundtrip():
    body = proto.encode_summary([[HASH, D1, 'ok', '']], 1, 5)
    assert proto.decode_summary(body)['results'] == [[HASH, D1, 'ok', '']]
    for bad in (b'\xc1', msgpack.packb([1]), msgpack.packb({'x': 1})):
        with pytest.raises(proto.ProtocolError):
            proto.decode_summary(bad)
