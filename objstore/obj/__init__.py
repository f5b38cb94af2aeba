"""The object server: diskfile (objects on a device), suffix hashes for the
replicator, async pendings for the updater, and the WSGI server itself."""
