"""``objstore delete CONTAINER [OBJECT...]`` and ``objstore delete --all``.

Objects are deleted in parallel; a static large object goes with its
segments (``?multipart-manifest=delete``) and a dynamic one with the
segments under its prefix. A container named without objects is emptied
and then deleted. ``--all`` empties the whole account and asks first
unless ``--yes``.
"""
import time

from objstore.cli.client.common import check_jobs, run_parallel
from objstore.cli.client.errors import ClientError, UsageError
from objstore.cli.client.upload import is_slo

# a container's listing may lag the deletes that emptied it a moment
CONTAINER_RETRIES = 10
RETRY_WAIT = 0.5


def confirm(question, stdin, stderr):
    """Whether the user typed y/yes to ``question``."""
    stderr.write(question + ' [y/N] ')
    stderr.flush()
    answer = stdin.readline()
    if not (hasattr(stdin, 'isatty') and stdin.isatty()):
        stderr.write('\n')   # the answer was not echoed: end the line
    return answer.strip().lower() in ('y', 'yes')


def dlo_prefix(manifest):
    """(container, prefix) of an X-Object-Manifest value."""
    container, _, prefix = manifest.partition('/')
    return container, prefix


class Deleter:
    def __init__(self, conn, out, args):
        self.conn, self.out, self.args = conn, out, args

    def delete_object(self, container, obj):
        headers = self.conn.head_or_none(container, obj)
        if headers is None:
            raise ClientError('DELETE %s/%s: not found' % (container, obj),
                              404)
        query = None
        if is_slo(headers):
            query = {'multipart-manifest': 'delete'}
        self.conn.request('DELETE', container, obj, query=query)
        manifest = headers.get('X-Object-Manifest')
        if manifest:
            seg_container, prefix = dlo_prefix(manifest)
            for entry in list(self.conn.listing(seg_container,
                                                prefix=prefix)):
                self.conn.request('DELETE', seg_container, entry['name'],
                                  ok=(404,))
        self.out.done('%s/%s' % (container, obj))
        return obj

    def delete_objects(self, container, objects):
        _, failures = run_parallel(
            self.args.jobs, lambda o: self.delete_object(container, o),
            objects, self.out, lambda o: o)
        return failures

    def delete_container(self, container):
        names = [e['name'] for e in self.conn.listing(container)
                 if 'name' in e]
        failures = self.delete_objects(container, names)
        if failures:
            raise ClientError('%s: %d objects could not be deleted, so the '
                              'container stays' % (container, failures))
        for attempt in range(CONTAINER_RETRIES):
            resp = self.conn.request('DELETE', container, ok=(409,))
            if resp.status_code != 409:
                self.out.done(container)
                return
            time.sleep(RETRY_WAIT)
        raise ClientError('DELETE %s: 409 the container is not empty'
                          % container, 409)

    def delete_all(self, stdin):
        if not self.args.yes and not confirm(
                'Delete every container and object of the account?',
                stdin, self.out.stderr):
            raise ClientError('nothing deleted: not confirmed (answer y, or '
                              'pass --yes)')
        failures = 0
        for entry in list(self.conn.listing()):
            try:
                self.delete_container(entry['name'])
            except ClientError as e:
                failures += 1
                self.out.warn(str(e))
        if failures:
            raise ClientError('%d containers could not be deleted'
                              % failures)


def run(args, conn, out, stdin):
    check_jobs(args.jobs)
    deleter = Deleter(conn, out, args)
    if args.all:
        if args.container:
            raise UsageError('--all deletes everything; name no container')
        deleter.delete_all(stdin)
        return 0
    if not args.container:
        raise UsageError('name a container (or --all for the whole '
                         'account)')
    if args.objects:
        failures = deleter.delete_objects(args.container, args.objects)
        if failures:
            raise ClientError('%d of %d deletes failed'
                              % (failures, len(args.objects)))
    else:
        deleter.delete_container(args.container)
    return 0
