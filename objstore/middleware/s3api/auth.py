"""Who signed this S3 request: ``authenticate(environ, credentials)``.

One entry point for the four ways S3 requests carry credentials
(Signature V4 in the Authorization header or in a presigned URL,
Signature V2 likewise). It answers an Identity, None for a request
that carries no credentials at all (anonymous), or raises the S3Error
S3 would answer. No HTTP happens here and the clock is a parameter.

When the body is signed, verifying it is left to the body itself:
``wsgi.input`` is replaced by a reader that fails on a mismatch (a hex
``x-amz-content-sha256``) or that decodes and verifies an aws-chunked
body, and CONTENT_LENGTH becomes the decoded length.
"""
import collections
import time

from objstore.middleware.s3api import chunked, sigv2, sigv4
from objstore.middleware.s3api.errors import S3Error

DEFAULT_LOCATION = 'us-east-1'

Identity = collections.namedtuple('Identity', 'access_key user account')


def _query(environ):
    """The query as a dict of decoded values (first one wins)."""
    out = {}
    for name, value in sigv4.query_pairs(environ.get('QUERY_STRING', '')):
        out.setdefault(name, value)
    return out


def _lookup(credentials, access_key):
    entry = credentials.lookup(access_key)
    if entry is None:
        raise S3Error('InvalidAccessKeyId', AWSAccessKeyId=access_key)
    return entry


def authenticate(environ, credentials, now=None, location=DEFAULT_LOCATION,
                 host_bucket=None):
    """Identity(access_key, user, account) of a signed request, None
    for an anonymous one; S3Error otherwise.

    ``location`` is the region signatures must be scoped to (None
    accepts any); ``host_bucket`` the bucket named by the Host header
    of a virtual-hosted request (V2 signs it as part of the path).
    """
    now = time.time() if now is None else now
    authorization = environ.get('HTTP_AUTHORIZATION')
    query = _query(environ)
    presigned_v4 = sigv4.is_presigned(query)
    presigned_v2 = 'AWSAccessKeyId' in query
    if authorization is not None and (presigned_v4 or presigned_v2) or \
            presigned_v4 and presigned_v2:
        raise S3Error('InvalidArgument', 'Only one auth mechanism allowed; '
                      'only the X-Amz-Algorithm query parameter, Signature '
                      'query string parameter or the Authorization header '
                      'should be specified',
                      ArgumentName='Authorization',
                      ArgumentValue=authorization or '')
    if authorization is not None:
        authorization = sigv4.wsgi_text(authorization)
        if authorization.startswith(sigv4.ALGORITHM + ' '):
            return _v4(environ, credentials, now, location,
                       sigv4.parse_authorization(authorization))
        if authorization.startswith('AWS '):
            return _v2_header(environ, credentials, now, host_bucket,
                              authorization)
        raise S3Error('InvalidArgument', 'Unsupported Authorization Type',
                      ArgumentName='Authorization',
                      ArgumentValue=authorization)
    if presigned_v4:
        return _v4(environ, credentials, now, location,
                   sigv4.parse_presigned(query))
    if presigned_v2:
        return _v2_query(environ, credentials, now, host_bucket, query)
    return None


# -- Signature V4 ----------------------------------------------------------

def _v4(environ, credentials, now, location, signed):
    if signed.presigned:
        sigv4.check_presigned_time(signed, now)
    else:
        amz_date, when = sigv4.request_date(environ)
        signed = signed._replace(amz_date=amz_date)
        sigv4.check_skew(when, now)
    sigv4.check_scope_date(signed)
    secret, user, account = _lookup(credentials, signed.access_key)
    sigv4.check_region(signed, location)
    sigv4.check_signed_headers(environ, signed)
    sent = sigv4.header(environ, 'x-amz-content-sha256')
    if signed.presigned:
        payload = sigv4.UNSIGNED_PAYLOAD if sent is None else \
            sigv4.check_payload_hash(sent.strip())
    else:
        payload = sigv4.check_payload_hash(
            None if sent is None else sent.strip())
    key = sigv4.verify(environ, signed, secret, payload)
    _install_body_check(environ, signed, key, payload)
    return Identity(signed.access_key, user, account)


def _content_length(environ):
    value = environ.get('CONTENT_LENGTH')
    if value in (None, ''):
        return None
    try:
        length = int(value)
    except ValueError:
        raise S3Error('InvalidArgument', 'Invalid Content-Length',
                      ArgumentName='Content-Length', ArgumentValue=value)
    if length < 0:
        raise S3Error('InvalidArgument', 'Invalid Content-Length',
                      ArgumentName='Content-Length', ArgumentValue=value)
    return length


def _install_body_check(environ, signed, key, payload):
    """Replace wsgi.input by a reader that verifies what the client
    signed about the body."""
    raw = environ.get('wsgi.input')
    length = _content_length(environ)
    if payload == sigv4.UNSIGNED_PAYLOAD or raw is None:
        return
    if payload not in (sigv4.STREAMING_PAYLOAD,
                       sigv4.STREAMING_UNSIGNED_TRAILER):
        environ['wsgi.input'] = sigv4.Sha256Input(raw, length, payload)
        return
    decoded = sigv4.header(environ, 'x-amz-decoded-content-length')
    if decoded is None:
        raise S3Error('MissingContentLength', 'You must provide the '
                      'x-amz-decoded-content-length header with an '
                      'aws-chunked body.')
    try:
        decoded_length = int(decoded)
        if decoded_length < 0:
            raise ValueError(decoded)
    except ValueError:
        raise S3Error('InvalidArgument', 'Invalid '
                      'x-amz-decoded-content-length',
                      ArgumentName='x-amz-decoded-content-length',
                      ArgumentValue=decoded)
    if payload == sigv4.STREAMING_PAYLOAD:
        signer = chunked.ChunkSigner(
            key, signed.amz_date,
            sigv4.scope(signed.date, signed.region, signed.service),
            signed.signature)
        trailer = None
    else:
        signer = None
        trailer = (sigv4.header(environ, 'x-amz-trailer') or '').strip() \
            or None
    environ['wsgi.input'] = chunked.ChunkedInput(
        raw, length, decoded_length, signer=signer, trailer=trailer)
    environ['CONTENT_LENGTH'] = str(decoded_length)
    environ.pop('HTTP_TRANSFER_ENCODING', None)
    _drop_aws_chunked(environ)


def _drop_aws_chunked(environ):
    """'aws-chunked' describes the transfer, not the object: S3 does not
    store it as the object's Content-Encoding."""
    value = environ.get('HTTP_CONTENT_ENCODING')
    if value is None:
        return
    kept = [v.strip() for v in value.split(',')
            if v.strip() and v.strip().lower() != 'aws-chunked']
    if kept:
        environ['HTTP_CONTENT_ENCODING'] = ','.join(kept)
    else:
        del environ['HTTP_CONTENT_ENCODING']


# -- Signature V2 ----------------------------------------------------------

def _v2_header(environ, credentials, now, host_bucket, authorization):
    access_key, signature = sigv2.parse_authorization(authorization)
    date_line = sigv2.header_date_line(environ, now)
    secret, user, account = _lookup(credentials, access_key)
    sigv2.verify(environ, access_key, signature, secret, date_line,
                 host_bucket)
    return Identity(access_key, user, account)


def _v2_query(environ, credentials, now, host_bucket, query):
    access_key, signature = sigv2.parse_query(query)
    date_line = sigv2.query_date_line(query, now)
    secret, user, account = _lookup(credentials, access_key)
    sigv2.verify(environ, access_key, signature, secret, date_line,
                 host_bucket, query)
    return Identity(access_key, user, account)
