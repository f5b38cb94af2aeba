"""The compute API's background work: builds, power actions, deletes.

A request that changes a server records the change in the database
(BUILD/spawning, task 'powering-off', ...), answers 202 and hands the slow
part here: a small pool of threads that schedule, claim and talk to the
agents, then record what happened as a state-machine event.

Work on one instance is serialized by a per-instance lock: a delete that
arrives while the build is still talking to the agent waits for it, so
the agent never gets the DELETE before the spawn it would then miss.

Failures, as Nova has them:

* a build that fails (no valid host, agent error, agent unreachable)
  ends in ERROR with the fault; its claim is released and its host
  forgotten, so deleting it needs no agent. When the agent could not be
  reached a best-effort DELETE is sent first, since it may have created
  something before the connection broke;
* a failed stop or start reverts the task (the server stays ACTIVE or
  SHUTOFF, as Nova's reverts_task_state does); the reason is logged;
* a failed reboot puts the server in ERROR with the fault (Nova too);
* a failed delete puts it in ERROR with the fault; it keeps its host and
  claim, so deleting it again retries the agent.

After a restart of compute-api (`recover`): builds in flight are ended
in ERROR ("interrupted") with their claim released and a best-effort
agent DELETE, because the user's token that a spawn needs was never
stored; deletes and power actions in flight are simply sent again (each
is safe to repeat on the agent).
"""
import concurrent.futures
import logging
import threading
import time

from compute.api import states
from compute.api.db import InstanceNotFound
from compute.common.signed_http import SignedClient, SignedClientError
from compute.scheduler import Flavor as SchedFlavor, NoValidHost, \
    NO_VALID_HOST, rank_hosts

LOG = logging.getLogger(__name__)

SPAWN_TIMEOUT = 900.0
ACTION_TIMEOUT = 300.0
DEFAULT_WORKERS = 8

# user action -> (agent action, event on success, revert on failure)
_ACTIONS = {
    states.STOP: ('stop', states.POWERED_OFF, True),
    states.START: ('start', states.POWERED_ON, True),
    states.REBOOT_SOFT: ('reboot', states.REBOOTED, False),
    states.REBOOT_HARD: ('reboot_hard', states.REBOOTED, False),
}
# the status an action started from, for reverting a failed one
_REVERT_TO = {states.STOP: states.ACTIVE, states.START: states.SHUTOFF}
_TASK_ACTIONS = {
    states.POWERING_OFF: states.STOP, states.POWERING_ON: states.START,
    states.REBOOTING: states.REBOOT_SOFT,
    states.REBOOTING_HARD: states.REBOOT_HARD,
}


class AgentError(Exception):
    """An agent answered with an error or could not be reached; the
    message is the fault shown to the user."""


def agent_fault(status, body):
    """The message of an agent's error answer (either error shape)."""
    error = body.get('error') if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get('message')
    return 'agent answered %d: %s' % (status, error or 'no reason given')


def one_line(text, limit=500):
    """A fault message fit for the API: one line, bounded."""
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


class Builder:
    """Runs instance work on a thread pool; see the module docstring.

    `options` is compute.scheduler.SchedulerOptions; `client_factory`
    makes a SignedClient for an agent URL and secret.
    """

    def __init__(self, db, options, secret, workers=DEFAULT_WORKERS,
                 clock=time.time, client_factory=SignedClient):
        self.db = db
        self.options = options
        self.secret = secret
        self.clock = clock
        self.client_factory = client_factory
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix='builder')
        self._locks = {}
        self._locks_lock = threading.Lock()

    # --- plumbing ---------------------------------------------------------

    def close(self, wait=True):
        """Stop taking work; with `wait`, finish what is queued."""
        self.pool.shutdown(wait=wait)

    def _lock(self, uuid):
        with self._locks_lock:
            return self._locks.setdefault(uuid, threading.Lock())

    def _forget_lock(self, uuid):
        with self._locks_lock:
            self._locks.pop(uuid, None)

    def _submit(self, fn, uuid, *args):
        """Run fn(uuid, *args) under the instance's lock in the pool;
        an exception is logged and the instance put in ERROR, so nothing
        stays in a task for ever because of a bug."""
        def job():
            with self._lock(uuid):
                try:
                    fn(uuid, *args)
                except InstanceNotFound:
                    LOG.info('instance %s vanished during %s', uuid,
                             fn.__name__)
                except Exception as exc:
                    LOG.exception('%s of %s failed', fn.__name__, uuid)
                    self._fail(uuid, 'internal error: %s' % one_line(exc))
        return self.pool.submit(job)

    def _fail(self, uuid, fault):
        """Put the instance in ERROR (any task ends); never raises."""
        try:
            self.db.record_event(uuid, states.FAILED, one_line(fault))
        except (InstanceNotFound, ValueError):
            pass

    def _client(self, host_name):
        """A signed client for the host's agent; AgentError without one."""
        host = self.db.get_host(host_name)
        if host is None or not host.get('agent_url'):
            raise AgentError('host %s has no agent URL' % host_name)
        return self.client_factory(host['agent_url'], self.secret)

    def _call(self, host_name, method, path, body=None, timeout=None,
              query='', ok=(200,)):
        """One agent request; its JSON answer, or AgentError."""
        client = self._client(host_name)
        try:
            status, answer = client.request(method, path, body,
                                            timeout=timeout, query=query)
        except SignedClientError as exc:
            raise AgentError(str(exc)) from None
        finally:
            client.close()
        if status not in ok:
            raise AgentError(agent_fault(status, answer))
        return answer or {}

    # --- build ------------------------------------------------------------

    def submit_build(self, uuid, spawn):
        """Schedule and spawn in the background. `spawn` is the agent
        payload of wiring.md without uuid/flavor (they come from the
        row), with `image` holding the image's properties."""
        return self._submit(self._build, uuid, spawn)

    def _build(self, uuid, spawn):
        row = self.db.get_instance(uuid)
        if row is None or row['task_state'] != states.SPAWNING:
            return  # deleted (or being deleted) before we started
        try:
            host = self._place(row, spawn.get('image') or {})
        except NoValidHost as exc:
            self._spawn_failed(uuid, str(exc))
            return
        payload = dict(spawn, uuid=uuid, name=row['name'],
                       domain_name='instance-%s' % uuid,
                       flavor={'name': row['flavor_name'],
                               'vcpus': row['vcpus'],
                               'ram_mb': row['ram_mb'],
                               'disk_gb': row['disk_gb']})
        try:
            self._call(host, 'PUT', '/v1/instances/%s' % uuid, payload,
                       timeout=SPAWN_TIMEOUT, ok=(200, 201))
        except AgentError as exc:
            self._cleanup_agent(host, uuid)
            self.db.unplace_instance(uuid)
            self._spawn_failed(uuid, 'Build of instance %s on host %s '
                                     'failed: %s' % (uuid, host, exc))
            return
        self.db.record_event(uuid, states.SPAWNED)

    def _place(self, row, image):
        """Rank hosts and claim the first that still has room; its name.
        NoValidHost when none is left (a lost race tries the next)."""
        flavor = SchedFlavor(name=row['flavor_name'], vcpus=row['vcpus'],
                             ram_mb=row['ram_mb'], disk_gb=row['disk_gb'])
        try:
            request = self.options.request(flavor, self.clock(), image)
            ranked = rank_hosts(self.db.host_states(), request,
                                self.options.filters, self.options.weighers,
                                self.options.multipliers)
        except ValueError as exc:   # a request no host could ever take
            raise NoValidHost('%s %s' % (NO_VALID_HOST, exc)) from None
        for host in ranked:
            if self.db.place_instance(row['uuid'], host.name):
                return host.name
        raise NoValidHost('%s There are not enough hosts available: every '
                          'suitable host was filled by other builds '
                          'meanwhile' % NO_VALID_HOST)

    def _spawn_failed(self, uuid, fault):
        try:
            self.db.record_event(uuid, states.SPAWN_FAILED, one_line(fault))
        except ValueError:
            # a delete took over the build: ERROR it anyway, the delete
            # that follows finishes it
            self._fail(uuid, fault)

    def _cleanup_agent(self, host, uuid):
        """Best-effort DELETE of what a failed spawn may have left."""
        try:
            self._call(host, 'DELETE', '/v1/instances/%s' % uuid,
                       timeout=ACTION_TIMEOUT, ok=(200, 204, 404))
        except AgentError as exc:
            LOG.warning('cleanup of %s on %s failed: %s', uuid, host, exc)

    # --- power actions ------------------------------------------------------

    def submit_action(self, uuid, action):
        """Carry out a user action (already begun in the database)."""
        return self._submit(self._action, uuid, action)

    def _action(self, uuid, action):
        agent_action, event, revert = _ACTIONS[action]
        row = self.db.get_instance(uuid)
        if row is None or row['task_state'] == states.DELETING:
            return
        task = row['task_state']
        try:
            if row['host'] is None:
                raise AgentError('the server has no host')
            self._call(row['host'], 'POST', '/v1/instances/%s/action' % uuid,
                       {'action': agent_action}, timeout=ACTION_TIMEOUT)
        except AgentError as exc:
            if revert:
                LOG.warning('%s of %s failed, reverted: %s', action, uuid,
                            exc)
                self.db.update_instance(uuid, expected_task_state=task,
                                        status=_REVERT_TO[action],
                                        task_state=None)
            else:
                self._fail(uuid, '%s failed: %s' % (action, exc))
            return
        try:
            self.db.record_event(uuid, event)
        except ValueError as exc:
            LOG.info('%s of %s done but not recorded: %s', action, uuid,
                     exc)

    # --- delete -----------------------------------------------------------

    def submit_delete(self, uuid):
        """Remove the instance from its host, then mark it DELETED."""
        return self._submit(self._delete, uuid)

    def _delete(self, uuid):
        row = self.db.get_instance(uuid, include_deleted=True)
        if row is None or row['task_state'] != states.DELETING:
            return
        if row['host'] is not None:
            try:
                self._call(row['host'], 'DELETE', '/v1/instances/%s' % uuid,
                           timeout=ACTION_TIMEOUT, ok=(200, 204, 404))
            except AgentError as exc:
                self._fail(uuid, 'delete failed: %s' % exc)
                return
            self.db.unplace_instance(uuid)
        self.db.record_event(uuid, states.DELETED_EVENT)
        self._forget_lock(uuid)

    # --- console ------------------------------------------------------------

    def console(self, row, length=None):
        """The last `length` lines of the console log (synchronous)."""
        query = '' if length is None else 'length=%d' % length
        answer = self._call(row['host'], 'GET',
                            '/v1/instances/%s/console' % row['uuid'],
                            timeout=ACTION_TIMEOUT, query=query)
        return answer.get('output') or ''

    # --- restart ------------------------------------------------------------

    def recover(self):
        """Deal with work a previous compute-api left unfinished (see the
        module docstring); returns {uuid: what was done} for logs/tests."""
        done = {}
        for row in self.db.busy_instances():
            uuid, task = row['uuid'], row['task_state']
            if task == states.DELETING:
                self.submit_delete(uuid)
                done[uuid] = 'delete resent'
            elif task == states.SPAWNING:
                self._submit(self._abandon_build, uuid)
                done[uuid] = 'build ended in ERROR'
            elif task in _TASK_ACTIONS:
                self.submit_action(uuid, _TASK_ACTIONS[task])
                done[uuid] = '%s resent' % _TASK_ACTIONS[task]
        return done

    def _abandon_build(self, uuid):
        row = self.db.get_instance(uuid)
        if row is None or row['task_state'] != states.SPAWNING:
            return
        if row['host'] is not None:
            self._cleanup_agent(row['host'], uuid)
            self.db.unplace_instance(uuid)
        self._spawn_failed(uuid, 'Build of instance %s was interrupted by '
                                 'a restart of compute-api' % uuid)
