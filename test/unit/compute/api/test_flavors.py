"""Flavors: the defaults, config parsing, validation and lookups."""
import configparser

import pytest

from compute.api.flavors import (
    DEFAULT_FLAVORS, Flavor, Flavors, parse_flavor, valid_name)


def test_defaults_are_novas_plus_nano():
    sizes = {f.name: (f.vcpus, f.ram, f.disk) for f in Flavors().list()}
    assert sizes == {
        'm1.nano': (1, 128, 1),
        'm1.tiny': (1, 512, 1),
        'm1.small': (1, 2048, 20),
        'm1.medium': (2, 4096, 40),
        'm1.large': (4, 8192, 80),
        'm1.xlarge': (8, 16384, 160),
    }


def test_list_is_smallest_first():
    names = [f.name for f in Flavors().list()]
    assert names == ['m1.nano', 'm1.tiny', 'm1.small', 'm1.medium',
                     'm1.large', 'm1.xlarge']


def test_id_is_the_name_and_survives_reordering():
    forward = Flavors.from_config({'a.one': '1,64,0', 'b.two': '2,64,0'})
    backward = Flavors.from_config({'b.two': '2,64,0', 'a.one': '1,64,0'})
    for name in ('a.one', 'b.two', 'm1.tiny'):
        assert forward.get(name).id == backward.get(name).id == name


def test_to_dict():
    assert Flavors().get('m1.small').to_dict() == {
        'id': 'm1.small', 'name': 'm1.small', 'vcpus': 1, 'ram': 2048,
        'disk': 20}


def test_lookup_missing_is_none():
    flavors = Flavors()
    assert flavors.get('m1.huge') is None
    assert 'm1.huge' not in flavors
    assert 'm1.tiny' in flavors
    assert len(flavors) == len(DEFAULT_FLAVORS)


def test_config_adds_and_replaces():
    flavors = Flavors.from_config({'m1.tiny': ' 2 , 1024 , 2 ',
                                   'c1.big_2': '16,65536,200'})
    assert flavors.get('m1.tiny') == Flavor('m1.tiny', 2, 1024, 2)
    assert flavors.get('c1.big_2') == Flavor('c1.big_2', 16, 65536, 200)
    assert flavors.get('m1.small') == Flavor('m1.small', 1, 2048, 20)
    assert len(flavors) == len(DEFAULT_FLAVORS) + 1


def test_config_section_from_an_ini_file(tmp_path):
    path = tmp_path / 'compute.conf'
    path.write_text('[flavors]\nm1.nano = 1,256,2\nt1.micro = 1,64,0\n')
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    flavors = Flavors.from_config(parser['flavors'])
    assert flavors.get('m1.nano').ram == 256
    assert flavors.get('t1.micro').disk == 0


def test_empty_or_missing_section_gives_defaults():
    assert Flavors.from_config(None).list() == Flavors().list()
    assert Flavors.from_config({}).list() == Flavors().list()


def test_custom_base():
    flavors = Flavors.from_config({'x': '1,1,1'}, base=())
    assert [f.name for f in flavors.list()] == ['x']


@pytest.mark.parametrize('value', [
    '1,512', '1,512,1,1', 'one,512,1', '1,512,-1', '1.5,512,1', '',
    '1,,1', '\u0661,512,1', '0,512,1', '1,0,1', '100000,512,1',
])
def test_bad_lines_name_the_option(value):
    with pytest.raises(ValueError, match="'m9.bad'"):
        Flavors.from_config({'m9.bad': value})


@pytest.mark.parametrize('name', ['has space', 'slash/x', '', 'é', 'a' * 256,
                                  'semi;colon'])
def test_bad_names_refused(name):
    assert not valid_name(name)
    with pytest.raises(ValueError):
        parse_flavor(name, '1,512,1')


@pytest.mark.parametrize('name', ['m1.tiny', 'A-b_c.9', 'x'])
def test_good_names(name):
    assert valid_name(name)
    assert parse_flavor(name, '1,512,0').name == name


def test_flavor_checks_its_fields():
    with pytest.raises(ValueError, match='vcpus'):
        Flavor('x', True, 512, 1)
    with pytest.raises(ValueError, match='ram'):
        Flavor('x', 1, '512', 1)
    with pytest.raises(ValueError, match='disk'):
        Flavor('x', 1, 512, -1)
    assert Flavor('x', 1, 512, 0).disk == 0
