"""Deciding one answer from the answers of several replicas: pure.

Writes succeed when a quorum (replicas // 2 + 1) of the nodes agree;
reads of account and container databases believe the replica whose state
changed last, so a replica that missed a create or a delete while it was
down cannot answer for the others.
"""
from collections import Counter

from objstore.common.timestamp import Timestamp


def quorum_size(replicas):
    return replicas // 2 + 1


def best_status(statuses, replicas):
    """The status a quorum of ``replicas`` agrees on, else 503.

    ``statuses`` holds one entry per node asked (None: no answer).
    Statuses agree when they are of one class (2xx, 3xx or 4xx); the
    answer is the class's most frequent status (the higher on a tie, so a
    409 outranks a 404 for a container DELETE). A 5xx never wins.
    """
    quorum = quorum_size(replicas)
    for klass in (2, 3, 4):
        hits = [s for s in statuses if s is not None and s // 100 == klass]
        if len(hits) >= quorum:
            counts = Counter(hits)
            return max(counts, key=lambda s: (counts[s], s))
    return 503


def _timestamp(value):
    try:
        return Timestamp(value) if value else Timestamp(0)
    except ValueError:
        return Timestamp(0)


def db_state_time(reply):
    """When a database last changed state: created/put or deleted."""
    return max(_timestamp(reply.get('X-Backend-Put-Timestamp')),
               _timestamp(reply.get('X-Backend-Delete-Timestamp')))


def object_state_time(reply):
    """The object's data, metadata or tombstone time on that node."""
    return _timestamp(reply.get('X-Backend-Timestamp'))


def newest(replies, state_time=db_state_time):
    """The 2xx or 404 reply with the newest state (None if there is none).

    On equal times a success beats a 404, a primary beats a handoff (a
    database a handoff holds for a dead primary lacks the rows written
    to the primaries meanwhile) and an earlier reply beats a later one.
    """
    candidates = [r for r in replies if r is not None and
                  (200 <= r.status < 300 or r.status == 404)]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (
        state_time(r), r.status < 300, 'handoff_index' not in r.node))


def pair_updates(slots, targets):
    """Which update targets each of ``slots`` writes should name.

    Slot i names target i; when there are more targets than slots the
    extra ones are spread over the slots, and when there are fewer, they
    are reused, so every target hears of the write and every write names
    one at least.
    """
    out = [[] for _ in range(slots)]
    if not targets:
        return out
    for i in range(max(slots, len(targets))):
        target = targets[i % len(targets)]
        chosen = out[i % slots]
        if target not in chosen:
            chosen.append(target)
    return out


def _host(node):
    ip = node['ip']
    return ('[%s]:%d' if ':' in ip else '%s:%d') % (ip, node['port'])


def update_headers(kind, nodes, partition):
    """X-<Kind>-Host/-Partition/-Device naming ``nodes`` ({} for none).

    ``kind`` is 'container' (on object writes) or 'account' (on container
    writes); several nodes are comma-separated, as the servers accept.
    """
    if not nodes:
        return {}
    name = kind.title()
    return {'X-%s-Host' % name: ','.join(_host(n) for n in nodes),
            'X-%s-Partition' % name: str(partition),
            'X-%s-Device' % name: ','.join(n['device'] for n in nodes)}
