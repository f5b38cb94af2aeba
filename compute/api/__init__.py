"""compute API server: instance states, flavors, the SQLite database.

The HTTP layer comes later; these modules hold the rules it enforces, so
they can be tested without a server.
"""
