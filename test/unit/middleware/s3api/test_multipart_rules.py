"""The multipart rules, without servers."""
import hashlib
import io
import xml.etree.ElementTree as ET

import pytest

from objstore.middleware.s3api import multipart_rules as rules
from objstore.middleware.s3api import swift
from objstore.middleware.s3api.errors import S3Error

NS = '{%s}' % rules.NS


def code_of(call, *args, **kwargs):
    with pytest.raises(S3Error) as info:
        call(*args, **kwargs)
    return info.value.code


def test_names_round_trip():
    upload_id = rules.new_upload_id()
    assert rules.is_upload_id(upload_id)
    # never all digits, so a row name ending in one is not a part's
    assert upload_id[0] == 'U' and not rules.is_digits(upload_id)
    key = 'dir/U%s/odd key' % ('0' * 32)
    assert rules.parse_row_name(rules.marker_name(key, upload_id)) == \
        ('marker', key, upload_id)
    assert rules.parse_row_name(rules.part_name(key, upload_id, 17)) == \
        ('part', key, upload_id, 17)
    assert rules.parse_row_name('plain') is None
    assert rules.parse_row_name('a/b/3') is None
    assert rules.parse_row_name('a/%s/03' % upload_id) is None
    assert rules.segments_container('b') == 'b+segments'


def test_upload_ids_checked_before_any_lookup():
    assert code_of(rules.check_upload_id, '../etc') == 'NoSuchUpload'
    assert code_of(rules.check_upload_id, None) == 'NoSuchUpload'
    assert rules.check_upload_id('U' + 'a' * 32)


@pytest.mark.parametrize('text', [None, '', '0', '10001', '-1', '1.5', 'x',
                                  '٣'])
def test_bad_part_numbers(text):
    assert code_of(rules.part_number, text) == 'InvalidArgument'


def test_part_numbers():
    assert rules.part_number('1') == 1
    assert rules.part_number('10000') == 10000


def test_bounded_int():
    assert rules.bounded_int({}, 'max-parts', 1000, 1000) == 1000
    assert rules.bounded_int({'max-parts': '5000'}, 'max-parts', 1000,
                             1000) == 1000
    assert code_of(rules.bounded_int, {'max-parts': '-2'}, 'max-parts', 1,
                   1) == 'InvalidArgument'


def test_copy_range():
    assert rules.copy_range(None, 10) is None
    assert rules.copy_range('bytes=0-9', 10) == (0, 9)
    assert code_of(rules.copy_range, 'bytes=0-10', 10) == 'InvalidRange'
    assert code_of(rules.copy_range, 'bytes=5-4', 10) == 'InvalidRange'
    for bad in ('bytes=-5', 'bytes=1-', '0-5', 'bytes=1-2,4-5'):
        assert code_of(rules.copy_range, bad, 10) == 'InvalidArgument'


def complete_body(parts):
    return ('<CompleteMultipartUpload xmlns="%s">' % rules.NS + ''.join(
        '<Part><PartNumber>%s</PartNumber><ETag>%s</ETag></Part>' % p
        for p in parts) + '</CompleteMultipartUpload>').encode()


def test_parse_complete():
    body = complete_body([(1, '"AB"'), (3, 'cd')])
    assert rules.parse_complete(body) == [(1, 'ab'), (3, 'cd')]
    assert code_of(rules.parse_complete, complete_body(
        [(2, 'a'), (1, 'b')])) == 'InvalidPartOrder'
    assert code_of(rules.parse_complete, complete_body(
        [(2, 'a'), (2, 'b')])) == 'InvalidPartOrder'
    for bad in (b'', b'<CompleteMultipartUpload/>', b'<Other/>',
                b'<CompleteMultipartUpload><Part>',
                complete_body([('x', 'a')]),
                b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>'
                b'</Part></CompleteMultipartUpload>',
                b'<!DOCTYPE x [<!ENTITY a "b">]><CompleteMultipartUpload/>'):
        assert code_of(rules.parse_complete, bad) == 'MalformedXML'


def test_check_parts():
    big = rules.MIN_PART_SIZE
    stored = {1: rules.Part(1, 'a' * 32, big, 't'),
              2: rules.Part(2, 'b' * 32, 10, 't'),
              3: rules.Part(3, 'c' * 32, 10, 't')}
    used = rules.check_parts([(1, 'a' * 32), (3, 'c' * 32)], stored)
    assert [p.number for p in used] == [1, 3]
    assert code_of(rules.check_parts, [(1, 'b' * 32)], stored) == \
        'InvalidPart'
    assert code_of(rules.check_parts, [(4, 'a' * 32)], stored) == \
        'InvalidPart'
    assert code_of(rules.check_parts, [(2, 'b' * 32), (3, 'c' * 32)],
                   stored) == 'EntityTooSmall'
    assert rules.check_parts([(2, 'b' * 32), (3, 'c' * 32)], stored,
                             min_part_size=10)


def test_s3_etag():
    parts = [b'one', b'two']
    want = hashlib.md5(b''.join(hashlib.md5(p).digest()
                                for p in parts)).hexdigest() + '-2'
    assert rules.s3_etag([hashlib.md5(p).hexdigest() for p in parts]) == \
        want


def test_manifest_and_part_span():
    parts = [rules.Part(1, 'a', 5, 't'), rules.Part(4, 'b', 3, 't')]
    entries = rules.manifest('bk', 'k/x', 'U1', parts)
    assert entries == [
        {'path': '/bk+segments/k/x/U1/1', 'etag': 'a', 'size_bytes': 5},
        {'path': '/bk+segments/k/x/U1/4', 'etag': 'b', 'size_bytes': 3}]
    stored = [{'bytes': 5}, {'bytes': 3}]
    assert rules.part_span(stored, 1) == (0, 4, 2)
    assert rules.part_span(stored, 2) == (5, 7, 2)
    assert rules.part_span(stored, 3) is None


def test_conditions():
    etag = 'abc-2'
    assert rules.evaluate_conditions({}, etag) is None
    assert rules.evaluate_conditions({'If-Match': '"abc-2"'}, etag) is None
    assert rules.evaluate_conditions({'If-Match': '"x", "abc-2"'},
                                     etag) is None
    assert rules.evaluate_conditions({'If-Match': '*'}, etag) is None
    assert rules.evaluate_conditions({'If-Match': '"x"'}, etag) == 412
    assert rules.evaluate_conditions({'If-None-Match': '"abc-2"'},
                                     etag) == 304
    assert rules.evaluate_conditions({'If-None-Match': '"x"'}, etag) is None


def U(key, n):
    return rules.Upload(key, 'U%032d' % n, 't')


def test_list_uploads():
    uploads = [U('b', 2), U('a/1', 1), U('b', 1), U('c/d', 3)]
    found, prefixes, truncated = rules.list_uploads(uploads)
    assert [(u.key, u.upload_id[-1]) for u in found] == \
        [('a/1', '1'), ('b', '1'), ('b', '2'), ('c/d', '3')]
    assert not prefixes and not truncated
    found, prefixes, truncated = rules.list_uploads(uploads, delimiter='/')
    assert prefixes == ['a/', 'c/'] and [u.key for u in found] == ['b', 'b']
    found, _, truncated = rules.list_uploads(uploads, max_uploads=2)
    assert truncated and len(found) == 2
    found, _, _ = rules.list_uploads(uploads, key_marker='b',
                                     upload_id_marker=U('b', 1).upload_id)
    assert [u.upload_id for u in found] == [U('b', 2).upload_id,
                                            U('c/d', 3).upload_id]
    found, _, _ = rules.list_uploads(uploads, key_marker='b')
    assert [u.key for u in found] == ['c/d']
    _, prefixes, _ = rules.list_uploads(uploads, delimiter='/',
                                        key_marker='a/')
    assert prefixes == ['c/']
    found, _, _ = rules.list_uploads(uploads, prefix='c/')
    assert [u.key for u in found] == ['c/d']


def test_list_parts_paging():
    parts = [rules.Part(n, 'e', 1, 't') for n in (10, 2, 1)]
    page, truncated = rules.list_parts(parts, 0, 2)
    assert [p.number for p in page] == [1, 2] and truncated
    page, truncated = rules.list_parts(parts, 2, 2)
    assert [p.number for p in page] == [10] and not truncated


def test_xml_answers_parse():
    for body in (
            rules.initiate_result('b', 'k&<', 'U1'),
            rules.complete_result('http://h/b/k', 'b', 'k', 'e-2'),
            rules.copy_part_result('e', '2020-01-01T00:00:00.000Z'),
            rules.list_parts_result('b', 'k', 'U1', 'o',
                                    [rules.Part(1, 'e', 3, 't')], 0, 1,
                                    True),
            rules.list_uploads_result('b', 'o', [U('k', 1)], ['p/'], True,
                                      '', '/', '', '', 1, encode=True)):
        root = ET.fromstring(body)
        assert root.tag.startswith(NS)
    root = ET.fromstring(rules.initiate_result('b', 'k&<', 'U1'))
    assert root.find(NS + 'Key').text == 'k&<'
    root = ET.fromstring(rules.list_uploads_result(
        'b', 'o', [U('k', 1)], [], True, '', '', '', '', 1))
    assert root.find(NS + 'NextKeyMarker').text == 'k'
    assert root.find(NS + 'NextUploadIdMarker').text == U('k', 1).upload_id


class Failing:
    def __init__(self, error):
        self.error = None
        self._error = error

    def read(self, size=-1):
        self.error = self._error
        raise self._error


def test_verified_body_turns_s3_errors_into_value_errors():
    guarded = swift.VerifiedBody(Failing(S3Error('SignatureDoesNotMatch')))
    with pytest.raises(ValueError):
        guarded.read(10)
    assert guarded.error.code == 'SignatureDoesNotMatch'
    with pytest.raises(ValueError):
        guarded.read(10)
    plain = swift.VerifiedBody(io.BytesIO(b'abc'))
    assert plain.read(2) == b'ab' and plain.read() == b'c'
    assert plain.error is None


def test_s3_etag_header_wins():
    from webob.headers import ResponseHeaders
    headers = ResponseHeaders([('Etag', '"slo"'),
                               (swift.S3_ETAG, 'abc-2')])
    assert ('ETag', '"abc-2"') in swift.s3_object_headers(headers)
    assert [h for h in swift.s3_object_headers(headers)
            if h[0] == 'ETag'] == [('ETag', '"abc-2"')]
    assert swift.s3_etag(headers) == 'abc-2'
    assert swift.s3_etag(ResponseHeaders([('Etag', '"m"')])) == 'm'


def test_digits_are_ascii():
    assert rules.is_digits('0123')
    for text in ('', None, '²', '٣', '1 ', '-1', '+1'):
        assert not rules.is_digits(text)


def test_date_conditions_go_to_swift_unless_an_etag_one_overrides():
    since = 'Sat, 01 Jan 2000 00:00:00 GMT'
    dates = {'If-Modified-Since': since, 'If-Unmodified-Since': since}
    assert rules.date_conditions(dates) == dates
    assert rules.date_conditions(dict(dates, **{'If-Match': '"x"'})) == \
        {'If-Modified-Since': since}
    assert rules.date_conditions(dict(dates, **{'If-None-Match': '"x"'})) \
        == {'If-Unmodified-Since': since}
    assert rules.date_conditions({'If-Match': '"x"', 'Range': 'bytes=0-1',
                                  'If-None-Match': '"y"'}) == {}
