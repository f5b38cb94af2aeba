"""Finding the object a user means, and waiting for one to settle.

Users name servers (and images) by id or by name. An id is used as
given; a name is looked up in a listing and must match exactly one live
object: two servers called "web" is an error listing both ids, because
acting on the wrong one (deleting it, say) cannot be undone. A DELETED
server still listed under the same name does not make a name ambiguous.
"""
import time
import uuid

from compute.cli.client import CLIError

DELETED = 'DELETED'


def looks_like_id(ref):
    """Whether `ref` is a UUID, the form every server and image id takes."""
    try:
        uuid.UUID(ref)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def resolve(objects, ref, kind='server'):
    """The one object in `objects` (API dicts) that `ref` names.

    An exact id match wins; otherwise exact name matches, live ones
    (status not DELETED) first. Raises CLIError for none or several.
    """
    for obj in objects:
        if obj.get('id') == ref:
            return obj
    named = [o for o in objects if o.get('name') == ref]
    live = [o for o in named if o.get('status') != DELETED]
    candidates = live or named
    if not candidates:
        raise CLIError('no %s with id or name %r' % (kind, ref))
    if len(candidates) > 1:
        ids = ', '.join(sorted(str(o.get('id')) for o in candidates))
        raise CLIError('%d %ss are named %r (%s): give an id'
                       % (len(candidates), kind, ref, ids))
    return candidates[0]


def wait_for(fetch, done, timeout, interval=1.0, clock=time.monotonic,
             sleep=time.sleep):
    """Call `fetch()` until `done(result)` is true; return that result.

    CLIError when `timeout` seconds pass first (its message carries the
    last result's status). The wait between polls never overshoots the
    deadline by more than one interval.
    """
    deadline = clock() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        if clock() >= deadline:
            status = result.get('status') if isinstance(result, dict) \
                else None
            raise CLIError('gave up after %g s waiting (status is still %s)'
                           % (timeout, status or 'unknown'))
        sleep(max(0.0, min(interval, deadline - clock())))
