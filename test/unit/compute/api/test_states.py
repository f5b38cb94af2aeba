"""The state machine: every (state, task, action) and (state, event)."""
import itertools

import pytest

from compute.api import states as s
from compute.api.states import (
    ACTIVE, BUILD, DELETED, ERROR, REBOOT, SHUTOFF, Conflict)

UUID = 'abc'

# The rules written out the way a Nova user states them, independent of
# the module's tables: which statuses each action may start from ...
STARTS_FROM = {
    'start': {SHUTOFF},
    'stop': {ACTIVE},
    'reboot': {ACTIVE},
    'reboot_hard': {ACTIVE, SHUTOFF, ERROR, REBOOT},
    'delete': {BUILD, ACTIVE, SHUTOFF, REBOOT, ERROR},
}
# ... what it leads to ...
LEADS_TO = {
    'start': (None, 'powering-on'),
    'stop': (None, 'powering-off'),
    'reboot': (REBOOT, 'rebooting'),
    'reboot_hard': (REBOOT, 'rebooting_hard'),
    'delete': (None, 'deleting'),
}
# ... and every legal event: (status, event) -> new status.
LEGAL_EVENTS = {
    (BUILD, 'spawned'): ACTIVE,
    (BUILD, 'spawn_failed'): ERROR,
    (ACTIVE, 'powered_off'): SHUTOFF,
    (SHUTOFF, 'powered_off'): SHUTOFF,
    (SHUTOFF, 'powered_on'): ACTIVE,
    (ACTIVE, 'powered_on'): ACTIVE,
    (REBOOT, 'rebooted'): ACTIVE,
    **{(st, 'failed'): ERROR
       for st in (BUILD, ACTIVE, SHUTOFF, REBOOT, ERROR)},
    **{(st, 'deleted'): DELETED for st in s.VM_STATES},
}


def expected_refusal(status, task, action):
    """None if allowed, else which state the 409 message names."""
    if status not in STARTS_FROM[action]:
        return 'vm_state'
    if task is None or action == 'delete':
        return None
    if action == 'reboot_hard' and task == 'rebooting':
        return None
    return 'task_state'


ALL_ACTION_CASES = list(itertools.product(s.VM_STATES, s.TASK_STATES,
                                          s.ACTIONS))


@pytest.mark.parametrize('status,task,action', ALL_ACTION_CASES)
def test_every_action_in_every_state(status, task, action):
    refusal = expected_refusal(status, task, action)
    if refusal is None:
        assert s.check_action(status, task, action, UUID) is None
        new_status, new_task = s.begin_action(status, task, action, UUID)
        want_status, want_task = LEADS_TO[action]
        assert new_status == (want_status or status)
        assert new_task == want_task
        return
    with pytest.raises(Conflict) as info:
        s.check_action(status, task, action, UUID)
    shown = status if refusal == 'vm_state' else task
    assert info.value.message == (
        "Cannot '%s' instance %s while it is in %s %s"
        % (action, UUID, refusal, shown))
    assert info.value.status == 409
    with pytest.raises(Conflict):
        s.begin_action(status, task, action, UUID)


def test_the_matrix_has_both_outcomes_for_every_action():
    for action in s.ACTIONS:
        outcomes = {expected_refusal(st, t, action) is None
                    for st, t, a in ALL_ACTION_CASES if a == action}
        assert outcomes == {True, False}


def test_nova_rules_spelled_out():
    # stop only from ACTIVE: not from ERROR, not from SHUTOFF
    with pytest.raises(Conflict, match='vm_state ERROR'):
        s.check_action(ERROR, None, 'stop', UUID)
    with pytest.raises(Conflict, match="Cannot 'stop' instance abc while "
                       "it is in vm_state SHUTOFF"):
        s.check_action(SHUTOFF, None, 'stop', UUID)
    # hard reboot is the way out of ERROR and SHUTOFF; soft is not
    assert s.begin_action(ERROR, None, 'reboot_hard') == (
        REBOOT, 'rebooting_hard')
    with pytest.raises(Conflict):
        s.check_action(SHUTOFF, None, 'reboot')
    # a hard reboot may take over a soft one that hangs, not the reverse
    assert s.begin_action(REBOOT, 'rebooting', 'reboot_hard') == (
        REBOOT, 'rebooting_hard')
    with pytest.raises(Conflict, match='task_state rebooting_hard'):
        s.check_action(REBOOT, 'rebooting_hard', 'reboot_hard')
    # delete wins over a running task, but a deleted instance is final
    assert s.begin_action(BUILD, 'spawning', 'delete') == (BUILD, 'deleting')
    with pytest.raises(Conflict, match='vm_state DELETED'):
        s.check_action(DELETED, None, 'delete')


def test_message_without_uuid():
    with pytest.raises(Conflict) as info:
        s.check_action(SHUTOFF, None, 'stop')
    assert str(info.value) == ("Cannot 'stop' instance while it is in "
                               "vm_state SHUTOFF")


@pytest.mark.parametrize('args', [
    ('RUNNING', None, 'stop'),
    (ACTIVE, 'resizing', 'stop'),
    (ACTIVE, None, 'pause'),
])
def test_unknown_values_are_programming_errors(args):
    with pytest.raises(ValueError):
        s.check_action(*args)


@pytest.mark.parametrize('status,event',
                         list(itertools.product(s.VM_STATES, s.EVENTS)))
def test_every_event_in_every_state(status, event):
    if (status, event) in LEGAL_EVENTS:
        assert s.transition(status, event) == LEGAL_EVENTS[status, event]
    else:
        with pytest.raises(ValueError, match=event):
            s.transition(status, event)


def test_every_event_is_legal_somewhere_and_illegal_somewhere():
    for event in s.EVENTS:
        legal = {st for st, ev in LEGAL_EVENTS if ev == event}
        assert legal
        if event != 'deleted':
            assert legal != set(s.VM_STATES)


def test_unknown_event_and_status():
    with pytest.raises(ValueError, match='unknown event'):
        s.transition(ACTIVE, 'exploded')
    with pytest.raises(ValueError, match='unknown vm_state'):
        s.transition('active', 'spawned')


@pytest.mark.parametrize('status,task,event,want', [
    # each event ends the task it completes ...
    (BUILD, 'spawning', 'spawned', (ACTIVE, None)),
    (BUILD, 'spawning', 'spawn_failed', (ERROR, None)),
    (ACTIVE, 'powering-off', 'powered_off', (SHUTOFF, None)),
    (SHUTOFF, 'powering-on', 'powered_on', (ACTIVE, None)),
    (REBOOT, 'rebooting', 'rebooted', (ACTIVE, None)),
    (REBOOT, 'rebooting_hard', 'rebooted', (ACTIVE, None)),
    (ACTIVE, 'deleting', 'deleted', (DELETED, None)),
    (SHUTOFF, 'powering-on', 'failed', (ERROR, None)),
    # ... and leaves another one running
    (ACTIVE, 'deleting', 'powered_off', (SHUTOFF, 'deleting')),
    (BUILD, 'deleting', 'spawn_failed', (ERROR, 'deleting')),
    (SHUTOFF, 'powering-on', 'powered_off', (SHUTOFF, 'powering-on')),
    # a guest that shuts itself down: no task involved
    (ACTIVE, None, 'powered_off', (SHUTOFF, None)),
])
def test_apply_event_clears_only_the_task_it_completes(status, task, event,
                                                       want):
    assert s.apply_event(status, task, event) == want


def test_apply_event_refuses_illegal_and_unknown():
    with pytest.raises(ValueError):
        s.apply_event(SHUTOFF, None, 'rebooted')
    with pytest.raises(ValueError, match='unknown task_state'):
        s.apply_event(ACTIVE, 'sleeping', 'powered_off')


def test_power_state_for_every_event():
    assert set(s.EVENT_POWER_STATE) == set(s.EVENTS)
    assert s.EVENT_POWER_STATE['powered_off'] == 'shutoff'
    assert s.EVENT_POWER_STATE['spawned'] == 'running'


def test_power_states_are_the_drivers_values():
    from compute.virt.driver import PowerState
    known = {p.value for p in PowerState}
    assert {v for v in s.EVENT_POWER_STATE.values() if v} <= known
