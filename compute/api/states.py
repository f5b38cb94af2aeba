"""The instance state machine, as Nova users know it (pure: no I/O).

Two values describe an instance:

* its **status** (Nova's vm_state, upper-case as the API shows it): BUILD,
  ACTIVE, SHUTOFF, REBOOT (shown while a reboot runs), ERROR, DELETED;
* its **task_state**: None when idle, otherwise the one operation in flight
  (spawning, powering-off, powering-on, rebooting, rebooting_hard,
  deleting).

Users move an instance with *actions* (`check_action`, `begin_action`);
the agent that does the work reports *events* (`transition`,
`apply_event`). Both are tables below, so the whole machine can be read in
one screen and every (state, action) and (state, event) pair tested.

Rules for actions, checked in Nova's order (vm_state first, then task):

* nothing may be done to a DELETED instance;
* delete is allowed in every other state, even while a task runs: a user
  who gives up on a stuck build or stop must be able to get rid of it;
* stop only from ACTIVE, start only from SHUTOFF, soft reboot only from
  ACTIVE; hard reboot also from SHUTOFF and ERROR (Nova's way out of a
  broken guest) and from REBOOT;
* otherwise nothing while another task runs, with one Nova exception: a
  hard reboot may take over a soft reboot that is still running, because
  a guest that ignores the ACPI reboot request would otherwise stay in
  REBOOT until it is deleted.

Events clear the task they complete and only that one: a `powered_off`
report that arrives while a delete is running moves the status to
SHUTOFF but leaves task_state 'deleting', so the delete still shows.
"""

BUILD = 'BUILD'
ACTIVE = 'ACTIVE'
SHUTOFF = 'SHUTOFF'
REBOOT = 'REBOOT'
ERROR = 'ERROR'
DELETED = 'DELETED'
VM_STATES = (BUILD, ACTIVE, SHUTOFF, REBOOT, ERROR, DELETED)

SPAWNING = 'spawning'
POWERING_OFF = 'powering-off'
POWERING_ON = 'powering-on'
REBOOTING = 'rebooting'
REBOOTING_HARD = 'rebooting_hard'
DELETING = 'deleting'
TASK_STATES = (None, SPAWNING, POWERING_OFF, POWERING_ON, REBOOTING,
               REBOOTING_HARD, DELETING)

START = 'start'
STOP = 'stop'
REBOOT_SOFT = 'reboot'
REBOOT_HARD = 'reboot_hard'
DELETE = 'delete'
ACTIONS = (START, STOP, REBOOT_SOFT, REBOOT_HARD, DELETE)

SPAWNED = 'spawned'
SPAWN_FAILED = 'spawn_failed'
POWERED_OFF = 'powered_off'
POWERED_ON = 'powered_on'
REBOOTED = 'rebooted'
FAILED = 'failed'
DELETED_EVENT = 'deleted'
EVENTS = (SPAWNED, SPAWN_FAILED, POWERED_OFF, POWERED_ON, REBOOTED, FAILED,
          DELETED_EVENT)

# Events that put the instance in ERROR; their fault message is kept.
FAULT_EVENTS = frozenset((SPAWN_FAILED, FAILED))

_ALIVE = frozenset(VM_STATES) - {DELETED}

# action -> (statuses it may start from, status while it runs or None for
# "unchanged", task it starts)
_ACTION_TABLE = {
    START: (frozenset((SHUTOFF,)), None, POWERING_ON),
    STOP: (frozenset((ACTIVE,)), None, POWERING_OFF),
    REBOOT_SOFT: (frozenset((ACTIVE,)), REBOOT, REBOOTING),
    REBOOT_HARD: (frozenset((ACTIVE, SHUTOFF, ERROR, REBOOT)), REBOOT,
                  REBOOTING_HARD),
    DELETE: (_ALIVE, None, DELETING),
}

# action -> tasks it may interrupt (besides being started when idle)
_TAKES_OVER = {
    DELETE: frozenset(TASK_STATES) - {None},
    REBOOT_HARD: frozenset((REBOOTING,)),
}

# event -> ({from status: to status}, task it completes)
# powered_off / powered_on / deleted accept their own target as a source:
# an agent's power-state sync reports at least once, and a repeat of what
# is already recorded is not an error. The others answer one request, so a
# repeat points at a bug and is refused.
_EVENT_TABLE = {
    SPAWNED: ({BUILD: ACTIVE}, SPAWNING),
    SPAWN_FAILED: ({BUILD: ERROR}, SPAWNING),
    POWERED_OFF: ({ACTIVE: SHUTOFF, SHUTOFF: SHUTOFF}, POWERING_OFF),
    POWERED_ON: ({SHUTOFF: ACTIVE, ACTIVE: ACTIVE}, POWERING_ON),
    REBOOTED: ({REBOOT: ACTIVE}, None),
    FAILED: ({s: ERROR for s in _ALIVE}, None),
    DELETED_EVENT: ({s: DELETED for s in VM_STATES}, DELETING),
}
# Tasks an event ends besides the one named above: a reboot of either kind
# ends with 'rebooted'; a failure ends whatever was running.
_EVENT_ENDS = {
    REBOOTED: frozenset((REBOOTING, REBOOTING_HARD)),
    FAILED: frozenset(TASK_STATES) - {None},
}

# What the hypervisor's power state is once an event has happened (the
# values of compute.virt.driver.PowerState); None means "leave as is".
EVENT_POWER_STATE = {
    SPAWNED: 'running',
    SPAWN_FAILED: 'nostate',
    POWERED_OFF: 'shutoff',
    POWERED_ON: 'running',
    REBOOTED: 'running',
    FAILED: None,
    DELETED_EVENT: 'nostate',
}


class Conflict(Exception):
    """An action that the instance's current state does not allow.

    The API answers it with 409 Conflict and `message` as the reason.
    """

    status = 409

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def _check_known(value, known, what):
    """Refuse a value outside `known`: a typo must not read as 'illegal'."""
    if value not in known:
        raise ValueError('unknown %s %r' % (what, value))


def check_action(status, task_state, action, uuid=None):
    """Return None if `action` may start now; raise Conflict if not.

    `uuid` only makes the message name the instance. Unknown statuses,
    tasks or actions raise ValueError (a programming error, not a 409).
    """
    _check_known(status, VM_STATES, 'vm_state')
    _check_known(task_state, TASK_STATES, 'task_state')
    _check_known(action, ACTIONS, 'action')
    sources = _ACTION_TABLE[action][0]
    who = 'instance %s' % uuid if uuid else 'instance'
    if status not in sources:
        raise Conflict("Cannot '%s' %s while it is in vm_state %s"
                       % (action, who, status))
    if task_state is not None and \
            task_state not in _TAKES_OVER.get(action, ()):
        raise Conflict("Cannot '%s' %s while it is in task_state %s"
                       % (action, who, task_state))


def begin_action(status, task_state, action, uuid=None):
    """Check `action` and return the (status, task_state) it leads to."""
    check_action(status, task_state, action, uuid)
    _, running_status, task = _ACTION_TABLE[action]
    return (running_status or status), task


def transition(status, event):
    """The status after the agent reports `event`; ValueError if illegal."""
    _check_known(status, VM_STATES, 'vm_state')
    _check_known(event, EVENTS, 'event')
    moves = _EVENT_TABLE[event][0]
    if status not in moves:
        raise ValueError("event '%s' is not possible in vm_state %s"
                         % (event, status))
    return moves[status]


def ends_task(event, task_state):
    """Whether `event` completes `task_state` (so it is cleared)."""
    _check_known(event, EVENTS, 'event')
    if task_state is None:
        return False
    return (task_state == _EVENT_TABLE[event][1]
            or task_state in _EVENT_ENDS.get(event, ()))


def apply_event(status, task_state, event):
    """The (status, task_state) after `event`; ValueError if illegal."""
    _check_known(task_state, TASK_STATES, 'task_state')
    new_status = transition(status, event)
    return new_status, (None if ends_task(event, task_state)
                        else task_state)
