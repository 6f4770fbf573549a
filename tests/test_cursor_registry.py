"""The cursor registry on its own: idle cursors close after ten minutes, as MongoDB's
cursorTimeoutMillis default, and only the owner continues a cursor."""

from __future__ import annotations

import pytest

from phidb.commands.cursors import IDLE_TIMEOUT_SECONDS, CursorRegistry
from phidb.errors import MongoError

ALICE = frozenset({("alice", "clinic")})
BOB = frozenset({("bob", "clinic")})


def open_cursor(registry: CursorRegistry) -> int:
    docs = iter([{"_id": i} for i in range(10)])
    cursor_id, first = registry.open("clinic.notes", ALICE, 1, docs, batch_size=2)
    assert [d["_id"] for d in first] == [0, 1]
    return cursor_id


def test_idle_cursors_close_after_ten_minutes():
    assert IDLE_TIMEOUT_SECONDS == 600
    registry = CursorRegistry()
    cursor_id = open_cursor(registry)
    assert registry.reap() == 0
    registry._cursors[cursor_id].last_used -= IDLE_TIMEOUT_SECONDS + 1
    assert registry.reap() == 1
    with pytest.raises(MongoError) as info:
        registry.get_more(cursor_id, "clinic.notes", ALICE, None)
    assert info.value.code == 43


def test_a_used_cursor_stays_open():
    registry = CursorRegistry()
    cursor_id = open_cursor(registry)
    registry._cursors[cursor_id].last_used -= IDLE_TIMEOUT_SECONDS - 5
    _, batch = registry.get_more(cursor_id, "clinic.notes", ALICE, 2)
    assert [d["_id"] for d in batch] == [2, 3]
    assert registry.reap() == 0


def test_only_the_owner_continues_or_kills_a_cursor():
    registry = CursorRegistry()
    cursor_id = open_cursor(registry)
    with pytest.raises(MongoError) as info:
        registry.get_more(cursor_id, "clinic.notes", BOB, None)
    assert info.value.code == 13
    assert registry.kill([cursor_id], BOB) == ([], [cursor_id])
    assert registry.kill([cursor_id], ALICE) == ([cursor_id], [])
