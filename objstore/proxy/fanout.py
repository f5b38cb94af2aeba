"""Asking every replica at once, with a handoff standing in for a failure.

Account and container requests (reads and writes) and object DELETE and
POST go to all primaries concurrently, one green thread per replica. A
replica that cannot be reached or answers 5xx is retried on the next
handoff, so a write still reaches ``replicas`` nodes when one is down.
"""
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


def statuses(replies):
    return [None if r is None else r.status for r in replies]
