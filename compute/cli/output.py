"""What the compute CLI prints: aligned tables for people, JSON for scripts.

Tables look like `openstack server list`: a header row, a rule under it,
columns padded to their widest cell. A single object (`show`) is a table
of Field/Value rows. Nested values (a server's flavor, its fault) become
one short line, so a table row never breaks across lines; the whole
object is always available with --json.
"""
import json


def cell(value):
    """One value as table text: '' for nothing, dicts and lists on one line."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, dict):
        # {"id": ...} (a server's image) and {"message": ...} (its fault)
        # say nothing more than their one value
        if len(value) == 1 and next(iter(value)) in ('id', 'message'):
            return cell(next(iter(value.values())))
        return ', '.join('%s=%s' % (k, cell(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ', '.join(cell(v) for v in value)
    return ' '.join(str(value).splitlines())


def table(headers, rows):
    """Rows (sequences of values) under `headers`, as one aligned string.

    The last column is not padded, so lines carry no trailing blanks.
    """
    texts = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in texts:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))

    def line(cells):
        padded = [c.ljust(w) for c, w in zip(cells, widths)]
        return '  '.join(padded).rstrip()

    out = [line(headers), line(['-' * w for w in widths])]
    out.extend(line(row) for row in texts)
    return '\n'.join(out)


def object_table(obj, fields=None):
    """A Field/Value table of one API object (`fields`: which keys, in order;
    by default every key in the object's own order)."""
    keys = list(obj) if fields is None else [f for f in fields if f in obj]
    return table(('Field', 'Value'), [(k, obj[k]) for k in keys])


def list_table(columns, objects):
    """A table of API objects; `columns` is a list of (header, key) pairs,
    where key may be a callable taking the object. Missing keys show ''."""
    rows = []
    for obj in objects:
        row = []
        for _, key in columns:
            row.append(key(obj) if callable(key) else obj.get(key))
        rows.append(row)
    return table([h for h, _ in columns], rows)


def to_json(value):
    """The API's own objects, pretty enough to read, stable for diffs."""
    return json.dumps(value, indent=2, sort_keys=True)

