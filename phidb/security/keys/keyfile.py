"""The master key file, in mongod's `--encryptionKeyFile` format: base64 of 32 bytes.

The file must be private to its owner (mode 600 or stricter), as mongod requires.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat

MASTER_KEY_BYTES = 32


class KeyFileError(Exception):
    """The key file is missing, unreadable, too open, or does not hold a 32-byte key."""


def load_master_key(path: str) -> bytes:
    """Read and check the master key at `path`; raise KeyFileError saying what is wrong."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyFileError(f"encryption key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open encryption key file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"encryption key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"permissions on encryption key file {path} are too open "
                f"(mode {stat.S_IMODE(info.st_mode):03o}); it must not be readable or "
                "writable by group or others: run chmod 600 on it"
            )
        # A base64 key is 44 characters; anything much larger is not a key file.
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)

    text = raw.strip()
    if not text:
        raise KeyFileError(f"encryption key file {path} is empty")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"encryption key file {path} does not hold valid base64") from None
    if len(key) != MASTER_KEY_BYTES:
        raise KeyFileError(
            f"encryption key in {path} is {len(key)} bytes long; it must be exactly "
            f"{MASTER_KEY_BYTES} bytes (256 bits) before base64 encoding"
        )
    return key


def generate_key_file(path: str) -> bytes:
    """Write a new random master key to `path` (mode 600, never over an existing file)."""
    key = secrets.token_bytes(MASTER_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"encryption key file {path} already exists") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create encryption key file {path}: {exc.strerror}") from None
    try:
        # The umask cannot widen 0o600, but fchmod makes the mode exact regardless.
        os.fchmod(fd, 0o600)
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
