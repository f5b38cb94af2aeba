"""body_checksums: what the proxy computes and how object servers read it."""
import hashlib
import os

import pytest

from objstore.common import body_checksums
from objstore.common.crc import crc32c
from objstore.common.body_checksums import BodyChecksums, from_trailers


def test_checksums_of_a_body_fed_in_pieces():
    body = os.urandom(300001)
    sums = BodyChecksums()
    for i in range(0, len(body), 65536):
        sums.update(body[i:i + 65536])
    assert sums.etag == hashlib.md5(body).hexdigest()
    assert sums.crc32c == '%08x' % crc32c(body)
    assert sums.trailer() == (
        'X-Object-Etag: %s\r\nX-Object-Crc32c: %s\r\n'
        % (sums.etag, sums.crc32c)).encode()


def test_crc32c_is_castagnolis():
    # the check value of CRC-32C (RFC 3720, B.4 and the CRC catalogue)
    sums = BodyChecksums()
    sums.update(b'1234')
    sums.update(b'56789')
    assert sums.crc32c == 'e3069283'


def test_empty_body():
    sums = BodyChecksums()
    assert sums.etag == hashlib.md5(b'').hexdigest()
    assert sums.crc32c == '00000000'


def test_trailer_fields_read_back_whatever_their_case():
    etag, crc = 'A' * 32, '0badF00D'
    assert from_trailers({'x-object-etag': ' %s ' % etag,
                          'x-object-crc32c': crc, 'x-other': '1'}) == \
        (etag.lower(), crc.lower())


@pytest.mark.parametrize('trailers, missing', [
    (None, 'without a trailer'),
    ({}, 'X-Object-Etag'),
    ({'x-object-etag': 'a' * 31, 'x-object-crc32c': '0' * 8},
     'X-Object-Etag'),
    ({'x-object-etag': 'g' * 32, 'x-object-crc32c': '0' * 8},
     'X-Object-Etag'),
    ({'x-object-etag': 'a' * 32}, 'X-Object-Crc32c'),
    ({'x-object-etag': 'a' * 32, 'x-object-crc32': '0' * 8},
     'X-Object-Crc32c'),
    ({'x-object-etag': 'a' * 32, 'x-object-crc32c': '0' * 9},
     'X-Object-Crc32c')])
def test_bad_or_missing_trailer_fields_are_named(trailers, missing):
    with pytest.raises(ValueError) as err:
        from_trailers(trailers)
    assert missing in str(err.value)


@pytest.mark.parametrize('given, normal', [
    ('"ABC"', 'abc'), (' abc ', 'abc'), ('"abc', '"abc'), ('""', '')])
def test_normalize_etag(given, normal):
    assert body_checksums.normalize_etag(given) == normal
