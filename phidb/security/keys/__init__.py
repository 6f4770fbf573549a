"""Encryption keys: the master key file and the per-database keys it wraps."""

from phidb.security.keys.keyfile import KeyFileError, generate_key_file, load_master_key
from phidb.security.keys.keystore import Keystore, KeystoreError, MasterKeyMismatch

__all__ = [
    "KeyFileError",
    "Keystore",
    "KeystoreError",
    "MasterKeyMismatch",
    "generate_key_file",
    "load_master_key",
]
