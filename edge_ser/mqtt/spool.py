"""Durable, bounded FIFO of event payloads waiting for a broker acknowledgement.

Every event is written here before any attempt to send it and deleted by row id only when the
broker's PUBACK arrives, so an outage, a crash or a restart loses nothing that was accepted —
up to the bound. Past ``max_events`` the OLDEST rows are dropped (a device that was offline for
days should report what is happening now, not fill its disk), and every drop is added to a
counter persisted in the same database, so the loss is visible in ``stats()`` and the state.

Durability choice: WAL journal with ``synchronous=NORMAL``. In WAL mode that is crash-safe for the
*process* (a killed daemon loses no committed row) and the database can never be corrupted by a
power cut; what a power cut can cost is the last commits before it — a just-spooled event, or the
deletion of an acknowledged one (re-sent later, which at-least-once consumers already tolerate).
``FULL`` would fsync on every commit; draining a long outage deletes one row per PUBACK, and on
SD-card storage that fsync rate would stretch a drain of thousands of events into minutes.

A spool file that SQLite cannot read at start (a damaged SD card, a file that is not a database)
is renamed aside as ``<name>.corrupt-<UTC time>`` with an error in the log, and an empty spool
takes its place: the daemon must start, and the old file is kept for whoever wants to dig. A
write that fails (disk full, I/O error) loses that one event: it is counted in ``dropped()`` at
once and the count is persisted with the next write that succeeds. ``degraded()`` says in words
when events are being lost (the last write failed, or the spool is at its bound and every new
event drops the oldest), and is None again once that stops, so the state can say so.

``path=None`` keeps the spool in memory: same semantics within one process, nothing survives it.
All methods are thread-safe (one connection behind a lock): paho callbacks, the sender thread
and the audio thread all touch the spool.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("edge_ser.mqtt")


class SpooledEvent(NamedTuple):
    row_id: int
    event_id: str
    payload: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('dropped', 0);
"""


class _Corrupt(sqlite3.DatabaseError):
    """PRAGMA quick_check found damage that opening the file did not."""


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # extended code: the primary one is its low byte
    return isinstance(exc, _Corrupt) or (code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT,
                                                                              sqlite3.SQLITE_NOTADB))


class Spool:
    """SQLite-backed event queue; see the module docstring for the guarantees."""

    def __init__(self, path: str | Path | None, max_events: int) -> None:
        if max_events < 1:
            raise ValueError(f"spool max_events must be >= 1, got {max_events}")
        self.path = None if path is None else Path(path)
        self.max_events = max_events
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            # Only a damaged file is set aside: a full disk or a permission problem is no reason to
            # give up the events in a good one.
            if self.path is None or not _is_corruption(exc):
                raise
            self._set_aside(exc)
            self._open()
        self._unwritten = 0  # events lost to failed writes, not yet added to the persisted counter
        self._write_error: str | None = None  # why the last append failed; None once one succeeds
        # A smaller bound than the previous run's backlog applies at once.
        with self._lock:
            with self._db:
                dropped = self._drop_oldest(self._pending - self.max_events)
            self._pending -= dropped
            self._dropped += dropped

    def _open(self) -> None:
        """Connect, check the file, create the tables and read the cached counts."""
        self._db = sqlite3.connect(":memory:" if self.path is None else str(self.path), check_same_thread=False)
        try:
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            verdict = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise _Corrupt(f"quick_check: {verdict}")
            self._db.executescript(_SCHEMA)
            # Cached so stats() and the bound check never scan the table; only changed after a commit.
            self._pending: int = self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            self._dropped: int = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()[0]
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    def _set_aside(self, exc: sqlite3.DatabaseError) -> None:
        """Move an unreadable spool file (and its WAL and shared-memory files) out of the way."""
        assert self.path is not None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = self.path.with_name(self.path.name + suffix)
            if part.exists():
                part.replace(aside.with_name(aside.name + suffix))
        log.error("event spool %s is unreadable (%s): moved it to %s and started an empty spool; "
                  "events still in it will not be sent", self.path, exc, aside)

    def _drop_oldest(self, count: int) -> int:
        """Delete the ``count`` oldest rows and add them to the dropped counter (inside a transaction)."""
        if count <= 0:
            return 0
        self._db.execute("DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?)", (count,))
        self._db.execute("UPDATE counters SET value = value + ? WHERE name = 'dropped'", (count,))
        return count

    def append(self, event_id: str, payload: str) -> int:
        """Store one event (committed before returning) and return its row id.

        The insert and the trim share one transaction, so the bound holds even after a crash. A
        failed write (disk full) raises ``sqlite3.Error`` and counts the event as dropped.
        """
        with self._lock:
            try:
                with self._db:
                    cur = self._db.execute(
                        "INSERT INTO events (event_id, payload, created) VALUES (?, ?, ?)",
                        (event_id, payload, time.time()),
                    )
                    dropped = self._drop_oldest(self._pending + 1 - self.max_events)
                    if self._unwritten:  # lost while the disk was full: persisted now that it is not
                        self._db.execute("UPDATE counters SET value = value + ? WHERE name = 'dropped'",
                                         (self._unwritten,))
            except sqlite3.Error as exc:
                self._unwritten += 1
                self._dropped += 1
                self._write_error = f"cannot write the event spool {self.path or ':memory:'}: {exc}"
                raise
            self._unwritten = 0
            self._write_error = None
            self._pending += 1 - dropped
            self._dropped += dropped
            return int(cur.lastrowid or 0)

    def peek(self, after_id: int, limit: int) -> list[SpooledEvent]:
        """The oldest ``limit`` events with a row id greater than ``after_id``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, event_id, payload FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        return [SpooledEvent(*row) for row in rows]

    def remove(self, row_ids: Iterable[int]) -> int:
        """Delete acknowledged rows; ids already gone (dropped by the bound) are ignored. Returns the count."""
        ids = [(int(r),) for r in row_ids]
        if not ids:
            return 0
        with self._lock:
            before = self._db.total_changes
            with self._db:
                self._db.executemany("DELETE FROM events WHERE id = ?", ids)
            removed = self._db.total_changes - before
            self._pending -= removed
        return removed

    def pending(self) -> int:
        """Events not yet acknowledged. Like ``dropped()``, answered from memory, so it works after close()."""
        with self._lock:
            return self._pending

    def dropped(self) -> int:
        """Events dropped by the bound over the spool file's whole life (persisted)."""
        with self._lock:
            return self._dropped

    def degraded(self) -> str | None:
        """Why events are being lost right now, or None: a failing write, or a full spool."""
        with self._lock:
            if self._write_error is not None:
                return self._write_error
            if self._pending >= self.max_events:
                return f"event spool full ({self.max_events} events): each new event drops the oldest"
            return None

    def close(self) -> None:
        with self._lock:
            self._db.close()
