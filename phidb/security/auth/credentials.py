"""SCRAM credentials as MongoDB stores them: salt, storedKey and serverKey (base64) and the
iteration count, per mechanism. The password itself is never stored."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

import scramp

from phidb.errors import BAD_VALUE, MongoError

SCRAM_SHA_1 = "SCRAM-SHA-1"
SCRAM_SHA_256 = "SCRAM-SHA-256"
SCRAM_MECHANISMS = (SCRAM_SHA_1, SCRAM_SHA_256)

# MongoDB's defaults (scramIterationCount, scramSHA256IterationCount) and salt lengths.
ITERATIONS = {SCRAM_SHA_1: 10000, SCRAM_SHA_256: 15000}
SALT_BYTES = {SCRAM_SHA_1: 16, SCRAM_SHA_256: 28}

Credentials = dict[str, dict[str, Any]]


def mongo_sha1_password(user: str, password: str) -> str:
    """The secret SCRAM-SHA-1 uses in MongoDB: hex(md5(user + ":mongo:" + password)).

    MD5 here is MongoDB's legacy password digest, which every driver computes the same
    way; it is not used as a security boundary (PBKDF2 over it is).
    """
    digest = hashlib.md5(f"{user}:mongo:{password}".encode(), usedforsecurity=False)
    return digest.hexdigest()


def scram_secret(mechanism: str, user: str, password: str) -> str:
    """The string SCRAM hashes: the MongoDB digest for SHA-1, the password for SHA-256
    (scramp applies SASLprep to it)."""
    if mechanism == SCRAM_SHA_1:
        return mongo_sha1_password(user, password)
    return password


def make_credential(
    mechanism: str,
    user: str,
    password: str,
    *,
    iterations: int | None = None,
    salt: bytes | None = None,
) -> dict[str, Any]:
    """One mechanism's stored credential: `{iterationCount, salt, storedKey, serverKey}`."""
    count = ITERATIONS[mechanism] if iterations is None else iterations
    salt = secrets.token_bytes(SALT_BYTES[mechanism]) if salt is None else salt
    mech = scramp.ScramMechanism(mechanism)
    try:
        salt_out, stored_key, server_key, count_out = mech.make_auth_info(
            scram_secret(mechanism, user, password), iteration_count=count, salt=salt
        )
    except scramp.ScramException:
        # Only SCRAM-SHA-256 can get here: SHA-1 hashes a hex digest, which SASLprep
        # always accepts. The message never quotes the password.
        raise MongoError(
            BAD_VALUE,
            f"Error preparing {mechanism} password: it contains characters that SASLprep"
            " (RFC 4013) prohibits",
        ) from None
    return {
        "iterationCount": int(count_out),
        "salt": _b64(salt_out),
        "storedKey": _b64(stored_key),
        "serverKey": _b64(server_key),
    }


def make_credentials(user: str, password: str, mechanisms: Iterable[str]) -> Credentials:
    """Credentials for every mechanism in `mechanisms` (each must be a SCRAM one);
    BadValue (2) when SASLprep refuses the password."""
    return {m: make_credential(m, user, password) for m in mechanisms}


def auth_info(credential: dict[str, Any]) -> tuple[bytes, bytes, bytes, int]:
    """A stored credential as scramp's server wants it: (salt, storedKey, serverKey, i)."""
    return (
        base64.b64decode(credential["salt"]),
        base64.b64decode(credential["storedKey"]),
        base64.b64decode(credential["serverKey"]),
        int(credential["iterationCount"]),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
