"""Planning a segmented (SLO) upload: byte ranges, segment names, manifest.

Segment names follow python-swiftclient's layout,
``<object>/slo/<mtime>/<size>/<segment_size>/<index:08d>`` in
``<container>_segments``, so an upload started by one tool is resumed or
read by the other. A re-upload of an unchanged file (same mtime and size)
names the same segments, which is what makes resuming possible.
"""
import collections
import json

Segment = collections.namedtuple('Segment', 'index offset length')

# Swift's documented default for max_manifest_segments
DEFAULT_MAX_SEGMENTS = 1000


def plan_segments(size, segment_size):
    """The segments of a ``size``-byte file: [Segment(index, offset,
    length)], every one ``segment_size`` long but the last."""
    if segment_size <= 0:
        raise ValueError('segment size must be positive')
    if size == 0:
        return [Segment(0, 0, 0)]
    return [Segment(i, offset, min(segment_size, size - offset))
            for i, offset in enumerate(range(0, size, segment_size))]


def needs_segments(size, segment_size):
    """Whether a file of ``size`` bytes is uploaded in segments (only
    when it is larger than one segment, as python-swiftclient does)."""
    return segment_size is not None and size > segment_size


def segments_container(container, override=None):
    return override or container + '_segments'


def mtime_text(mtime):
    """The file mtime as X-Object-Meta-Mtime and the segment names carry
    it (six decimals)."""
    return '%f' % mtime


def segment_name(obj, mtime, size, segment_size, index):
    return '%s/slo/%s/%s/%s/%08d' % (obj, mtime_text(mtime), size,
                                     segment_size, index)


def segment_prefix(obj, mtime, size, segment_size):
    return '%s/slo/%s/%s/%s/' % (obj, mtime_text(mtime), size, segment_size)


def manifest_body(seg_container, entries):
    """The SLO manifest for ``entries`` [(segment name, etag, size)]:
    Swift's documented JSON list of {path, etag, size_bytes}."""
    return json.dumps([{'path': '/%s/%s' % (seg_container, name),
                        'etag': etag, 'size_bytes': size}
                       for name, etag, size in entries]).encode('utf-8')


def check_segment_count(count, limit=DEFAULT_MAX_SEGMENTS):
    """None if a manifest of ``count`` segments is allowed, else why not."""
    if limit and count > limit:
        return ('%d segments is more than the cluster allows in one '
                'manifest (%d); use a larger --segment-size'
                % (count, limit))
    return None
