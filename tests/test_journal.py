"""Journaling: commits reach the WAL at once, the journal thread fsyncs them within the
commit interval, and a write with `j: true` is synced before it is acknowledged."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from cmdkit import InProcessServer

from phidb.commands.dispatcher import dispatch
from phidb.storage.sqlite import SQLiteEngine


def test_flush_syncs_what_was_committed(tmp_path: Path):
    engine = SQLiteEngine(str(tmp_path), os.urandom(32), commit_interval_ms=500)
    try:
        engine.insert("clinic", "notes", [{"_id": 1}], ordered=True)
        dbf = engine._files["clinic"]
        assert dbf.unsynced
        engine.flush("clinic")
        assert not dbf.unsynced
    finally:
        engine.close()


def test_the_journal_thread_syncs_within_the_interval(tmp_path: Path):
    engine = SQLiteEngine(str(tmp_path), os.urandom(32), commit_interval_ms=20)
    try:
        engine.insert("clinic", "notes", [{"_id": 1}], ordered=True)
        dbf = engine._files["clinic"]
        deadline = time.monotonic() + 2
        while dbf.unsynced and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not dbf.unsynced
    finally:
        engine.close()


def test_write_concern_j_syncs_before_the_reply(tmp_path: Path):
    node = InProcessServer(tmp_path, authorization=False)
    try:
        engine = node.engine
        synced: list[str | None] = []
        real_flush = engine.flush

        caller = threading.current_thread()

        def observed_flush(db: str | None = None) -> None:
            if threading.current_thread() is caller:  # not the journal thread's own syncs
                synced.append(db)
            real_flush(db)

        engine.flush = observed_flush  # type: ignore[method-assign]
        conn = node.connection()
        plain = {"insert": "notes", "documents": [{"_id": 1}], "$db": "clinic"}
        assert dispatch(node.state, conn, plain, "clinic")["n"] == 1
        assert synced == []
        journaled = {
            "insert": "notes",
            "documents": [{"_id": 2}],
            "writeConcern": {"w": 1, "j": True},
            "$db": "clinic",
        }
        assert dispatch(node.state, conn, journaled, "clinic")["n"] == 1
        assert synced == [None]
        assert not engine._files["clinic"].unsynced
    finally:
        node.close()
