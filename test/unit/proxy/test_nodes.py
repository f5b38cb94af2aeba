"""Which nodes a request goes to: primaries, then handoffs."""
from objstore.proxy.errorlimit import ErrorLimiter
from objstore.proxy.nodes import NodeSlots


def test_slots_and_handoffs(backends):
    ring = backends.ring
    part = ring.get_part('a', 'c', 'o')
    primaries = ring.get_part_nodes(part)
    limiter = ErrorLimiter()
    slots = NodeSlots(ring, part, limiter, 6)
    assert len(slots) == 3
    assert [slots.first(i) for i in range(3)] == primaries
    handoff = slots.next_handoff()
    assert handoff['handoff_index'] == 0 and handoff not in primaries
    assert slots.next_handoff() is None          # four devices in all


def test_limited_primary_gives_way_and_budget_bounds_handoffs(backends):
    ring = backends.ring
    part = ring.get_part('a', 'c', 'o')
    primaries = ring.get_part_nodes(part)
    limiter = ErrorLimiter(limit=0)
    limiter.error(primaries[0])
    slots = NodeSlots(ring, part, limiter, 6)
    assert slots.first(0)['handoff_index'] == 0
    assert list(NodeSlots(ring, part, limiter, 6).in_order())[:2] == \
        primaries[1:]
    assert NodeSlots(ring, part, ErrorLimiter(), 3).next_handoff() is None
