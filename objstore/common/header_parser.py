"""A faster drop-in for http.client's header parsing.

http.client (and eventlet's green copy of it, which eventlet.wsgi parses
requests with) reads the header lines, joins them and runs them through
the email package's MIME parser: a general state machine that profiling
shows as 10-20% of a storage server's Python time on small requests,
once on the server side of every request and once more on the client
side of every backend response.

``parse_headers`` here reads the lines the same way (same line and count
limits, same exceptions) and, when every line is a plain ``Name: value``
as HTTP/1.1 sends them, builds the same HTTPMessage directly, with the
value trimmed exactly as the email parser trims it. Anything else
(folded continuation lines, a line without a colon, odd bytes in a name)
goes to the original parser, so the result is identical in every case.
``install()`` puts it in both modules; it is idempotent.
"""
import http.client
import re

# What the email parser takes as a header line's name: printable ASCII
# except the colon, then the colon.
_NAME_COLON = re.compile(rb'[\x21-\x39\x3b-\x7e]+:')
_END = (b'\r\n', b'\n', b'')
# Characters the email parser splits lines at (str.splitlines on the
# latin-1 text) besides a line's own ending: a header holding one parses
# differently there, so it takes the slow path.
_LINE_BREAK = re.compile(rb'[\r\n\x0b\x0c\x1c-\x1e\x85]')


def _parser_for(module):
    original = module.parse_headers
    if getattr(original, 'fast_original', None) is not None:
        return original

    def parse_headers(fp, _class=module.HTTPMessage):
        lines = []
        while True:
            line = fp.readline(module._MAXLINE + 1)
            if len(line) > module._MAXLINE:
                raise module.LineTooLong('header line')
            lines.append(line)
            if len(lines) > module._MAXHEADERS:
                raise module.HTTPException('got more than %d headers'
                                           % module._MAXHEADERS)
            if line in _END:
                break
        return _build(lines, _class, module.email.parser)

    parse_headers.fast_original = original
    parse_headers.__doc__ = original.__doc__
    return parse_headers


def _build(lines, message_class, email_parser):
    """The HTTPMessage of ``lines`` (header lines, then the terminator)."""
    message = message_class()
    for line in lines[:-1]:
        match = _NAME_COLON.match(line)
        if match is None:
            return _slow(lines, message_class, email_parser)
        end = len(line)
        if line.endswith(b'\r\n'):
            end -= 2
        elif line.endswith(b'\n'):
            end -= 1
        if _LINE_BREAK.search(line, 0, end) is not None:
            return _slow(lines, message_class, email_parser)
        # compat32 keeps the name as written and drops the value's
        # leading blanks (and the line ending)
        message.set_raw(line[:match.end() - 1].decode('iso-8859-1'),
                        line[match.end():end].decode('iso-8859-1')
                        .lstrip(' \t'))
    message.set_payload('')
    return message


def _slow(lines, message_class, email_parser):
    text = b''.join(lines).decode('iso-8859-1')
    return email_parser.Parser(_class=message_class).parsestr(text)


def install(*modules):
    """Use the fast parser in http.client and the given green copies."""
    for module in (http.client,) + modules:
        module.parse_headers = _parser_for(module)
