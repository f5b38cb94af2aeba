"""Account server and broker (SQLite)."""
