"""Skipping storage nodes that keep failing.

A node that errs ``limit`` times without a pause of ``interval`` seconds
between errors is skipped until ``interval`` seconds after its last
error, so one dead disk or host does not add a timeout to every request.
A node that says its device is gone (507) is skipped at once. Per
process; every worker learns on its own.
"""
import logging
import time

log = logging.getLogger('objstore.proxy')


def node_key(node):
    return (node['ip'], node['port'], node['device'])


class ErrorLimiter:

    def __init__(self, limit=10, interval=60.0, clock=time.monotonic):
        self.limit = limit
        self.interval = interval
        self.clock = clock
        self._errors = {}   # node key -> [count, time of last error]

    def is_limited(self, node):
        entry = self._errors.get(node_key(node))
        if entry is None:
            return False
        if self.clock() - entry[1] > self.interval:
            del self._errors[node_key(node)]
            return False
        return entry[0] > self.limit

    def error(self, node, why=''):
        """Count one error of ``node``; log when it becomes limited."""
        now = self.clock()
        key = node_key(node)
        entry = self._errors.get(key)
        if entry is None or now - entry[1] > self.interval:
            entry = self._errors[key] = [0, now]
        entry[0] += 1
        entry[1] = now
        if entry[0] == self.limit + 1:
            log.warning('node %s:%s/%s error-limited for %.0fs: %s',
                        key[0], key[1], key[2], self.interval, why)

    def limit_now(self, node, why=''):
        """Skip ``node`` for ``interval`` seconds from now (e.g. 507)."""
        key = node_key(node)
        if not self.is_limited(node):
            log.warning('node %s:%s/%s error-limited for %.0fs: %s',
                        key[0], key[1], key[2], self.interval, why)
        self._errors[key] = [self.limit + 1, self.clock()]
