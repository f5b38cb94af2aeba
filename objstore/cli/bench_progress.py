"""The progress line objstore-bench writes on stderr while a phase runs.

On a terminal one line is rewritten in place (\\r) a few times a second;
into a file or a pipe (CI logs) a line goes out only every `every`
seconds, so logs stay short. Either way each phase ends with one final
line that stays.
"""
import time


class Progress:
    def __init__(self, stream, tty=None, every=5.0, quiet=False,
                 clock=time.monotonic):
        self.stream, self.quiet, self.every = stream, quiet, every
        self.tty = stream.isatty() if tty is None else tty
        self.clock = clock
        self.width = 0
        self.phase = self.total = self.started = self.last = None

    def start(self, phase, total):
        self.phase, self.total = phase, total
        self.started = self.last = self.clock()

    def _write(self, text, final=False):
        if self.quiet:
            return
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write('\r' + text + ' ' * pad + ('\n' if final
                                                          else ''))
            self.width = 0 if final else len(text)
        else:
            self.stream.write(text + '\n')
        self.stream.flush()

    def update(self, done, errors):
        now = self.clock()
        if not self.tty and now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        self._write('%s: %d/%d, %.1f/s, %d errors'
                    % (self.phase, done + errors, self.total, rate, errors))

    def finish(self, summary):
        """The phase's final line, from its bench_stats summary."""
        self._write('%s: %d ops in %.2f s, %.1f ops/s, %.1f MB/s, %d errors'
                    % (self.phase, summary['ops'], summary['seconds'],
                       summary['ops_per_s'], summary['mb_per_s'],
                       summary['errors']), final=True)

    def note(self, text):
        """A line of its own (setup and cleanup steps)."""
        self._write(text, final=True)
