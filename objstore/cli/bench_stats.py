"""The arithmetic of objstore-bench: percentiles, phase summaries, tables.

Pure functions over numbers, kept apart from the sockets and processes
that produce them so they can be checked exactly in unit tests, and so the
JSON a comparison script reads has one definition of each field.

Units: seconds in, milliseconds out for latencies; MB means 10**6 bytes
(the unit disks and networks are quoted in).
"""
import math

MB = 1000 * 1000
# The fields every phase has in the JSON output, in table order.
PHASE_FIELDS = ('ops', 'errors', 'seconds', 'ops_per_s', 'mb_per_s',
                'p50_ms', 'p95_ms', 'p99_ms')


def percentile(sorted_values, pct):
    """The pct-th percentile (0-100) of an ascending sequence.

    Linear interpolation between the closest ranks (numpy's default), so
    p50 of an even count is the mean of the two middle values; None when
    there are no values (a phase where every request failed).
    """
    if not sorted_values:
        return None
    if not 0 <= pct <= 100:
        raise ValueError('percentile must be within 0-100')
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    frac = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) \
        * frac


def merge_parts(parts):
    """One phase's result from the results of the processes that ran it.

    Each part is a dict with 'start' and 'end' (time.perf_counter values:
    CLOCK_MONOTONIC, comparable across processes of one machine),
    'latencies' (seconds of each successful request), 'errors', 'bytes',
    'cpu' (client CPU seconds) and 'first_error' (text or None). The phase
    lasts from the first start to the last end.
    """
    latencies = []
    for part in parts:
        latencies.extend(part['latencies'])
    first_error = next((p['first_error'] for p in parts
                        if p['first_error']), None)
    return {
        'latencies': latencies,
        'errors': sum(p['errors'] for p in parts),
        'bytes': sum(p['bytes'] for p in parts),
        'cpu': sum(p['cpu'] for p in parts),
        'seconds': max(0.0, max(p['end'] for p in parts)
                       - min(p['start'] for p in parts)),
        'first_error': first_error,
    }


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000.0, 3)


def summarize(latencies, errors, nbytes, seconds, cpu=0.0, concurrency=None,
              first_error=None):
    """A phase's JSON summary.

    ops counts successful requests only; ops_per_s and mb_per_s divide by
    the phase's wall-clock seconds; the percentiles are of the successful
    requests' latencies (sending the request to the last byte of the
    response).
    """
    ordered = sorted(latencies)
    ops = len(ordered)
    rate = (lambda x: x / seconds) if seconds > 0 else (lambda x: 0.0)
    summary = {
        'ops': ops,
        'errors': errors,
        'seconds': round(seconds, 6),
        'ops_per_s': round(rate(ops), 3),
        'mb_per_s': round(rate(nbytes) / MB, 3),
        'p50_ms': _ms(percentile(ordered, 50)),
        'p95_ms': _ms(percentile(ordered, 95)),
        'p99_ms': _ms(percentile(ordered, 99)),
        'bytes': nbytes,
        'client_cpu_s': round(cpu, 3),
    }
    if concurrency is not None:
        summary['concurrency'] = concurrency
    if first_error:
        summary['first_error'] = first_error
    return summary


def _cell(value, width, digits):
    if value is None:
        return '-'.rjust(width)
    if isinstance(value, float):
        return ('%.*f' % (digits, value)).rjust(width)
    return str(value).rjust(width)


TABLE_COLUMNS = (
    # (header, field, width, digits)
    ('ops', 'ops', 8, 0),
    ('errors', 'errors', 7, 0),
    ('seconds', 'seconds', 8, 2),
    ('ops/s', 'ops_per_s', 10, 1),
    ('MB/s', 'mb_per_s', 9, 1),
    ('p50 ms', 'p50_ms', 9, 1),
    ('p95 ms', 'p95_ms', 9, 1),
    ('p99 ms', 'p99_ms', 9, 1),
    ('cpu s', 'client_cpu_s', 7, 2),
)


def format_table(phases):
    """Lines of a fixed-width table for people: one row per phase.

    phases is an ordered mapping name -> summary (as summarize() builds).
    """
    name_width = max([len('phase')] + [len(n) for n in phases])
    lines = ['phase'.ljust(name_width) + ''.join(
        h.rjust(w + 1) for h, _, w, _ in TABLE_COLUMNS)]
    for name, summary in phases.items():
        lines.append(name.ljust(name_width) + ''.join(
            ' ' + _cell(summary.get(field), w, d)
            for _, field, w, d in TABLE_COLUMNS))
    return lines
