"""Green threads, sockets and the thread pool: the one module that names
eventlet, so it could be replaced here alone.

Servers run one green thread per request; blocking disk and CPU work
(fsync, large reads, hashing of big buffers) goes through run_in_thread so
it never stalls the hub for other requests.
"""
import collections
import os
import signal
import warnings

with warnings.catch_warnings():
    # eventlet warns that it is in maintenance mode; the choice is made in
    # the design card and kept behind this module, so operators need not
    # read it on every start.
    warnings.simplefilter('ignore')
    import eventlet
import eventlet.event
import eventlet.greenpool
import eventlet.greenthread
import eventlet.hubs
import eventlet.patcher
import eventlet.queue
import eventlet.tpool

from objstore.common import process

spawn = eventlet.spawn
spawn_n = eventlet.spawn_n
sleep = eventlet.sleep
Timeout = eventlet.Timeout
GreenPool = eventlet.greenpool.GreenPool
Queue = eventlet.queue.Queue
Event = eventlet.event.Event
listen = eventlet.listen
connect = eventlet.connect
kill = eventlet.greenthread.kill


_os_write = eventlet.patcher.original('os').write


def write_from_signal_handler(fd, data):
    """os.write as the OS does it: the patched one would try to switch
    green threads, which a signal handler running in the hub must not.
    The unpatched function is looked up once, at import: looking it up
    in the handler imports, and an import there can find the import
    lock's state half-changed by the code the signal interrupted."""
    return _os_write(fd, data)


_os_waitpid = eventlet.patcher.original('os').waitpid


def wait_child(pid, options=0):
    """os.waitpid as the OS does it, for a process with nothing else to do
    (a server's supervisor): the patched one polls every 10 ms, which cost
    each idle supervisor about 13 ms of CPU a second. A signal still
    interrupts the wait and runs its handler (PEP 475 then retries)."""
    return _os_waitpid(pid, options)


def batch_scheduling():
    """Run this process, and the workers and threads it starts later,
    under Linux's SCHED_BATCH policy: the same share of the CPU, but a
    wake-up never preempts the task running. A storage server is woken
    by every request the proxy sends it; preempting the proxy there
    stalled all the other requests the proxy held (on two cores, about
    20 ms of every small PUT went on waiting for the proxy to run again).
    A no-op where the policy does not exist."""
    policy = getattr(os, 'SCHED_BATCH', None)
    if policy is None:
        return False
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:
        return False
    return True


def wait_readable(fd):
    """Block this green thread (not the process) until ``fd`` is readable."""
    eventlet.hubs.trampoline(fd, read=True)


def run_in_thread(func, *args, **kwargs):
    """Run a blocking call in a real OS thread; the hub keeps serving."""
    return _POOL.run(func, *args, **kwargs)


def _ignore(*args):
    """A hub listener's throw and mark_as_closed: the pool's own pipe is
    never closed under it."""


_real_thread = eventlet.patcher.original('_thread')
_os_read = eventlet.patcher.original('os').read
# Signals a pool worker never takes: the kernel may hand a process-wide
# signal to any thread that does not block it, and taken by a worker,
# the Python handler waits for the hub thread to run bytecode again,
# which an idle server's hub may not do for a minute (a SIGTERM that
# stops nothing). Faults raised by a thread's own code are not blocked.
_POOL_BLOCKED = signal.valid_signals() - {
    signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
    signal.SIGABRT, signal.SIGTRAP, signal.SIGSYS}


class ThreadPool:
    """OS threads for blocking calls, handed work and answers cheaply.

    eventlet's tpool does the same job with two threading.Queues (a
    Condition each, in Python) and wakes the hub with a byte over a TCP
    connection on loopback for every answer. On these machines, where a
    wake-up on the other CPU costs tens of microseconds, a no-op call
    through it cost 64-92 us of CPU (21-62 us through this pool); an
    object server makes one per small PUT or DELETE replica, a container
    server one per group commit.

    Here a job goes on a deque and wakes one sleeping worker through a
    lock of its own, the most recently idle first (the one likeliest to
    be warm on this CPU); a busy worker takes the next job without
    sleeping; answers go on another deque, and a pipe carries one byte
    per batch of them, only when the hub is not already due to look.
    The pool belongs to the OS thread that first used it (a server's
    hub) and is made again in a forked child; a call from any other
    thread goes through eventlet's tpool as before.
    """

    def __init__(self, size):
        self.size = size
        self._generation = None

    def _setup(self):
        # A forked child starts afresh: the parent's workers are not in
        # it. The copy of the parent's pipe listener is left in the hub,
        # idle, not removed: removing it would take the pipe out of the
        # epoll set that parent and child share (our servers fork before
        # they serve, so the parent no longer uses its pool then).
        self._generation = process.generation()
        self._home = _real_thread.get_ident()
        self._lock = _real_thread.allocate_lock()
        self._jobs = collections.deque()
        self._answers = collections.deque()
        self._idle = []          # wake locks of sleeping workers
        self._workers = set()    # their thread idents
        self._signalled = False  # a byte is on its way to the hub
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._rfd, False)
        # The hub calls _collect itself whenever the pipe is readable:
        # the pipe stays in its epoll set, where a green thread waiting
        # on it would add and remove it (two system calls) per wake-up.
        rfd = self._rfd

        def collect(_fileno):
            if rfd == self._rfd:    # not a forked child's stale copy
                self._collect(rfd)
        hub = eventlet.hubs.get_hub()
        hub.add(hub.READ, rfd, collect, _ignore, _ignore)

    def run(self, func, *args, **kwargs):
        if self.size <= 0:
            return func(*args, **kwargs)
        if self._generation != process.generation():
            self._setup()
        me = _real_thread.get_ident()
        if me in self._workers:
            return func(*args, **kwargs)
        if me != self._home:
            return eventlet.tpool.execute(func, *args, **kwargs)
        done = Event()
        with self._lock:
            self._jobs.append((done, func, args, kwargs))
            wake = self._idle.pop() if self._idle else None
        if wake is not None:
            wake.release()
        elif len(self._workers) < self.size:
            self._start_worker()
        ok, value = done.wait()
        if ok:
            return value
        try:
            raise value
        finally:
            value = None

    def _start_worker(self):
        wake = _real_thread.allocate_lock()
        wake.acquire()
        ready = _real_thread.allocate_lock()
        ready.acquire()

        def start():
            signal.pthread_sigmask(signal.SIG_BLOCK, _POOL_BLOCKED)
            self._workers.add(_real_thread.get_ident())
            ready.release()
            self._work(wake)
        _real_thread.start_new_thread(start, ())
        # its ident must be known before it can run a job that calls
        # run_in_thread itself
        ready.acquire()

    def _work(self, wake):
        while True:
            with self._lock:
                job = self._jobs.popleft() if self._jobs else None
                if job is None:
                    self._idle.append(wake)
            if job is None:
                wake.acquire()      # until a job is handed to this one
                continue
            done, func, args, kwargs = job
            job = None
            try:
                answer = (True, func(*args, **kwargs))
            except BaseException as e:
                answer = (False, e)
            func = args = kwargs = None
            self._answers.append((done, answer))
            answer = done = None
            with self._lock:
                notify = not self._signalled
                self._signalled = True
            if notify:
                _os_write(self._wfd, b'.')

    def _collect(self, rfd):
        """The hub's side: hand each answer to the green thread waiting
        for it. The flag is cleared before the deque is read, so an
        answer added after the last look brings another byte."""
        try:
            _os_read(rfd, 4096)
        except BlockingIOError:
            return
        with self._lock:
            self._signalled = False
        answers = self._answers
        while answers:
            done, answer = answers.popleft()
            done.send(answer)


_POOL = ThreadPool(int(os.environ.get('EVENTLET_THREADPOOL_SIZE', 20)))


def patch_all():
    """Make the standard library cooperative (sockets, time, threads)."""
    eventlet.monkey_patch()


def green_http_client():
    """http.client built on green sockets, for backend requests."""
    from eventlet.green.http import client
    return client
