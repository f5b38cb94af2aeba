"""compute: boot and manage virtual machines through the compute API.

Authenticates like the objstore/Swift CLI: --auth/--user/--key (or
$ST_AUTH, $ST_USER, $ST_KEY) for auth v1.0, or a token from
--os-auth-token (or $OS_AUTH_TOKEN). The API is at --compute-url (or
$COMPUTE_URL, default http://127.0.0.1:8774). Servers and images may be
named by id or by a unique name. --json prints the API's objects.

Exit status: 0 done, 1 failed (one line on stderr), 2 bad arguments.
"""
import argparse
import os
import sys

from compute.cli import commands
from compute.cli.client import CLIError, ComputeClient, auth_v1
from compute.image.properties import CONTAINER_FORMATS, DISK_FORMATS

PROG = 'compute'
DEFAULT_COMPUTE_URL = 'http://127.0.0.1:8774'
DEFAULT_WAIT_TIMEOUT = 600.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Global option -> environment variable that supplies its default.
ENV_DEFAULTS = (('auth', 'ST_AUTH'), ('user', 'ST_USER'), ('key', 'ST_KEY'),
                ('os_auth_token', 'OS_AUTH_TOKEN'),
                ('os_storage_url', 'OS_STORAGE_URL'),
                ('compute_url', 'COMPUTE_URL'))


def _global_options():
    """Options accepted before or after the subcommand.

    Their defaults are SUPPRESS so that a value given on one side is not
    overwritten by the other parser's default; `settings` fills in the
    environment and built-in defaults afterwards.
    """
    p = argparse.ArgumentParser(add_help=False,
                                argument_default=argparse.SUPPRESS)
    p.add_argument('-A', '--auth', help='auth v1.0 URL ($ST_AUTH)')
    p.add_argument('-U', '--user', help='account:user ($ST_USER)')
    p.add_argument('-K', '--key', help='the user\'s key ($ST_KEY)')
    p.add_argument('--os-auth-token', help='a token ($OS_AUTH_TOKEN)')
    p.add_argument('--os-storage-url',
                   help='the storage URL that goes with the token '
                        '($OS_STORAGE_URL; not needed by compute)')
    p.add_argument('--compute-url', help='compute API URL ($COMPUTE_URL, '
                   'default %s)' % DEFAULT_COMPUTE_URL)
    p.add_argument('--json', action='store_true',
                   help='print the API\'s objects as JSON')
    return p


def _server_arg(p):
    p.add_argument('server', help='server id or unique name')


def _wait_args(p, what):
    p.add_argument('--wait', action='store_true', help='wait until ' + what)
    p.add_argument('--timeout', type=_positive, default=DEFAULT_WAIT_TIMEOUT,
                   help='seconds --wait waits at most (default %g)'
                   % DEFAULT_WAIT_TIMEOUT)


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number: %r' % text) from None
    if value <= 0:
        raise argparse.ArgumentTypeError('must be positive: %r' % text)
    return value


def _count(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('not a whole number: %r'
                                         % text) from None
    if value < 0:
        raise argparse.ArgumentTypeError('must not be negative: %r' % text)
    return value


def _add_image_commands(sub, common):
    p = sub.add_parser('image-upload', parents=[common],
                       help='upload a file as an image')
    p.add_argument('file', help='the image file (a regular file)')
    p.add_argument('--name', required=True, help='image name')
    p.add_argument('--disk-format', choices=DISK_FORMATS)
    p.add_argument('--container-format', choices=CONTAINER_FORMATS)
    p.add_argument('--kernel-id', help='kernel image (id or name)')
    p.add_argument('--ramdisk-id', help='ramdisk image (id or name)')
    p.add_argument('--min-ram', type=_count, help='MB of RAM it needs')
    p.add_argument('--min-disk', type=_count, help='GB of disk it needs')
    p.add_argument('--architecture', help='e.g. x86_64')
    p.add_argument('--hypervisor-type', help='e.g. qemu (the scheduler '
                   'then picks only such hosts)')
    p.add_argument('--public', dest='visibility', action='store_const',
                   const='public', help='visible to every account')
    p.set_defaults(func=commands.image_upload)
    sub.add_parser('image-list', parents=[common], help='list images') \
        .set_defaults(func=commands.image_list)
    for name, func, text in (('image-show', commands.image_show, 'show'),
                             ('image-delete', commands.image_delete,
                              'delete')):
        p = sub.add_parser(name, parents=[common], help=text + ' an image')
        p.add_argument('image', help='image id or unique name')
        p.set_defaults(func=func)
    sub.add_parser('flavor-list', parents=[common], help='list flavors') \
        .set_defaults(func=commands.flavor_list)


def _add_server_commands(sub, common):
    p = sub.add_parser('boot', parents=[common], help='boot a server')
    p.add_argument('name', help='the new server\'s name')
    p.add_argument('--image', required=True, help='image id or name')
    p.add_argument('--flavor', required=True, help='flavor name')
    p.add_argument('--user-data', help='file passed to the guest (<= 64 KiB)')
    p.add_argument('--key-name', help='key pair to inject')
    _wait_args(p, 'the server is ACTIVE (ERROR: exit 1)')
    p.set_defaults(func=commands.boot)
    p = sub.add_parser('list', parents=[common], help='list servers')
    p.add_argument('--status', help='only servers in this status')
    p.add_argument('--name', help='only servers with this name')
    p.set_defaults(func=commands.server_list)
    for name, func, text in (('show', commands.show, 'show a server'),
                             ('stop', commands.stop, 'stop a server'),
                             ('start', commands.start, 'start a server')):
        p = sub.add_parser(name, parents=[common], help=text)
        _server_arg(p)
        p.set_defaults(func=func)
    p = sub.add_parser('console-log', parents=[common],
                       help='a server\'s serial console output')
    _server_arg(p)
    p.add_argument('--length', type=_count, help='only the last N lines')
    p.set_defaults(func=commands.console_log)
    p = sub.add_parser('reboot', parents=[common], help='reboot a server')
    _server_arg(p)
    p.add_argument('--hard', action='store_true',
                   help='power cycle instead of asking the guest')
    p.set_defaults(func=commands.reboot)
    p = sub.add_parser('delete', parents=[common], help='delete a server')
    _server_arg(p)
    _wait_args(p, 'the server is gone')
    p.set_defaults(func=commands.delete)


def _add_other_commands(sub, common):
    sub.add_parser('host-list', parents=[common],
                   help='list hosts and their capacity') \
        .set_defaults(func=commands.host_list)
    p = sub.add_parser('keypair-add', parents=[common],
                       help='register an SSH public key')
    p.add_argument('name')
    p.add_argument('--pub-key', required=True,
                   help='file with the public key')
    p.set_defaults(func=commands.keypair_add)
    sub.add_parser('keypair-list', parents=[common], help='list key pairs') \
        .set_defaults(func=commands.keypair_list)
    p = sub.add_parser('keypair-delete', parents=[common],
                       help='delete a key pair')
    p.add_argument('name')
    p.set_defaults(func=commands.keypair_delete)


def build_parser():
    common = _global_options()
    p = argparse.ArgumentParser(
        prog=PROG, parents=[common], description=__doc__.split('\n')[0],
        epilog='\n'.join(__doc__.split('\n')[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', metavar='COMMAND', required=True)
    _add_image_commands(sub, common)
    _add_server_commands(sub, common)
    _add_other_commands(sub, common)
    return p


def settings(args, environ):
    """Fill global options the command line left out from `environ`
    and the built-in defaults (in place; returns args)."""
    for attr, var in ENV_DEFAULTS:
        if getattr(args, attr, None) is None:
            setattr(args, attr, environ.get(var) or None)
    if not args.compute_url:
        args.compute_url = DEFAULT_COMPUTE_URL
    args.json = getattr(args, 'json', False)
    return args


def credentials_problem(args):
    """None when args allow authenticating, else what to give (one line)."""
    if args.os_auth_token:
        return None
    if args.auth and args.user and args.key is not None:
        return None
    return ('give --auth, --user and --key (or $ST_AUTH, $ST_USER, '
            '$ST_KEY), or --os-auth-token (or $OS_AUTH_TOKEN)')


def parse_args(argv, environ=None):
    """argv -> complete settings; exits 2 (argparse) on bad usage."""
    parser = build_parser()
    args = settings(parser.parse_args(argv),
                    os.environ if environ is None else environ)
    problem = credentials_problem(args)
    if problem:
        parser.error(problem)
    return args


def token_for(args):
    """The token to send: given, or fetched with auth v1.0."""
    if args.os_auth_token:
        return args.os_auth_token
    return auth_v1(args.auth, args.user, args.key)[0]


def run(args, out, err):
    """Run the parsed command; CLIError for anything that went wrong."""
    client = ComputeClient(args.compute_url, token_for(args))
    ctx = commands.Context(client, out, err, as_json=args.json)
    args.func(ctx, args)


def main(argv=None, out=None, err=None):
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args, out, err)
    except CLIError as exc:
        err.write('%s: error: %s\n' % (PROG, exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        err.write('\n%s: error: interrupted\n' % PROG)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_FAILED
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
