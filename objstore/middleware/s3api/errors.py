"""S3 errors: the code a client library switches on, its HTTP status, and
the XML body every S3 error carries (never a Swift-style text body).

Raise ``S3Error('NoSuchBucket', resource='/bucket')`` anywhere below the
middleware; it turns one into the answer. Extra elements (BucketName,
Key, UploadId, RequestTime...) go in ``extra`` and appear in the body in
the order given, as S3 lists them.
"""
from xml.sax.saxutils import escape

# code -> (HTTP status, default message), as S3 documents them
CODES = {
    'AccessDenied': (403, 'Access Denied'),
    'AuthorizationHeaderMalformed': (
        400, 'The authorization header you provided is invalid.'),
    'AuthorizationQueryParametersError': (
        400, 'The authorization query parameters are invalid.'),
    'BadDigest': (400, 'The Content-MD5 you specified did not match what '
                       'we received.'),
    'BucketAlreadyExists': (409, 'The requested bucket name is not '
                                 'available.'),
    'BucketAlreadyOwnedByYou': (409, 'Your previous request to create the '
                                     'named bucket succeeded and you '
                                     'already own it.'),
    'BucketNotEmpty': (409, 'The bucket you tried to delete is not '
                            'empty.'),
    'EntityTooLarge': (400, 'Your proposed upload exceeds the maximum '
                            'allowed object size.'),
    'EntityTooSmall': (400, 'Your proposed upload is smaller than the '
                            'minimum allowed object size.'),
    'ExpiredToken': (400, 'The provided token has expired.'),
    'IncompleteBody': (400, 'You did not provide the number of bytes '
                            'specified by the Content-Length HTTP header.'),
    'InternalError': (500, 'We encountered an internal error. Please try '
                           'again.'),
    'InvalidAccessKeyId': (403, 'The AWS Access Key Id you provided does '
                                'not exist in our records.'),
    'InvalidArgument': (400, 'Invalid Argument'),
    'InvalidBucketName': (400, 'The specified bucket is not valid.'),
    'InvalidDigest': (400, 'The Content-MD5 you specified is not valid.'),
    'InvalidLocationConstraint': (400, 'The specified location constraint '
                                       'is not valid.'),
    'InvalidObjectState': (403, 'The operation is not valid for the '
                                "object's state."),
    'InvalidPart': (400, 'One or more of the specified parts could not be '
                         'found. The part might not have been uploaded, or '
                         "the specified entity tag might not have matched "
                         "the part's entity tag."),
    'InvalidPartOrder': (400, 'The list of parts was not in ascending '
                              'order. The parts list must be specified in '
                              'order by part number.'),
    'InvalidRange': (416, 'The requested range is not satisfiable'),
    'InvalidRequest': (400, 'Invalid Request'),
    'InvalidURI': (400, "Couldn't parse the specified URI."),
    'KeyTooLongError': (400, 'Your key is too long.'),
    'MalformedACLError': (400, 'The XML you provided was not well-formed '
                               'or did not validate against our published '
                               'schema.'),
    'MalformedXML': (400, 'The XML you provided was not well-formed or did '
                          'not validate against our published schema.'),
    'MetadataTooLarge': (400, 'Your metadata headers exceed the maximum '
                              'allowed metadata size.'),
    'MethodNotAllowed': (405, 'The specified method is not allowed '
                              'against this resource.'),
    'MissingContentLength': (411, 'You must provide the Content-Length '
                                  'HTTP header.'),
    'MissingSecurityHeader': (400, 'Your request was missing a required '
                                   'header.'),
    'NoSuchBucket': (404, 'The specified bucket does not exist.'),
    'NoSuchKey': (404, 'The specified key does not exist.'),
    'NoSuchUpload': (404, 'The specified multipart upload does not exist. '
                          'The upload ID might be invalid, or the multipart '
                          'upload might have been aborted or completed.'),
    'NoSuchVersion': (404, 'The specified version does not exist.'),
    'NotImplemented': (501, 'A header you provided implies functionality '
                            'that is not implemented.'),
    'PreconditionFailed': (412, 'At least one of the preconditions you '
                                'specified did not hold.'),
    'RequestTimeTooSkewed': (403, 'The difference between the request time '
                                  "and the current time is too large."),
    'RequestTimeout': (400, 'Your socket connection to the server was not '
                            'read from or written to within the timeout '
                            'period.'),
    'ServiceUnavailable': (503, 'Please reduce your request rate.'),
    'SignatureDoesNotMatch': (403, 'The request signature we calculated '
                                   'does not match the signature you '
                                   'provided. Check your key and signing '
                                   'method.'),
    'SlowDown': (503, 'Please reduce your request rate.'),
    'TooManyBuckets': (400, 'You have attempted to create more buckets '
                            'than allowed.'),
    'XAmzContentSHA256Mismatch': (400, "The provided 'x-amz-content-sha256'"
                                       " header does not match what was "
                                       "computed."),
}


class S3Error(Exception):
    """An S3 error answer: ``code`` from CODES, an optional message (else
    the code's default), the resource, and extra body elements."""

    def __init__(self, code, message=None, resource=None, status=None,
                 headers=(), **extra):
        if code not in CODES:
            raise ValueError('unknown S3 error code %r' % code)
        default_status, default_message = CODES[code]
        super().__init__('%s: %s' % (code, message or default_message))
        self.code = code
        self.status = status or default_status
        self.message = message or default_message
        self.resource = resource
        self.headers = list(headers)
        self.extra = extra

    def body(self, request_id=''):
        """The XML error document (bytes)."""
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
                 '<Code>%s</Code>' % self.code,
                 '<Message>%s</Message>' % escape(self.message)]
        if self.resource is not None:
            parts.append('<Resource>%s</Resource>' % escape(self.resource))
        for name, value in self.extra.items():
            parts.append('<%s>%s</%s>' % (name, escape(str(value)), name))
        parts.append('<RequestId>%s</RequestId></Error>'
                     % escape(request_id))
        return ''.join(parts).encode('utf-8')

    def response_parts(self, request_id='', head=False):
        """(status line, headers, body chunks) for a WSGI answer; a HEAD
        answer has the status and headers but no body, as S3 sends."""
        from http import HTTPStatus
        body = self.body(request_id)
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = 'Error'
        headers = [('Content-Type', 'application/xml'),
                   ('Content-Length', '0' if head else str(len(body))),
                   ('x-amz-request-id', request_id)] + self.headers
        return '%d %s' % (self.status, phrase), headers, \
            [b''] if head else [body]
