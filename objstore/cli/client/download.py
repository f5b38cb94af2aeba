"""``objstore download CONTAINER [OBJECT...]``.

Objects come down in parallel (``--jobs``) into files named like the
objects below the current directory (or ``--output FILE``, ``-`` for
stdout). Each file is written beside its destination under a temporary
name and renamed only once its bytes are verified (see verify.py for
what is checked for plain objects, SLOs and DLOs), so a failed or
damaged download never replaces a good file. Names that would land
outside the current directory (absolute, or with ``..``) are refused.

Large objects come down in parts at once (parts.py plans them,
part_fetch.py fetches them into the temporary file at their offsets): a
static large object segment by segment, each checked against its
manifest entry, and a plain object above parts.PLAIN_THRESHOLD in
ranges, checked as a whole against its ETag. The first request of a
file download asks for ``?multipart-manifest=get``, which answers a
plain object with the object itself and an SLO with its manifest, so
neither costs an extra round trip. ``--output -`` keeps one stream (a
pipe cannot be written at offsets).
"""
import errno
import json
import os
import tempfile

from objstore.cli.client.common import check_jobs, run_parallel
from objstore.cli.client.errors import ClientError, UsageError
from objstore.cli.client.part_fetch import PartFetcher
from objstore.cli.client.parts import (plain_plan, plan_size, segment_jobs,
                                       slo_plan, split_plain)
from objstore.cli.client.progress import Progress
from objstore.cli.client.streams import file_matches_pieces, range_md5
from objstore.cli.client.upload import is_slo
from objstore.cli.client.verify import (NoChecker, SegmentChecker,
                                        WholeChecker, manifest_pieces,
                                        unquote_etag)

# large reads: per-chunk Python work (hashing, progress) is the cost
CHUNK = 1 << 20
# a stored manifest is at most a few MiB; refuse to hold more in memory
MAX_MANIFEST = 64 * 1024 * 1024


def local_path(obj):
    """Where object ``obj`` is written below the current directory, or
    None when its name would escape it."""
    parts = obj.split('/')
    if obj.startswith('/') or '..' in parts or not obj:
        return None
    return os.path.join(*[p for p in parts if p not in ('', '.')] or ['.'])


def restore_mtime(path, mtime):
    """Give the file the mtime recorded at upload (as swift download
    does), so ``upload --changed`` of it later sees it unchanged."""
    try:
        value = float(mtime)
    except (TypeError, ValueError):
        return
    try:
        os.utime(path, (value, value))
    except (OSError, OverflowError, ValueError):   # ValueError: 'nan'
        pass


def new_file_mode():
    """The mode open() gives a new file (0666 less the umask); mkstemp's
    temporary files are 0600, too private for a downloaded file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


class Downloader:
    def __init__(self, conn, out, args):
        self.conn, self.out, self.args = conn, out, args
        self.progress = None
        self.file_mode = new_file_mode()   # before any worker thread

    def manifest(self, container, obj):
        resp = self.conn.request('GET', container, obj,
                                 query={'multipart-manifest': 'get'})
        try:
            return manifest_pieces(json.loads(resp.content))
        except (ValueError, TypeError, AttributeError):
            raise ClientError('%s/%s: the SLO manifest is not readable'
                              % (container, obj))

    def checker(self, container, obj, headers):
        if is_slo(headers):
            return SegmentChecker(self.manifest(container, obj))
        if headers.get('X-Object-Manifest'):
            return NoChecker()
        return WholeChecker(headers.get('ETag'))

    def identical(self, container, obj, path):
        """--skip-identical: the local file holds the object's bytes."""
        if not os.path.isfile(path):
            return False
        headers = self.conn.head(container, obj).headers
        size = os.path.getsize(path)
        if headers.get('Content-Length') != str(size):
            return False
        if is_slo(headers):
            return file_matches_pieces(path, self.manifest(container, obj))
        if headers.get('X-Object-Manifest'):
            return False
        return range_md5(path) == unquote_etag(headers.get('ETag'))

    def fetch(self, container, obj, sink, resp=None):
        """Stream the object into ``sink`` (a binary file), verifying;
        returns (number of bytes, its X-Object-Meta-Mtime or None).
        ``resp`` is the object's GET answer when already open."""
        if resp is None:
            resp = self.conn.request('GET', container, obj, stream=True)
        try:
            checker = self.checker(container, obj, resp.headers)
            length = resp.headers.get('Content-Length')
            count = 0
            for chunk in resp.iter_content(CHUNK):
                checker.feed(chunk)
                sink.write(chunk)
                count += len(chunk)
                self.progress.add(len(chunk))
        except OSError as e:
            raise ClientError('%s/%s: %s' % (container, obj, e))
        finally:
            resp.close()
        if length and length.isdigit() and int(length) != count:
            raise ClientError('%s/%s: got %d of %s bytes' % (
                container, obj, count, length))
        problem = checker.problem()
        if problem:
            raise ClientError('%s/%s: %s' % (container, obj, problem))
        if checker.unverified:
            self.out.note('%s/%s: %s not verified (%s)' % (
                container, obj,
                'the content is' if isinstance(checker, NoChecker)
                else '%d segment(s)' % checker.unverified,
                'a dynamic large object has no checksum of its bytes'
                if isinstance(checker, NoChecker) else
                'ranges and nested manifests carry no MD5 of the bytes'))
        return count, resp.headers.get('X-Object-Meta-Mtime')

    def fetch_to_file(self, container, obj, sink, sink_path):
        """Like fetch() into the regular file ``sink`` (at
        ``sink_path``), in parallel parts when the object is large;
        returns (number of bytes, mtime or None)."""
        resp = self.conn.request('GET', container, obj, stream=True,
                                 query={'multipart-manifest': 'get'})
        headers = resp.headers
        mtime = headers.get('X-Object-Meta-Mtime')
        if is_slo(headers):
            parts = self.slo_parts(container, obj, resp)
            self.fetch_parts(container, obj, sink, parts)
            unverified = sum(1 for p in parts if p.md5 is None)
            if unverified:
                self.out.note('%s/%s: %d segment(s) not verified (ranges '
                              'and nested manifests carry no MD5 of the '
                              'bytes)' % (container, obj, unverified))
            return plan_size(parts), mtime
        if headers.get('X-Object-Manifest'):
            resp.close()   # that was the DLO's manifest, not its bytes
            return self.fetch(container, obj, sink)
        length = headers.get('Content-Length') or ''
        etag = unquote_etag(headers.get('ETag'))
        if not (length.isdigit() and etag and split_plain(int(length))):
            return self.fetch(container, obj, sink, resp)
        resp.close()
        size = int(length)
        self.fetch_parts(container, obj, sink,
                         plain_plan(container, obj, size, etag))
        got = range_md5(sink_path)
        if got != etag:
            raise ClientError('%s/%s: MD5 %s does not match the ETag %s'
                              % (container, obj, got, etag))
        return size, mtime

    def slo_parts(self, container, obj, resp):
        """The parts of the SLO whose manifest answer is ``resp``."""
        try:
            body = bytearray()
            for chunk in resp.iter_content(CHUNK):
                body += chunk
                if len(body) > MAX_MANIFEST:
                    raise ClientError('%s/%s: the SLO manifest is too large'
                                      % (container, obj))
        except OSError as e:
            raise ClientError('%s/%s: %s' % (container, obj, e))
        finally:
            resp.close()
        try:
            return slo_plan(json.loads(bytes(body)))
        except (ValueError, TypeError, AttributeError):
            raise ClientError('%s/%s: the SLO manifest is not readable'
                              % (container, obj))

    def fetch_parts(self, container, obj, sink, parts):
        """Fetch ``parts`` of container/obj into the open file ``sink``
        at their offsets."""
        sink.flush()
        fd = sink.fileno()
        size = plan_size(parts)
        os.ftruncate(fd, size)
        if size and hasattr(os, 'posix_fallocate'):
            try:   # reserve the space now: a full disk fails early
                os.posix_fallocate(fd, 0, size)
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise ClientError('%s/%s: no space for %d bytes'
                                      % (container, obj, size))
        try:
            PartFetcher(self.conn, fd, parts, self.progress,
                        segment_jobs(self.args)).run()
        except ClientError as e:
            raise ClientError('%s/%s: %s' % (container, obj, e), e.status)

    def to_file(self, container, obj, path):
        if path.endswith('/') or (obj.endswith('/') and
                                  self.args.output is None):
            os.makedirs(path, exist_ok=True)
            return {'object': obj, 'path': path, 'bytes': 0}
        if self.args.skip_identical and self.identical(container, obj, path):
            self.out.note('skipped %s: identical' % obj)
            return {'object': obj, 'path': path, 'skipped': True}
        directory = os.path.dirname(path) or '.'
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.objstore-', dir=directory)
        try:
            with os.fdopen(fd, 'wb') as sink:
                count, mtime = self.fetch_to_file(container, obj, sink,
                                                  tmp)
            os.chmod(tmp, self.file_mode)
            os.replace(tmp, path)
            restore_mtime(path, mtime)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self.out.done(obj)
        return {'object': obj, 'path': path, 'bytes': count}

    def names(self, container, objects):
        if objects:
            return [(o, None) for o in objects]
        return [(e['name'], e.get('bytes'))
                for e in self.conn.listing(container, prefix=self.args.prefix)
                if 'name' in e]

    def run(self, container, objects):
        output = self.args.output
        items = self.names(container, objects)
        if output is not None and len(items) != 1:
            raise UsageError('--output needs exactly one object (%d named)'
                             % len(items))
        total = None
        if all(size is not None for _, size in items):
            total = sum(size for _, size in items)
        self.progress = Progress(self.out.stderr, 'download', total,
                                 enabled=None if not self.out.quiet
                                 else False)
        if output == '-':
            stdout = getattr(self.out.stdout, 'buffer', self.out.stdout)
            self.fetch(container, items[0][0], stdout)
            stdout.flush()
            self.progress.finish()
            return 0
        jobs = []
        failures = 0
        for obj, _ in items:
            path = output if output is not None else local_path(obj)
            if path is None:
                failures += 1
                self.out.warn('%s: refusing a name that leads outside the '
                              'current directory' % obj)
                continue
            jobs.append((obj, path))
        results, failed = run_parallel(
            self.args.jobs, lambda j: self.to_file(container, *j), jobs,
            self.out, lambda j: j[0])
        self.progress.finish()
        failures += failed
        if self.out.as_json:
            self.out.json(sorted(results, key=lambda r: r['object']))
        if failures:
            raise ClientError('%d of %d downloads failed' % (failures,
                                                             len(items)))
        if not items:
            self.out.note('nothing to download')
        return 0


def run(args, conn, out):
    check_jobs(args.jobs)
    return Downloader(conn, out, args).run(args.container, args.objects)

