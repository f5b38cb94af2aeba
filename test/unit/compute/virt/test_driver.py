"""The ComputeDriver interface: abstract, complete, and its value types."""
import dataclasses
import json

import pytest

from compute.virt import driver
from compute.virt.driver import (ComputeDriver, DriverError, Flavor,
                                 ImagePaths, Instance, InstanceExists,
                                 InstanceNotFound, PowerState)

METHODS = {'spawn', 'destroy', 'power_on', 'power_off', 'reboot',
           'get_power_state', 'list_instances', 'host_capacity'}


def test_interface_cannot_be_instantiated():
    with pytest.raises(TypeError):
        ComputeDriver()


def test_every_operation_is_abstract():
    assert ComputeDriver.__abstractmethods__ == METHODS


def test_every_operation_says_what_it_guarantees():
    for name in METHODS:
        doc = getattr(ComputeDriver, name).__doc__
        assert doc and len(doc.split()) > 10, name


def test_a_driver_missing_one_operation_cannot_be_instantiated():
    body = {name: (lambda self, *a, **k: None) for name in METHODS
            if name != 'reboot'}
    Partial = type('Partial', (ComputeDriver,), body)
    with pytest.raises(TypeError, match='reboot'):
        Partial()


def test_a_complete_driver_can_be_instantiated_and_called():
    body = {name: (lambda self, *a, **k: None) for name in METHODS}
    body['get_power_state'] = lambda self, name: PowerState.SHUTOFF
    Complete = type('Complete', (ComputeDriver,), body)
    drv = Complete()
    assert isinstance(drv, ComputeDriver)
    assert drv.get_power_state('inst-1') is PowerState.SHUTOFF


def test_power_states():
    assert [state.name for state in PowerState] == [
        'RUNNING', 'SHUTOFF', 'PAUSED', 'CRASHED', 'NOSTATE']
    assert PowerState('shutoff') is PowerState.SHUTOFF
    assert json.dumps({'state': PowerState.RUNNING}) == '{"state": "running"}'


def test_errors_share_one_base():
    assert issubclass(InstanceNotFound, DriverError)
    assert issubclass(InstanceExists, DriverError)
    assert issubclass(DriverError, Exception)


def test_host_capacity_keys():
    assert driver.HOST_CAPACITY_KEYS == (
        'vcpus', 'ram_mb', 'disk_gb', 'hypervisor_type', 'architecture')


def test_value_types_are_immutable_with_defaults():
    paths = ImagePaths(disk='/d/disk')
    assert (paths.disk_format, paths.kernel, paths.ramdisk, paths.cmdline) \
        == ('qcow2', None, None, None)
    flavor = Flavor(name='m1.tiny', vcpus=1, ram_mb=512, disk_gb=1)
    instance = Instance(name='inst-1', uuid='u-1')
    for value, field in ((paths, 'disk'), (flavor, 'vcpus'),
                         (instance, 'name')):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, None)
