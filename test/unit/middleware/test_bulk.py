"""bulk_rules: delete lists, archive member names, result bodies."""
import json
import xml.etree.ElementTree as ElementTree

import pytest

from objstore.common.config import ConfigError
from objstore.middleware import bulk, bulk_rules as rules


def test_delete_targets():
    lines = [b'/c/o%20x\n', b'\n', b'c2\n', b'/c/%FF\n', b'/\n']
    out = list(rules.delete_targets(lines))
    assert out[0] == ('/c/o x', ('c', 'o x'))
    assert out[1] == ('c2', ('c2', None))
    assert isinstance(out[2][1], rules.ItemError)
    assert isinstance(out[3][1], rules.ItemError)
    assert len(out) == 4


@pytest.mark.parametrize('name', ['/etc/passwd', '../x', 'a/../../x',
                                  'a/./b', './'])
def test_member_destination_refuses_escapes(name):
    with pytest.raises(rules.ItemError) as err:
        rules.member_destination(name, 'c', '')
    assert err.value.status == 400


def test_member_destination():
    assert rules.member_destination('./a/b', 'c', '') == ('c', 'a/b')
    assert rules.member_destination('a/b', 'c', 'pre/') == ('c', 'pre/a/b')
    assert rules.member_destination('cont/a/b', None, '') == ('cont', 'a/b')
    with pytest.raises(rules.ItemError):
        rules.member_destination('toplevel', None, '')
    with pytest.raises(rules.ItemError):
        rules.member_destination('a' * 1025, 'c', '')


def test_final_status():
    assert rules.final_status([]) == '200 OK'
    assert rules.final_status([['/c', '409 Conflict']]) == '400 Bad Request'
    assert rules.final_status([['/c', '503 Service Unavailable']]) == \
        '502 Bad Gateway'


def test_render_formats():
    results = {'Number Deleted': 1, 'Response Status': '400 Bad Request'}
    errors = [['/c/o&', '409 Conflict']]
    text = rules.render('text/plain', results, errors, 'delete').decode()
    assert 'Number Deleted: 1\n' in text
    assert text.endswith('Errors:\n/c/o&, 409 Conflict\n')
    data = json.loads(rules.render('application/json', results, errors,
                                   'delete'))
    assert data['Errors'] == errors and data['Number Deleted'] == 1
    root = ElementTree.fromstring(rules.render('application/xml', results,
                                               errors, 'delete'))
    assert root.tag == 'delete'
    assert root.find('number_deleted').text == '1'
    assert root.find('errors/object/name').text == '/c/o&'


def test_settings_are_checked():
    with pytest.raises(ConfigError):
        bulk.filter_factory({}, {'max_deletes_per_request': '0'})
    wrap = bulk.filter_factory({}, {'max_deletes_per_request': '7'})
    assert wrap(None).max_deletes_per_request == 7
