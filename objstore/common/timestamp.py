"""Timestamps as Swift clients and servers exchange them.

Every write carries ``X-Timestamp``; the newest timestamp wins everywhere
(files on disk, rows in container and account databases). The normal form
is ten digits, a dot, five digits (``1700000000.12345``) so that string
order equals time order; an optional offset (``_000000000000000a``) orders
internal events that share one client timestamp.
"""
import time

PRECISION = 1e-5
MAX_OFFSET = (1 << 64) - 1


class Timestamp:
    """A point in time at 10 microsecond precision, plus an offset."""

    __slots__ = ('ticks', 'offset')

    def __init__(self, value, offset=0):
        if isinstance(value, Timestamp):
            ticks, base_offset = value.ticks, value.offset
        else:
            base_offset = 0
            if isinstance(value, bytes):
                value = value.decode('ascii', 'replace')
            if isinstance(value, str):
                text = value.strip()
                if '_' in text:
                    text, _, off = text.partition('_')
                    try:
                        base_offset = int(off, 16)
                    except ValueError:
                        raise ValueError('bad timestamp offset %r' % value)
                try:
                    value = float(text)
                except ValueError:
                    raise ValueError('bad timestamp %r' % value)
            try:
                ticks = int(round(float(value) / PRECISION))
            except (TypeError, ValueError, OverflowError):
                raise ValueError('bad timestamp %r' % (value,))
        offset += base_offset
        if not 0 <= ticks < 10 ** 15:  # 0 .. year 2286
            raise ValueError('timestamp out of range: %r' % (value,))
        if not 0 <= offset <= MAX_OFFSET:
            raise ValueError('timestamp offset out of range')
        self.ticks = ticks
        self.offset = offset

    @classmethod
    def now(cls):
        return cls(time.time())

    @property
    def normal(self):
        """'1700000000.12345': what clients see in X-Timestamp."""
        return '%010d.%05d' % divmod(self.ticks, 100000)

    @property
    def internal(self):
        """normal, with '_<16 hex digits>' when there is an offset."""
        if self.offset:
            return '%s_%016x' % (self.normal, self.offset)
        return self.normal

    def __float__(self):
        return self.ticks * PRECISION

    def __str__(self):
        return self.internal

    def __repr__(self):
        return 'Timestamp(%r)' % self.internal

    def _key(self):
        return (self.ticks, self.offset)

    def __eq__(self, other):
        if not isinstance(other, Timestamp):
            try:
                other = Timestamp(other)
            except ValueError:
                return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other):
        if not isinstance(other, Timestamp):
            other = Timestamp(other)
        return self._key() < other._key()

    def __le__(self, other):
        return self == other or self < other

    def __gt__(self, other):
        return not self <= other

    def __ge__(self, other):
        return not self < other

    def __hash__(self):
        return hash(self._key())


def parse_x_timestamp(value):
    """Timestamp from an X-Timestamp header value, or ValueError."""
    if value is None or value == '':
        raise ValueError('missing X-Timestamp')
    return Timestamp(value)
