"""The upload progress bar, drawn into a StringIO with a fake clock."""
import io

from compute.cli.progress import ProgressBar, render


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_render_shows_bar_percentage_sizes_and_rate():
    line = render('upload', 512 * 1024, 1024 * 1024, 2.0, width=10)
    assert line == ('upload [#####-----]  50%  512.0 KiB / 1.0 MiB  '
                    '256.0 KiB/s')


def test_render_edge_cases_zero_total_and_zero_elapsed():
    assert '100%' in render('x', 0, 0, 0.0, width=4)
    assert '[####]' in render('x', 0, 0, 0.0, width=4)
    assert render('x', 10, 100, 0.0, width=10).endswith('0 B/s')
    # more than total (a file that grew) never draws past the end
    assert '[##########] 100%' in render('x', 200, 100, 1.0, width=10)


def test_bar_redraws_in_place_at_most_every_interval_on_a_tty():
    out, clock = io.StringIO(), Clock()
    bar = ProgressBar(out, 'upload', 1000, tty=True, every=1.0, clock=clock)
    bar.update(100)                  # first update draws
    clock.now += 0.5
    bar.update(100)                  # too soon: no draw
    clock.now += 0.6
    bar.update(300)                  # draws again
    bar.finish()
    text = out.getvalue()
    assert text.count('\r') == 3
    assert text.endswith('\n')
    assert ' 10%' in text and ' 50%' in text and '100%' not in text
    assert text.split('\r')[-1].startswith('upload [')
    assert bar.done == 500


def test_bar_pads_over_a_longer_previous_line():
    out, clock = io.StringIO(), Clock()
    bar = ProgressBar(out, 'u', 10 * 1024 * 1024, tty=True, every=0,
                      clock=clock)
    clock.now += 0.001
    bar.update(5 * 1024 * 1024)     # huge rate: long line
    long_len = len(out.getvalue().split('\r')[-1])
    clock.now += 1000
    bar.update(1)                    # tiny rate: shorter line, padded
    assert len(out.getvalue().split('\r')[-1]) >= long_len


def test_bar_is_silent_off_a_terminal():
    out = io.StringIO()
    bar = ProgressBar(out, 'upload', 10, tty=False)
    bar.update(10)
    bar.finish()
    assert out.getvalue() == ''
    assert bar.done == 10


def test_bar_asks_the_stream_whether_it_is_a_tty():
    out = io.StringIO()             # isatty() is False
    assert ProgressBar(out, 'x', 1).tty is False

