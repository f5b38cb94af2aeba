"""The S3 API over the Swift model: bucket = container, key = object.

errors.py  S3Error and the code -> status table (XML error bodies)
auth.py    who signed the request (Signature V4 and V2), pure
chunked.py aws-chunked bodies with per-chunk signatures
...        the middleware, request parsing, XML, bucket/object/multipart
"""
