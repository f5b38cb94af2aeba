"""How many replicas of each partition every tier and device should hold.

Pure arithmetic over the device tree (root > region > zone > host >
device), no partitions involved, so the trade-off between balance and
dispersion can be read and tested on its own:

* ``weighted`` share: replicas in proportion to weight, except that a tier
  can never hold more replicas of one partition than it has devices (a hard
  cap; the excess goes to its siblings).
* ``max_replicas``: the most replicas of one partition a tier may hold for
  the replicas to be as dispersed as the tree allows (spread evenly over
  siblings, whatever their weights).
* ``target``: the weighted share, except that where a tier's weighted share
  exceeds its dispersion maximum, its siblings take the excess, each growing
  by at most ``overload`` times its own weighted share. Overload 0 gives
  exact balance; enough overload gives full dispersion.

Targets are average replicas of one partition (``target * parts`` is the
number of partition-replicas the tier is meant to hold).
"""
import math

EPS = 1e-9
LEVELS = ('region', 'zone', 'host', 'device')


def waterfill(total, weights, caps):
    """Split ``total`` in proportion to ``weights``, no share above its cap.

    Shares that would pass their cap are pinned at it and the rest is
    split again among the others. Returns a list of shares.
    """
    n = len(weights)
    shares = [0.0] * n
    free = [i for i in range(n) if weights[i] > 0 and caps[i] > 0]
    remaining = total
    while free and remaining > EPS:
        wsum = sum(weights[i] for i in free)
        pinned = [i for i in free
                  if remaining * weights[i] / wsum > caps[i] + EPS]
        if not pinned:
            for i in free:
                shares[i] = remaining * weights[i] / wsum
            return shares
        for i in pinned:
            shares[i] = caps[i]
            remaining -= caps[i]
        free = [i for i in free if i not in set(pinned)]
    return shares


class TierNode:
    """One node of the device tree with its weight and targets."""

    __slots__ = ('key', 'level', 'parent', 'children', 'weight', 'ndevs',
                 'dev_id', 'weighted', 'max_replicas', 'target', 'hi',
                 'index')

    def __init__(self, key, level, parent):
        self.key = key          # tuple: (region,), (r, zone), (r, z, ip), ...
        self.level = level      # -1 root, 0 region .. 3 device
        self.parent = parent
        self.children = []
        self.weight = 0.0
        self.ndevs = 0          # devices with weight > 0 below
        self.dev_id = None
        self.weighted = 0.0
        self.max_replicas = 0   # most replicas of a part for full dispersion
        self.target = 0.0
        self.hi = 0             # most replicas of a part placement allows
        self.index = 0


def tier_key(dev, level):
    """The tree key of a device at a level (host = its IP in its zone)."""
    full = (dev['region'], dev['zone'], dev['ip'], dev['id'])
    return full[:level + 1]


def build_tree(devs):
    """Tree of TierNodes over ``devs`` (dicts with region/zone/ip/id/weight).

    Returns (nodes, dev_node): nodes in breadth-first order (root first),
    and a map dev id -> its device node.
    """
    root = TierNode((), -1, None)
    by_key = {(): root}
    dev_node = {}
    for dev in sorted(devs, key=lambda d: d['id']):
        parent = root
        for level in range(4):
            key = tier_key(dev, level)
            node = by_key.get(key)
            if node is None:
                node = by_key[key] = TierNode(key, level, parent)
                parent.children.append(node)
            parent = node
        parent.dev_id = dev['id']
        dev_node[dev['id']] = parent
        weight = float(dev['weight'])
        node = parent
        while node is not None:
            node.weight += weight
            node.ndevs += 1 if weight > 0 else 0
            node = node.parent
    nodes = [root]
    for node in nodes:  # grows while iterating: breadth-first
        node.children.sort(key=lambda n: n.key)
        nodes.extend(node.children)
    for i, node in enumerate(nodes):
        node.index = i
    return nodes, dev_node


def compute_targets(nodes, replicas, overload):
    """Fill weighted, max_replicas and target on every node of the tree."""
    root = nodes[0]
    root.weighted = root.target = float(min(replicas, root.ndevs))
    root.max_replicas = root.hi = min(replicas, root.ndevs)
    for node in nodes:
        kids = node.children
        if not kids:
            continue
        caps = [float(k.ndevs) for k in kids]
        weights = [k.weight for k in kids]
        # Global weighted shares bound how far overload lets a tier grow.
        weighted = waterfill(node.weighted, weights, caps)
        for kid, share in zip(kids, weighted):
            kid.weighted = share
        # Dispersion: spread the parent's maximum evenly over the children.
        even = waterfill(float(max(node.max_replicas, node.hi)),
                         [1.0 if c > 0 else 0.0 for c in caps], caps)
        for kid, share in zip(kids, even):
            kid.max_replicas = min(kid.ndevs, math.ceil(share - EPS))
        # Start from the parent's target split by weight, then let
        # under-dispersed siblings take what over-full ones must shed.
        shares = waterfill(node.target, weights, caps)
        excess = [max(0.0, s - k.max_replicas) for k, s in zip(kids, shares)]
        room = [0.0 if e > 0 else
                max(0.0, min(k.max_replicas, k.weighted * (1 + overload)) - s)
                for k, s, e in zip(kids, shares, excess)]
        total_excess = sum(excess)
        moved = min(total_excess, sum(room))
        if moved > EPS:
            gains = waterfill(moved, [k.weight if r > 0 else 0.0
                                      for k, r in zip(kids, room)], room)
            for i in range(len(kids)):
                shares[i] += gains[i] - moved * excess[i] / total_excess
        for kid, share in zip(kids, shares):
            kid.target = max(0.0, share)
            # A part holds floor(target) or ceil(target) replicas here; with
            # too little overload that may pass max_replicas, and the
            # children then spread what the tier really holds.
            kid.hi = min(kid.ndevs, math.ceil(kid.target - EPS))


def quotas(nodes, parts, current=None):
    """Integer partition-replica quota per node, summing exactly.

    Every node gets ``target * parts`` rounded down or up, top down, so a
    tier's quota is the sum of its children's. Which children round up is
    free; those already holding more than the rounded-down figure
    (``current``, indexed like ``nodes``) go first, so a small change of
    weights does not shuffle the rounding between devices and move parts
    for nothing. Then the largest remainders.
    """
    current = current or [0] * len(nodes)
    quota = [0] * len(nodes)
    quota[0] = round(nodes[0].target * parts)
    for node in nodes:
        kids = node.children
        if not kids:
            continue
        exact = [k.target * parts for k in kids]
        base = [min(int(math.floor(e + EPS)), parts if k.level == 3 else
                    10 ** 18) for k, e in zip(kids, exact)]
        left = quota[node.index] - sum(base)
        # Round up only children with a real remainder, each at most once:
        # a whole-number share rounded up would ask a tier for more
        # replicas than its per-part bound lets it hold.
        rem = [e - b for e, b in zip(exact, base)]
        order = sorted((i for i in range(len(kids)) if rem[i] > EPS),
                       key=lambda i: (current[kids[i].index] > base[i],
                                      rem[i], kids[i].weight),
                       reverse=True)
        for j in order[:max(0, left)]:
            base[j] += 1
        left -= min(max(0, left), len(order))
        # Float noise may leave a part over: give it where it fits best.
        spare = sorted((i for i in range(len(kids)) if kids[i].target > 0),
                       key=lambda i: (kids[i].hi * parts - base[i], rem[i]),
                       reverse=True)
        for j in spare[:max(0, left)]:
            base[j] += 1
        for kid, q in zip(kids, base):
            quota[kid.index] = q
    return quota
