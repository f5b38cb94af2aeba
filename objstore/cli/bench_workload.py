"""What objstore-bench does in each phase: object names and one request.

A Workload is a small picklable description of a run (the storage URL,
the token, sizes, counts, the run id that names the containers); every
worker process rebuilds its bodies from it, so nothing large crosses a
process boundary. Each phase is one method `op_<phase>(conn, i)` doing the
i-th request of the phase on a bench_client.Connection and returning
(ok, bytes, error text or None); which requests a phase has is a count,
and names follow from the index, so any worker can do any request.
"""
import dataclasses
import os
import time

from objstore.cli.bench_client import NETWORK_ERRORS

# The measured phases, in the order they run.
PHASES = ('put', 'get', 'head', 'delete', 'large-put', 'large-get',
          'list-full', 'list-prefix')
# Unmeasured work: objects the measured phases need, and the cleanup.
SETUP_PHASES = ('setup-put', 'setup-large-put', 'setup-list',
                'cleanup-small', 'cleanup-large', 'cleanup-list')
LISTING_LIMIT = 10000      # the Swift API's page size limit
LARGE_CHUNK = 1 << 20      # the repeated block of a large object's body
# Unmeasured requests are retried (a busy cluster's 503 must not spoil
# the data a measured phase needs); measured ones never are.
SETUP_ATTEMPTS = 4


@dataclasses.dataclass(frozen=True)
class Workload:
    storage_url: str
    token: str
    run_id: str
    size: int = 4096
    count: int = 1000
    large_size: int = 64 << 20
    large_count: int = 8
    containers: int = 1
    listing_count: int = 10000
    full_listings: int = 100
    prefix_listings: int = 1000
    timeout: float = 60.0

    # -- names ---------------------------------------------------------------

    def container(self, k):
        return 'bench-%s-%d' % (self.run_id, k)

    @property
    def listing_container(self):
        return 'bench-%s-list' % self.run_id

    def all_containers(self):
        return [self.container(k) for k in range(self.containers)] + \
            [self.listing_container]

    def small_path(self, i):
        return '/%s/o%08d' % (self.container(i % self.containers), i)

    def large_path(self, i):
        return '/%s/large%06d' % (self.container(i % self.containers), i)

    @property
    def prefix_groups(self):
        """How many name prefixes the listing objects spread over: 100 of
        100 objects each for a 10,000-object container."""
        return max(1, min(100, self.listing_count // 10))

    def listing_name(self, i):
        return 'g%03d/o%08d' % (i % self.prefix_groups, i)

    def prefix_expected(self, group):
        """How many listing objects carry the prefix of group."""
        groups = self.prefix_groups
        return len(range(group, self.listing_count, groups))

    # -- how many requests each phase makes ----------------------------------

    def total(self, phase):
        return {
            'put': self.count, 'get': self.count, 'head': self.count,
            'delete': self.count, 'setup-put': self.count,
            'cleanup-small': self.count,
            'large-put': self.large_count, 'large-get': self.large_count,
            'setup-large-put': self.large_count,
            'cleanup-large': self.large_count,
            'setup-list': self.listing_count,
            'cleanup-list': self.listing_count,
            'list-full': self.full_listings,
            'list-prefix': self.prefix_listings,
        }[phase]


class Operations:
    """The requests of every phase, for one worker process.

    Holds the bodies the requests send: one small body shared by every
    small PUT, one block repeated to make every large object.
    """

    def __init__(self, workload):
        self.w = workload
        self.small_body = os.urandom(workload.size)
        self.large_chunk = os.urandom(min(LARGE_CHUNK,
                                          max(1, workload.large_size)))
        self.table = {name: getattr(self, 'op_' + name.replace('-', '_'))
                      for name in PHASES}
        for name in SETUP_PHASES:
            self.table[name] = self._retried(
                getattr(self, 'op_' + name.replace('-', '_')))

    @staticmethod
    def _retried(op, attempts=SETUP_ATTEMPTS, pause=0.1):
        def retried(conn, i):
            for attempt in range(attempts):
                if attempt:
                    time.sleep(pause * 2 ** (attempt - 1))
                try:
                    result = op(conn, i)
                except NETWORK_ERRORS:
                    if attempt == attempts - 1:
                        raise
                    continue
                if result[0]:
                    break
            return result
        return retried

    def op(self, phase):
        return self.table[phase]

    @staticmethod
    def _check(status, want, nbytes=0, expect_bytes=None):
        if status not in want:
            return False, nbytes, 'HTTP %d' % status
        if expect_bytes is not None and nbytes != expect_bytes:
            return False, nbytes, 'got %d bytes, want %d' % (nbytes,
                                                             expect_bytes)
        return True, nbytes, None

    # -- small objects -------------------------------------------------------

    def op_put(self, conn, i):
        status, _ = conn.request('PUT', self.w.small_path(i),
                                 body=self.small_body)
        return self._check(status, (201,), len(self.small_body))

    op_setup_put = op_put

    def op_get(self, conn, i):
        status, n = conn.request('GET', self.w.small_path(i))
        return self._check(status, (200,), n, self.w.size)

    def op_head(self, conn, i):
        status, _ = conn.request('HEAD', self.w.small_path(i))
        return self._check(status, (200,))

    def op_delete(self, conn, i):
        status, _ = conn.request('DELETE', self.w.small_path(i))
        return self._check(status, (204,))

    def op_cleanup_small(self, conn, i):
        status, _ = conn.request('DELETE', self.w.small_path(i))
        return self._check(status, (204, 404))

    # -- large objects -------------------------------------------------------

    def op_large_put(self, conn, i):
        status, n = conn.put_stream(self.w.large_path(i), self.w.large_size,
                                    self.large_chunk)
        return self._check(status, (201,), n)

    op_setup_large_put = op_large_put

    def op_large_get(self, conn, i):
        status, n = conn.request('GET', self.w.large_path(i))
        return self._check(status, (200,), n, self.w.large_size)

    def op_cleanup_large(self, conn, i):
        status, _ = conn.request('DELETE', self.w.large_path(i))
        return self._check(status, (204, 404))

    # -- listings ------------------------------------------------------------

    def op_setup_list(self, conn, i):
        path = '/%s/%s' % (self.w.listing_container, self.w.listing_name(i))
        status, _ = conn.request('PUT', path, body=b'')
        return self._check(status, (201,))

    def op_cleanup_list(self, conn, i):
        path = '/%s/%s' % (self.w.listing_container, self.w.listing_name(i))
        status, _ = conn.request('DELETE', path)
        return self._check(status, (204, 404))

    def _listing(self, conn, query, expected):
        status, body = conn.read('/%s?format=json&%s'
                                 % (self.w.listing_container, query))
        if status != 200:
            return False, len(body), 'HTTP %d' % status
        # every entry has exactly one "name" key: a count without parsing
        found = body.count(b'"name"')
        if found != expected:
            return False, len(body), 'listed %d names, want %d' % (found,
                                                                   expected)
        return True, len(body), None

    def op_list_full(self, conn, i):
        return self._listing(conn, 'limit=%d' % LISTING_LIMIT,
                             min(self.w.listing_count, LISTING_LIMIT))

    def op_list_prefix(self, conn, i):
        group = i % self.w.prefix_groups
        return self._listing(conn, 'prefix=g%03d/' % group,
                             self.w.prefix_expected(group))
