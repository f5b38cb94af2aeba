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

Visibility decides the container: private images live in `images` (and
`images_segments`), public ones in `images_public` (and
`images_public_segments`), whose read ACL `.r:*,.rlistings` lets anyone,
token or not, read and list them. Reading an image by id tries the
account's `images`, then its `images_public`, then the public containers
of the other accounts the store was given (`others`, read anonymously).
An image's `owner` and `visibility` are reported from where it is found,
so they cannot be forged through metadata; only the owner may delete.

Every object written is checked against the ETag objstore answers with
(the md5 the object server computed); a mismatch, a wrong `expected_md5`,
a stream of the wrong length or any other failure deletes whatever the
upload wrote before the error is raised, so nothing half-made remains.
Memory stays fixed: bodies are read and sent 1 MiB at a time.
"""
import collections
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
SEGMENTS_SUFFIX = '_segments'
PUBLIC_SUFFIX = '_public'
# anyone may read the objects of a public container and list it
PUBLIC_READ_ACL = '.r:*,.rlistings'
REFUSED = (401, 403)
_MD5 = re.compile(r'^[0-9a-fA-F]{32}$')


class ImageError(Exception):
    """Base of the store's errors; the message is fit for a user."""


class ImageNotFound(ImageError):
    """No image with that id in this account."""


class ImageInvalid(ImageError):
    """The request is wrong (bad properties, missing kernel, wrong size)."""


class ImageForbidden(ImageError):
    """The image is another account's; only its owner may change it."""


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


class _Place(collections.namedtuple('_Place', (
        'session', 'container', 'segment_container', 'account', 'public',
        'foreign'))):
    """Where images can live: one container (and its segment container)
    of one account, reached through `session`. `foreign`: another
    account's, seen from the store that found it (read-only there)."""


class ImageStore:
    """Images of one objstore account (the session's), plus, read-only,
    the public images of the accounts in `others`.

    `others` are ImageStores over anonymous sessions (SwiftSession
    .from_token(url, None)) of other accounts; their public containers
    are searched after this account's own containers.
    """

    def __init__(self, session, container='images',
                 segment_size=DEFAULT_SEGMENT_SIZE, others=()):
        if not 0 < segment_size <= constraints.MAX_FILE_SIZE:
            raise ValueError('segment_size must be 1 to %d bytes (the '
                             'largest object objstore takes)'
                             % constraints.MAX_FILE_SIZE)
        self.session = session
        self.container = container
        self.segment_container = container + SEGMENTS_SUFFIX
        self.public_container = container + PUBLIC_SUFFIX
        self.public_segment_container = self.public_container + \
            SEGMENTS_SUFFIX
        self.segment_size = segment_size
        self.others = list(others)
        self._containers_made = set()

    @property
    def account(self):
        return self.session.account

    def close(self):
        """Release the connections of this store and of `others`."""
        for store in [self] + self.others:
            close = getattr(store.session, 'close', None)
            if close is not None:
                close()

    # --- where images live --------------------------------------------------

    def _place(self, public, foreign=False):
        if public:
            return _Place(self.session, self.public_container,
                          self.public_segment_container, self.account,
                          True, foreign)
        return _Place(self.session, self.container, self.segment_container,
                      self.account, False, foreign)

    def _own_places(self, foreign=False):
        """Private then public; an anonymous session only ever gets into
        the public one, so it does not try the other."""
        places = [self._place(True, foreign)]
        if not getattr(self.session, 'anonymous', False):
            places.insert(0, self._place(False, foreign))
        return places

    def _places(self, owner=None):
        """Every place to look, own account first; with `owner`, only
        that account's."""
        places = []
        if owner is None or owner == self.account:
            places += self._own_places()
        for other in self.others:
            if owner is None or owner == other.account:
                places += other._own_places(foreign=True)
        return places

    @staticmethod
    def _absent(place, exc):
        """Whether an error just means "no image here": a 404, or a
        refusal to an anonymous reader (an account that never made its
        public container answers those with 401)."""
        if isinstance(exc, NotFound):
            return True
        return getattr(place.session, 'anonymous', False) and \
            exc.status in REFUSED

    def _head_at(self, place, image_id):
        """The object headers of the image at `place`, or None."""
        try:
            return place.session.head_object(place.container, image_id)
        except SwiftError as exc:
            if self._absent(place, exc):
                return None
            raise

    def _locate(self, image_id, owner=None):
        """(place, canonical id, headers) of the first place holding the
        image; ImageNotFound if none does."""
        canonical = _canonical_id(image_id)
        if canonical is not None:
            for place in self._places(owner):
                headers = self._head_at(place, canonical)
                if headers is not None:
                    return place, canonical, headers
        raise ImageNotFound('no image %s' % (image_id,))

    @staticmethod
    def _view(place, image_id, headers):
        """An image's properties as users see them. Owner and visibility
        come from where the object is, which nobody can forge by
        writing metadata."""
        return dict(image_props.from_headers(headers), id=image_id,
                    owner=place.account,
                    visibility='public' if place.public else 'private')

    # --- upload -----------------------------------------------------------

    def upload(self, stream, properties, size=None, expected_md5=None,
               progress=None):
        """Store an image from a file-like `stream`; return its dict.

        `size`, if given, must be the stream's length exactly; without it
        the length is found from the stream where possible. `progress` is
        called with the bytes read so far. A public image goes to the
        world-readable container, a private one to the account's own.
        """
        props = self._check_upload(properties, size, expected_md5)
        if size is None:
            size = stream_length(stream)
        place = self._place(props.get('visibility') == 'public')
        self._make_containers(place)
        image_id = str(uuid.uuid4())
        upload = _Upload(self, image_id)
        reader = _Reader(stream, progress)
        try:
            if size is not None and size <= self.segment_size:
                final = self._put_single(place, upload, reader, props, size,
                                         expected_md5)
            else:
                final = self._put_segmented(place, upload, reader, props,
                                            size, expected_md5)
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
        # the owner is the account the image is stored in, always
        properties['owner'] = self.account
        try:
            props = image_props.validate(properties)
        except ValueError as exc:
            raise ImageInvalid(str(exc)) from None
        self._check_boot_images(props)
        return props

    def _check_boot_images(self, props):
        """kernel_id / ramdisk_id must be active aki / ari images of this
        account (an agent reads all of a boot's images with one account's
        access), and public ones for a public image, so that whoever may
        boot the image may read them too."""
        for prop, fmt in (('kernel_id', 'aki'), ('ramdisk_id', 'ari')):
            if prop not in props:
                continue
            try:
                other = self.show(props[prop], owner=self.account)
            except ImageNotFound:
                raise ImageInvalid('%s %s: no such image' % (
                    prop, props[prop])) from None
            if other.get('disk_format') != fmt:
                raise ImageInvalid('%s %s is a %s image, not %s' % (
                    prop, props[prop], other.get('disk_format'), fmt))
            if other.get('status') != 'active':
                raise ImageInvalid('%s %s is not active (status %s)' % (
                    prop, props[prop], other.get('status')))
            if props.get('visibility') == 'public' and \
                    other.get('visibility') != 'public':
                raise ImageInvalid('%s %s is private: a public image can '
                                   'only name public kernel and ramdisk '
                                   'images' % (prop, props[prop]))

    def _make_containers(self, place):
        """Create the place's containers once; public ones carry a read
        ACL that lets anyone read and list them."""
        if place.container in self._containers_made:
            return
        headers = {'X-Container-Read': PUBLIC_READ_ACL} if place.public \
            else None
        self.session.put_container(place.container, headers=headers)
        self.session.put_container(place.segment_container, headers=headers)
        self._containers_made.add(place.container)

    def _put_single(self, place, upload, reader, props, size, expected_md5):
        """One object: PUT as 'saving', verify, POST the full properties."""
        headers = self._headers(dict(props, status='saving'))
        headers['Content-Type'] = IMAGE_TYPE
        if expected_md5:
            # objstore refuses a body that does not match, storing nothing
            headers['ETag'] = expected_md5.lower()
        part = reader.part(size, exact=True)
        try:
            upload.put(place.container, upload.image_id, iter(part),
                       headers, size, part.md5)
        except SwiftError as exc:
            if exc.status == 422:
                raise ImageChecksumError(
                    'image md5 %s is not the expected %s'
                    % (reader.md5.hexdigest(), expected_md5.lower())) \
                    from None
            raise
        self._check_complete(reader, size, expected_md5)
        final = self._final(props, reader)
        self.session.post_object(place.container, upload.image_id,
                                 self._headers(final))
        return final

    def _put_segmented(self, place, upload, reader, props, size,
                       expected_md5):
        """Segments in order, then the manifest (the image appears last)."""
        segments = []
        while self._more(reader, size):
            name = '%s/%08d' % (upload.image_id, len(segments) + 1)
            length = self.segment_size
            if size is not None:
                length = min(length, size - reader.consumed)
            part = reader.part(length, exact=size is not None)
            upload.put(place.segment_container, name, iter(part),
                       {'Content-Type': IMAGE_TYPE},
                       length if size is not None else None, part.md5)
            segments.append({'name': name, 'size': part.size,
                             'etag': part.md5.hexdigest()})
        self._check_complete(reader, size, expected_md5)
        final = self._final(props, reader)
        headers = self._headers(final)
        headers['Content-Type'] = MANIFEST_TYPE
        manifest = json.dumps(segments).encode('utf-8')
        upload.put(place.container, upload.image_id, manifest, headers,
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

    def show(self, image_id, owner=None):
        """The image's properties (with 'id' and 'owner'): this account's
        private or public image, else another account's public one. With
        `owner`, only that account's images are looked at."""
        place, canonical, headers = self._locate(image_id, owner)
        return self._view(place, canonical, headers)

    def list(self, filters=None):
        """This account's images and the other accounts' public ones, as
        dicts sorted by id, keeping those whose properties equal every
        filter value (compared as text)."""
        wanted = {k: str(v) for k, v in (filters or {}).items()
                  if v is not None}
        images = []
        for place in self._places():
            for image in self._list_at(place):
                if all(str(image.get(k)) == v for k, v in wanted.items()):
                    images.append(image)
        return sorted(images, key=lambda image: image['id'])

    def _list_at(self, place):
        """The images of one place (none if its container is missing)."""
        try:
            listing = list(place.session.list_objects(place.container))
        except SwiftError as exc:
            if self._absent(place, exc):
                return
            raise
        for entry in listing:
            if _canonical_id(entry['name']) != entry['name']:
                continue  # not an image this store wrote
            headers = self._head_at(place, entry['name'])
            if headers is not None:   # else deleted since the listing
                yield self._view(place, entry['name'], headers)

    def open(self, image_id, verify=True):
        """An iterator of the image's bytes.

        With `verify`, the md5 and size of what was read are checked at
        the end against the stored properties (and each segment against
        its manifest entry as it ends): ImageChecksumError if they differ,
        raised from the iterator after the last chunk.
        """
        place, canonical, headers = self._locate(image_id)
        props = image_props.from_headers(headers)
        if props.get('status') != 'active':
            raise ImageInvalid('image %s is not active (status %s)'
                               % (canonical, props.get('status')))
        if self._is_manifest(headers):
            chunks = self._segment_chunks(place, canonical, verify)
        else:
            chunks = self._object_chunks(place, canonical, props, verify)
        if not verify:
            return chunks
        return _verified(chunks, canonical, props)

    @staticmethod
    def _is_manifest(headers):
        ctype = (headers.get('Content-Type') or '').split(';')[0].strip()
        return ctype == MANIFEST_TYPE

    @staticmethod
    def _object_chunks(place, image_id, props, verify):
        """The bytes of a one-object image. objstore's ETag is the md5 of
        what it holds, so a mismatch shows before a byte is passed on."""
        try:
            headers, chunks = place.session.get_object(
                place.container, image_id, CHUNK_SIZE)
        except NotFound:
            raise ImageNotFound('no image %s' % image_id) from None
        if verify and _etag(headers) != props.get('checksum'):
            chunks.close()
            raise ImageChecksumError(
                'image %s: objstore holds bytes with md5 %s, the image '
                'checksum is %s' % (image_id, _etag(headers) or 'unknown',
                                    props.get('checksum')))
        yield from chunks

    @staticmethod
    def _manifest(place, image_id):
        """The segment list of a segmented image."""
        _headers, chunks = place.session.get_object(place.container,
                                                    image_id)
        body = b''.join(chunks)
        try:
            segments = json.loads(body)
            return [(s['name'], int(s['size']), s['etag']) for s in segments]
        except (ValueError, KeyError, TypeError):
            raise ImageChecksumError('image %s: its manifest is damaged'
                                     % image_id) from None

    def _segment_chunks(self, place, image_id, verify):
        for name, size, etag in self._manifest(place, image_id):
            try:
                _headers, chunks = place.session.get_object(
                    place.segment_container, name, CHUNK_SIZE)
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
        """Remove the image and its segments; ImageForbidden for another
        account's public image (only its owner may delete it).

        The manifest goes first so a half-finished delete never leaves a
        visible image with missing parts (only invisible segments, which
        the listing by prefix finds again on a retry).
        """
        place, canonical, headers = self._locate(image_id)
        if place.foreign:
            raise ImageForbidden('image %s belongs to %s: only its owner '
                                 'may delete it' % (canonical,
                                                    place.account))
        segments = []
        if self._is_manifest(headers):
            try:
                segments = [name for name, _s, _e in
                            self._manifest(place, canonical)]
            except (ImageChecksumError, NotFound):
                segments = []
        try:
            self.session.delete_object(place.container, canonical)
        except NotFound:
            raise ImageNotFound('no image %s' % (image_id,)) from None
        self._delete_segments(place, canonical, segments)

    def _delete_segments(self, place, image_id, known):
        names = set(known)
        try:
            names.update(entry['name'] for entry in self.session.list_objects(
                place.segment_container, prefix=image_id + '/'))
        except NotFound:
            pass
        for name in sorted(names):
            try:
                self.session.delete_object(place.segment_container, name)
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
