"""RFC 7232 conditionals as evaluated for an object (pure functions)."""
from email.utils import formatdate

from objstore.common.timestamp import Timestamp
from objstore.obj import conditions

TS = Timestamp('1700000000.50000')  # Last-Modified is ...001 (rounded up)
LM = 1700000001


def ev(**headers):
    return conditions.evaluate({k.replace('_', '-'): v
                                for k, v in headers.items()}, 'abc', TS)


def date(seconds):
    return formatdate(seconds, usegmt=True)


def test_parse_etags():
    assert conditions.parse_etags('"a", W/"b",c , *') == ['a', 'b', 'c', '*']


def test_if_match():
    assert ev(If_Match='"abc"') is None
    assert ev(If_Match='"x", "abc"') is None
    assert ev(If_Match='*') is None
    assert ev(If_Match='"x"') == 412


def test_if_none_match():
    assert ev(If_None_Match='"abc"') == 304
    assert ev(If_None_Match='*') == 304
    assert ev(If_None_Match='"x"') is None


def test_dates_compare_whole_seconds_of_the_rounded_timestamp():
    assert conditions.last_modified(TS) == LM
    assert ev(If_Modified_Since=date(LM)) == 304
    assert ev(If_Modified_Since=date(LM - 1)) is None
    assert ev(If_Unmodified_Since=date(LM)) is None
    assert ev(If_Unmodified_Since=date(LM - 1)) == 412


def test_precedence_and_bad_dates():
    # If-Match present: If-Unmodified-Since is not consulted
    assert ev(If_Match='"abc"', If_Unmodified_Since=date(0)) is None
    # If-None-Match present: If-Modified-Since is not consulted
    assert ev(If_None_Match='"x"', If_Modified_Since=date(LM)) is None
    # 412 outranks 304
    assert ev(If_Match='"x"', If_None_Match='"abc"') == 412
    assert ev(If_Modified_Since='yesterday') is None
    assert ev(If_Unmodified_Since='31 Feb nonsense') is None


def test_missing_object():
    assert conditions.evaluate_missing({'If-Match': '*'}) == 412
    assert conditions.evaluate_missing({'If-None-Match': '*'}) is None
