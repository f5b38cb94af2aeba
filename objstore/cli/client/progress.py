"""A progress bar with throughput for uploads and downloads.

Shown on stderr only when stderr is a terminal (a pipe or a log file gets
nothing), redrawn in place with ``\\r`` at most a few times a second, and
finished with a newline. render() is pure so the bar's look is tested
without a terminal or a clock. (objstore/cli/bench_progress.py counts
operations for the benchmark; this one counts bytes, so it is its own.)
"""
import threading
import time

from objstore.cli.client.sizes import human_size


def render(label, done, total, elapsed, width=30):
    """One line: ``label [#####.....]  42%  4.2M/10.0M  1.5M/s``."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if total:
        frac = min(1.0, max(0.0, done / total))
        filled = int(round(frac * width))
        bar = '[%s%s] %3d%%' % ('#' * filled, '.' * (width - filled),
                                int(frac * 100))
        amount = '%s/%s' % (human_size(done), human_size(total))
    else:
        bar = '[%s]' % ('#' * width if done else '.' * width)
        amount = human_size(done)
    return '%s %s  %s  %s/s' % (label, bar, amount, human_size(rate))


class Progress:
    """Thread-safe byte counter drawing a bar; add() from any worker."""

    def __init__(self, stream, label, total, enabled=None, every=0.2,
                 clock=time.monotonic):
        self.stream, self.label, self.total = stream, label, total
        if enabled is None:
            isatty = getattr(stream, 'isatty', None)
            enabled = bool(isatty and isatty())
        self.enabled, self.every, self.clock = enabled, every, clock
        self.done = 0
        self.width = 0
        self.started = clock()
        self.last = None
        self.lock = threading.Lock()

    def add(self, nbytes):
        with self.lock:
            self.done += nbytes
            now = self.clock()
            if self.last is None or now - self.last >= self.every:
                self.last = now
                self._draw(now)

    def _draw(self, now, final=False):
        if not self.enabled:
            return
        text = render(self.label, self.done, self.total, now - self.started)
        pad = max(0, self.width - len(text))
        self.stream.write('\r' + text + ' ' * pad + ('\n' if final else ''))
        self.stream.flush()
        self.width = 0 if final else len(text)

    def finish(self):
        with self.lock:
            self._draw(self.clock(), final=True)
