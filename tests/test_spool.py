"""The event spool: order, bound, persistence across reopen, thread safety."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from edge_ser.mqtt.spool import Spool


def _ids(spool: Spool) -> list[str]:
    return [row.event_id for row in spool.peek(0, 1_000_000)]


def test_fifo_order_and_remove_by_row_id() -> None:
    spool = Spool(None, 100)
    rows = [spool.append(f"e{i}", f'{{"i":{i}}}') for i in range(5)]
    assert rows == sorted(rows)
    assert spool.pending() == 5
    assert [r.payload for r in spool.peek(0, 2)] == ['{"i":0}', '{"i":1}']
    assert [r.event_id for r in spool.peek(rows[1], 2)] == ["e2", "e3"]
    assert spool.remove([rows[0], rows[2]]) == 2
    assert _ids(spool) == ["e1", "e3", "e4"]
    assert spool.pending() == 3


def test_remove_ignores_rows_already_gone() -> None:
    spool = Spool(None, 10)
    row = spool.append("e0", "{}")
    assert spool.remove([row]) == 1
    assert spool.remove([row, 12345]) == 0
    assert spool.pending() == 0


def test_overflow_drops_oldest_and_counts() -> None:
    spool = Spool(None, 3)
    for i in range(7):
        spool.append(f"e{i}", "{}")
    assert _ids(spool) == ["e4", "e5", "e6"]
    assert spool.pending() == 3
    assert spool.dropped() == 4


def test_a_spool_at_its_bound_is_degraded_until_it_drains() -> None:
    spool = Spool(None, 3)
    for i in range(2):
        spool.append(f"e{i}", "{}")
    assert spool.degraded() is None
    spool.append("e2", "{}")  # full: the next event would drop the oldest
    assert spool.degraded() == "event spool full (3 events): each new event drops the oldest"
    spool.remove([row.row_id for row in spool.peek(0, 1)])
    assert spool.degraded() is None


def test_file_spool_survives_reopen_with_counter(tmp_path: Path) -> None:
    path = tmp_path / "state" / "spool.sqlite"  # parent created on demand
    spool = Spool(path, 4)
    for i in range(6):
        spool.append(f"e{i}", "{}")
    spool.close()

    reopened = Spool(path, 4)
    assert _ids(reopened) == ["e2", "e3", "e4", "e5"]
    assert reopened.dropped() == 2
    # Row ids never go back, even once every row is gone (AUTOINCREMENT), so order is global.
    last = reopened.peek(0, 4)[-1].row_id
    reopened.remove(row.row_id for row in reopened.peek(0, 4))
    assert reopened.append("e6", "{}") > last
    reopened.close()

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_smaller_bound_on_reopen_trims_at_once(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, 10)
    for i in range(5):
        spool.append(f"e{i}", "{}")
    spool.close()
    smaller = Spool(path, 2)
    assert _ids(smaller) == ["e3", "e4"]
    assert smaller.dropped() == 3
    smaller.close()


def test_counts_still_readable_after_close() -> None:
    spool = Spool(None, 1)
    spool.append("a", "{}")
    spool.append("b", "{}")
    spool.close()
    assert (spool.pending(), spool.dropped()) == (1, 1)


def test_concurrent_appends_and_removes_keep_counts_exact(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", 1_000_000)
    per_thread = 200

    def producer(tag: str) -> None:
        for i in range(per_thread):
            spool.append(f"{tag}{i}", "{}")

    def consumer() -> None:
        removed = 0
        while removed < per_thread:
            removed += spool.remove(row.row_id for row in spool.peek(0, min(10, per_thread - removed)))

    threads = [threading.Thread(target=producer, args=(t,)) for t in "abc"] + [threading.Thread(target=consumer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert spool.pending() == 2 * per_thread
    assert len(_ids(spool)) == 2 * per_thread
    spool.close()


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_events"):
        Spool(None, 0)


@pytest.mark.parametrize("damage", ["not a database", "torn page"])
def test_an_unreadable_spool_is_set_aside_and_a_new_one_starts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    path = tmp_path / "spool.sqlite"
    if damage == "not a database":
        path.write_bytes(b"this was never SQLite\n" * 300)
    else:
        spool = Spool(path, 100)
        for i in range(300):
            spool.append(f"e{i}", "x" * 200)
        spool.close()
        with sqlite3.connect(path) as db:  # fold the WAL into the file, then scribble over a table page
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        blob = bytearray(path.read_bytes())
        blob[4096 * 2 : 4096 * 2 + 600] = b"\xa5" * 600
        path.write_bytes(bytes(blob))
    original = path.read_bytes()
    with caplog.at_level("ERROR", logger="edge_ser.mqtt"):
        spool = Spool(path, 100)
    assert spool.pending() == 0 and spool.dropped() == 0
    spool.append("fresh", "{}")
    assert _ids(spool) == ["fresh"]
    spool.close()
    (aside,) = tmp_path.glob("spool.sqlite.corrupt-*[0-9TZ]")
    assert aside.read_bytes() == original  # kept as it was, for whoever wants to dig
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"event spool {path} is unreadable" in line and str(aside) in line
    assert Spool(path, 100).pending() == 1  # the new file is a good one


def test_a_failed_write_counts_the_event_as_dropped_and_persists_the_count_later(tmp_path: Path) -> None:
    """Disk full, simulated with SQLite's own page limit: the same error path as a full disk."""
    path = tmp_path / "spool.sqlite"
    spool = Spool(path, 1000)
    spool.append("before", "{}")
    pages = spool._db.execute("PRAGMA page_count").fetchone()[0]
    spool._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(sqlite3.Error):
        spool.append("lost", "x" * 100_000)  # needs pages the "disk" does not have
    assert spool.dropped() == 1 and spool.pending() == 1
    assert f"cannot write the event spool {path}: database or disk is full" == spool.degraded()
    spool._db.execute("PRAGMA max_page_count = 1073741823")  # space is back
    spool.append("after", "{}")
    assert spool.degraded() is None
    assert _ids(spool) == ["before", "after"]
    spool.close()
    assert Spool(path, 1000).dropped() == 1  # persisted with the first write that succeeded


def test_a_spool_that_cannot_be_opened_is_a_one_line_config_error(tmp_path: Path) -> None:
    from edge_ser.errors import ConfigError
    from edge_ser.mqtt.publisher import MqttPublisher
    from edge_ser.mqtt.settings import MqttSettings

    where = tmp_path / "a-directory"
    where.mkdir()
    with pytest.raises(ConfigError, match=f"cannot open the event spool {where}: unable to open database file"):
        MqttPublisher(MqttSettings(spool_path=str(where)), model_name="m", model_version="1", labels=["a"])
    assert list(where.iterdir()) == []  # nothing set aside or created: the path is wrong, not the file
