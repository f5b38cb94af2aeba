"""The consistent-hashing ring: a small reader (Ring) and a separate builder.

A ring file alone is enough for a server: it maps every partition to its
primary devices. The builder file keeps what only the builder needs
(history of moves, overload, removed devices).
"""
from rings.ring import Ring, RingError
from rings.ringdata import RingData

__all__ = ['Ring', 'RingData', 'RingError']
