"""Small helpers the commands share: header options, metadata options,
the worker pool and per-item failure reporting."""
import concurrent.futures
import re

from objstore.cli.client.errors import ClientError, UsageError

# an HTTP header name (RFC 9110 token); anything else cannot be sent
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def parse_headers(values):
    """``-H 'Name: value'`` options -> {Name: value}."""
    headers = {}
    for value in values or ():
        name, sep, text = value.partition(':')
        if not sep or not TOKEN.match(name.strip()):
            raise UsageError('header %r is not "Name: value" (an ASCII '
                             'name without spaces)' % value)
        headers[name.strip()] = text.strip()
    return headers


def parse_meta(values, kind):
    """``-m key:value`` options -> {X-<kind>-Meta-key: value}; an empty
    value removes the item (as the API documents)."""
    headers = {}
    for value in values or ():
        key, sep, text = value.partition(':')
        if not sep or not TOKEN.match(key.strip()):
            raise UsageError('metadata %r is not "key:value" (an ASCII key '
                             'without spaces)' % value)
        headers['X-%s-Meta-%s' % (kind, key.strip())] = text.strip()
    return headers


def run_parallel(jobs, func, items, out, what):
    """func(item) for every item on ``jobs`` threads; failures are
    reported one line each and counted. Returns (results, failures)."""
    results, failures = [], 0
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(func, item): item for item in items}
        for future in concurrent.futures.as_completed(futures):
            try:
                results.append(future.result())
            except ClientError as e:
                failures += 1
                out.warn(str(e))
            except OSError as e:
                failures += 1
                out.warn('%s: %s' % (what(futures[future]), e))
    return results, failures


def check_jobs(jobs):
    if jobs < 1:
        raise UsageError('--jobs must be at least 1')
    return jobs
