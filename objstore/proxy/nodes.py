"""Which nodes a request goes to: primaries first, then handoffs.

A primary that the error limiter skips is replaced by the next handoff
at once; a primary that fails during the request is replaced by the next
handoff too. Handoffs come in the ring's order (new regions, zones and
hosts first) so every proxy picks the same ones and replication later
finds the data where it expects it. ``max_nodes`` bounds how many nodes
one request may try in all.
"""


class NodeSlots:
    """The primaries of one partition and a shared supply of handoffs."""

    def __init__(self, ring, part, limiter, max_nodes):
        self.ring = ring
        self.part = part
        self.limiter = limiter
        self.primaries = ring.get_part_nodes(part)
        self._handoffs = None
        self._budget = max(0, max_nodes - len(self.primaries))

    def __len__(self):
        return len(self.primaries)

    def next_handoff(self):
        """The next handoff not error-limited, or None when out of them."""
        if self._handoffs is None:
            self._handoffs = self.ring.get_more_nodes(self.part)
        while self._budget > 0:
            node = next(self._handoffs, None)
            if node is None:
                self._budget = 0
                return None
            self._budget -= 1
            if not self.limiter.is_limited(node):
                return node
        return None

    def first(self, index):
        """Slot ``index``'s node: its primary, or a handoff if limited."""
        node = self.primaries[index]
        if self.limiter.is_limited(node):
            return self.next_handoff()
        return node

    def candidates(self, index):
        """Slot ``index``'s nodes to try in turn: its node, then handoffs
        for as long as the caller asks for another (one that failed)."""
        node = self.first(index)
        while node is not None:
            yield node
            node = self.next_handoff()

    def in_order(self):
        """Every node for a read, one after the other: live primaries,
        then handoffs (error-limited ones left out)."""
        for node in self.primaries:
            if not self.limiter.is_limited(node):
                yield node
        while True:
            node = self.next_handoff()
            if node is None:
                return
            yield node
