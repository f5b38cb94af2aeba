"""Asking every replica at once, with a handoff standing in for a failure.

Account and container requests (writes, HEADs) and object DELETE and
POST go to all primaries concurrently, one green thread per replica. A
replica that cannot be reached or answers 5xx is retried on the next
handoff, so a write still reaches ``replicas`` nodes when one is down.
Listings ask one replica at a time instead (one_by_one).
"""
import random

from objstore.common.concurrency import GreenPool


def fan_out(client, slots, method, path, headers_for, query='', body=b''):
    """One answer per slot (a Reply, or None when no node answered).

    ``headers_for(i)`` gives slot i's headers (container writes name the
    account replica of their own index, for example).
    """
    def one(index):
        node = slots.first(index)
        last = None
        while node is not None:
            reply = client.request(node, slots.part, method, path,
                                   headers_for(index), query, body)
            if reply is not None:
                last = reply
                if reply.status < 500:
                    return reply
            node = slots.next_handoff()
        return last

    pool = GreenPool(len(slots))
    return list(pool.imap(one, range(len(slots))))


def one_by_one(client, slots, method, path, headers, query=''):
    """Replies of nodes asked one after the other, until one answers
    neither a failure (None, 5xx) nor a 404: the primaries in random
    order, then a handoff for each primary that failed.

    For listings: one replica's page is all a GET needs, and each
    replica asked costs a whole page of rows on its server; the random
    order spreads a busy container's listings over its replicas. A
    handoff's copy may lack rows, so it comes last.
    """
    primaries = [node for node in slots.primaries
                 if not slots.limiter.is_limited(node)]
    random.shuffle(primaries)
    stand_ins = len(slots.primaries) - len(primaries)
    replies = []
    for node in primaries:
        reply = client.request(node, slots.part, method, path, headers,
                               query, b'')
        replies.append(reply)
        if reply is None or reply.status >= 500:
            stand_ins += 1
        elif reply.status != 404:
            return replies
    for _ in range(stand_ins):
        node = slots.next_handoff()
        if node is None:
            break
        reply = client.request(node, slots.part, method, path, headers,
                               query, b'')
        replies.append(reply)
        if reply is not None and reply.status < 500 and reply.status != 404:
            break
    return replies


def statuses(replies):
    return [None if r is None else r.status for r in replies]
