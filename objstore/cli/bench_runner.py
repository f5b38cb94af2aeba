"""Running a phase's requests: threads inside one or more processes.

Why processes: one CPython process tops out near a core of request
building and response parsing under its GIL; a client that must keep up
with a server doing thousands of requests per second spreads its threads
over several processes (started with 'spawn', so no lock or thread of the
parent is inherited), each with its own keep-alive connections that live
for the whole run.

The phase's concurrency C is a number of thread slots 0..C-1; slot t runs
in process t % P and keeps connection t. Request i belongs to slot i % C's
process, so every process gets work in proportion to its threads; inside
a process, threads take the next request from one shared iterator. Every
thread counts what it has done in its own cells of a shared array, which
the parent reads for the progress line without any lock. Each process
reports its latencies, bytes, errors, CPU seconds and its first and last
clock reading (perf_counter: CLOCK_MONOTONIC, one clock for the machine);
bench_stats.merge_parts makes one phase of them.
"""
import array
import multiprocessing
import multiprocessing.connection
import resource
import threading
import time
import traceback

from objstore.cli.bench_client import NETWORK_ERRORS, Connection
from objstore.cli.bench_stats import merge_parts
from objstore.cli.bench_workload import Operations


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def share(total, concurrency, proc, procs):
    """(thread slots, request indices) of process proc of procs."""
    slots = [t for t in range(concurrency) if t % procs == proc]
    mine = [i for i in range(total) if (i % concurrency) % procs == proc]
    return slots, mine


class WorkerState:
    """One process's connections (kept across phases) and bodies."""

    def __init__(self, workload, proc, procs, counters):
        self.workload, self.proc, self.procs = workload, proc, procs
        self.counters = counters
        self.ops = Operations(workload)
        self.conns = {}

    def conn(self, slot):
        if slot not in self.conns:
            self.conns[slot] = Connection(self.workload.storage_url,
                                          self.workload.token,
                                          self.workload.timeout)
        return self.conns[slot]

    def run(self, phase, concurrency):
        """Do this process's share of phase; returns its part."""
        total = self.workload.total(phase)
        slots, indices = share(total, concurrency, self.proc, self.procs)
        op = self.ops.op(phase)
        work = iter(indices)
        results = []
        ready = threading.Barrier(len(slots) + 1) if slots else None
        threads = [threading.Thread(target=self._thread, daemon=True,
                                    args=(op, self.conn(t), t, work, ready,
                                          results))
                   for t in slots]
        for th in threads:
            th.start()
        if ready is not None:
            ready.wait()      # every connection is open: the clock starts
        cpu0, start = cpu_seconds(), time.perf_counter()
        for th in threads:
            th.join()
        end, cpu = time.perf_counter(), cpu_seconds() - cpu0
        latencies = array.array('d')
        errors = nbytes = 0
        first_error = None
        for lat, err, nb, first in results:
            latencies.extend(lat)
            errors += err
            nbytes += nb
            first_error = first_error or first
        return {'start': start, 'end': end, 'latencies': latencies,
                'errors': errors, 'bytes': nbytes, 'cpu': cpu,
                'first_error': first_error}

    def _thread(self, op, conn, slot, work, ready, results):
        counters, done_cell, err_cell = self.counters, 2 * slot, 2 * slot + 1
        latencies = array.array('d')
        errors = nbytes = 0
        first_error = None
        try:
            conn.refresh()
        except NETWORK_ERRORS:
            pass              # the first request retries and counts it
        ready.wait()
        clock = time.perf_counter
        for i in work:
            t0 = clock()
            try:
                ok, n, error = op(conn, i)
            except NETWORK_ERRORS as e:
                ok, n, error = False, 0, '%s: %s' % (type(e).__name__, e)
            t1 = clock()
            if ok:
                latencies.append(t1 - t0)
                nbytes += n
                counters[done_cell] += 1
            else:
                errors += 1
                counters[err_cell] += 1
                first_error = first_error or error
        results.append((latencies, errors, nbytes, first_error))


def worker_loop(pipe, workload, proc, procs, counters):
    """A worker: run each (phase, concurrency) the parent sends, answer
    with the part; None ends it. Any failure goes back as ('failed', text)
    rather than leaving the parent waiting."""
    state = WorkerState(workload, proc, procs, counters)
    try:
        while True:
            msg = pipe.recv()
            if msg is None:
                break
            try:
                pipe.send(('ok', state.run(*msg)))
            except Exception:
                pipe.send(('failed', traceback.format_exc()))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        for conn in state.conns.values():
            conn.close()


class WorkerFailed(Exception):
    """A worker hit a bug: the message carries its traceback."""


class Pool:
    """procs workers for a run; procs == 1 runs the worker as a thread of
    this process (no process start-up, the easiest to profile)."""

    def __init__(self, workload, procs, max_concurrency):
        self.procs = procs
        self.counters = multiprocessing.RawArray('q', 2 * max_concurrency)
        self.pipes, self.workers = [], []
        ctx = multiprocessing.get_context('spawn')
        for proc in range(procs):
            ours, theirs = multiprocessing.Pipe()
            args = (theirs, workload, proc, procs, self.counters)
            if procs == 1:
                worker = threading.Thread(target=worker_loop, args=args,
                                          daemon=True)
            else:
                worker = ctx.Process(target=worker_loop, args=args,
                                     daemon=True)
            worker.start()
            self.pipes.append(ours)
            self.workers.append(worker)

    def progress(self):
        """(requests done, errors) of the running phase so far."""
        c = self.counters
        return sum(c[0::2]), sum(c[1::2])

    def run(self, phase, concurrency, on_progress=None, interval=0.2):
        """Run phase with concurrency threads in all; returns the merged
        part (bench_stats.merge_parts). on_progress(done, errors) is
        called about every interval seconds while it runs."""
        for i in range(len(self.counters)):
            self.counters[i] = 0
        busy = self.pipes[:concurrency]     # a process without threads idles
        cpu0 = cpu_seconds()
        for pipe in busy:
            pipe.send((phase, concurrency))
        parts, waiting = [], list(busy)
        while waiting:
            for pipe in multiprocessing.connection.wait(waiting, interval):
                status, part = pipe.recv()
                if status != 'ok':
                    raise WorkerFailed(part)
                parts.append(part)
                waiting.remove(pipe)
            if on_progress is not None:
                on_progress(*self.progress())
        merged = merge_parts(parts)
        if self.procs > 1:
            # the workers measured themselves; add this process's share
            merged['cpu'] += cpu_seconds() - cpu0
        return merged

    def close(self):
        for pipe in self.pipes:
            try:
                pipe.send(None)
            except OSError:
                pass
        for worker in self.workers:
            worker.join(10)
            if isinstance(worker, multiprocessing.process.BaseProcess) \
                    and worker.is_alive():
                worker.terminate()
                worker.join()
