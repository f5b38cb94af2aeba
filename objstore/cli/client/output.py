"""What the commands print: plain lines, aligned tables, key/value blocks,
or JSON for scripts; ``--quiet`` silences the chatter (notes and
progress) but never the data a command was asked for.

The formatting is pure (format_table, format_fields); Output only
decides where the text goes.
"""
import json
import sys


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_table(rows, headings=None):
    """Lines of ``rows`` (lists of cells) in aligned columns: numbers to
    the right, text to the left; the last column is never padded."""
    rows = [list(r) for r in rows]
    if headings:
        rows.insert(0, list(headings))
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    widths = [max(len(str(r[i])) for r in rows if i < len(r))
              for i in range(ncols)]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = str(cell)
            if i == len(row) - 1:
                cells.append(text.rjust(widths[i]) if _is_number(cell)
                             else text)
            elif _is_number(cell):
                cells.append(text.rjust(widths[i]))
            else:
                cells.append(text.ljust(widths[i]))
        lines.append('  '.join(cells).rstrip())
    return lines


def format_fields(fields):
    """``Key: value`` lines with the colons aligned, as ``swift stat``
    prints them."""
    if not fields:
        return []
    width = max(len(k) for k, _ in fields)
    return ['%s: %s' % (k.rjust(width), v) for k, v in fields]


class Output:
    def __init__(self, stdout=None, stderr=None, as_json=False,
                 quiet=False):
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.as_json, self.quiet = as_json, quiet

    def line(self, text):
        self.stdout.write(text + '\n')
        self.stdout.flush()

    def lines(self, lines):
        for text in lines:
            self.stdout.write(text + '\n')
        self.stdout.flush()

    def json(self, value):
        self.line(json.dumps(value, indent=2, sort_keys=True))

    def note(self, text):
        """Chatter for humans, on stderr; --quiet drops it."""
        if not self.quiet:
            self.stderr.write(text + '\n')
            self.stderr.flush()

    def warn(self, text):
        """A problem that does not stop the command; always shown."""
        self.stderr.write('objstore: warning: %s\n' % text)
        self.stderr.flush()

    def done(self, text):
        """One line per item handled (uploaded/downloaded/deleted names,
        as swift prints them); --quiet and --json drop it."""
        if not self.quiet and not self.as_json:
            self.line(text)
