"""Server side of SCRAM-SHA-1 and SCRAM-SHA-256 as MongoDB speaks them over
saslStart/saslContinue (RFC 5802, RFC 7677), on top of `scramp`.

An unknown user and a wrong password fail identically and at the same step: an
unknown user gets a stand-in credential and the conversation runs to the proof check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

import scramp

from phidb.errors import AUTHENTICATION_FAILED, MECHANISM_UNAVAILABLE, MongoError
from phidb.security.auth.credentials import ITERATIONS, SALT_BYTES, SCRAM_MECHANISMS, auth_info

UserDoc = dict[str, Any]
UserLookup = Callable[[str], UserDoc | None]

AUTH_FAILED_MESSAGE = "Authentication failed."

# Per-process secret from which unknown users' stand-in salts are derived, so asking
# twice for the same unknown user shows the same salt, as a real user's would.
# Limitation: the stand-in salt changes when the server restarts, while a real user's
# salt does not; a client that compares salts across restarts can tell them apart.
_DUMMY_SECRET = secrets.token_bytes(32)
_DIGEST_SIZE = {"SCRAM-SHA-1": 20, "SCRAM-SHA-256": 32}
_DUMMY_KEYS = {m: (secrets.token_bytes(32), secrets.token_bytes(32)) for m in SCRAM_MECHANISMS}


def authentication_failed() -> MongoError:
    return MongoError(AUTHENTICATION_FAILED, AUTH_FAILED_MESSAGE)


def check_mechanism(mechanism: object) -> str:
    """The mechanism name if phidb can run it, else MechanismUnavailable (334)."""
    if isinstance(mechanism, str) and mechanism in SCRAM_MECHANISMS:
        return mechanism
    raise MongoError(
        MECHANISM_UNAVAILABLE,
        f"Received authentication for mechanism {mechanism} which is unknown or not enabled",
    )


def supported_mechanisms(user_doc: UserDoc | None) -> list[str]:
    """What `hello {saslSupportedMechs: "db.user"}` lists for this user ([] if unknown)."""
    if user_doc is None:
        return []
    credentials = user_doc.get("credentials") or {}
    return [m for m in SCRAM_MECHANISMS if m in credentials]


class ScramConversation:
    """One SASL conversation: `start` answers saslStart, `step` each saslContinue.

    Any failure raises AuthenticationFailed (18); the caller then forgets the
    conversation. `user_doc` is set once the proof has been verified.
    """

    def __init__(self, mechanism: str, db: str, lookup: UserLookup, skip_empty_exchange: bool):
        self.mechanism = check_mechanism(mechanism)
        self.db = db
        self.user = ""
        self.user_doc: UserDoc | None = None
        self.done = False
        self._lookup = lookup
        self._skip_empty = skip_empty_exchange
        self._candidate: UserDoc | None = None
        self._server: Any = None
        self._stage = 0

    def start(self, payload: bytes) -> bytes:
        """Take the client-first message; return the server-first message."""
        if self._stage != 0:
            raise authentication_failed()
        self._stage = 1
        client_first = _decode(payload)
        self.user = _user_from_client_first(client_first)
        candidate = self._lookup(self.user)
        credential = (candidate or {}).get("credentials", {}).get(self.mechanism)
        if credential is None:
            info = self._stand_in()
            candidate = None
        else:
            info = auth_info(credential)
        self._candidate = candidate

        mech = scramp.ScramMechanism(self.mechanism)
        self._server = mech.make_server(lambda _name: info)
        try:
            self._server.set_client_first(client_first)
            return str(self._server.get_server_first()).encode("utf-8")
        except scramp.ScramException:
            raise authentication_failed() from None

    def step(self, payload: bytes) -> bytes:
        """Take the next client message; return the server's reply (see `done`)."""
        if self._stage == 1:
            self._stage = 2
            try:
                self._server.set_client_final(_decode(payload))
                server_final = str(self._server.get_server_final()).encode("utf-8")
            except scramp.ScramException:
                raise authentication_failed() from None
            if self._candidate is None:
                # A stand-in credential can never verify; fail as a wrong password would.
                raise authentication_failed()
            self.user_doc = self._candidate
            self.done = self._skip_empty
            return server_final
        if self._stage == 2 and not self.done:
            # The client's empty acknowledgement of the server signature.
            if payload:
                raise authentication_failed()
            self._stage = 3
            self.done = True
            return b""
        raise authentication_failed()

    def _stand_in(self) -> tuple[bytes, bytes, bytes, int]:
        """A credential for a user who does not exist: stable salt, keys nobody knows."""
        tag = f"{self.mechanism}\0{self.db}\0{self.user}".encode()
        salt = hmac.new(_DUMMY_SECRET, tag, hashlib.sha256).digest()[: SALT_BYTES[self.mechanism]]
        stored_key, server_key = _DUMMY_KEYS[self.mechanism]
        size = _DIGEST_SIZE[self.mechanism]
        return salt, stored_key[:size], server_key[:size], ITERATIONS[self.mechanism]


def _decode(payload: bytes) -> str:
    try:
        return bytes(payload).decode("utf-8")
    except (UnicodeDecodeError, TypeError):
        raise authentication_failed() from None


def _user_from_client_first(client_first: str) -> str:
    """The `n=` attribute of the client-first message, unescaped (RFC 5802 5.1)."""
    parts = client_first.split(",")
    if len(parts) < 4 or not parts[2].startswith("n="):
        raise authentication_failed()
    name = parts[2][2:]
    return name.replace("=2C", ",").replace("=3D", "=")
