"""bulk: delete many objects, or unpack an archive into objects, at once.

    [filter:bulk]
    use = objstore.middleware.bulk
    # max_deletes_per_request = 10000
    # max_failed_deletes = 1000
    # max_containers_per_extraction = 10000
    # max_failed_extractions = 1000
    # yield_frequency = 10

``POST`` or ``DELETE`` with ``?bulk-delete`` and a body of newline-
separated, percent-encoded ``/container/object`` or ``/container`` paths
deletes each in turn. ``PUT`` of a tar archive (``?extract-archive=tar``,
``tar.gz`` or ``tar.bz2``) to ``/v1/<account>[/<container>[/<prefix>]]``
stores every regular file of the archive as an object, creating
containers as needed; the archive is read as a stream, never held whole.
Members with absolute or '..' paths, links, devices and names over the
limits are refused one by one, never written anywhere.

Each item is its own sub-request through the rest of the pipeline with
the client's credentials, so auth judges it as if sent alone. Answers
are 200 with per-item results in the format the Accept header picks
(text/plain, application/json, application/xml): ``Number Deleted`` /
``Number Not Found`` or ``Number Files Created``, ``Response Status``,
``Response Body`` and ``Errors`` ([name, status] pairs). As the work
can outlast a client's read timeout, a space is sent every
``yield_frequency`` seconds until the result is ready. Put it before
auth in the pipeline, as in Swift.
"""
import tarfile
import time
import zlib
from urllib.parse import parse_qs, quote

from objstore.common import info
from objstore.common.config import ConfigError
from objstore.common.http import (
    HTTPError, Request, Response, best_offer, client_path, split_path)
from objstore.middleware import bulk_rules as rules
from objstore.middleware.subrequest import sub_environ

MAX_PATH_LINE = 3 * (1024 + 256 + 2) + 2
SETTINGS = ('max_deletes_per_request', 'max_failed_deletes',
            'max_containers_per_extraction', 'max_failed_extractions',
            'yield_frequency')
DEFAULTS = {'max_deletes_per_request': 10000, 'max_failed_deletes': 1000,
            'max_containers_per_extraction': 10000,
            'max_failed_extractions': 1000, 'yield_frequency': 10}


class MemberBody:
    """One archive member as a sub-request's wsgi.input. An archive that
    ends inside the member (or is corrupt there) reads as a short body
    (OSError, as a client that went away), which the proxy answers with
    a 499 and stores nothing; tarfile's own errors would be a 500."""

    def __init__(self, fileobj):
        self.fileobj = fileobj

    def read(self, size=-1):
        try:
            return self.fileobj.read(size)
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise OSError('the archive ends inside this member: %s' % e)


class Bulk:
    def __init__(self, app, settings):
        self.app = app
        for name in SETTINGS:
            setattr(self, name, settings[name])

    def _call(self, env):
        """(status, body text) of a sub-request, its body read and closed."""
        resp = Request(env).get_response(self.app)
        body = resp.body
        return resp.status_int, body.decode('utf-8', 'replace').strip()

    # -- streaming the answer ------------------------------------------

    def _stream(self, work, content_type, root_tag):
        """The answer's body: spaces while ``work`` (a generator of None
        ticks ending in (results, errors)) runs, then the results."""
        last = time.monotonic()
        sent = False
        outcome = None
        for tick in work:
            if tick is not None:
                outcome = tick
                break
            if time.monotonic() - last >= self.yield_frequency:
                last = time.monotonic()
                sent = True
                yield b' '
        results, errors = outcome
        body = rules.render(content_type, results, errors, root_tag)
        if sent and body.startswith(b'<?xml'):
            body = body.split(b'\n', 1)[1]     # a declaration must be first
        yield body

    def _answer(self, content_type, work, root_tag):
        resp = Response(status=200, content_type=content_type,
                        charset='utf-8')
        resp.app_iter = self._stream(work, content_type, root_tag)
        return resp

    # -- bulk delete ---------------------------------------------------

    def _read_delete_list(self, environ):
        """The body's lines (bytes); HTTPError for too many or too long."""
        stream = environ['wsgi.input']
        length = environ.get('CONTENT_LENGTH')
        remaining = int(length) if length and length.isdigit() else None
        lines = []
        while remaining is None or remaining > 0:
            size = MAX_PATH_LINE + 1
            if remaining is not None:
                size = min(size, remaining)
            line = stream.readline(size)
            if not line:
                break
            if remaining is not None:
                remaining -= len(line)
            if len(line) > MAX_PATH_LINE and not line.endswith(b'\n'):
                raise HTTPError(400, 'a line of the delete list is longer '
                                'than any path')
            if line.strip():
                lines.append(line)
                if len(lines) > self.max_deletes_per_request:
                    raise HTTPError(413, 'Maximum Bulk Deletes: %d per '
                                    'request' % self.max_deletes_per_request)
        return lines

    def _delete_work(self, environ, account, lines):
        results = {'Number Deleted': 0, 'Number Not Found': 0,
                   'Response Body': '', 'Response Status': ''}
        errors = []
        failure = None
        for shown, target in rules.delete_targets(lines):
            yield None
            if isinstance(target, rules.ItemError):
                errors.append([quote(shown), rules.status_text(
                    target.status)])
            else:
                container, obj = target
                path = '/v1/%s/%s' % (account, container) + \
                    ('/%s' % obj if obj else '')
                status, body = self._call(sub_environ(environ, 'DELETE',
                                                      path))
                if 200 <= status < 300:
                    results['Number Deleted'] += 1
                elif status == 404:
                    results['Number Not Found'] += 1
                elif status == 401:
                    failure = rules.status_text(401)
                    results['Response Body'] = body
                    break
                else:
                    errors.append([rules.quoted(container, obj),
                                   rules.status_text(status)])
            if len(errors) >= self.max_failed_deletes:
                failure = rules.status_text(400)
                results['Response Body'] = 'Max delete failures exceeded'
                break
        results['Response Status'] = rules.final_status(errors, failure)
        yield results, errors

    def bulk_delete(self, req, account):
        content_type = self._result_type(req)
        try:
            lines = self._read_delete_list(req.environ)
        except HTTPError as e:
            results = {'Number Deleted': 0, 'Number Not Found': 0,
                       'Response Body': e.reason,
                       'Response Status': rules.status_text(e.status)}
            body = rules.render(content_type, results, [], 'delete')
            return Response(status=rules.status_text(e.status), body=body,
                            content_type=content_type, charset='utf-8')
        return self._answer(content_type,
                            self._delete_work(req.environ, account, lines),
                            'delete')

    # -- extract archive -----------------------------------------------

    def _ensure_container(self, environ, account, container, known):
        """None when the container exists (or was made), else the failed
        status; 400 past max_containers_per_extraction."""
        if container in known:
            return None
        path = '/v1/%s/%s' % (account, container)
        status, _ = self._call(sub_environ(environ, 'HEAD', path))
        if status == 404:
            if len(known) >= self.max_containers_per_extraction:
                raise HTTPError(400, 'More than %d containers to create '
                                'from tar.'
                                % self.max_containers_per_extraction)
            status, _ = self._call(sub_environ(environ, 'PUT', path))
        if not 200 <= status < 300:
            return status
        known.add(container)
        return None

    def _extract_member(self, environ, account, tar, member, base, known):
        """Store one archive member; None or the [name, status] error."""
        try:
            member.name.encode('utf-8')
        except UnicodeEncodeError:
            return [quote(member.name.encode('utf-8', 'surrogateescape')),
                    rules.status_text(400)]
        if not member.isfile():
            return [quote(member.name), rules.status_text(400)]
        try:
            container, obj = rules.member_destination(member.name, *base)
        except rules.ItemError as e:
            return [quote(member.name), rules.status_text(e.status)]
        failed = self._ensure_container(environ, account, container, known)
        if failed is not None:
            return [rules.quoted(container), rules.status_text(failed)]
        path = '/v1/%s/%s/%s' % (account, container, obj)
        status, body = self._call(sub_environ(
            environ, 'PUT', path, body=MemberBody(tar.extractfile(member)),
            length=member.size))
        if status == 401:
            raise HTTPError(401, body)
        if not 200 <= status < 300:
            return [rules.quoted(container, obj), rules.status_text(status)]
        return None

    def _extract_work(self, environ, account, tar, base):
        results = {'Number Files Created': 0, 'Response Body': '',
                   'Response Status': ''}
        errors = []
        failure = None
        known = set()
        try:
            for member in tar:
                yield None
                if member.isdir():
                    continue
                error = self._extract_member(environ, account, tar, member,
                                             base, known)
                if error is None:
                    results['Number Files Created'] += 1
                    continue
                errors.append(error)
                if len(errors) >= self.max_failed_extractions:
                    failure = rules.status_text(400)
                    results['Response Body'] = 'Max number of failed ' \
                        'extractions reached'
                    break
        except HTTPError as e:
            failure = rules.status_text(e.status)
            results['Response Body'] = e.reason or ''
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            failure = rules.status_text(400)
            results['Response Body'] = 'Invalid Tar File: %s' % e
        finally:
            tar.close()
        results['Response Status'] = rules.final_status(errors, failure)
        yield results, errors

    def extract_archive(self, req, fmt, account, container, prefix):
        content_type = self._result_type(req)
        mode = rules.ARCHIVE_MODES.get(fmt)
        if mode is None:
            raise HTTPError(400, 'Unsupported archive format')
        try:
            tar = tarfile.open(mode=mode, fileobj=req.environ['wsgi.input'])
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise HTTPError(400, 'Invalid Tar File: %s' % e)
        return self._answer(content_type, self._extract_work(
            req.environ, account, tar, (container or None, prefix or '')),
            'extract')

    # -- dispatch ------------------------------------------------------

    @staticmethod
    def _result_type(req):
        offer = best_offer(req, rules.RESULT_FORMATS)
        if offer is None:
            raise HTTPError(406, 'results come as text/plain, '
                            'application/json or application/xml')
        return offer

    def __call__(self, environ, start_response):
        query_string = environ.get('QUERY_STRING', '')
        if 'bulk-delete' not in query_string and \
                'extract-archive' not in query_string:
            return self.app(environ, start_response)   # every other request
        query = parse_qs(query_string, keep_blank_values=True)
        method = environ.get('REQUEST_METHOD')
        wants_delete = 'bulk-delete' in query and method in ('POST',
                                                             'DELETE')
        wants_extract = 'extract-archive' in query and method == 'PUT'
        if not (wants_delete or wants_extract):
            return self.app(environ, start_response)
        req = Request(environ)
        try:
            version, account, container, obj = split_path(
                client_path(req), 2, 4, rest_with_last=True)
            if version not in ('v1', 'v1.0'):
                raise HTTPError(404, 'unknown API version')
            if wants_delete:
                resp = self.bulk_delete(req, account)
            else:
                resp = self.extract_archive(req, query['extract-archive'][0],
                                            account, container, obj)
        except HTTPError as e:
            resp = e.response(req)
        return resp(environ, start_response)


def _settings(conf):
    out = {}
    for name in SETTINGS:
        try:
            out[name] = int(conf.get(name, DEFAULTS[name]))
        except ValueError:
            out[name] = -1
        if out[name] < (0 if name == 'yield_frequency' else 1):
            raise ConfigError('bulk: %s must be a positive integer' % name)
    return out


def filter_factory(global_conf, local_conf):
    settings = _settings(local_conf)
    info.register('bulk_delete',
                  max_deletes_per_request=settings['max_deletes_per_request'],
                  max_failed_deletes=settings['max_failed_deletes'])
    info.register('bulk_upload',
                  max_containers_per_extraction=settings[
                      'max_containers_per_extraction'],
                  max_failed_extractions=settings['max_failed_extractions'])

    def wrap(app):
        return Bulk(app, settings)
    return wrap
