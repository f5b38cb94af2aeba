"""Byte ranges (RFC 7233) as Swift serves them: pure functions, no I/O.

A Range header that does not parse is ignored (the whole object is
sent); one that parses but selects nothing in the object gets 416; one
satisfiable range gets a 206 with Content-Range; several get a
multipart/byteranges body.
"""
import os

MAX_RANGES = 100


def parse_range(value):
    """[(first, last)] from 'bytes=...'; None when it does not parse.

    ``first`` None means a suffix range (the last ``last`` bytes);
    ``last`` None means to the end.
    """
    if value is None:
        return None
    unit, eq, spec = value.strip().partition('=')
    if not eq or unit.strip().lower() != 'bytes':
        return None
    specs = []
    for part in spec.split(','):
        part = part.strip()
        if not part:
            continue
        first, dash, last = part.partition('-')
        first, last = first.strip(), last.strip()
        if not dash or (first and not first.isdigit()) or \
                (last and not last.isdigit()) or (not first and not last):
            return None
        if not first:
            specs.append((None, int(last)))
            continue
        start, end = int(first), (int(last) if last else None)
        if end is not None and end < start:
            return None
        specs.append((start, end))
    if not specs or len(specs) > MAX_RANGES:
        return None
    return specs


def satisfiable(specs, length):
    """[(start, stop)] (stop exclusive) within ``length``; [] for 416."""
    out = []
    for first, last in specs:
        if first is None:
            if last == 0 or length == 0:
                continue
            out.append((max(0, length - last), length))
        elif first < length:
            stop = length if last is None else min(last + 1, length)
            out.append((first, stop))
    return out


def content_range(start, stop, length):
    return 'bytes %d-%d/%d' % (start, stop - 1, length)


def new_boundary():
    return os.urandom(16).hex()


def multipart_layout(spans, length, content_type, boundary):
    """The parts of a multipart/byteranges body.

    Returns ([(part head bytes, start, stop)], trailer bytes, total
    length) so the caller streams each part's content from disk between
    its head and the next one.
    """
    parts = []
    total = 0
    for index, (start, stop) in enumerate(spans):
        head = ('%s--%s\r\nContent-Type: %s\r\nContent-Range: %s\r\n\r\n' % (
            '' if index == 0 else '\r\n', boundary, content_type,
            content_range(start, stop, length))).encode('latin-1')
        parts.append((head, start, stop))
        total += len(head) + stop - start
    trailer = ('\r\n--%s--\r\n' % boundary).encode('latin-1')
    return parts, trailer, total + len(trailer)
