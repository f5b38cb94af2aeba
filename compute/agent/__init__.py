"""The per-host compute agent: what runs on each host beside its hypervisor."""
