"""The results store: every record of every run, in a real database (SQLite by default)."""

from harness.store.store import Store, open_store

__all__ = ["Store", "open_store"]
