"""The object controller: ``/v1/<account>/<container>/<object>``.

GET and HEAD read from the first node that has the object (getter.py);
PUT streams the body to every replica at once (putter.py) and succeeds
at quorum; POST and DELETE go to every replica concurrently. Each write
to replica i names container replica i (X-Container-Host/-Partition/
-Device) so the object shows up in its container's listing. Everything
a client can get wrong (names, lengths, metadata, X-Delete-*) is refused
with a 4xx before any node is asked. Server-side copy is the copy
middleware's (objstore/middleware/copy.py): it reads the source and PUTs
the new object through the pipeline.
"""
import email.utils
import logging
import math
import mimetypes
import time

from objstore.common import body_checksums, constraints
from objstore.common.config import config_true
from objstore.common.http import HTTPError, header_dict, header_sent
from objstore.common.timestamp import Timestamp
from objstore.proxy import auth, fanout, quorum
from objstore.proxy.base import Controller, make_response, resource_path
from objstore.proxy.getter import ObjectReader
from objstore.proxy.headers import client_headers
from objstore.proxy.putter import Upload, client_chunks
from objstore.proxy.whole_put import WHOLE_BODY_LIMIT, put_whole

log = logging.getLogger('objstore.proxy')


def http_date(timestamp):
    """Last-Modified of a write: its timestamp rounded up to a second."""
    return email.utils.formatdate(math.ceil(float(timestamp)), usegmt=True)


class ObjectController(Controller):
    methods = ('GET', 'HEAD', 'PUT', 'POST', 'DELETE')

    @property
    def path(self):
        return resource_path(self.account, self.container, self.obj)

    def _slots(self):
        part = self.app.rings['object'].get_part(self.account,
                                                 self.container, self.obj)
        return self.app.slots('object', part)

    # -- reads -------------------------------------------------------------

    def _read(self, method):
        if auth.has_authorize(self.req.environ):
            try:
                info = self.container_info()
            except HTTPError:
                info = None    # no ACL known: only the owner gets in
            self.authorize(info['read_acl'] if info else None)
        reader = ObjectReader(self.app.client, self._slots(), method,
                              self.path, self.base_headers())
        answer = reader.answer(config_true(self.req.headers.get('X-Newest',
                                                                '')))
        if answer.status == 503:
            raise HTTPError(503, 'no object server answered')
        return make_response(answer.status,
                             client_headers(answer.headers, self.trusted),
                             app_iter=answer.body)

    def GET(self):
        return self._read('GET')

    def HEAD(self):
        return self._read('HEAD')

    # -- checks shared by the writes -----------------------------------------

    def _check_metadata(self):
        err = constraints.check_metadata(
            header_dict(self.req.environ), 'object')
        if err:
            raise HTTPError(400, err)

    def _timestamp(self):
        """The write's timestamp: now, or the client's when allowed."""
        value = self.req.headers.get('X-Timestamp')
        if value is None or not self.settings.allow_client_timestamp:
            return Timestamp.now()
        try:
            timestamp = Timestamp(value)
        except ValueError:
            raise HTTPError(400, 'invalid X-Timestamp')
        if timestamp.offset:
            raise HTTPError(400, 'X-Timestamp may not carry an offset')
        return timestamp

    def _delete_at(self, headers):
        """Put X-Delete-At (from X-Delete-At or X-Delete-After) in
        ``headers``; 400 for a non-integer or past value."""
        now = time.time()
        after = self.req.headers.get('X-Delete-After')
        at = self.req.headers.get('X-Delete-At')
        if after is not None:
            after = after.strip()
            if not after.isdigit():
                raise HTTPError(400, 'Non-integer X-Delete-After')
            if int(after) == 0:
                raise HTTPError(400, 'X-Delete-After in past')
            headers['X-Delete-At'] = str(math.ceil(now) + int(after))
        elif at is not None:
            at = at.strip()
            if not at.isdigit():
                raise HTTPError(400, 'Non-integer X-Delete-At')
            if int(at) <= now:
                raise HTTPError(400, 'X-Delete-At in past')
            headers['X-Delete-At'] = at

    def _body_length(self):
        """Content-Length, or None for a chunked body; 411/413/400."""
        encoding = self.req.headers.get('Transfer-Encoding')
        if encoding is not None:
            if encoding.strip().lower() != 'chunked':
                raise HTTPError(400, 'unsupported Transfer-Encoding %r'
                                % encoding)
            return None
        value = self.req.headers.get('Content-Length')
        if value is None:
            raise HTTPError(411, 'Content-Length or chunked transfer '
                            'encoding required')
        length, err = constraints.parse_content_length(value)
        if err:
            raise HTTPError(413 if value.strip().isdigit() else 400, err)
        return length

    def _content_type(self, headers):
        """The client's Content-Type, else one guessed from the name."""
        environ = self.req.environ
        if config_true(self.req.headers.get('X-Detect-Content-Type', '')) \
                or not header_sent(environ, 'Content-Type') \
                or not headers.get('Content-Type'):
            guessed = mimetypes.guess_type(self.obj)[0]
            headers['Content-Type'] = guessed or 'application/octet-stream'

    def _writable_container(self):
        """The container's info; the auth filter judges first, so only
        those allowed to write learn whether the container exists."""
        info = self.container_info()
        self.authorize(info['write_acl'] if info else None)
        if info is None:
            raise HTTPError(404, 'container not found')
        return info

    def _container_targets(self, slots):
        cpart, cnodes = self.app.rings['container'].get_nodes(
            self.account, self.container)
        targets = quorum.pair_updates(len(slots), cnodes)
        return lambda index: quorum.update_headers('container',
                                                   targets[index], cpart)

    # -- PUT -----------------------------------------------------------------

    def PUT(self):
        req = self.req
        self._check_metadata()
        headers = self.base_headers()
        self._delete_at(headers)
        timestamp = self._timestamp()
        if req.headers.get('X-Copy-From') is not None:
            # the copy middleware handles these; without it, storing
            # the empty body would replace the object by mistake
            raise HTTPError(400, 'server-side copy needs the copy '
                            'middleware in the proxy pipeline')
        length = self._body_length()
        self._writable_container()
        headers['X-Timestamp'] = timestamp.internal
        self._content_type(headers)
        chunks = client_chunks(req.environ['wsgi.input'], length,
                               self.settings.client_timeout)
        return self._upload(headers, length, chunks, timestamp)

    @staticmethod
    def _refusal(early, ready, needed, replicas):
        """The status to answer when the nodes refused the PUT up front,
        None when enough of them wait for the body."""
        statuses = [r.status for r in early]
        if 412 in statuses:
            return 412          # If-None-Match: the object exists
        if 409 in statuses:
            return 202          # a newer object is there already
        if ready >= needed:
            return None
        status = quorum.best_status(statuses, replicas)
        return 503 if 200 <= status < 300 else status

    def _upload(self, headers, length, chunks, timestamp):
        slots = self._slots()
        targets = self._container_targets(slots)

        def headers_for(index):
            return dict(headers, **targets(index))
        # If-None-Match must find the object before any node stores it:
        # only the streaming path (100-continue first) can promise that
        if length is not None and length <= WHOLE_BODY_LIMIT and \
                not any(k.lower() == 'if-none-match' for k in headers):
            replies = put_whole(self.app.client, slots, self.path,
                                headers_for, b''.join(chunks),
                                self.settings.post_quorum_timeout)
            if 409 in fanout.statuses(replies):
                return self.write_response(202)  # a newer object is there
        else:
            replies = self._stream(slots, headers_for, length, chunks)
            if not isinstance(replies, list):
                return replies          # refused before the body
        status = quorum.best_status(fanout.statuses(replies), len(slots))
        if status == 409:
            status = 202
        if status == 503:
            raise HTTPError(503, 'too few object servers stored the object')
        pairs = []
        if 200 <= status < 300:
            etags = {r.get('Etag') for r in replies
                     if r is not None and 200 <= r.status < 300}
            if len(etags) > 1:
                log.error('PUT %s: object servers disagree on the ETag: %s',
                          self.path, sorted(etags))
            pairs = [('Etag', sorted(etags)[0]),
                     ('Last-Modified', http_date(timestamp))]
        return self.write_response(status, pairs)

    def _stream(self, slots, headers_for, length, chunks):
        """The replies of a streamed upload, or the response to give when
        the nodes refused it before the body.

        The body's MD5 and CRC-32C are computed here, once, and go to the
        nodes in the trailer (common/body_checksums.py)."""
        announce = {body_checksums.HEADER: 'true'}
        if length is not None:
            announce[body_checksums.LENGTH_HEADER] = str(length)

        def hashed_headers_for(index):
            return dict(headers_for(index), **announce)
        upload = Upload(self.app.client, slots, self.path,
                        hashed_headers_for, length,
                        self.settings.put_queue_depth, chunked=True)
        ready = upload.connect()
        refusal = self._refusal(upload.early, ready, upload.quorum,
                                len(slots))
        if refusal is not None:
            upload.abort()
            if refusal == 503:
                raise HTTPError(503, 'too few object servers available')
            return self.write_response(refusal)
        checksums = body_checksums.BodyChecksums()
        try:
            for chunk in chunks:
                checksums.update(chunk)
                upload.send(chunk)
            self._check_client_etag(checksums.etag)
            return upload.finish(self.settings.commit_timeout,
                                 self.settings.post_quorum_timeout,
                                 checksums.trailer())
        except BaseException:
            upload.abort()
            raise

    def _check_client_etag(self, etag):
        """422 when the client's ETag is not the body's MD5: raised before
        the end of the body goes out, so no node stores it."""
        given = self.req.headers.get('Etag')
        if given is not None and \
                body_checksums.normalize_etag(given) != etag:
            raise HTTPError(422, 'body MD5 %s does not match ETag' % etag)

    # -- POST and DELETE -----------------------------------------------------

    def POST(self):
        self._check_metadata()
        headers = self.base_headers()
        self._delete_at(headers)
        if not header_sent(self.req.environ, 'Content-Type'):
            headers.pop('Content-Type', None)
        self._writable_container()
        headers['X-Timestamp'] = self._timestamp().internal
        slots = self._slots()
        replies = fanout.fan_out(self.app.client, slots, 'POST', self.path,
                                 lambda index: headers)
        status = quorum.best_status(fanout.statuses(replies), len(slots))
        return self.write_response(status)

    def DELETE(self):
        self._writable_container()
        headers = self.base_headers()
        headers['X-Timestamp'] = self._timestamp().internal
        slots = self._slots()
        targets = self._container_targets(slots)
        replies = fanout.fan_out(self.app.client, slots, 'DELETE', self.path,
                                 lambda index: dict(headers,
                                                    **targets(index)))
        status = quorum.best_status(fanout.statuses(replies), len(slots))
        return self.write_response(status)
