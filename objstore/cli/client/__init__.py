"""The `objstore` client command line: a Swift API client for users.

main.py parses the arguments and runs one command module (stat, listing,
upload, download, delete, post, copy, tempurl, capabilities); the
commands talk to the cluster through connection.Connection, and the
protocol details they need (segment plans and names, manifests, temp URL
signatures, size suffixes, output formats) are pure functions in small
modules of their own so they are tested without a server.
"""
