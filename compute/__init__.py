"""compute: a light Nova (API, scheduler, agents, libvirt driver) on objstore."""
