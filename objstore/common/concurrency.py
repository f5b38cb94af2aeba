"""Green threads, sockets and the thread pool: the one module that names
eventlet, so it could be replaced here alone.

Servers run one green thread per request; blocking disk and CPU work
(fsync, large reads, hashing of big buffers) goes through run_in_thread so
it never stalls the hub for other requests.
"""
import os
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
    return eventlet.tpool.execute(func, *args, **kwargs)


def patch_all():
    """Make the standard library cooperative (sockets, time, threads)."""
    eventlet.monkey_patch()


def green_http_client():
    """http.client built on green sockets, for backend requests."""
    from eventlet.green.http import client
    return client
