"""test/bench/pause.py: the idle cluster's whole process tree is stopped
inside the block and continued after it, also when the block fails."""
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir,
                                os.pardir, 'bench'))
import pause  # noqa: E402

# a parent with one child, like a server supervisor and its worker
TREE = ('import subprocess, sys, time\n'
        'child = subprocess.Popen([sys.executable, "-c", '
        '"import time; time.sleep(60)"])\n'
        'print(child.pid, flush=True)\n'
        'time.sleep(60)\n')


def _state(pid):
    with open('/proc/%d/stat' % pid) as f:
        return f.read().rsplit(')', 1)[1].split()[0]


def _wait_state(pid, wanted, timeout=5.0):
    deadline = time.monotonic() + timeout
    while _state(pid) not in wanted:
        if time.monotonic() > deadline:
            return _state(pid)
        time.sleep(0.01)
    return _state(pid)


@pytest.fixture
def tree():
    parent = subprocess.Popen([sys.executable, '-c', TREE],
                              stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    yield parent.pid, child
    for pid in (child, parent.pid):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    parent.wait()


def test_the_tree_is_stopped_inside_and_running_after(tree):
    parent, child = tree
    with pause.paused([parent]) as stopped:
        assert set(stopped) == {parent, child}
        assert _wait_state(parent, 'T') == 'T'
        assert _wait_state(child, 'T') == 'T'
    assert _wait_state(parent, 'S') == 'S'
    assert _wait_state(child, 'S') == 'S'


def test_the_tree_is_continued_when_the_block_fails(tree):
    parent, child = tree
    with pytest.raises(KeyboardInterrupt):
        with pause.paused([parent]):
            assert _wait_state(child, 'T') == 'T'
            raise KeyboardInterrupt()
    assert _wait_state(parent, 'S') == 'S'
    assert _wait_state(child, 'S') == 'S'


def test_a_process_that_is_gone_is_skipped():
    gone = subprocess.Popen(['true'])
    gone.wait()
    assert pause.stop([gone.pid]) == []
    pause.cont([gone.pid])      # exited since it was stopped: no error
