"""Builder: placement with a lost claim race, per-instance ordering,
failure handling; and the scheduler options compute-api derives."""

import pytest

from compute.api import states
from compute.api.builder import Builder, agent_fault, one_line
from compute.api.db import ComputeDB
from compute.api.flavors import Flavors
from compute.api.server import scheduler_section
from compute.common.config import ConfigError
from compute.scheduler import scheduler_options

SECRET = 'a' * 32
TINY = Flavors().get('m1.tiny')
DEAD_AGENT = 'http://127.0.0.1:9'


class RacingDB(ComputeDB):
    """A ComputeDB where another build fills the first chosen host just
    before this one claims it (the race place_instance guards against)."""

    raced = False

    def place_instance(self, uuid, host_name, check=True):
        if not self.raced:
            self.raced = True
            host = self.get_host(host_name)
            self.claim(host_name, 0, host['ram_mb'] - host['ram_mb_used'],
                       0)
        return super().place_instance(uuid, host_name, check)


@pytest.fixture
def db(tmp_path):
    database = RacingDB(tmp_path / 'c.db', durable=False)
    yield database
    database.close()


@pytest.fixture
def builder(db):
    b = Builder(db, scheduler_options({}), SECRET, workers=2,
                clock=lambda: 1000.0)
    yield b
    b.close()


def test_lost_race_tries_the_next_ranked_host(db, builder):
    db.upsert_host('big', vcpus=8, ram_mb=8192, disk_gb=80,
                   agent_url=DEAD_AGENT, last_heartbeat=1000.0)
    db.upsert_host('small', vcpus=8, ram_mb=2048, disk_gb=80,
                   agent_url=DEAD_AGENT, last_heartbeat=1000.0)
    row = db.create_instance('vm', 'AUTH_test', 'img', TINY)
    builder.submit_build(row['uuid'], {'image': {}}).result(timeout=30)
    row = db.get_instance(row['uuid'])
    # spread put it on 'big' first; the race filled it, so 'small' was
    # claimed and its agent (nothing listening) failed the build
    assert 'on host small failed' in row['fault_message']
    assert row['status'] == states.ERROR
    assert db.get_host('small')['ram_mb_used'] == 0      # released
    assert db.get_host('big')['ram_mb_used'] == 8192     # the other build


def test_every_host_lost_to_races_is_no_valid_host(db, builder):
    db.upsert_host('only', vcpus=8, ram_mb=2048, disk_gb=80,
                   agent_url=DEAD_AGENT, last_heartbeat=1000.0)
    row = db.create_instance('vm', 'AUTH_test', 'img', TINY)
    builder.submit_build(row['uuid'], {'image': {}}).result(timeout=30)
    row = db.get_instance(row['uuid'])
    assert row['fault_message'].startswith('No valid host was found.')
    assert 'filled by other builds' in row['fault_message']
    assert row['host'] is None


def test_delete_waits_for_the_build_of_the_same_instance(db, builder):
    db.upsert_host('h', vcpus=8, ram_mb=8192, disk_gb=80,
                   agent_url=DEAD_AGENT, last_heartbeat=1000.0)
    db.raced = True
    row = db.create_instance('vm', 'AUTH_test', 'img', TINY)
    lock = builder._lock(row['uuid'])
    lock.acquire()     # as if its build were still talking to the agent
    try:
        db.apply_action(row['uuid'], 'AUTH_test', states.DELETE)
        future = builder.submit_delete(row['uuid'])
        assert not future.done()
        assert db.get_instance(row['uuid'])['status'] == states.BUILD
    finally:
        lock.release()
    future.result(timeout=30)
    assert db.get_instance(row['uuid'], include_deleted=True)['status'] \
        == states.DELETED


def test_build_taken_over_by_delete_is_skipped(db, builder):
    row = db.create_instance('vm', 'AUTH_test', 'img', TINY)
    db.apply_action(row['uuid'], 'AUTH_test', states.DELETE)
    builder.submit_build(row['uuid'], {'image': {}}).result(timeout=30)
    # the build did nothing; the delete still shows and finishes it
    assert db.get_instance(row['uuid'])['task_state'] == states.DELETING
    builder.submit_delete(row['uuid']).result(timeout=30)
    assert db.get_instance(row['uuid'], include_deleted=True)['status'] \
        == states.DELETED


def test_image_needing_more_ram_than_flavor_is_no_valid_host(db, builder):
    row = db.create_instance('vm', 'AUTH_test', 'img', TINY)
    builder.submit_build(row['uuid'],
                         {'image': {'min_ram': '4096'}}).result(timeout=30)
    row = db.get_instance(row['uuid'])
    assert row['fault_message'].startswith('No valid host was found.')
    assert 'min_ram' in row['fault_message']


def test_recover_resends_power_actions(db, builder):
    db.upsert_host('h', vcpus=8, ram_mb=8192, disk_gb=80,
                   agent_url=DEAD_AGENT, last_heartbeat=1000.0)
    db.raced = True
    row = db.create_instance('vm', 'AUTH_test', 'img', TINY)
    db.place_instance(row['uuid'], 'h')
    db.record_event(row['uuid'], states.SPAWNED)
    db.apply_action(row['uuid'], 'AUTH_test', states.STOP)
    assert builder.recover() == {row['uuid']: 'stop resent'}
    builder.close()
    # the agent is unreachable, so the stop is reverted (Nova's way)
    row = db.get_instance(row['uuid'])
    assert (row['status'], row['task_state']) == (states.ACTIVE, None)


def test_agent_fault_reads_both_error_shapes():
    assert agent_fault(500, {'error': 'disk full'}) == \
        'agent answered 500: disk full'
    assert agent_fault(409, {'error': {'code': 409, 'message': 'exists'}}) \
        == 'agent answered 409: exists'
    assert 'no reason' in agent_fault(502, None)
    assert one_line('a\nb\t c') == 'a b c'
    assert len(one_line('x' * 2000)) == 500


def test_scheduler_section_pack_and_heartbeat():
    section = scheduler_section({'scheduler': {'weigher': 'pack'}},
                                {'heartbeat_timeout': '30'})
    options = scheduler_options(section)
    assert options.multipliers['ram_weight_multiplier'] == -1.0
    assert options.heartbeat_timeout == 30.0
    spread = scheduler_options(scheduler_section({}, {}))
    assert spread.multipliers['ram_weight_multiplier'] == 1.0
    with pytest.raises(ConfigError):
        scheduler_section({'scheduler': {'weigher': 'random'}}, {})
