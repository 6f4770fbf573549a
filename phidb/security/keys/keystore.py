"""Per-database data keys, stored on disk only wrapped (AES-256-GCM) by the master key.

Each database file gets its own random 256-bit key; the keystore file maps a database
file's name to its wrapped key, and holds a check value that tells a wrong master key
apart from a damaged file before any data is touched.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEYSTORE_FILE = "phidb.keystore"
DATA_KEY_BYTES = 32
_FORMAT = 1
_NONCE_BYTES = 12
_CHECK_PLAINTEXT = b"phidb keystore check value"
_CHECK_AAD = b"phidb keystore v1 check"


class KeystoreError(Exception):
    """The keystore cannot be used; the message says why."""


class MasterKeyMismatch(KeystoreError):
    """The master key given is not the one the data under dbpath was written with."""


def _wrap(master: AESGCM, plaintext: bytes, aad: bytes) -> str:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return base64.b64encode(nonce + master.encrypt(nonce, plaintext, aad)).decode("ascii")


def _unwrap(master: AESGCM, wrapped: str, aad: bytes) -> bytes:
    blob = base64.b64decode(wrapped, validate=True)
    return master.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)


def _key_aad(name: str) -> bytes:
    # Binding a wrapped key to its database's name stops a swapped entry from
    # decrypting another database's file.
    return b"phidb data key v1:" + name.encode("utf-8")


def keystore_path(dbpath: str) -> str:
    return os.path.join(dbpath, KEYSTORE_FILE)


class Keystore:
    """The wrapped data keys of every database under one dbpath. Thread-safe."""

    def __init__(self, dbpath: str, master_key: bytes) -> None:
        if len(master_key) != DATA_KEY_BYTES:
            raise KeystoreError("the master key must be exactly 32 bytes")
        self._path = keystore_path(dbpath)
        self._dir = dbpath
        self._aead = AESGCM(master_key)
        self._lock = threading.Lock()
        self._wrapped: dict[str, str] = {}
        self._keys: dict[str, bytes] = {}
        if os.path.exists(self._path):
            self._load()
        else:
            self._check = _wrap(self._aead, _CHECK_PLAINTEXT, _CHECK_AAD)
            self._save()

    def _load(self) -> None:
        try:
            with open(self._path, "rb") as f:
                data: Any = json.loads(f.read())
            check = data["check"]
            wrapped = data["keys"]
            if data.get("format") != _FORMAT or not isinstance(wrapped, dict):
                raise ValueError("unknown keystore format")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeystoreError(f"the keystore {self._path} cannot be read: {exc}") from None
        try:
            ok = _unwrap(self._aead, check, _CHECK_AAD) == _CHECK_PLAINTEXT
        except InvalidTag:
            ok = False
        if not ok:
            raise MasterKeyMismatch(
                f"the encryption key does not match the one the data in {self._dir} was "
                "written with; refusing to open it"
            )
        self._check = check
        self._wrapped = {str(k): str(v) for k, v in wrapped.items()}

    def _save(self) -> None:
        # Write-then-rename with fsyncs: a crash leaves the old or the new keystore,
        # never a torn one, and a key is durable before any file is encrypted with it.
        body = json.dumps(
            {"format": _FORMAT, "check": self._check, "keys": self._wrapped}, sort_keys=True
        ).encode("ascii")
        tmp = self._path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._path)
        dir_fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def get(self, name: str) -> bytes | None:
        """The data key of database file `name`, or None if it has none yet."""
        with self._lock:
            return self._get_locked(name)

    def _get_locked(self, name: str) -> bytes | None:
        key = self._keys.get(name)
        if key is not None:
            return key
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            return None
        try:
            key = _unwrap(self._aead, wrapped, _key_aad(name))
        except (InvalidTag, ValueError):
            raise KeystoreError(
                f"the wrapped key of database file {name} in {self._path} is damaged"
            ) from None
        self._keys[name] = key
        return key

    def get_or_create(self, name: str) -> bytes:
        """The data key of `name`, creating and durably storing a new random one."""
        with self._lock:
            key = self._get_locked(name)
            if key is not None:
                return key
            key = secrets.token_bytes(DATA_KEY_BYTES)
            self._wrapped[name] = _wrap(self._aead, key, _key_aad(name))
            self._save()
            self._keys[name] = key
            return key

    def remove(self, name: str) -> None:
        """Forget the key of a dropped database (its file is already gone)."""
        with self._lock:
            if self._wrapped.pop(name, None) is not None:
                self._keys.pop(name, None)
                self._save()
