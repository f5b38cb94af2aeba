"""The one exception the commands raise for anything the user should see.

main() turns it into a single line ``objstore: error: <message>`` and an
exit code, so no traceback ever reaches the user.
"""


class ClientError(Exception):
    """A failure to report in one line; ``status`` is the HTTP status
    when the cluster answered (None for local or network failures)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class UsageError(ClientError):
    """The command line itself is wrong (exit code 2, like argparse)."""
