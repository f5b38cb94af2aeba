"""Client load running while a fault happens: writes or reads, in threads.

A load is what the scenario's user does while the operator (the test)
cuts a node off or rebalances; it records every request's outcome so the
scenario can say how many failed. Writes feed a Ledger only when
acknowledged, exactly the writes the cluster has promised to keep.
"""
import os
import threading
import time

from proxyclient import etag_of


class Load:
    """Requests from ``threads`` threads until stop()."""

    def __init__(self, client, threads=3, pause=0.0):
        self.client = client
        self.threads = threads
        self.pause = pause
        self.requests = 0
        self.failures = []      # (what, Reply)
        self.slowest = 0.0      # seconds of the slowest request
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = []

    def start(self):
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,),
                                      daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _run(self, index):
        step = 0
        while not self._stop.is_set():
            started = time.monotonic()
            what, reply, ok = self.one(index, step)
            took = time.monotonic() - started
            with self.lock:
                self.requests += 1
                self.slowest = max(self.slowest, took)
                if not ok:
                    self.failures.append((what, reply))
            step += 1
            if self.pause:
                time.sleep(self.pause)

    def one(self, index, step):
        raise NotImplementedError

    def wait_for(self, requests, timeout=120.0):
        """Block until at least ``requests`` requests are done."""
        deadline = time.monotonic() + timeout
        while self.requests < requests and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self):
        self._stop.set()
        for worker in self._workers:
            worker.join(120)
        return self


class WriteLoad(Load):
    """PUTs of new objects named ``<prefix><thread>-<n>`` into a ledger."""

    def __init__(self, client, ledger, prefix='load-', **kw):
        super().__init__(client, **kw)
        self.ledger = ledger
        self.prefix = prefix

    def one(self, index, step):
        name = '%s%d-%05d' % (self.prefix, index, step)
        body = os.urandom(512 + (step * 97) % 4096)
        reply = self.client.put_object(self.ledger.container, name, body)
        ok = reply.status == 201 and reply.headers.get('etag') == \
            etag_of(body)
        if ok:
            with self.lock:
                self.ledger.wrote(name, etag_of(body))
        return 'PUT ' + name, reply, ok


class ReadLoad(Load):
    """GETs cycling over the ledger's written objects; a failure is any
    answer but 200 with the right bytes."""

    def __init__(self, client, ledger, **kw):
        super().__init__(client, **kw)
        self.ledger = ledger
        self.names = sorted(ledger.written)

    def one(self, index, step):
        name = self.names[(index * 7919 + step) % len(self.names)]
        reply = self.client.get_object(self.ledger.container, name)
        ok = reply.status == 200 and \
            etag_of(reply.body) == self.ledger.written[name]
        return 'GET ' + name, reply, ok
