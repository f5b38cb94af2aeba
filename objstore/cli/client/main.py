"""``objstore``: the command line entry point.

build_parser() describes every command and option; main() parses, gets
credentials (auth.py), runs the command module and turns every failure
into one line ``objstore: error: <message>`` with exit code 1 (2 for a
wrong command line), never a traceback. Options common to all commands
(auth, --json, --quiet) may be given before or after the command name.
"""
import argparse
import os
import sys

from objstore.cli.client import (auth, capabilities, copy, delete, download,
                                 listing, post, stat, tempurl, upload)
from objstore.cli.client.connection import Connection
from objstore.cli.client.errors import ClientError, UsageError
from objstore.cli.client.output import Output
from objstore.cli.client.sizes import parse_size

PROG = 'objstore'
GLOBAL_DEFAULTS = {'auth': None, 'user': None, 'key': None,
                   'os_auth_token': None, 'os_storage_url': None,
                   'json': False, 'quiet': False}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message):
        raise UsageError(message)


def size_option(text):
    try:
        return parse_size(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e))


def common_options():
    """Options every command takes; SUPPRESS so that a command's parser
    does not overwrite a value given before the command name."""
    p = Parser(add_help=False)
    s = argparse.SUPPRESS
    p.add_argument('-A', '--auth', default=s,
                   help='auth v1.0 URL (or $ST_AUTH)')
    p.add_argument('-U', '--user', default=s, help='user (or $ST_USER)')
    p.add_argument('-K', '--key', default=s, help='key (or $ST_KEY)')
    p.add_argument('--os-auth-token', default=s,
                   help='a token to use instead of auth (or '
                   '$OS_AUTH_TOKEN)')
    p.add_argument('--os-storage-url', default=s,
                   help='the storage URL (or $OS_STORAGE_URL)')
    p.add_argument('--json', action='store_true', default=s,
                   help='print JSON for scripts')
    p.add_argument('-q', '--quiet', action='store_true', default=s,
                   help='no progress and no per-item lines')
    return p


def build_parser():
    common = common_options()
    parser = Parser(prog=PROG, parents=[common],
                    description='A command line client for objstore (and '
                    'any Swift API).')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True

    def command(name, help_text):
        return sub.add_parser(name, parents=[common], help=help_text,
                              description=help_text)

    p = command('stat', 'show an account, container or object')
    p.add_argument('container', nargs='?')
    p.add_argument('object', nargs='?')

    p = command('list', 'list containers, or the objects of a container')
    p.add_argument('container', nargs='?')
    p.add_argument('-p', '--prefix')
    p.add_argument('-d', '--delimiter')
    p.add_argument('-l', '--long', action='store_true')
    p.add_argument('-t', '--totals', action='store_true')

    p = command('upload', 'upload files and directories')
    p.add_argument('container')
    p.add_argument('paths', nargs='+', metavar='FILE_OR_DIR')
    p.add_argument('--object-name')
    p.add_argument('-S', '--segment-size', type=size_option,
                   help='upload files larger than this as SLO segments '
                   '(K/M/G suffixes)')
    p.add_argument('--segment-container')
    p.add_argument('-c', '--changed', action='store_true',
                   help='skip files whose size and mtime are unchanged')
    p.add_argument('--skip-identical', action='store_true',
                   help='skip files whose content is already stored')
    p.add_argument('-j', '--jobs', type=int, default=10)
    p.add_argument('-H', '--header', action='append', default=[])

    p = command('download', 'download objects')
    p.add_argument('container')
    p.add_argument('objects', nargs='*', metavar='OBJECT')
    p.add_argument('-o', '--output', help='file to write (- for stdout)')
    p.add_argument('-p', '--prefix')
    p.add_argument('-j', '--jobs', type=int, default=10)
    p.add_argument('--segment-jobs', type=int, default=None,
                   help='parts of one large object fetched at once '
                        '(default: the smaller of --jobs and 4)')
    p.add_argument('--skip-identical', action='store_true')

    p = command('delete', 'delete objects or containers')
    p.add_argument('container', nargs='?')
    p.add_argument('objects', nargs='*', metavar='OBJECT')
    p.add_argument('-a', '--all', action='store_true',
                   help='delete everything in the account')
    p.add_argument('-y', '--yes', action='store_true',
                   help='do not ask before --all')
    p.add_argument('-j', '--jobs', type=int, default=10)

    p = command('post', 'set metadata and ACLs')
    p.add_argument('container', nargs='?')
    p.add_argument('object', nargs='?')
    p.add_argument('-m', '--meta', action='append', default=[])
    p.add_argument('-r', '--read-acl')
    p.add_argument('-w', '--write-acl')
    p.add_argument('-H', '--header', action='append', default=[])

    p = command('copy', 'copy an object on the server')
    p.add_argument('container')
    p.add_argument('object')
    p.add_argument('-d', '--destination',
                   help='/container[/object] to copy to')
    p.add_argument('-m', '--meta', action='append', default=[])
    p.add_argument('-H', '--header', action='append', default=[])

    p = command('tempurl', 'print a temporary URL')
    p.add_argument('method')
    p.add_argument('seconds')
    p.add_argument('path')
    p.add_argument('key')
    p.add_argument('--digest', default='sha256', choices=tempurl.DIGESTS)
    p.add_argument('--absolute', action='store_true',
                   help='SECONDS is a Unix time, not a duration')

    command('capabilities', "show the cluster's /info")
    return parser


def parse_args(argv):
    args = build_parser().parse_args(argv)
    for name, value in GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, value)
    return args


def connect(args, env):
    creds = auth.settings(args, env)
    return Connection(*auth.authenticate(creds))


def dispatch(args, out, env, stdin):
    if args.command == 'tempurl':
        return tempurl.run(args, out)
    if args.command == 'capabilities':
        creds = auth.settings(args, env)
        url = creds.storage_url or creds.auth_url
        if not url:
            raise UsageError('give --auth or --os-storage-url (or $ST_AUTH/'
                             '$OS_STORAGE_URL) to find the cluster')
        return capabilities.run(args, url, out)
    conn = connect(args, env)
    if args.command == 'stat':
        if args.object and not args.container:
            raise UsageError('name the container of the object')
        return stat.run(args, conn, out)
    if args.command == 'list':
        return listing.run(args, conn, out)
    if args.command == 'upload':
        return upload.run(args, conn, out)
    if args.command == 'download':
        return download.run(args, conn, out)
    if args.command == 'delete':
        return delete.run(args, conn, out, stdin)
    if args.command == 'post':
        return post.run(args, conn, out)
    if args.command == 'copy':
        return copy.run(args, conn, out)
    raise UsageError('unknown command %r' % args.command)


def main(argv=None, env=None, stdout=None, stderr=None, stdin=None):
    env = os.environ if env is None else env
    stderr = stderr or sys.stderr
    try:
        argv = sys.argv[1:] if argv is None else argv
        if any(a in ('-h', '--help') for a in argv):
            build_parser().parse_args(argv)   # prints help, exits 0
        args = parse_args(argv)
        out = Output(stdout, stderr, as_json=args.json, quiet=args.quiet)
        return dispatch(args, out, env, stdin or sys.stdin) or 0
    except UsageError as e:
        stderr.write('%s: error: %s (see %s --help)\n' % (PROG, e, PROG))
        return 2
    except ClientError as e:
        stderr.write('%s: error: %s\n' % (PROG, e))
        return 1
    except KeyboardInterrupt:
        stderr.write('%s: error: interrupted\n' % PROG)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == '__main__':
    sys.exit(main())
