"""The thread pool behind run_in_thread, with real OS threads."""
import os
import signal
import threading
import time

import pytest

from objstore.common import concurrency


def in_green_threads(calls):
    """Run each () -> value in its own green thread; their results."""
    pool = concurrency.GreenPool(len(calls))
    threads = [pool.spawn(call) for call in calls]
    return [t.wait() for t in threads]


def test_answers_and_errors_come_back_to_their_caller():
    pool = concurrency.ThreadPool(4)

    def fails():
        raise KeyError('lost')
    assert pool.run(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(KeyError) as info:
        pool.run(fails)
    # the traceback reaches into the worker's frame
    assert any(frame.name == 'fails'
               for frame in __import__('traceback').extract_tb(
                   info.value.__traceback__))
    assert pool.run(lambda: 'still working') == 'still working'


def test_workers_leave_process_signals_to_the_hub_thread():
    """A SIGTERM the kernel gave a pool worker would wait, unhandled,
    for the hub thread to run Python again: the workers block it."""
    pool = concurrency.ThreadPool(2)
    mask = pool.run(signal.pthread_sigmask, signal.SIG_BLOCK, [])
    assert {signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
            signal.SIGCHLD} <= mask
    assert signal.SIGSEGV not in mask
    # the calling thread's own mask is left as it was
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK,
                                                        [])


def test_calls_run_in_os_threads_at_once_up_to_the_size():
    pool = concurrency.ThreadPool(4)
    running, most = [0], [0]
    lock = threading.Lock()
    hub = threading.get_ident()

    def work(n):
        assert threading.get_ident() != hub
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return n * n
    results = in_green_threads([lambda n=n: pool.run(work, n)
                                for n in range(12)])
    assert results == [n * n for n in range(12)]
    # four at once (the hub kept handing out work while they slept),
    # never more
    assert most[0] == 4
    assert len(pool._workers) == 4


def test_many_quick_calls_all_answered():
    pool = concurrency.ThreadPool(3)
    results = in_green_threads(
        [lambda i=i: [pool.run(lambda j: j + 1, i * 100 + k)
                      for k in range(100)] for i in range(20)])
    assert results == [[i * 100 + k + 1 for k in range(100)]
                       for i in range(20)]


def test_a_call_from_a_worker_runs_inline():
    pool = concurrency.ThreadPool(1)

    def outer():
        # with one worker, queueing this would wait for ever
        return pool.run(threading.get_ident)
    assert pool.run(outer) in pool._workers


def test_a_call_from_another_os_thread_still_works():
    pool = concurrency.ThreadPool(2)
    assert pool.run(lambda: 1) == 1       # this thread owns the pool
    got = []
    thread = threading.Thread(target=lambda: got.append(
        pool.run(lambda: 'from elsewhere')))
    thread.start()
    thread.join(10)
    assert got == ['from elsewhere']


def test_size_zero_runs_inline():
    pool = concurrency.ThreadPool(0)
    assert pool.run(threading.get_ident) == threading.get_ident()


def test_a_forked_child_gets_a_pool_of_its_own():
    pool = concurrency.ThreadPool(2)
    assert pool.run(lambda: 1) == 1
    parents = pool._generation
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if pool.run(lambda: 41) + 1 == 42 and \
                    pool._generation != parents:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert pool.run(lambda: 2) == 2
