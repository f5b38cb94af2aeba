"""What the proxy remembers about accounts and containers, briefly.

Every object write needs to know its container exists (and its ACLs),
and every container write its account; asking the databases each time
would double the requests. Answers are kept ``ttl`` seconds per worker;
a write through this worker forgets the entry at once, other workers
see the change within ``ttl``. Only existing things are remembered, so
a new account or container is usable as soon as it is created.
"""
import time


class InfoCache:

    def __init__(self, ttl, max_entries=10000, clock=time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries = {}

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self.clock() >= expires:
            del self._entries[key]
            return None
        return value

    def set(self, key, value):
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            now = self.clock()
            self._entries = {k: e for k, e in self._entries.items()
                             if e[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key] = (self.clock() + self.ttl, value)

    def invalidate(self, key):
        self._entries.pop(key, None)
