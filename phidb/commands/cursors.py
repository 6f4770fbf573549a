"""Open cursors: results a client continues with getMore, owned by the users who
opened them, closed after ten minutes idle as MongoDB does."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import bson

from phidb.errors import CURSOR_NOT_FOUND, UNAUTHORIZED, MongoError
from phidb.storage.engine import Deadline

Document = dict[str, Any]
IDLE_TIMEOUT_SECONDS = 600.0
# A reply batch stays under the 16 MiB document limit with room for the envelope.
MAX_BATCH_BYTES = 16 * 1024 * 1024 - 16 * 1024
DEFAULT_FIRST_BATCH = 101


@dataclass
class Cursor:
    cursor_id: int
    ns: str
    owner: frozenset[tuple[str, str]]
    connection_id: int
    source: Iterator[Document]
    # maxTimeMS is a budget for the cursor's whole life (find plus getMores): the
    # deadline the source checks is armed only while a batch is being produced.
    deadline: Deadline | None = None
    time_left: float | None = None
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    exhausted: bool = False
    _peeked: list[Document] = field(default_factory=list)

    def next_batch(self, batch_size: int | None) -> list[Document]:
        """Up to `batch_size` documents (no count limit when None or 0), within the
        reply size limit. Sets `exhausted` when nothing is left."""
        batch: list[Document] = []
        size = 0
        limit = batch_size or None
        while limit is None or len(batch) < limit:
            doc = self._peeked.pop() if self._peeked else next(self.source, None)
            if doc is None:
                self.exhausted = True
                break
            # A batch always holds at least one document, so sizes are measured
            # only once a second one arrives: a point read encodes nothing here.
            if batch:
                if len(batch) == 1:
                    size = len(bson.encode(batch[0]))
                doc_size = len(bson.encode(doc))
                if size + doc_size > MAX_BATCH_BYTES:
                    self._peeked.append(doc)
                    break
                size += doc_size
            batch.append(doc)
        if not self.exhausted and not self._peeked:
            nxt = next(self.source, None)
            if nxt is None:
                self.exhausted = True
            else:
                self._peeked.append(nxt)
        self.last_used = time.monotonic()
        return batch

    def pause(self) -> None:
        """Stop the maxTimeMS clock between batches."""
        if self.deadline is not None and self.deadline.expires_at is not None:
            self.time_left = max(0.0, self.deadline.expires_at - time.monotonic())
            self.deadline.expires_at = None

    def resume(self) -> None:
        if self.deadline is not None and self.time_left is not None:
            self.deadline.expires_at = time.monotonic() + self.time_left


class CursorRegistry:
    def __init__(self) -> None:
        self._cursors: dict[int, Cursor] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cursors)

    def open(
        self,
        ns: str,
        owner: frozenset[tuple[str, str]],
        connection_id: int,
        source: Iterator[Document],
        batch_size: int | None,
        single_batch: bool = False,
        deadline: Deadline | None = None,
    ) -> tuple[int, list[Document]]:
        """Return (cursor id, first batch); id 0 when nothing is left to fetch.

        `batch_size` None means MongoDB's default first batch (101 documents); 0
        means an empty first batch with the cursor left open. `deadline` is the
        one the source checks; it keeps counting down across getMores.
        """
        cursor = Cursor(0, ns, owner, connection_id, source, deadline=deadline)
        if batch_size == 0 and not single_batch:
            first: list[Document] = []
        else:
            first = cursor.next_batch(DEFAULT_FIRST_BATCH if batch_size is None else batch_size)
        if cursor.exhausted or single_batch:
            return 0, first
        cursor.pause()
        with self._lock:
            while True:
                cid = secrets.randbits(62) + 1  # positive Int64, never 0
                if cid not in self._cursors:
                    break
            cursor.cursor_id = cid
            self._cursors[cid] = cursor
        return cid, first

    def get_more(
        self, cursor_id: int, ns: str, owner: frozenset[tuple[str, str]], batch_size: int | None
    ) -> tuple[int, list[Document]]:
        cursor = self._owned(cursor_id, owner)
        if cursor.ns != ns:
            raise MongoError(
                UNAUTHORIZED,
                f"Requested getMore on namespace '{ns}', but cursor belongs to a different"
                " namespace",
            )
        with cursor.lock:
            cursor.resume()
            try:
                batch = cursor.next_batch(batch_size)
            except MongoError:
                self._remove(cursor_id)
                raise
            finally:
                cursor.pause()
        if cursor.exhausted:
            self._remove(cursor_id)
            return 0, batch
        return cursor_id, batch

    def kill(
        self, cursor_ids: list[int], owner: frozenset[tuple[str, str]]
    ) -> tuple[list[int], list[int]]:
        """Returns (killed, not found). Another user's cursor counts as not found.

        Limitation: that holds for every caller, root included; MongoDB instead fails the
        command with Unauthorized, or lets a holder of `killAnyCursor` kill the cursor.
        """
        killed, not_found = [], []
        for cid in cursor_ids:
            with self._lock:
                cursor = self._cursors.get(cid)
                if cursor is not None and cursor.owner == owner:
                    del self._cursors[cid]
                    killed.append(cid)
                else:
                    not_found.append(cid)
        return killed, not_found

    def close_for(self, connection_id: int, owner: frozenset[tuple[str, str]]) -> int:
        """Drop the cursors a connection opened as `owner` (logout, change of user)."""
        with self._lock:
            doomed = [
                cid
                for cid, c in self._cursors.items()
                if c.connection_id == connection_id and c.owner == owner
            ]
            for cid in doomed:
                del self._cursors[cid]
        return len(doomed)

    def close_namespace(self, ns: str) -> int:
        """Drop every cursor on `ns` (the collection was dropped or renamed), or on
        every collection of a database when `ns` is `db.`."""
        with self._lock:
            if ns.endswith("."):
                doomed = [cid for cid, c in self._cursors.items() if c.ns.startswith(ns)]
            else:
                doomed = [cid for cid, c in self._cursors.items() if c.ns == ns]
            for cid in doomed:
                del self._cursors[cid]
        return len(doomed)

    def reap(self, idle_seconds: float = IDLE_TIMEOUT_SECONDS) -> int:
        cutoff = time.monotonic() - idle_seconds
        with self._lock:
            doomed = [cid for cid, c in self._cursors.items() if c.last_used < cutoff]
            for cid in doomed:
                del self._cursors[cid]
        return len(doomed)

    def _owned(self, cursor_id: int, owner: frozenset[tuple[str, str]]) -> Cursor:
        with self._lock:
            cursor = self._cursors.get(cursor_id)
        if cursor is None:
            raise MongoError(CURSOR_NOT_FOUND, f"cursor id {cursor_id} not found")
        if cursor.owner != owner:
            raise MongoError(
                UNAUTHORIZED, f"cursor id {cursor_id} was not created by the authenticated user"
            )
        return cursor

    def _remove(self, cursor_id: int) -> None:
        with self._lock:
            self._cursors.pop(cursor_id, None)
