"""Fetching planned parts (parts.py) in parallel into one open file.

Each part is one GET streamed in CHUNK pieces and written with
os.pwrite at its own offset, so workers never share a file position and
memory stays at about one chunk per worker. A part is checked as it
arrives: the status (206 for a range), the byte count, and its MD5 when
the plan knows it (and a segment's ETag before its first byte is read,
so a replaced segment fails at once). The first failure stops the other
workers at their next chunk and is raised as one ClientError naming the
part; the caller removes the file.
"""
import concurrent.futures
import hashlib
import os
import threading

from objstore.cli.client.errors import ClientError
from objstore.cli.client.parts import content_range_matches
from objstore.cli.client.verify import unquote_etag

CHUNK = 1 << 20


class Stopped(Exception):
    """Another part failed: this one gives up quietly."""


def pwrite_all(fd, data, offset):
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def describe_part(part, count):
    return 'part %d of %d (%s/%s%s)' % (
        part.index + 1, count, part.container, part.obj,
        ' ' + part.range if part.range else '')


class PartFetcher:
    def __init__(self, conn, fd, parts, progress, jobs):
        self.conn, self.fd, self.parts = conn, fd, parts
        self.progress, self.jobs = progress, max(1, jobs)
        self.stop = threading.Event()

    def run(self):
        """Fetch every part; raise the first failure as a ClientError."""
        if not self.parts:
            return
        first_error = None
        with concurrent.futures.ThreadPoolExecutor(
                min(self.jobs, len(self.parts))) as pool:
            futures = [pool.submit(self.fetch, p) for p in self.parts]
            for future in concurrent.futures.as_completed(futures):
                try:
                    future.result()
                except Stopped:
                    pass
                except (ClientError, OSError) as e:
                    self.stop.set()
                    if first_error is None:
                        first_error = e
        if first_error is not None:
            raise first_error

    def fetch(self, part):
        if self.stop.is_set():
            raise Stopped()
        name = describe_part(part, len(self.parts))
        headers = {}
        if part.range:
            headers['Range'] = part.range
        if part.if_match:
            headers['If-Match'] = part.if_match
        try:
            resp = self.conn.request('GET', part.container, part.obj,
                                     headers=headers, stream=True)
        except ClientError as e:
            if e.status == 412:
                raise ClientError('%s: the object changed during the '
                                  'download' % name, 412)
            raise ClientError('%s: %s' % (name, e), e.status)
        try:
            self._check_answer(part, name, resp)
            digest, count = hashlib.md5(), 0
            for chunk in resp.iter_content(CHUNK):
                if self.stop.is_set():
                    raise Stopped()
                if count + len(chunk) > part.length:
                    raise ClientError('%s: more than the %d bytes expected'
                                      % (name, part.length))
                pwrite_all(self.fd, chunk, part.offset + count)
                digest.update(chunk)
                count += len(chunk)
                self.progress.add(len(chunk))
        except OSError as e:   # requests' stream errors are OSErrors too
            raise ClientError('%s: %s' % (name, e))
        finally:
            resp.close()
        if count != part.length:
            raise ClientError('%s: got %d of %d bytes'
                              % (name, count, part.length))
        if part.md5 and digest.hexdigest() != unquote_etag(part.md5):
            raise ClientError('%s: MD5 %s does not match the manifest\'s %s'
                              % (name, digest.hexdigest(),
                                 unquote_etag(part.md5)))

    @staticmethod
    def _check_answer(part, name, resp):
        if part.range:
            if resp.status_code != 206 or not content_range_matches(
                    part, resp.headers.get('Content-Range')):
                raise ClientError('%s: the range was not answered (%d)'
                                  % (name, resp.status_code))
        elif part.md5:
            etag = unquote_etag(resp.headers.get('ETag'))
            if etag and etag != unquote_etag(part.md5):
                raise ClientError('%s: ETag %s does not match the '
                                  'manifest\'s %s (the segment was '
                                  'replaced?)' % (name, etag,
                                                  unquote_etag(part.md5)))
