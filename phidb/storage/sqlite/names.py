"""Namespace rules (which database and collection names MongoDB accepts) and the safe,
reversible file names the engine gives each database."""

from __future__ import annotations

from phidb.errors import INVALID_NAMESPACE, MongoError

MAX_DB_NAME_BYTES = 63  # MongoDB allows database names shorter than 64 bytes
MAX_NAMESPACE_BYTES = 255
DB_FILE_SUFFIX = ".phidb"
_DB_FORBIDDEN = set('/\\. "$*<>:|?\x00')
# Internal collections the server itself keeps through this engine.
INTERNAL_COLLECTIONS = frozenset(
    {"system.users", "system.roles", "system.version", "system.js", "system.views"}
)
_SAFE_FILE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


def check_db_name(db: str) -> None:
    """InvalidNamespace (73) unless `db` is a database name MongoDB accepts."""
    if not db:
        raise MongoError(INVALID_NAMESPACE, "Invalid empty database name")
    bad = sorted(set(db) & _DB_FORBIDDEN)
    if bad:
        raise MongoError(INVALID_NAMESPACE, f"Invalid database name: '{db}'")
    if len(db.encode("utf-8")) > MAX_DB_NAME_BYTES:
        raise MongoError(
            INVALID_NAMESPACE,
            f"Invalid database name: '{db}': database name is too long, it must be "
            f"less than 64 bytes",
        )


def check_collection_name(db: str, name: str, *, internal: bool = True) -> None:
    """InvalidNamespace (73) unless `name` may name a collection of `db`. `system.`
    collections are allowed only for the server's own internal collections."""
    check_db_name(db)
    ns = f"{db}.{name}"
    if not name or "\x00" in name or "$" in name or name.startswith("."):
        raise MongoError(INVALID_NAMESPACE, f"Invalid namespace specified '{ns}'")
    if name.startswith("system.") and not (internal and name in INTERNAL_COLLECTIONS):
        raise MongoError(INVALID_NAMESPACE, f"Invalid system namespace: {ns}")
    if len(ns.encode("utf-8")) > MAX_NAMESPACE_BYTES:
        raise MongoError(
            INVALID_NAMESPACE, f"Fully qualified namespace is too long. Namespace: {ns}"
        )


def db_file_name(db: str) -> str:
    """A file name for database `db` that is safe on every file system: lowercase
    letters, digits, `_` and `-` stay; everything else (uppercase too, so names that
    differ only in case never share a file on case-insensitive systems) becomes %XX."""
    out = []
    for byte in db.encode("utf-8"):
        char = chr(byte)
        out.append(char if char in _SAFE_FILE_CHARS else f"%{byte:02X}")
    return "".join(out) + DB_FILE_SUFFIX


def db_name_from_file(file_name: str) -> str | None:
    """The database a file belongs to, or None if the file is not a database file."""
    if not file_name.endswith(DB_FILE_SUFFIX):
        return None
    stem = file_name[: -len(DB_FILE_SUFFIX)]
    raw = bytearray()
    i = 0
    while i < len(stem):
        if stem[i] == "%":
            try:
                raw.append(int(stem[i + 1 : i + 3], 16))
            except ValueError:
                return None
            i += 3
        else:
            raw.append(ord(stem[i]))
            i += 1
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return name if db_file_name(name) == file_name else None
