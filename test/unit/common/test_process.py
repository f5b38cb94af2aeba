"""process.generation: a forked child sees a new value, its parent not."""
import os

from objstore.common import process


def test_generation_changes_in_a_forked_child_only():
    before = process.generation()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, str(process.generation()).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = int(os.read(read, 64))
    os.close(read)
    os.waitpid(pid, 0)
    assert child != before
    assert process.generation() == before
