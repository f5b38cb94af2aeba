"""The documented limits of the Swift API and the checks that apply them.

Each check returns None when the input is fine, else a short reason that
the server sends with a 4xx. They are pure functions so that every server
(and later the proxy) refuses the same inputs the same way.
"""
MAX_FILE_SIZE = 5 * 1024 ** 3
MAX_META_NAME_LENGTH = 128
MAX_META_VALUE_LENGTH = 256
MAX_META_COUNT = 90
MAX_META_OVERALL_SIZE = 4096
MAX_HEADER_SIZE = 8192
MAX_OBJECT_NAME_LENGTH = 1024
MAX_CONTAINER_NAME_LENGTH = 256
MAX_ACCOUNT_NAME_LENGTH = 256
CONTAINER_LISTING_LIMIT = 10000
ACCOUNT_LISTING_LIMIT = 10000

# user metadata header prefixes per resource type
META_PREFIX = {'account': 'x-account-meta-', 'container':
               'x-container-meta-', 'object': 'x-object-meta-'}

LIMITS = {
    'max_file_size': MAX_FILE_SIZE,
    'max_meta_name_length': MAX_META_NAME_LENGTH,
    'max_meta_value_length': MAX_META_VALUE_LENGTH,
    'max_meta_count': MAX_META_COUNT,
    'max_meta_overall_size': MAX_META_OVERALL_SIZE,
    'max_header_size': MAX_HEADER_SIZE,
    'max_object_name_length': MAX_OBJECT_NAME_LENGTH,
    'max_container_name_length': MAX_CONTAINER_NAME_LENGTH,
    'max_account_name_length': MAX_ACCOUNT_NAME_LENGTH,
    'container_listing_limit': CONTAINER_LISTING_LIMIT,
    'account_listing_limit': ACCOUNT_LISTING_LIMIT,
}


def check_name(name, max_length, what):
    """A path component: non-empty UTF-8, no NUL, no '.'/'..', not too long.

    ``name`` is the decoded str (WSGI paths arrive as latin-1 str; callers
    pass the text after decoding UTF-8, see http.split_path).
    """
    if not name:
        return '%s name is empty' % what
    if '\x00' in name:
        return '%s name contains a NUL byte' % what
    if name in ('.', '..'):
        return '%s name may not be %r' % (what, name)
    if len(name.encode('utf-8', 'surrogatepass')) > max_length:
        return '%s name longer than %d bytes' % (what, max_length)
    return None


def check_object_name(name):
    err = check_name(name, MAX_OBJECT_NAME_LENGTH, 'object')
    if err is None and any(part in ('.', '..') for part in name.split('/')):
        return 'object name may not contain "." or ".." segments'
    return err


def check_metadata(headers, kind):
    """User metadata limits over ``headers`` (a dict-like of str -> str).

    ``kind`` is 'account', 'container' or 'object'. Names and values are
    counted in bytes as sent (the part of the name after the prefix).
    """
    prefix = META_PREFIX[kind]
    count = 0
    size = 0
    for key, value in headers.items():
        lkey = key.lower()
        if not lkey.startswith(prefix):
            continue
        name = key[len(prefix):]
        if not name:
            return 'metadata name is empty'
        if value is None:
            value = ''
        nbytes = len(name.encode('latin-1', 'replace'))
        vbytes = len(value.encode('latin-1', 'replace'))
        if nbytes > MAX_META_NAME_LENGTH:
            return 'metadata name too long: max %d bytes' % \
                MAX_META_NAME_LENGTH
        if vbytes > MAX_META_VALUE_LENGTH:
            return 'metadata value too long: max %d bytes' % \
                MAX_META_VALUE_LENGTH
        count += 1
        size += nbytes + vbytes
    if count > MAX_META_COUNT:
        return 'too many metadata items: max %d' % MAX_META_COUNT
    if size > MAX_META_OVERALL_SIZE:
        return 'metadata too large: max %d bytes in all' % \
            MAX_META_OVERALL_SIZE
    return None


def parse_content_length(value):
    """(length or None, error): a non-negative integer within the limit."""
    if value is None:
        return None, None
    value = value.strip()
    if not value.isdigit():
        return None, 'invalid Content-Length %r' % value
    length = int(value)
    if length > MAX_FILE_SIZE:
        return None, 'object larger than %d bytes' % MAX_FILE_SIZE
    return length, None


def parse_listing_limit(value, maximum):
    """(limit, error) for a listing's ``limit`` parameter."""
    if value is None or value == '':
        return maximum, None
    if not value.isdigit():
        return None, 'invalid limit %r' % value
    limit = int(value)
    if limit > maximum:
        return None, 'limit larger than %d' % maximum
    return limit, None
