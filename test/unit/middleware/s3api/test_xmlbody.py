"""S3 XML answers are well-formed, namespaced and escaped; request
bodies are read safely (no DOCTYPE/entities, size cap, MalformedXML)."""
import xml.etree.ElementTree as ET

import pytest

from objstore.middleware.s3api import request, xmlbody as x
from objstore.middleware.s3api.errors import S3Error

NS = '{%s}' % x.NS


def doc(data):
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(data)


def texts(root, path):
    return [e.text for e in root.iter(NS + path)]


def test_list_all_my_buckets():
    root = doc(x.list_all_my_buckets('test:tester', 'test:tester',
                                     [('b1<&', '2024-01-02T03:04:05.000Z')]))
    assert root.tag == NS + 'ListAllMyBucketsResult'
    assert texts(root, 'Name') == ['b1<&']
    assert texts(root, 'ID') == ['test:tester']


def test_list_bucket_v1_and_v2():
    objs = [{'key': 'a b', 'last_modified': '2024-01-01T00:00:00.000Z',
             'etag': '"abc"', 'size': 3}]
    p1 = request.listing_params({'delimiter': '/', 'encoding-type': 'url'})
    root = doc(x.list_bucket('bkt', p1, objs, ['d ir/'], True, 'd ir/',
                             owner=('o', 'o')))
    assert texts(root, 'Key') == ['a%20b']
    assert texts(root, 'Prefix')[-1] == 'd%20ir/'
    assert texts(root, 'NextMarker') == ['d%20ir/']
    assert texts(root, 'IsTruncated') == ['true']
    assert texts(root, 'EncodingType') == ['url']
    assert texts(root, 'ID') == ['o']
    p2 = request.listing_params({'list-type': '2', 'start-after': 'a'})
    root = doc(x.list_bucket('bkt', p2, objs, [], False, None,
                             owner=('o', 'o'), next_token=None))
    assert texts(root, 'KeyCount') == ['1']
    assert texts(root, 'StartAfter') == ['a']
    assert texts(root, 'ID') == []      # no fetch-owner
    assert texts(root, 'Marker') == []


def test_list_versions():
    p = request.listing_params({'versions': ''})
    root = doc(x.list_versions('bkt', p, [{
        'key': 'k', 'last_modified': 't', 'etag': '"e"', 'size': 1}], [],
        False, None, ('o', 'o')))
    assert texts(root, 'VersionId') == ['null']
    assert texts(root, 'IsLatest') == ['true']


def test_location_and_acl():
    assert doc(x.location_constraint('us-east-1')).text is None
    assert doc(x.location_constraint('eu-west-1')).text == 'eu-west-1'
    policy = x.access_control_policy('me', 'me', 'public-read')
    root = doc(policy)
    assert texts(root, 'Permission') == ['FULL_CONTROL', 'READ']
    assert texts(root, 'URI') == [x.ALL_USERS]
    # what we answer, we read back
    assert x.parse_acl(policy) == [('CanonicalUser', 'me', 'FULL_CONTROL'),
                                   ('Group', x.ALL_USERS, 'READ')]


def test_delete_result_quiet():
    errors = [('k2', 'AccessDenied', 'Access Denied')]
    root = doc(x.delete_result(['k1'], errors))
    assert texts(root, 'Key') == ['k1', 'k2']
    root = doc(x.delete_result(['k1'], errors, quiet=True))
    assert texts(root, 'Key') == ['k2']


def test_times():
    assert x.iso8601(0) == '1970-01-01T00:00:00.000Z'
    assert x.listing_time('2024-01-02T03:04:05.123456') == \
        '2024-01-02T03:04:05.123Z'
    assert x.http_date_to_iso('Tue, 02 Jan 2024 03:04:05 GMT') == \
        '2024-01-02T03:04:05.000Z'


def test_parse_delete():
    body = (b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b'<Quiet>true</Quiet><Object><Key>a</Key></Object>'
            b'<Object><Key>b&amp;c</Key><VersionId>null</VersionId>'
            b'</Object></Delete>')
    assert x.parse_delete(body) == (True, [('a', None), ('b&c', 'null')])


@pytest.mark.parametrize('body', [
    b'', b'not xml', b'<Delete><Object><Key>a</Key></Object>',
    b'<Other><Object><Key>a</Key></Object></Other>',
    b'<Delete></Delete>', b'<Delete><Object></Object></Delete>',
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]>'
    b'<Delete><Object><Key>&a;</Key></Object></Delete>',
    b'<Delete>' + b'<Object><Key>k</Key></Object>' * 1001 + b'</Delete>',
    b'<Delete>' + b' ' * (x.MAX_BODY + 1) + b'</Delete>',
])
def test_parse_delete_malformed(body):
    with pytest.raises(S3Error) as info:
        x.parse_delete(body)
    assert info.value.code == 'MalformedXML'


def test_parse_location():
    body = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/'
            b'2006-03-01/"><LocationConstraint>eu-west-1'
            b'</LocationConstraint></CreateBucketConfiguration>')
    assert x.parse_location(body) == 'eu-west-1'
    assert x.parse_location(b'<CreateBucketConfiguration/>') == ''
    with pytest.raises(S3Error):
        x.parse_location(b'<LocationConstraint>x</LocationConstraint>')


def test_parse_acl_malformed():
    with pytest.raises(S3Error) as info:
        x.parse_acl(b'<AccessControlPolicy><AccessControlList><Grant>'
                    b'<Permission>EVERYTHING</Permission></Grant>'
                    b'</AccessControlList></AccessControlPolicy>')
    assert info.value.code == 'MalformedACLError'


@pytest.mark.parametrize('body', [
    # entities declared in UTF-16, where a byte search for '<!ENTITY'
    # finds nothing
    ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE Delete ['
     '<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
     '<Delete><Object><Key>&b;</Key></Object></Delete>').encode('utf-16'),
    # a DOCTYPE after a long comment
    b'<!--' + b'x' * 5000 + b'--><!DOCTYPE Delete>'
    b'<Delete><Object><Key>k</Key></Object></Delete>',
    # not UTF-8 at all
    b'<Delete><Object><Key>\xff</Key></Object></Delete>',
])
def test_doctypes_are_refused_in_any_encoding(body):
    with pytest.raises(S3Error) as info:
        x.parse_delete(body)
    assert info.value.code == 'MalformedXML'


def test_utf8_bodies_with_a_declaration_still_read():
    body = ('<?xml version="1.0" encoding="UTF-8"?><Delete><Object>'
            '<Key>\u00e9t\u00e9</Key></Object></Delete>').encode('utf-8')
    assert x.parse_delete(body) == (False, [('\u00e9t\u00e9', None)])
