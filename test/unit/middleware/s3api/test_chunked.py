"""aws-chunked decoding against the AWS documentation's example (65 KiB of
'a' in a 64 KiB and a 1 KiB chunk, signatures as published)."""
import base64
import io
import zlib

import pytest

from objstore.middleware.s3api import chunked, sigv4
from objstore.middleware.s3api.errors import S3Error

SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
DATE = '20130524T000000Z'
SCOPE = '20130524/us-east-1/s3/aws4_request'
SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9'
SIGS = ['ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
        '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
        'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9']
DATA = b'a' * 66560


def doc_body():
    return (b'10000;chunk-signature=%s\r\n' % SIGS[0].encode() +
            b'a' * 65536 + b'\r\n' +
            b'400;chunk-signature=%s\r\n' % SIGS[1].encode() +
            b'a' * 1024 + b'\r\n' +
            b'0;chunk-signature=%s\r\n\r\n' % SIGS[2].encode())


def signer():
    key = sigv4.signing_key(SECRET, '20130524', 'us-east-1')
    return chunked.ChunkSigner(key, DATE, SCOPE, SEED)


def reader(body, decoded=len(DATA), raw_length='body', **kw):
    if raw_length == 'body':
        raw_length = len(body)
    return chunked.ChunkedInput(io.BytesIO(body), raw_length, decoded,
                                signer=kw.pop('signer', signer()), **kw)


def read_all(stream, size):
    out = b''
    while True:
        piece = stream.read(size)
        if not piece:
            return out
        out += piece


def test_documented_body_has_the_documented_length():
    assert len(doc_body()) == 66824


@pytest.mark.parametrize('size', [1000, 65536, 100000, -1])
def test_documented_body_decodes(size):
    stream = reader(doc_body())
    assert read_all(stream, size) == DATA
    assert stream.finished and stream.error is None


def test_encode_reproduces_the_documented_body():
    assert chunked.encode(DATA, signer()) == doc_body()


def test_read_to_eof_without_a_known_length():
    assert read_all(reader(doc_body(), raw_length=None), 4096) == DATA


@pytest.mark.parametrize('change', [
    lambda b: b[:1000] + b'b' + b[1001:],                # data
    lambda b: b.replace(SIGS[1].encode(), SIGS[0].encode()),  # signature
    lambda b: b.replace(SIGS[2].encode(), b'0' * 64),   # final signature
])
def test_tampering_is_a_signature_mismatch(change):
    stream = reader(change(doc_body()))
    with pytest.raises(S3Error) as e:
        read_all(stream, 65536)
    assert e.value.code == 'SignatureDoesNotMatch'
    assert stream.error is e.value


def test_reordered_chunks_do_not_verify():
    body = chunked.encode(b'x' * 10 + b'y' * 10, signer(), chunk_size=10)
    first, second = body.split(b'\r\n')[0:2], body.split(b'\r\n')[2:4]
    rest = body.split(b'\r\n')[4:]
    swapped = b'\r\n'.join(second + first + rest)
    with pytest.raises(S3Error) as e:
        read_all(reader(swapped, decoded=20), 100)
    assert e.value.code == 'SignatureDoesNotMatch'


def test_final_frame_is_checked_before_the_last_bytes_are_given():
    bad = doc_body().replace(SIGS[2].encode(), b'1' * 64)
    stream = reader(bad)
    assert stream.read(65536) == b'a' * 65536
    # the reader now wants exactly the last 1024 bytes and would stop
    with pytest.raises(S3Error):
        stream.read(1024)


@pytest.mark.parametrize('body,decoded', [
    (doc_body()[:40000], len(DATA)),                     # truncated
    (doc_body(), len(DATA) + 1),                          # announced more
    (doc_body(), len(DATA) - 1),                          # announced less
    (doc_body() + b'junk', len(DATA)),                    # trailing data
    (b'zz;chunk-signature=%s\r\n' % (b'0' * 64), 1),      # bad size
    (b'5;chunk-signature=%s\r\nabcdeXX' % SIGS[0].encode(), 5),  # no CRLF
    (b'9' * 2000, 1),                                     # endless line
])
def test_malformed_bodies_are_incomplete(body, decoded):
    with pytest.raises(S3Error) as e:
        read_all(reader(body, decoded=decoded), 65536)
    assert e.value.code == 'IncompleteBody' and e.value.status == 400


def test_chunks_over_the_cap_are_refused_before_being_read():
    body = b'1000000;chunk-signature=%s\r\n' % (b'0' * 64)
    with pytest.raises(S3Error) as e:
        reader(body, decoded=2 ** 24, max_chunk=65536).read(10)
    assert 'limit' in e.value.message


def _unsigned_with_trailer(data, checksum, name=b'x-amz-checksum-crc32'):
    body = chunked.encode(data, None, chunk_size=8192)
    assert body.endswith(b'0\r\n')
    return body + b'%s:%s\r\n\r\n' % (name, checksum)


@pytest.mark.parametrize('checksum, ok', [
    (b'4waSgw==', True), (b'AAAAAA==', False)])
def test_unsigned_trailer_body_with_its_crc32c(checksum, ok):
    # 4waSgw== is CRC-32C's check value e3069283 (RFC 3720 B.4)
    data = b'123456789'
    stream = reader(_unsigned_with_trailer(data, checksum,
                                           b'x-amz-checksum-crc32c'),
                    decoded=len(data), signer=None,
                    trailer='x-amz-checksum-crc32c')
    if ok:
        assert read_all(stream, 5) == data
    else:
        with pytest.raises(S3Error) as e:
            read_all(stream, 5)
        assert e.value.code == 'BadDigest'


def test_unsigned_trailer_body_with_its_crc32():
    data = bytes(range(256)) * 100
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, 'big'))
    stream = reader(_unsigned_with_trailer(data, crc), decoded=len(data),
                    signer=None, trailer='x-amz-checksum-crc32')
    assert read_all(stream, 5000) == data


def test_unsigned_trailer_body_with_a_wrong_crc32():
    data = b'hello' * 5000
    stream = reader(_unsigned_with_trailer(data, b'AAAAAA=='),
                    decoded=len(data), signer=None,
                    trailer='x-amz-checksum-crc32')
    with pytest.raises(S3Error) as e:
        read_all(stream, 5000)
    assert e.value.code == 'BadDigest'


def test_readline_gives_lines_of_verified_data():
    data = b'one\ntwo\nthree'
    stream = reader(chunked.encode(data, signer(), chunk_size=5),
                    decoded=len(data))
    assert list(stream) == [b'one\n', b'two\n', b'three']
    stream = reader(chunked.encode(data, signer(), chunk_size=3),
                    decoded=len(data))
    assert stream.readline(2) == b'on'
    assert stream.readline() == b'e\n'
    assert stream.read() == b'two\nthree'
