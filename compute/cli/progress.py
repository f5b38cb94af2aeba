"""A byte progress bar on stderr for image uploads (and their checksum pass).

objstore/cli/bench_progress.py counts operations of a benchmark phase;
an upload wants bytes, a bar, a percentage and a throughput, so this is
its own small class. It only draws on a terminal: into a file or a pipe
it stays silent, because a log gains nothing from a redrawn bar. The
line is redrawn in place (\\r) at most every `every` seconds and ends
with one final line that stays.
"""
import time

from compute.cli.output import human_bytes


def render(label, done, total, elapsed, width=30):
    """One progress line, e.g.
    'upload [######------]  50%  1.0 MiB / 2.0 MiB  512.0 KiB/s'."""
    fraction = min(1.0, done / total) if total else 1.0
    filled = int(fraction * width)
    bar = '#' * filled + '-' * (width - filled)
    rate = done / elapsed if elapsed > 0 else 0.0
    return '%s [%s] %3d%%  %s / %s  %s/s' % (
        label, bar, int(fraction * 100), human_bytes(done),
        human_bytes(total), human_bytes(rate))


class ProgressBar:
    """Counts bytes of one pass over `total` bytes and draws the bar."""

    def __init__(self, stream, label, total, tty=None, every=0.2,
                 clock=time.monotonic):
        self.stream, self.label, self.total = stream, label, total
        self.tty = stream.isatty() if tty is None else tty
        self.every, self.clock = every, clock
        self.done = 0
        self.started = clock()
        self.last_draw = None
        self.width = 0

    def _draw(self, final=False):
        text = render(self.label, self.done, self.total,
                      self.clock() - self.started)
        pad = ' ' * max(0, self.width - len(text))
        self.stream.write('\r' + text + pad + ('\n' if final else ''))
        self.stream.flush()
        self.width = len(text)

    def update(self, nbytes):
        """`nbytes` more are done; redraw if it has been a while."""
        self.done += nbytes
        if not self.tty:
            return
        now = self.clock()
        if self.last_draw is None or now - self.last_draw >= self.every:
            self.last_draw = now
            self._draw()

    def finish(self):
        """Draw the final line (on a terminal) and leave it standing."""
        if self.tty:
            self._draw(final=True)


class NullBar:
    """Stands in for a ProgressBar when nothing should be drawn."""

    def update(self, nbytes):
        pass

    def finish(self):
        pass
