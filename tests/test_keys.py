"""The master key file format and permission checks, and the wrapped per-database keys."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from phidb.security.keys import (
    KeyFileError,
    Keystore,
    MasterKeyMismatch,
    generate_key_file,
    load_master_key,
)
from phidb.security.keys.keystore import keystore_path


def _write(path: str, content: bytes, mode: int = 0o600) -> str:
    with open(path, "wb") as f:
        f.write(content)
    os.chmod(path, mode)
    return path


def test_generated_key_file_has_mode_600_and_loads(tmp_path):
    path = str(tmp_path / "key")
    key = generate_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(key) == 32
    assert load_master_key(path) == key


def test_generate_refuses_to_overwrite(tmp_path):
    path = str(tmp_path / "key")
    generate_key_file(path)
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key_file(path)


def test_key_with_surrounding_whitespace_loads(tmp_path):
    key = bytes(range(32))
    path = _write(str(tmp_path / "k"), b"  \n" + base64.b64encode(key) + b"\r\n\n")
    assert load_master_key(path) == key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620, 0o602, 0o644])
def test_key_file_open_to_group_or_others_is_refused(tmp_path, mode):
    path = _write(str(tmp_path / "k"), base64.b64encode(bytes(32)), mode)
    with pytest.raises(KeyFileError, match="too open"):
        load_master_key(path)


def test_key_file_mode_400_is_accepted(tmp_path):
    path = _write(str(tmp_path / "k"), base64.b64encode(bytes(32)), 0o400)
    assert load_master_key(path) == bytes(32)


def test_missing_key_file_is_a_clear_error(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        load_master_key(str(tmp_path / "nope"))


def test_bad_base64_is_a_clear_error(tmp_path):
    path = _write(str(tmp_path / "k"), b"not*base64!!")
    with pytest.raises(KeyFileError, match="valid base64"):
        load_master_key(path)


def test_empty_key_file_is_a_clear_error(tmp_path):
    path = _write(str(tmp_path / "k"), b"\n")
    with pytest.raises(KeyFileError, match="empty"):
        load_master_key(path)


@pytest.mark.parametrize("length", [16, 31, 33, 64])
def test_wrong_key_length_is_refused(tmp_path, length):
    path = _write(str(tmp_path / "k"), base64.b64encode(bytes(length)))
    with pytest.raises(KeyFileError, match=f"is {length} bytes long"):
        load_master_key(path)


def test_keystore_keys_are_random_per_database_and_persist(tmp_path):
    master = os.urandom(32)
    store = Keystore(str(tmp_path), master)
    a = store.get_or_create("a")
    b = store.get_or_create("b")
    assert len(a) == 32 and a != b
    assert store.get_or_create("a") == a

    reopened = Keystore(str(tmp_path), master)
    assert reopened.get("a") == a
    assert reopened.get("b") == b
    assert reopened.get("c") is None


def test_keystore_file_holds_only_wrapped_keys(tmp_path):
    store = Keystore(str(tmp_path), os.urandom(32))
    key = store.get_or_create("db")
    data = open(keystore_path(str(tmp_path)), "rb").read()
    assert key not in data
    assert key.hex().encode() not in data
    assert base64.b64encode(key) not in data
    assert stat.S_IMODE(os.stat(keystore_path(str(tmp_path))).st_mode) == 0o600


def test_keystore_refuses_a_wrong_master_key(tmp_path):
    Keystore(str(tmp_path), os.urandom(32)).get_or_create("db")
    with pytest.raises(MasterKeyMismatch, match="does not match the one"):
        Keystore(str(tmp_path), os.urandom(32))


def test_removed_key_is_gone_after_reopen(tmp_path):
    master = os.urandom(32)
    store = Keystore(str(tmp_path), master)
    store.get_or_create("db")
    store.remove("db")
    assert Keystore(str(tmp_path), master).get("db") is None
