"""Planning a download in parts: which GETs fill which bytes of the file.

A large object comes down faster as several GETs at once, each written
at its own offset of the destination file. Two plans:

* a static large object: one part per manifest entry, fetched from the
  segment object itself (its name in the manifest), so each part can be
  checked against the manifest's MD5 of that segment; an entry with a
  ``range`` fetches only that range of its segment and a nested SLO is
  fetched as the large object it is -- neither has an MD5 of the bytes
  served, so those parts are counted as unverified (as verify.py does
  for the single-stream download);
* a plain object above PLAIN_THRESHOLD: ranged GETs of the object
  itself, each pinned to the ETag first seen (If-Match) so a replaced
  object fails instead of mixing two versions; the whole file's MD5 is
  compared with that ETag afterwards.

Everything here is pure (no I/O) so offsets and requests are unit-tested.
"""
import collections

from objstore.cli.client.verify import manifest_pieces

# plain objects smaller than this come down as one verified stream
PLAIN_THRESHOLD = 64 * 1024 * 1024
# ranges a large plain object is split into
PLAIN_PART_SIZE = 32 * 1024 * 1024
# parts of one object fetched at once when no --segment-jobs is given
DEFAULT_SEGMENT_JOBS = 4


Part = collections.namedtuple('Part', [
    'index',      # 0-based position in the plan
    'offset',     # where its bytes go in the file
    'length',     # how many bytes it must deliver
    'container',  # what to GET
    'obj',
    'range',      # a Range header value, or None for the whole object
    'if_match',   # an If-Match header value, or None
    'md5',        # the expected MD5 of the bytes, or None (unverifiable)
])


def split_name(name):
    """'/container/object' (a manifest's segment name) -> (container,
    object); ValueError when it names no object."""
    container, sep, obj = (name or '').lstrip('/').partition('/')
    if not container or not sep or not obj:
        raise ValueError('segment name %r is not /container/object' % name)
    return container, obj


def slo_plan(manifest):
    """The parts of a static large object from its manifest as
    ``?multipart-manifest=get`` returns it (stored form; the PUT form is
    accepted too). Entries of zero bytes take no part; offsets still
    follow the manifest order. ValueError for an unreadable entry."""
    parts, offset = [], 0
    pieces = manifest_pieces(manifest)
    for entry, (length, digest) in zip(manifest, pieces):
        container, obj = split_name(entry.get('name', entry.get('path')))
        rng = entry.get('range')
        header = 'bytes=%s' % rng if rng else None
        if length > 0:
            parts.append(Part(len(parts), offset, length, container, obj,
                              header, None, digest))
        offset += length
    return parts


def plain_plan(container, obj, size, etag, part_size=PLAIN_PART_SIZE):
    """Ranged GETs covering ``size`` bytes of a plain object, each
    conditional on ``etag`` (the bytes are checked as a whole after)."""
    if part_size < 1:
        raise ValueError('part size must be positive')
    parts = []
    for offset in range(0, size, part_size):
        length = min(part_size, size - offset)
        parts.append(Part(len(parts), offset, length, container, obj,
                          'bytes=%d-%d' % (offset, offset + length - 1),
                          '"%s"' % etag.strip('"') if etag else None, None))
    return parts


def plan_size(parts):
    """The file size the parts fill (the end of the last one)."""
    return max((p.offset + p.length for p in parts), default=0)


def split_plain(size, threshold=PLAIN_THRESHOLD):
    """Whether a plain object of ``size`` bytes is worth ranged GETs."""
    return size is not None and size > threshold


def segment_jobs(args):
    """Parts fetched at once: --segment-jobs when the command line has
    it, else min(--jobs, DEFAULT_SEGMENT_JOBS) so ``--jobs 1`` stays one
    request at a time."""
    value = getattr(args, 'segment_jobs', None)
    if value:
        return max(1, value)
    return max(1, min(getattr(args, 'jobs', 1) or 1, DEFAULT_SEGMENT_JOBS))


def content_range_matches(part, header):
    """A 206 answer's Content-Range starts where the part asked."""
    if part.range is None:
        return True
    first = part.range[len('bytes='):].partition('-')[0]
    if not first.isdigit():   # a suffix range: nothing to compare
        return True
    text = (header or '').strip()
    return text.startswith('bytes %s-' % first)
