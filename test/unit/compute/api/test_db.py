"""ComputeDB on real SQLite files: schema, instances, actions, hosts."""
import itertools
import sqlite3
import threading

import pytest

from compute.api import db as dbmod
from compute.api import states
from compute.api.db import ComputeDB, HostNotFound, InstanceNotFound
from compute.api.flavors import Flavor, Flavors
from compute.api.states import (
    ACTIVE, BUILD, DELETED, ERROR, REBOOT, SHUTOFF, Conflict)
from compute.scheduler import HostState, Request, select_host

TINY = Flavors().get('m1.tiny')
SMALL = Flavors().get('m1.small')


class Clock:
    """A clock the test moves by hand, so timestamps are exact."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        self.now += 1
        return self.now


@pytest.fixture
def path(tmp_path):
    return tmp_path / 'compute.db'


def open_db(path, **kw):
    """A ComputeDB without per-commit fsync: these tests are about logic
    and locking, and hundreds of fsyncs would make them slow."""
    kw.setdefault('durable', False)
    return ComputeDB(path, **kw)


@pytest.fixture
def db(path):
    database = open_db(path, clock=Clock())
    yield database
    database.close()


def boot(db, name='vm', project='p1', flavor=TINY, **kw):
    return db.create_instance(name, project, 'img-1', flavor, **kw)


def force(db, uuid, status, task=None):
    assert db.update_instance(uuid, status=status, task_state=task)


# --- schema and connections ----------------------------------------------

def test_schema_created_twice_is_fine(path):
    first = open_db(path)
    uuid = boot(first)['uuid']
    first.close()
    second = open_db(path)
    assert second.schema_version() == dbmod.SCHEMA_VERSION
    assert second.get_instance(uuid)['name'] == 'vm'
    second.close()
    raw = sqlite3.connect(path)
    assert raw.execute('SELECT count(*) FROM schema_version').fetchone() \
        == (1,)
    raw.close()


def test_wal_mode_and_foreign_keys_on(db, path):
    assert db.journal_mode() == 'wal'
    assert db._conn().execute('PRAGMA foreign_keys').fetchone()[0] == 1
    assert db._conn().execute('PRAGMA busy_timeout').fetchone()[0] == 10000
    raw = sqlite3.connect(path)
    assert raw.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
    raw.close()


def test_durable_by_default(path):
    database = ComputeDB(path)
    full = 2
    assert database._conn().execute(
        'PRAGMA synchronous').fetchone()[0] == full
    database.close()
    fast = open_db(path)
    assert fast._conn().execute('PRAGMA synchronous').fetchone()[0] == 1
    fast.close()


def test_newer_schema_refused(path):
    open_db(path).close()
    raw = sqlite3.connect(path)
    raw.execute('UPDATE schema_version SET version = 99')
    raw.commit()
    raw.close()
    with pytest.raises(dbmod.SchemaError, match='version'):
        open_db(path)


def test_one_connection_per_thread(db):
    uuid = boot(db)['uuid']
    seen = {}

    def worker():
        seen['conn'] = db._conn()
        seen['row'] = db.get_instance(uuid)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen['row']['uuid'] == uuid
    assert seen['conn'] is not db._conn()
    assert db._conn() is db._conn()


def test_close_then_reuse_opens_again(db):
    uuid = boot(db)['uuid']
    db.close()
    assert db.get_instance(uuid)['uuid'] == uuid


# --- instances -------------------------------------------------------------

def test_create_copies_the_flavor_and_starts_in_build(db):
    row = boot(db, user='alice', key_name='k1', user_data='#!/bin/sh\n')
    assert row['status'] == BUILD
    assert row['task_state'] == 'spawning'
    assert row['power_state'] == 'nostate'
    assert (row['flavor_name'], row['vcpus'], row['ram_mb'],
            row['disk_gb']) == ('m1.tiny', 1, 512, 1)
    assert row['user_data'] == b'#!/bin/sh\n'
    assert row['user_id'] == 'alice'
    assert row['key_name'] == 'k1'
    assert row['host'] is None
    assert row['created_at'] == row['updated_at']
    assert row['deleted_at'] is None
    assert db.get_instance(row['uuid']) == row


def test_duplicate_uuid_refused(db):
    boot(db, uuid='u-1')
    with pytest.raises(ValueError, match='already exists'):
        boot(db, uuid='u-1')
    assert len(db.list_instances()) == 1


def test_user_data_limit(db):
    limit = 64 * 1024
    assert len(boot(db, user_data=b'x' * limit)['user_data']) == limit
    with pytest.raises(ValueError, match='limit'):
        boot(db, name='big', user_data=b'x' * (limit + 1))
    with pytest.raises(ValueError):
        boot(db, name='big', user_data='\u00e9' * (limit // 2 + 1))
    assert [r['name'] for r in db.list_instances()] == ['vm']


def test_user_data_limit_holds_in_the_file_too(db, path):
    uuid = boot(db)['uuid']
    raw = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute('UPDATE instances SET user_data = ? WHERE uuid = ?',
                    (b'x' * (64 * 1024 + 1), uuid))
    raw.close()


@pytest.mark.parametrize('kw', [{'name': ''}, {'project': ' '},
                                {'user_data': 5}])
def test_bad_create_arguments(db, kw):
    args = {'name': 'vm', 'project': 'p1', **kw}
    with pytest.raises(ValueError):
        db.create_instance(args.pop('name'), args.pop('project'), 'img',
                           TINY, **args)


def test_other_projects_instance_is_invisible(db):
    uuid = boot(db, project='p1')['uuid']
    assert db.get_instance(uuid, project='p2') is None
    assert db.get_instance(uuid, project='p1')['uuid'] == uuid
    assert db.get_instance(uuid)['uuid'] == uuid
    assert db.list_instances('p2') == []
    with pytest.raises(InstanceNotFound):
        db.apply_action(uuid, 'p2', 'delete')
    assert db.get_instance(uuid)['task_state'] == 'spawning'


def test_missing_instance(db):
    assert db.get_instance('nope') is None
    with pytest.raises(InstanceNotFound):
        db.apply_action('nope', 'p1', 'stop')
    with pytest.raises(InstanceNotFound):
        db.record_event('nope', 'spawned')
    assert db.update_instance('nope', status=ACTIVE) is False


def test_list_filters(db):
    db.upsert_host('h1', vcpus=8, ram_mb=8192, disk_gb=100)
    web1 = boot(db, name='web-1', host='h1')['uuid']
    web2 = boot(db, name='web-2')['uuid']
    dbvm = boot(db, name='db-1', host='h1')['uuid']
    other = boot(db, name='web-3', project='p2')['uuid']
    force(db, web2, ACTIVE)
    force(db, dbvm, DELETED)

    def names(**kw):
        return [r['name'] for r in db.list_instances(**kw)]

    assert names(project='p1') == ['web-1', 'web-2']
    assert names(project='p1', include_deleted=True) == [
        'web-1', 'web-2', 'db-1']
    assert names(project='p1', name='web') == ['web-1', 'web-2']
    assert names(project='p1', name='b-2') == ['web-2']
    assert names(project='p1', name='WEB') == []
    assert names(project='p1', status=ACTIVE) == ['web-2']
    assert names(project='p1', status=DELETED) == ['db-1']
    assert names(project='p1', host='h1') == ['web-1']
    assert names(project='p1', host='h1', include_deleted=True) == [
        'web-1', 'db-1']
    assert names() == ['web-1', 'web-2', 'web-3']
    assert {web1, other} <= {r['uuid'] for r in db.list_instances()}
    with pytest.raises(ValueError):
        db.list_instances(status='RUNNING')


def test_deleted_instance_hidden_unless_asked(db):
    uuid = boot(db)['uuid']
    force(db, uuid, DELETED)
    assert db.get_instance(uuid) is None
    row = db.get_instance(uuid, include_deleted=True)
    assert row['status'] == DELETED
    assert row['deleted_at'] is not None


def test_update_instance_checks_its_fields(db):
    uuid = boot(db)['uuid']
    with pytest.raises(ValueError, match='vcpus'):
        db.update_instance(uuid, vcpus=64)
    with pytest.raises(ValueError, match='vm_state'):
        db.update_instance(uuid, status='RUNNING')
    with pytest.raises(ValueError, match='task_state'):
        db.update_instance(uuid, task_state='sleeping')
    with pytest.raises(ValueError, match='refused'):
        db.update_instance(uuid, host='no-such-host')
    assert db.get_instance(uuid)['host'] is None
    # the refused write was rolled back: the connection still writes
    assert db.update_instance(uuid, name='still-fine')
    assert db.get_instance(uuid)['name'] == 'still-fine'


def test_update_instance_bumps_updated_at(db):
    row = boot(db)
    assert db.update_instance(row['uuid'], name='renamed')
    after = db.get_instance(row['uuid'])
    assert after['name'] == 'renamed'
    assert after['updated_at'] > row['updated_at']


def test_compare_and_set_race_two_connections(path):
    one, two = open_db(path), open_db(path)
    uuid = boot(one)['uuid']
    force(one, uuid, ACTIVE)
    seen_one = one.get_instance(uuid)['status']
    seen_two = two.get_instance(uuid)['status']
    assert seen_one == seen_two == ACTIVE
    assert one.update_instance(uuid, expected_status=seen_one,
                               task_state='powering-off') is True
    assert two.update_instance(uuid, expected_status=seen_two,
                               expected_task_state=None,
                               task_state='rebooting',
                               status=REBOOT) is False
    row = two.get_instance(uuid)
    assert (row['status'], row['task_state']) == (ACTIVE, 'powering-off')
    one.close()
    two.close()


def test_compare_and_set_status_list(db):
    uuid = boot(db)['uuid']
    assert not db.update_instance(uuid, expected_status=(ACTIVE, SHUTOFF),
                                  status=ERROR)
    assert db.update_instance(uuid, expected_status=(BUILD, ACTIVE),
                              status=ERROR)
    assert db.get_instance(uuid)['status'] == ERROR


def test_concurrent_actions_one_wins(path):
    database = open_db(path)
    uuid = boot(database)['uuid']
    force(database, uuid, ACTIVE)
    barrier = threading.Barrier(8)
    results = []

    def worker():
        barrier.wait()
        try:
            database.apply_action(uuid, 'p1', 'stop')
            results.append('ok')
        except Conflict:
            results.append('conflict')

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ['conflict'] * 7 + ['ok']
    assert database.get_instance(uuid)['task_state'] == 'powering-off'
    database.close()


# --- actions and events through the database --------------------------------

def _expect(status, task, action):
    """What states.begin_action says, or the Conflict it raises."""
    try:
        return states.begin_action(status, task, action)
    except Conflict as e:
        return e


@pytest.mark.parametrize('status,task', list(itertools.product(
    states.VM_STATES, states.TASK_STATES)))
def test_every_action_through_apply_action(db, status, task):
    for action in states.ACTIONS:
        uuid = boot(db, name=action)['uuid']
        force(db, uuid, status, task)
        before = db.get_instance(uuid, include_deleted=True)
        expected = _expect(status, task, action)
        if isinstance(expected, Conflict):
            with pytest.raises(Conflict) as info:
                db.apply_action(uuid, 'p1', action)
            assert uuid in info.value.message
            assert db.get_instance(uuid, include_deleted=True) == before
        else:
            row = db.apply_action(uuid, 'p1', action)
            assert (row['status'], row['task_state']) == expected
            assert row == db.get_instance(uuid, include_deleted=True)


def test_apply_action_examples(db):
    uuid = boot(db)['uuid']
    with pytest.raises(Conflict, match="Cannot 'stop' instance %s while it"
                       " is in vm_state BUILD" % uuid):
        db.apply_action(uuid, 'p1', 'stop')
    db.record_event(uuid, 'spawned')
    row = db.apply_action(uuid, 'p1', 'reboot')
    assert (row['status'], row['task_state']) == (REBOOT, 'rebooting')
    row = db.apply_action(uuid, 'p1', 'reboot_hard')
    assert row['task_state'] == 'rebooting_hard'
    with pytest.raises(Conflict, match='task_state rebooting_hard'):
        db.apply_action(uuid, 'p1', 'reboot_hard')
    with pytest.raises(ValueError, match='unknown action'):
        db.apply_action(uuid, 'p1', 'pause')


def test_a_whole_life(db):
    uuid = boot(db)['uuid']
    row = db.record_event(uuid, 'spawned')
    assert (row['status'], row['task_state'], row['power_state']) == (
        ACTIVE, None, 'running')
    db.apply_action(uuid, 'p1', 'stop')
    row = db.record_event(uuid, 'powered_off')
    assert (row['status'], row['task_state'], row['power_state']) == (
        SHUTOFF, None, 'shutoff')
    db.apply_action(uuid, 'p1', 'start')
    assert db.record_event(uuid, 'powered_on')['status'] == ACTIVE
    db.apply_action(uuid, 'p1', 'reboot')
    assert db.record_event(uuid, 'rebooted')['status'] == ACTIVE
    db.apply_action(uuid, 'p1', 'delete')
    row = db.record_event(uuid, 'deleted')
    assert (row['status'], row['task_state']) == (DELETED, None)
    assert row['deleted_at'] is not None
    with pytest.raises(Conflict, match='vm_state DELETED'):
        db.apply_action(uuid, 'p1', 'delete')


def test_guest_shutdown_from_inside(db):
    uuid = boot(db)['uuid']
    db.record_event(uuid, 'spawned')
    row = db.record_event(uuid, 'powered_off')
    assert (row['status'], row['task_state']) == (SHUTOFF, None)


def test_spawn_failure_keeps_the_fault_until_active_again(db):
    uuid = boot(db)['uuid']
    row = db.record_event(uuid, 'spawn_failed',
                          fault='No valid host was found. not enough RAM')
    assert row['status'] == ERROR
    assert row['fault_message'] == 'No valid host was found. not enough RAM'
    db.apply_action(uuid, 'p1', 'reboot_hard')
    assert db.get_instance(uuid)['fault_message'].startswith('No valid')
    row = db.record_event(uuid, 'rebooted')
    assert row['status'] == ACTIVE
    assert row['fault_message'] is None


def test_failure_without_message_still_says_something(db):
    uuid = boot(db)['uuid']
    assert db.record_event(uuid, 'failed')['fault_message']


def test_illegal_event_changes_nothing(db):
    uuid = boot(db)['uuid']
    before = db.get_instance(uuid)
    with pytest.raises(ValueError, match='rebooted'):
        db.record_event(uuid, 'rebooted')
    assert db.get_instance(uuid) == before


def test_delete_wins_over_a_running_build(db):
    uuid = boot(db)['uuid']
    assert db.apply_action(uuid, 'p1', 'delete')['task_state'] == 'deleting'
    row = db.record_event(uuid, 'spawn_failed', fault='domain gone')
    assert (row['status'], row['task_state']) == (ERROR, 'deleting')
    assert db.record_event(uuid, 'deleted')['status'] == DELETED


# --- hosts and claims ------------------------------------------------------

def test_upsert_host_and_reregister_keeps_usage_and_disable(db):
    row = db.upsert_host('h1', 'QEMU', 'amd64', vcpus=4, ram_mb=8192,
                         disk_gb=100, agent_url='http://127.0.0.1:1/',
                         last_heartbeat=5)
    assert row['hypervisor_type'] == 'qemu'
    assert row['architecture'] == 'x86_64'
    assert row['enabled'] is True
    assert (row['vcpus'], row['ram_mb'], row['disk_gb']) == (4, 8192, 100)
    assert db.claim('h1', 1, 512, 1)
    assert db.set_host_enabled('h1', False)
    row = db.upsert_host('h1', vcpus=8, ram_mb=16384, disk_gb=200,
                         agent_url='http://127.0.0.1:2/')
    assert row['enabled'] is False
    assert (row['vcpus_used'], row['ram_mb_used'], row['disk_gb_used']) == (
        1, 512, 1)
    assert (row['vcpus'], row['agent_url']) == (8, 'http://127.0.0.1:2/')
    assert [h['name'] for h in db.list_hosts()] == ['h1']


def test_upsert_host_refuses_bad_values(db):
    with pytest.raises(ValueError):
        db.upsert_host('', vcpus=1)
    with pytest.raises(ValueError):
        db.upsert_host('h', vcpus=-1)
    with pytest.raises(ValueError):
        db.upsert_host('h', cpu_allocation_ratio=0)
    with pytest.raises(ValueError, match='unknown'):
        db.upsert_host('h', colour='blue')
    assert db.list_hosts() == []


def test_heartbeat(db):
    assert db.heartbeat('ghost', 10.0) is False
    db.upsert_host('h1', vcpus=4, ram_mb=4096, disk_gb=10)
    assert db.heartbeat('h1', 42.5, {'ram_mb': 2048, 'vcpus_used': 2})
    row = db.get_host('h1')
    assert (row['last_heartbeat'], row['ram_mb'], row['vcpus_used']) == (
        42.5, 2048, 2)
    with pytest.raises(ValueError, match='unknown'):
        db.heartbeat('h1', 43, {'gpus': 1})
    with pytest.raises(ValueError):
        db.heartbeat('h1', 43, {'vcpus_used': -1})
    assert db.get_host('h1')['last_heartbeat'] == 42.5


def test_set_host_enabled(db):
    assert db.set_host_enabled('ghost', False) is False
    db.upsert_host('h1')
    assert db.set_host_enabled('h1', False)
    assert db.get_host('h1')['enabled'] is False
    with pytest.raises(ValueError):
        db.set_host_enabled('h1', 'no')


def test_claims_and_releases_add_up(db):
    db.upsert_host('h1', vcpus=4, ram_mb=8192, disk_gb=100)
    for flavor in (TINY, SMALL, TINY):
        assert db.claim('h1', flavor.vcpus, flavor.ram, flavor.disk)
    row = db.get_host('h1')
    assert (row['vcpus_used'], row['ram_mb_used'], row['disk_gb_used']) == (
        3, 3072, 22)
    db.release('h1', SMALL.vcpus, SMALL.ram, SMALL.disk)
    row = db.get_host('h1')
    assert (row['vcpus_used'], row['ram_mb_used'], row['disk_gb_used']) == (
        2, 1024, 2)
    db.release('h1', 5, 5000, 50)
    row = db.get_host('h1')
    assert (row['vcpus_used'], row['ram_mb_used'], row['disk_gb_used']) == (
        0, 0, 0)


def test_claim_refuses_what_does_not_fit(db):
    db.upsert_host('h1', vcpus=1, ram_mb=1024, disk_gb=10,
                   cpu_allocation_ratio=2.0)
    assert db.claim('h1', 1, 512, 5)
    assert db.claim('h1', 1, 512, 5)       # 2 vCPUs fit with ratio 2
    assert not db.claim('h1', 1, 1, 0)      # vCPUs exhausted
    assert not db.claim('h1', 0, 1, 0)      # RAM exhausted
    assert not db.claim('h1', 0, 0, 1)      # disk exhausted
    assert db.claim('h1', 1, 1, 1, check=False)
    row = db.get_host('h1')
    assert (row['vcpus_used'], row['ram_mb_used'], row['disk_gb_used']) == (
        3, 1025, 11)


def test_claim_and_release_unknown_host(db):
    with pytest.raises(HostNotFound):
        db.claim('ghost', 1, 1, 1)
    with pytest.raises(HostNotFound):
        db.release('ghost', 1, 1, 1)
    with pytest.raises(ValueError):
        db.claim('ghost', -1, 1, 1)


def test_concurrent_claims_never_overfill(path):
    database = open_db(path)
    database.upsert_host('h1', vcpus=64, ram_mb=3 * 512, disk_gb=100)
    barrier = threading.Barrier(8)
    results = []

    def worker():
        barrier.wait()
        results.append(database.claim('h1', 1, 512, 1))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 3
    assert database.get_host('h1')['ram_mb_used'] == 3 * 512
    database.close()


def test_place_instance(db):
    db.upsert_host('h1', vcpus=2, ram_mb=1024, disk_gb=10)
    first = boot(db, name='a')['uuid']
    second = boot(db, name='b', flavor=Flavor('m1.half', 1, 600, 1))['uuid']
    assert db.place_instance(first, 'h1')
    assert db.get_instance(first)['host'] == 'h1'
    assert not db.place_instance(first, 'h1')      # already placed
    assert not db.place_instance(second, 'h1')     # no RAM left
    assert db.get_instance(second)['host'] is None
    row = db.get_host('h1')
    assert (row['vcpus_used'], row['ram_mb_used']) == (1, 512)
    with pytest.raises(HostNotFound):
        db.place_instance(second, 'ghost')
    with pytest.raises(InstanceNotFound):
        db.place_instance('nope', 'h1')


def test_host_rows_feed_the_scheduler(db):
    db.upsert_host('small', vcpus=4, ram_mb=4096, disk_gb=100,
                   last_heartbeat=1000.0)
    db.upsert_host('big', vcpus=4, ram_mb=16384, disk_gb=100,
                   last_heartbeat=1000.0)
    db.upsert_host('off', vcpus=4, ram_mb=65536, disk_gb=100,
                   last_heartbeat=1000.0)
    db.set_host_enabled('off', False)
    hosts = db.host_states()
    assert all(isinstance(h, HostState) for h in hosts)
    assert {h.name: h.ram_mb_total for h in hosts} == {
        'small': 4096, 'big': 16384, 'off': 65536}
    from compute.scheduler import Flavor as SchedFlavor
    request = Request(flavor=SchedFlavor('m1.tiny', 1, 512, 1), now=1001.0)
    assert select_host(hosts, request).name == 'big'
