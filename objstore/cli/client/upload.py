"""``objstore upload CONTAINER FILE_OR_DIR...``.

Files go up in parallel (``--jobs``); a file larger than
``--segment-size`` goes up as a static large object: its segments are
uploaded in parallel into ``<container>_segments`` (or
``--segment-container``), then the manifest. Each body is streamed from
the file with its MD5 sent as ETag, so the server refuses damaged bytes.
Resuming: a segment already stored under its name with the ETag of the
local bytes is not sent again. ``--changed`` skips files whose size and
mtime match the stored object; ``--skip-identical`` skips those whose
content matches (MD5 against the ETag, or segment by segment for an SLO).
"""
import json
import mimetypes
import os

from objstore.cli.client import segments as seg
from objstore.cli.client.common import (check_jobs, parse_headers,
                                        run_parallel)
from objstore.cli.client.errors import ClientError, UsageError
from objstore.cli.client.progress import Progress
from objstore.cli.client.streams import (RangeReader, file_matches_pieces,
                                         range_md5)
from objstore.cli.client.verify import manifest_pieces, unquote_etag


def object_name_for(path):
    """The object name a local path is uploaded as: the path as given,
    without a leading ./ or /."""
    name = os.path.normpath(path).replace(os.sep, '/')
    while name.startswith('./'):
        name = name[2:]
    return name.lstrip('/')


def collect(paths, object_name=None, walk=os.walk, isdir=os.path.isdir):
    """[(local file, object name)] for the files and directories given;
    ``object_name`` renames a single file, or replaces the directory
    part of the names of a single directory."""
    if object_name is not None and len(paths) != 1:
        raise UsageError('--object-name needs exactly one file or '
                         'directory')
    found = []
    for path in paths:
        if isdir(path):
            base = object_name_for(path) if object_name is None \
                else object_name.strip('/')
            for root, dirs, files in walk(path):
                dirs.sort()
                for fname in sorted(files):
                    local = os.path.join(root, fname)
                    rel = os.path.relpath(local, path).replace(os.sep, '/')
                    found.append((local, (base + '/' + rel) if base
                                  else rel))
        else:
            found.append((path, object_name if object_name is not None
                          else object_name_for(path)))
    return found


def is_slo(headers):
    return (headers.get('X-Static-Large-Object') or '').lower() in (
        'true', '1', 'yes')


class Uploader:
    def __init__(self, conn, out, args):
        self.conn, self.out, self.args = conn, out, args
        self.headers = parse_headers(args.header)
        self.progress = None
        self._info = None

    # -- deciding -----------------------------------------------------------

    def unchanged(self, remote, size, mtime):
        """--changed: the stored object has this size and mtime."""
        return (remote.get('Content-Length') == str(size) and
                remote.get('X-Object-Meta-Mtime') == seg.mtime_text(mtime))

    def identical(self, remote, path, size, container, obj):
        """--skip-identical: the stored bytes are the local bytes."""
        if is_slo(remote):
            resp = self.conn.request('GET', container, obj,
                                     query={'multipart-manifest': 'get'})
            try:
                pieces = manifest_pieces(json.loads(resp.content))
            except (ValueError, TypeError, AttributeError):
                return False
            return file_matches_pieces(path, pieces)
        if remote.get('X-Object-Manifest'):
            return False
        return remote.get('Content-Length') == str(size) and \
            unquote_etag(remote.get('ETag')) == range_md5(path)

    def plan(self, container, path, obj):
        """(path, obj, size, mtime) to upload, or None to skip."""
        try:
            st = os.stat(path)
        except OSError as e:
            raise ClientError('%s: %s' % (path, e.strerror))
        if self.args.changed or self.args.skip_identical:
            remote = self.conn.head_or_none(container, obj)
            if remote is not None:
                if self.args.changed and self.unchanged(remote, st.st_size,
                                                        st.st_mtime):
                    self.out.note('skipped %s: unchanged' % obj)
                    return None
                if self.args.skip_identical and self.identical(
                        remote, path, st.st_size, container, obj):
                    self.out.note('skipped %s: identical' % obj)
                    return None
        return path, obj, st.st_size, st.st_mtime

    # -- sending ------------------------------------------------------------

    def object_headers(self, obj, mtime):
        headers = {'X-Object-Meta-Mtime': seg.mtime_text(mtime)}
        ctype = mimetypes.guess_type(obj)[0]
        if ctype:
            headers['Content-Type'] = ctype
        headers.update(self.headers)
        return headers

    def put_body(self, container, obj, path, offset, length, etag,
                 headers):
        with RangeReader(path, offset, length,
                         on_bytes=self.progress.add) as body:
            resp = self.conn.request('PUT', container, obj,
                                     headers=dict(headers, ETag=etag),
                                     data=body)
            sent = body.hexdigest()
        if sent != etag:
            raise ClientError('%s changed while it was uploaded' % path)
        got = unquote_etag(resp.headers.get('ETag'))
        if got and got != etag:
            raise ClientError('%s/%s: stored ETag %s is not the MD5 %s of '
                              'the bytes sent' % (container, obj, got, etag))
        return etag

    def upload_plain(self, container, path, obj, size, mtime):
        etag = range_md5(path, 0, size)
        self.put_body(container, obj, path, 0, size, etag,
                      self.object_headers(obj, mtime))
        self.out.done(obj)
        return {'object': obj, 'etag': etag, 'bytes': size}

    def cluster_info(self):
        if self._info is None:
            from objstore.cli.client.capabilities import fetch_info
            self._info = fetch_info(self.conn.storage_url)
        return self._info

    def upload_segmented(self, container, path, obj, size, mtime):
        segsize = self.args.segment_size
        info = self.cluster_info()
        if 'slo' not in info:
            raise ClientError('the cluster does not offer static large '
                              'objects (no "slo" in /info); upload %s '
                              'without --segment-size' % path)
        plan = seg.plan_segments(size, segsize)
        problem = seg.check_segment_count(
            len(plan), info['slo'].get('max_manifest_segments',
                                       seg.DEFAULT_MAX_SEGMENTS))
        if problem:
            raise ClientError('%s: %s' % (path, problem))
        seg_container = seg.segments_container(container,
                                               self.args.segment_container)
        self.ensure_container(seg_container)
        skipped = []

        def one(segment):
            name = seg.segment_name(obj, mtime, size, segsize, segment.index)
            etag = range_md5(path, segment.offset, segment.length)
            stored = self.conn.head_or_none(seg_container, name)
            if stored is not None and \
                    unquote_etag(stored.get('ETag')) == etag and \
                    stored.get('Content-Length') == str(segment.length):
                skipped.append(segment.index)
                self.progress.add(segment.length)
            else:
                self.put_body(seg_container, name, path, segment.offset,
                              segment.length, etag, {})
            return segment.index, name, etag, segment.length

        results, failures = run_parallel(
            self.args.jobs, one, plan, self.out,
            lambda s: '%s segment %d' % (obj, s.index))
        if failures:
            raise ClientError('%s: %d of %d segments failed; run the same '
                              'upload again to resume' % (obj, failures,
                                                          len(plan)))
        results.sort()
        body = seg.manifest_body(seg_container,
                                 [(n, e, s) for _, n, e, s in results])
        self.conn.request('PUT', container, obj,
                          query={'multipart-manifest': 'put'},
                          headers=self.object_headers(obj, mtime), data=body)
        if skipped:
            self.out.note('%s: %d of %d segments were already uploaded'
                          % (obj, len(skipped), len(plan)))
        self.out.done(obj)
        return {'object': obj, 'bytes': size, 'segments': len(plan),
                'segments_skipped': len(skipped),
                'segment_container': seg_container}

    def ensure_container(self, container):
        """Create the container; a user allowed to write objects but not
        to create containers gets on if it exists (403 is not fatal)."""
        self.conn.request('PUT', container, ok=(403,))

    def run(self, container, paths):
        for path in paths:
            if not os.path.exists(path):
                raise ClientError('%s: no such file or directory' % path)
        files = collect(paths, self.args.object_name)
        self.ensure_container(container)
        todo, failures = run_parallel(
            self.args.jobs, lambda f: self.plan(container, *f), files,
            self.out, lambda f: f[0])
        todo = sorted(t for t in todo if t is not None)
        self.progress = Progress(self.out.stderr, 'upload',
                                 sum(t[2] for t in todo),
                                 enabled=None if not self.out.quiet
                                 else False)
        segsize = self.args.segment_size
        small = [t for t in todo if not seg.needs_segments(t[2], segsize)]
        large = [t for t in todo if seg.needs_segments(t[2], segsize)]
        results, failed = run_parallel(
            self.args.jobs, lambda t: self.upload_plain(container, *t),
            small, self.out, lambda t: t[0])
        failures += failed
        for t in large:
            try:
                results.append(self.upload_segmented(container, *t))
            except ClientError as e:
                failures += 1
                self.out.warn(str(e))
        self.progress.finish()
        if self.out.as_json:
            self.out.json(sorted(results, key=lambda r: r['object']))
        if failures:
            raise ClientError('%d of %d uploads failed' % (failures,
                                                           len(files)))
        return 0


def run(args, conn, out):
    check_jobs(args.jobs)
    return Uploader(conn, out, args).run(args.container, args.paths)
