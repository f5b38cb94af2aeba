"""Container server, broker (SQLite) and the account updates it sends."""
