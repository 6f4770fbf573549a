"""Audit log: events in MongoDB's audit schema, an optional filter, and sinks."""
