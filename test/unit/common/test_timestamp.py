"""X-Timestamp parsing, normal form, offsets and ordering."""
import pytest

from objstore.common.timestamp import Timestamp, parse_x_timestamp


@pytest.mark.parametrize('value,normal', [
    ('1700000000.12345', '1700000000.12345'),
    ('1700000000', '1700000000.00000'),
    (1700000000.5, '1700000000.50000'),
    ('0000000001.00000', '0000000001.00000'),
    (b'1700000000.1', '1700000000.10000'),
])
def test_normal_form(value, normal):
    assert Timestamp(value).normal == normal


def test_rounds_to_ten_microseconds():
    assert Timestamp('1700000000.123456').normal == '1700000000.12346'


def test_offset_round_trip_and_order():
    base = Timestamp('1700000000.00001')
    later = Timestamp(base, offset=10)
    assert later.internal == '1700000000.00001_000000000000000a'
    assert Timestamp(later.internal) == later
    assert base < later < Timestamp('1700000000.00002')
    assert later.normal == base.normal


def test_string_order_equals_time_order():
    stamps = [Timestamp(v) for v in (5, 1700000000, 99.5, 1e9)]
    assert sorted(s.internal for s in stamps) == \
        [s.internal for s in sorted(stamps)]


@pytest.mark.parametrize('bad', ['', 'abc', '-1', '1e20', 'nan', '12_zz',
                                 None, '1.2.3'])
def test_bad_values_raise_value_error(bad):
    with pytest.raises(ValueError):
        parse_x_timestamp(bad)


def test_equality_with_strings_and_hash():
    assert Timestamp('1.5') == '1.50000'
    assert len({Timestamp('1.5'), Timestamp(1.5)}) == 1
    assert Timestamp('1.5') != 'garbage'
