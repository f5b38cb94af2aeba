"""Images kept in objstore: the store is the registry.

Layout in the account of the session:

* An image of at most `segment_size` bytes (and known length) is one
  object `images/<id>`. It is PUT with its properties and status 'saving',
  then, once the body is in and its checksum verified, POSTed with the
  complete properties (size, md5, sha256, status 'active'): the checksums
  are only known after the last byte, and objstore keeps metadata apart
  from the body.
* A larger image (or one whose length is not known in advance) is split
  into segment objects `images_segments/<id>/00000001`, `.../00000002`, ...
  and described by a manifest object `images/<id>` written last, carrying
  the properties, with Content-Type `MANIFEST_TYPE` and as body a JSON list
  of the segments in order: `[{"name": "<id>/00000001", "size": N,
  "etag": "<md5 hex>"}, ...]`. The list makes reading (and deleting) the
  segments independent of the container listing's eventual consistency.
  This is our own format, not objstore's SLO/DLO, so a manifest is only
  ever interpreted by this module.

Every object written is checked against the ETag objstore answers with
(the md5 the object server computed); a mismatch, a wrong `expected_md5`,
a stream of the wrong length or any other failure deletes whatever the
upload wrote before the error is raised, so nothing half-made remains.
Memory stays fixed: bodies are read and sent 1 MiB at a time.
"""
import datetime
import hashlib
import json
import logging
import os
import re
import stat
import uuid

from compute.image import properties as image_props
from compute.image.swift import NotFound, SwiftError
from objstore.common import constraints

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
DEFAULT_SEGMENT_SIZE = 5 * 1024 ** 3
MANIFEST_TYPE = 'application/x-compute-image-manifest+json'
IMAGE_TYPE = 'application/octet-stream'
_MD5 = re.compile(r'^[0-9a-fA-F]{32}$')


class ImageError(Exception):
    """Base of the store's errors; the message is fit for a user."""


class ImageNotFound(ImageError):
    """No image with that id in this account."""


class ImageInvalid(ImageError):
    """The request is wrong (bad properties, missing kernel, wrong size)."""


class ImageChecksumError(ImageError):
    """Bytes do not match the checksum they should have."""


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        image_props.TIME_FORMAT)


def _etag(headers):
    return (headers.get('Etag') or '').strip('"').lower()


def _canonical_id(image_id):
    """The canonical form of an image id, or None if it cannot be one."""
    try:
        return str(uuid.UUID(str(image_id)))
    except ValueError:
        return None


def stream_length(stream):
    """The bytes left in a file-like stream when that can be known
    cheaply (a regular file or a seekable buffer), else None."""
    try:
        st = os.fstat(stream.fileno())
        if stat.S_ISREG(st.st_mode):
            return max(st.st_size - stream.tell(), 0)
    except (AttributeError, OSError, ValueError, TypeError):
        pass
    try:
        if stream.seekable():
            here = stream.tell()
            end = stream.seek(0, os.SEEK_END)
            stream.seek(here)
            return max(end - here, 0)
    except (AttributeError, OSError, ValueError):
        pass
    return None


class _Reader:
    """Reads the upload stream once, hashing and counting as it goes.

    Segments take their bytes from here in turn; one chunk can be pushed
    back (read ahead to see whether the stream has ended).
    """

    def __init__(self, stream, progress):
        self.stream, self.progress = stream, progress
        self.md5, self.sha256 = hashlib.md5(), hashlib.sha256()
        self.done = 0
        self._pending = b''

    def read(self, limit):
        """Up to `limit` bytes (at most CHUNK_SIZE); b'' at the end."""
        if self._pending:
            chunk = self._pending[:limit]
            self._pending = self._pending[limit:]
            return chunk
        chunk = self.stream.read(min(limit, CHUNK_SIZE))
        if chunk is None:
            chunk = b''
        if not isinstance(chunk, bytes):
            raise ImageInvalid('the image stream must give bytes')
        if chunk:
            self.md5.update(chunk)
            self.sha256.update(chunk)
            self.done += len(chunk)
            if self.progress is not None:
                self.progress(self.done)
        return chunk

    def at_end(self):
        """True if the stream has no more bytes (reads one chunk ahead)."""
        if self._pending:
            return False
        self._pending = self.read(CHUNK_SIZE)
        return not self._pending

    @property
    def consumed(self):
        """Bytes handed out so far (read minus the one pushed back)."""
        return self.done - len(self._pending)

    def part(self, length, exact):
        """A _Part that yields the next `length` bytes (fewer at the end).

        `exact`: the caller promised this many bytes (a Content-Length
        was sent), so ending short is an error rather than the end.
        """
        return _Part(self, length, exact)


class _Part:
    """The bytes of one object of an upload, with their md5 and count."""

    def __init__(self, reader, length, exact):
        self.reader, self.length, self.exact = reader, length, exact
        self.md5 = hashlib.md5()
        self.size = 0

    def __iter__(self):
        while self.size < self.length:
            chunk = self.reader.read(self.length - self.size)
            if not chunk:
                if self.exact:
                    raise _ShortStream()
                return
            self.md5.update(chunk)
            self.size += len(chunk)
            yield chunk


class _ShortStream(Exception):
    """Raised inside a request body: the stream ended before its size.

    Not an ImageError, so HTTP libraries pass it through untouched; the
    store turns it into ImageInvalid after cleaning up.
    """


class _Upload:
    """One upload in progress and what it has written, for cleanup."""

    def __init__(self, store, image_id):
        self.store, self.image_id = store, image_id
        self.written = []  # (container, name) of every object attempted

    def put(self, container, name, body, headers, length, md5):
        """PUT one object and check objstore's ETag against our md5 (a
        hash object, read after the body has been sent)."""
        self.written.append((container, name))
        answer = self.store.session.put_object(
            container, name, body, headers, content_length=length)
        if _etag(answer) != md5.hexdigest():
            raise ImageChecksumError(
                'objstore stored %s/%s with ETag %s but %s was sent'
                % (container, name, _etag(answer) or 'none',
                   md5.hexdigest()))
        return answer

    def cleanup(self):
        """Delete everything this upload wrote; best effort, logged."""
        for container, name in reversed(self.written):
            try:
                self.store.session.delete_object(container, name)
            except NotFound:
                pass
            except SwiftError as exc:
                log.error('image %s: could not remove %s/%s after a failed '
                          'upload: %s', self.image_id, container, name, exc)


class ImageStore:
    """Images of one objstore account (the session's)."""

    def __init__(self, session, container='images',
                 segment_size=DEFAULT_SEGMENT_SIZE):
        if not 0 < segment_size <= constraints.MAX_FILE_SIZE:
            raise ValueError('segment_size must be 1 to %d bytes (the '
                             'largest object objstore takes)'
                             % constraints.MAX_FILE_SIZE)
        self.session = session
        self.container = container
        self.segment_container = container + '_segments'
        self.segment_size = segment_size
        self._containers_made = False

    # --- upload -----------------------------------------------------------

    def upload(self, stream, properties, size=None, expected_md5=None,
               progress=None):
        """Store an image from a file-like `stream`; return its dict.

        `size`, if given, must be the stream's length exactly; without it
        the length is found from the stream where possible. `progress` is
        called with the bytes read so far.
        """
        props = self._check_upload(properties, size, expected_md5)
        if size is None:
            size = stream_length(stream)
        self._make_containers()
        image_id = str(uuid.uuid4())
        upload = _Upload(self, image_id)
        reader = _Reader(stream, progress)
        try:
            if size is not None and size <= self.segment_size:
                final = self._put_single(upload, reader, props, size,
                                         expected_md5)
            else:
                final = self._put_segmented(upload, reader, props, size,
                                            expected_md5)
        except _ShortStream:
            upload.cleanup()
            raise ImageInvalid('the image stream ended after %d bytes but '
                               'its size is %d' % (reader.done, size)) \
                from None
        except BaseException:
            upload.cleanup()
            raise
        return dict(final, id=image_id)

    def _check_upload(self, properties, size, expected_md5):
        """Validated properties for a new image; ImageInvalid if not."""
        properties = dict(properties or {})
        owned = sorted(k for k in properties if k in image_props.STORE_OWNED
                       and properties[k] is not None)
        if owned:
            raise ImageInvalid('%s cannot be set: the store computes %s'
                               % (', '.join(owned),
                                  'it' if len(owned) == 1 else 'them'))
        if size is not None and (isinstance(size, bool)
                                 or not isinstance(size, int) or size < 0):
            raise ImageInvalid('size must be a whole number of bytes, got %r'
                               % (size,))
        if expected_md5 is not None and not _MD5.match(str(expected_md5)):
            raise ImageInvalid('expected checksum must be 32 hex digits, got '
                               '%r' % (expected_md5,))
        if properties.get('owner') is None:
            properties['owner'] = self.session.account
        try:
            props = image_props.validate(properties)
        except ValueError as exc:
            raise ImageInvalid(str(exc)) from None
        self._check_boot_images(props)
        return props

    def _check_boot_images(self, props):
        """kernel_id / ramdisk_id must be active aki / ari images here."""
        for prop, fmt in (('kernel_id', 'aki'), ('ramdisk_id', 'ari')):
            if prop not in props:
                continue
            try:
                other = self.show(props[prop])
            except ImageNotFound:
                raise ImageInvalid('%s %s: no such image' % (
                    prop, props[prop])) from None
            if other.get('disk_format') != fmt:
                raise ImageInvalid('%s %s is a %s image, not %s' % (
                    prop, props[prop], other.get('disk_format'), fmt))
            if other.get('status') != 'active':
                raise ImageInvalid('%s %s is not active (status %s)' % (
                    prop, props[prop], other.get('status')))

    def _make_containers(self):
        if not self._containers_made:
            self.session.put_container(self.container)
            self.session.put_container(self.segment_container)
            self._containers_made = True

    def _put_single(self, upload, reader, props, size, expected_md5):
        """One object: PUT as 'saving', verify, POST the full properties."""
        headers = self._headers(dict(props, status='saving'))
        headers['Content-Type'] = IMAGE_TYPE
        if expected_md5:
            # objstore refuses a body that does not match, storing nothing
            headers['ETag'] = expected_md5.lower()
        part = reader.part(size, exact=True)
        try:
            upload.put(self.container, upload.image_id, iter(part), headers,
                       size, part.md5)
        except SwiftError as exc:
            if exc.status == 422:
                raise ImageChecksumError(
                    'image md5 %s is not the expected %s'
                    % (reader.md5.hexdigest(), expected_md5.lower())) \
                    from None
            raise
        self._check_complete(reader, size, expected_md5)
        final = self._final(props, reader)
        self.session.post_object(self.container, upload.image_id,
                                 self._headers(final))
        return final

    def _put_segmented(self, upload, reader, props, size, expected_md5):
        """Segments in order, then the manifest (the image appears last)."""
        segments = []
        while self._more(reader, size):
            name = '%s/%08d' % (upload.image_id, len(segments) + 1)
            length = self.segment_size
            if size is not None:
                length = min(length, size - reader.consumed)
            part = reader.part(length, exact=size is not None)
            upload.put(self.segment_container, name, iter(part),
                       {'Content-Type': IMAGE_TYPE},
                       length if size is not None else None, part.md5)
            segments.append({'name': name, 'size': part.size,
                             'etag': part.md5.hexdigest()})
        self._check_complete(reader, size, expected_md5)
        final = self._final(props, reader)
        headers = self._headers(final)
        headers['Content-Type'] = MANIFEST_TYPE
        manifest = json.dumps(segments).encode('utf-8')
        upload.put(self.container, upload.image_id, manifest, headers,
                   len(manifest), hashlib.md5(manifest))
        return final

    @staticmethod
    def _more(reader, size):
        """Whether another segment is due."""
        if size is not None:
            return reader.consumed < size
        return not reader.at_end()

    def _check_complete(self, reader, size, expected_md5):
        """The whole stream was read, of the promised size and md5."""
        if size is not None and not reader.at_end():
            raise ImageInvalid('the image stream is longer than its size, '
                               '%d bytes' % size)
        actual = reader.md5.hexdigest()
        if expected_md5 and actual != expected_md5.lower():
            raise ImageChecksumError('image md5 %s is not the expected %s'
                                     % (actual, expected_md5.lower()))

    def _final(self, props, reader):
        return image_props.validate(dict(
            props, size=reader.done, checksum=reader.md5.hexdigest(),
            sha256=reader.sha256.hexdigest(), status='active',
            created_at=_now()))

    @staticmethod
    def _headers(props):
        try:
            return image_props.to_headers(props)
        except ValueError as exc:
            raise ImageInvalid(str(exc)) from None

    # --- reading ------------------------------------------------------------

    def _head(self, image_id):
        """(canonical id, object headers); ImageNotFound if none."""
        canonical = _canonical_id(image_id)
        if canonical is None:
            raise ImageNotFound('no image %s' % (image_id,))
        try:
            return canonical, self.session.head_object(self.container,
                                                       canonical)
        except NotFound:
            raise ImageNotFound('no image %s' % (image_id,)) from None

    def show(self, image_id):
        """The image's properties (with 'id')."""
        canonical, headers = self._head(image_id)
        return dict(image_props.from_headers(headers), id=canonical)

    def list(self, filters=None):
        """Every image of the account, as dicts sorted by id, keeping those
        whose properties equal every filter value (compared as text)."""
        wanted = {k: str(v) for k, v in (filters or {}).items()
                  if v is not None}
        images = []
        try:
            listing = list(self.session.list_objects(self.container))
        except NotFound:
            return []
        for entry in listing:
            if _canonical_id(entry['name']) != entry['name']:
                continue  # not an image this store wrote
            try:
                image = self.show(entry['name'])
            except ImageNotFound:
                continue  # deleted since the listing
            if all(str(image.get(k)) == v for k, v in wanted.items()):
                images.append(image)
        return images

    def open(self, image_id, verify=True):
        """An iterator of the image's bytes.

        With `verify`, the md5 and size of what was read are checked at
        the end against the stored properties (and each segment against
        its manifest entry as it ends): ImageChecksumError if they differ,
        raised from the iterator after the last chunk.
        """
        canonical, headers = self._head(image_id)
        props = image_props.from_headers(headers)
        if props.get('status') != 'active':
            raise ImageInvalid('image %s is not active (status %s)'
                               % (canonical, props.get('status')))
        if self._is_manifest(headers):
            chunks = self._segment_chunks(canonical, verify)
        else:
            chunks = self._object_chunks(canonical, props, verify)
        if not verify:
            return chunks
        return _verified(chunks, canonical, props)

    @staticmethod
    def _is_manifest(headers):
        ctype = (headers.get('Content-Type') or '').split(';')[0].strip()
        return ctype == MANIFEST_TYPE

    def _object_chunks(self, image_id, props, verify):
        """The bytes of a one-object image. objstore's ETag is the md5 of
        what it holds, so a mismatch shows before a byte is passed on."""
        try:
            headers, chunks = self.session.get_object(
                self.container, image_id, CHUNK_SIZE)
        except NotFound:
            raise ImageNotFound('no image %s' % image_id) from None
        if verify and _etag(headers) != props.get('checksum'):
            chunks.close()
            raise ImageChecksumError(
                'image %s: objstore holds bytes with md5 %s, the image '
                'checksum is %s' % (image_id, _etag(headers) or 'unknown',
                                    props.get('checksum')))
        yield from chunks

    def _manifest(self, image_id):
        """The segment list of a segmented image."""
        _headers, chunks = self.session.get_object(self.container, image_id)
        body = b''.join(chunks)
        try:
            segments = json.loads(body)
            return [(s['name'], int(s['size']), s['etag']) for s in segments]
        except (ValueError, KeyError, TypeError):
            raise ImageChecksumError('image %s: its manifest is damaged'
                                     % image_id) from None

    def _segment_chunks(self, image_id, verify):
        for name, size, etag in self._manifest(image_id):
            try:
                _headers, chunks = self.session.get_object(
                    self.segment_container, name, CHUNK_SIZE)
            except NotFound:
                raise ImageChecksumError('image %s: segment %s is missing'
                                         % (image_id, name)) from None
            md5, seen = hashlib.md5(), 0
            for chunk in chunks:
                md5.update(chunk)
                seen += len(chunk)
                yield chunk
            if verify and (seen != size or md5.hexdigest() != etag):
                raise ImageChecksumError(
                    'image %s: segment %s has %d bytes with md5 %s, the '
                    'manifest says %d bytes with md5 %s'
                    % (image_id, name, seen, md5.hexdigest(), size, etag))

    # --- delete -------------------------------------------------------------

    def delete(self, image_id):
        """Remove the image and its segments.

        The manifest goes first so a half-finished delete never leaves a
        visible image with missing parts (only invisible segments, which
        the listing by prefix finds again on a retry).
        """
        canonical, headers = self._head(image_id)
        segments = []
        if self._is_manifest(headers):
            try:
                segments = [name for name, _s, _e in
                            self._manifest(canonical)]
            except (ImageChecksumError, NotFound):
                segments = []
        try:
            self.session.delete_object(self.container, canonical)
        except NotFound:
            raise ImageNotFound('no image %s' % (image_id,)) from None
        self._delete_segments(canonical, segments)

    def _delete_segments(self, image_id, known):
        names = set(known)
        try:
            names.update(entry['name'] for entry in self.session.list_objects(
                self.segment_container, prefix=image_id + '/'))
        except NotFound:
            pass
        for name in sorted(names):
            try:
                self.session.delete_object(self.segment_container, name)
            except NotFound:
                pass


def _verified(chunks, image_id, props):
    """Pass chunks through; at the end compare size and md5 to props."""
    md5, seen = hashlib.md5(), 0
    for chunk in chunks:
        md5.update(chunk)
        seen += len(chunk)
        yield chunk
    want_size, want_md5 = props.get('size'), props.get('checksum')
    if want_size is not None and seen != want_size:
        raise ImageChecksumError('image %s: read %d bytes, its size is %s'
                                 % (image_id, seen, want_size))
    if want_md5 is None or md5.hexdigest() != want_md5:
        raise ImageChecksumError('image %s: bytes have md5 %s, the image '
                                 'checksum is %s'
                                 % (image_id, md5.hexdigest(), want_md5))
