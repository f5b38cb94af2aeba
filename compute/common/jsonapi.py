"""JSON over WSGI for the compute API and agents: reading bodies within a
limit, answering with JSON, and errors as one clear line.

Every error the compute services send has the same shape,
``{"error": {"code": <status>, "message": "<one line>"}}``, so the CLI
prints the message whatever failed. HttpError carries one up from
wherever the problem is found to the app's entry point.
"""
import json
from http import HTTPStatus

MAX_JSON_BODY = 1024 * 1024


class HttpError(Exception):
    """An answer other than success: ``status`` and a message for users."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)
        self.message = message


def status_line(status):
    try:
        return '%d %s' % (status, HTTPStatus(status).phrase)
    except ValueError:
        return '%d Unknown' % status


def respond(start_response, status, body=None, headers=()):
    """Answer ``body`` (anything json.dumps takes; None: no body)."""
    data = b'' if body is None else json.dumps(body).encode('utf-8')
    out = [('Content-Length', str(len(data)))]
    if data:
        out.append(('Content-Type', 'application/json'))
    out.extend(headers)
    start_response(status_line(status), out)
    return [data]


def error_body(status, message):
    return {'error': {'code': int(status), 'message': message}}


def respond_error(start_response, error):
    return respond(start_response, error.status,
                   error_body(error.status, error.message))


def content_length(environ):
    """The declared body length (0 when none); 400 for a bad one."""
    raw = environ.get('CONTENT_LENGTH') or ''
    if not raw:
        return 0
    # ASCII only: str.isdigit() also takes '\xb2' (a latin-1 header byte),
    # which int() refuses
    if not (raw.isascii() and raw.isdigit()):
        raise HttpError(400, 'bad Content-Length %r' % raw)
    return int(raw)


def read_body(environ, limit=MAX_JSON_BODY):
    """The whole (small) request body as bytes, at most ``limit``."""
    length = content_length(environ)
    if length > limit:
        raise HttpError(413, 'request body over %d bytes' % limit)
    data = environ['wsgi.input'].read(length) if length else b''
    if len(data) != length:
        raise HttpError(400, 'request body shorter than its '
                             'Content-Length')
    return data


def _refuse_constant(name):
    """NaN and Infinity are Python's extensions, not JSON; taken, they
    reach int() and arithmetic as floats nobody checks for."""
    raise ValueError('%s is not a JSON value' % name)


def parse_json(data, required=True):
    """The JSON object in ``data``; 400 when it is not one."""
    if not data:
        if required:
            raise HttpError(400, 'a JSON body is required')
        return {}
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, 'body is not valid JSON: %s' % exc)
    if not isinstance(value, dict):
        raise HttpError(400, 'body must be a JSON object')
    return value
