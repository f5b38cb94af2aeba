"""body_checksums: what the proxy computes and how object servers read it."""
import hashlib
import os
import zlib

import pytest

from objstore.common import body_checksums
from objstore.common.body_checksums import BodyChecksums, from_trailers


def test_checksums_of_a_body_fed_in_pieces():
    body = os.urandom(300001)
    sums = BodyChecksums()
    for i in range(0, len(body), 65536):
        sums.update(body[i:i + 65536])
    assert sums.etag == hashlib.md5(body).hexdigest()
    assert sums.crc32 == '%08x' % zlib.crc32(body)
    assert sums.trailer() == (
        'X-Object-Etag: %s\r\nX-Object-Crc32: %s\r\n'
        % (sums.etag, sums.crc32)).encode()


def test_empty_body():
    sums = BodyChecksums()
    assert sums.etag == hashlib.md5(b'').hexdigest()
    assert sums.crc32 == '00000000'


def test_trailer_fields_read_back_whatever_their_case():
    etag, crc = 'A' * 32, '0badF00D'
    assert from_trailers({'x-object-etag': ' %s ' % etag,
                          'x-object-crc32': crc, 'x-other': '1'}) == \
        (etag.lower(), crc.lower())


@pytest.mark.parametrize('trailers, missing', [
    (None, 'without a trailer'),
    ({}, 'X-Object-Etag'),
    ({'x-object-etag': 'a' * 31, 'x-object-crc32': '0' * 8},
     'X-Object-Etag'),
    ({'x-object-etag': 'g' * 32, 'x-object-crc32': '0' * 8},
     'X-Object-Etag'),
    ({'x-object-etag': 'a' * 32}, 'X-Object-Crc32'),
    ({'x-object-etag': 'a' * 32, 'x-object-crc32': '0' * 9},
     'X-Object-Crc32')])
def test_bad_or_missing_trailer_fields_are_named(trailers, missing):
    with pytest.raises(ValueError) as err:
        from_trailers(trailers)
    assert missing in str(err.value)


@pytest.mark.parametrize('given, normal', [
    ('"ABC"', 'abc'), (' abc ', 'abc'), ('"abc', '"abc'), ('""', '')])
def test_normalize_etag(given, normal):
    assert body_checksums.normalize_etag(given) == normal
