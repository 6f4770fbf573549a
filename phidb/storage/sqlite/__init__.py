"""The embedded storage engine: SQLite files encrypted by SQLCipher, one per database."""

from phidb.storage.sqlite.engine import SQLiteEngine

__all__ = ["SQLiteEngine"]
