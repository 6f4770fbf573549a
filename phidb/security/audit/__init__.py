"""Audit log: events in MongoDB's audit schema, an optional filter, and sinks."""

from phidb.security.audit.events import (
    auth_check_param,
    authenticate_param,
    index_param,
    logout_param,
    ns_param,
    rename_param,
    startup_param,
    user_param,
)
from phidb.security.audit.log import AuditLog, AuditWriteError, NullAuditLog, open_audit_log

__all__ = [
    "AuditLog",
    "AuditWriteError",
    "NullAuditLog",
    "auth_check_param",
    "authenticate_param",
    "index_param",
    "logout_param",
    "ns_param",
    "open_audit_log",
    "rename_param",
    "startup_param",
    "user_param",
]
