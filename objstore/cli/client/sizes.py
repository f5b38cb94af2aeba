"""Sizes as users type them (``--segment-size 100M``) and as we print them."""
from objstore.cli.client.errors import UsageError

UNITS = {'': 1, 'B': 1, 'K': 1024, 'M': 1024 ** 2, 'G': 1024 ** 3,
         'T': 1024 ** 4}


def parse_size(text):
    """Bytes named by ``text``: a whole number with an optional K, M, G or
    T suffix (powers of 1024, as python-swiftclient reads them)."""
    value = str(text).strip().upper()
    if value.endswith('IB'):
        value = value[:-2]
    elif value.endswith('B') and len(value) > 1 and value[-2] in UNITS:
        value = value[:-1]
    unit = value[-1:] if value[-1:] in UNITS and value[-1:] else ''
    number = value[:-1] if unit else value
    if not number.isdigit():
        raise UsageError('invalid size %r (a number with an optional '
                         'K/M/G/T suffix)' % text)
    size = int(number) * UNITS[unit]
    if size <= 0:
        raise UsageError('invalid size %r: must be more than 0' % text)
    return size


def human_size(n):
    """``n`` bytes the short way: 512, 1.5K, 20.0M, 6.0G."""
    n = float(n)
    for unit in ('', 'K', 'M', 'G', 'T'):
        if abs(n) < 1024 or unit == 'T':
            return '%d' % n if unit == '' else '%.1f%s' % (n, unit)
        n /= 1024
