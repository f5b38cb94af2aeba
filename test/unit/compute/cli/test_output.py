"""Tables and values as the compute CLI prints them."""
import json

from compute.cli import output


def test_cell_renders_nothing_nested_and_multiline_values_on_one_line():
    assert output.cell(None) == ''
    assert output.cell(True) == 'true'
    assert output.cell(512) == '512'
    assert output.cell({'id': 'abc'}) == 'abc'
    assert output.cell({'message': 'No valid host'}) == 'No valid host'
    assert output.cell({'role': 'web'}) == 'role=web'
    assert output.cell({}) == ''
    assert output.cell({'name': 'm1.tiny', 'vcpus': 1}) == \
        'name=m1.tiny, vcpus=1'
    assert output.cell(['a', 'b']) == 'a, b'
    assert output.cell('line one\nline two') == 'line one line two'


def test_table_aligns_columns_to_the_widest_cell():
    text = output.table(('ID', 'Name'), [('1', 'web-server'), ('22', 'db')])
    lines = text.split('\n')
    assert lines == ['ID  Name',
                     '--  ----------',
                     '1   web-server',
                     '22  db']


def test_table_has_no_trailing_blanks_and_handles_no_rows():
    text = output.table(('A', 'Bee'), [])
    assert text == 'A  Bee\n-  ---'
    text = output.table(('Name', 'X'), [('long-name', ''), ('a', 'b')])
    assert all(line == line.rstrip() for line in text.split('\n'))


def test_list_table_takes_keys_callables_and_missing_keys():
    objs = [{'id': 'i1', 'flavor': {'name': 'm1.tiny'}},
            {'id': 'i2'}]
    text = output.list_table(
        [('ID', 'id'), ('Host', 'host'),
         ('Flavor', lambda o: (o.get('flavor') or {}).get('name'))], objs)
    lines = text.split('\n')
    assert lines[0].split() == ['ID', 'Host', 'Flavor']
    assert lines[2].split() == ['i1', 'm1.tiny']
    assert lines[3] == 'i2'


def test_object_table_keeps_the_given_field_order():
    text = output.object_table({'b': 2, 'a': 1, 'c': 3}, ['c', 'a', 'zz'])
    rows = [line.split() for line in text.split('\n')[2:]]
    assert rows == [['c', '3'], ['a', '1']]


def test_to_json_round_trips_and_is_sorted():
    text = output.to_json({'b': [1, 2], 'a': None})
    assert json.loads(text) == {'b': [1, 2], 'a': None}
    assert text.index('"a"') < text.index('"b"')

