"""phidb: a MongoDB-compatible document database for protected data."""

__version__ = "0.1.0"
