"""Hypervisor drivers: the interface the agent calls, and the pure pieces
(libvirt domain XML, config drive) a driver builds a guest from.

The libvirt driver itself lives beside these modules so that a host without
libvirt-python can still import the pure parts and their tests.
"""
