"""A PUT whose body is small enough to hold: sent whole, no 100-continue.

Why: for a small object the streaming path (putter.Upload) costs every
replica a round trip for its 100 Continue, a green thread and a queue for
the body, and a send of its own for head and body. Here a body of at most
WHOLE_BODY_LIMIT bytes is first read from the client completely (so a
client that stalls or sends too little is refused before any node sees a
byte); then each replica slot gets one request with head and body
together, over a pooled connection, and a slot whose node fails or
answers 5xx moves on to a handoff, as the streaming path does while
connecting.

What differs from streaming: a node commits as soon as its request is
whole, so when fewer than a quorum of nodes can take the object, those
that can keep it although the client is told 503; the client's retry (a
newer timestamp) or the replicator settles it, as after any PUT that
failed half-way. No write is acknowledged below quorum: that is
unchanged.
"""
from functools import partial

from objstore.proxy.putter import gather
from objstore.proxy.quorum import quorum_size

WHOLE_BODY_LIMIT = 65536


def put_whole(client, slots, path, headers_for, body, post_quorum_timeout):
    """Every slot's final Reply (None: no node of it answered), in the
    order they came, like putter.Upload.finish; ``headers_for(i)`` gives
    slot i's request headers."""
    def one(index):
        last = None
        for node in slots.candidates(index):
            reply = client.request(node, slots.part, 'PUT', path,
                                   headers_for(index), body=body)
            if reply is not None:
                last = reply
                if reply.status < 500:
                    return reply
        return last
    return gather([partial(one, index) for index in range(len(slots))],
                  quorum_size(len(slots)), post_quorum_timeout)
