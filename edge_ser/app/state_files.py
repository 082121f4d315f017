"""Files the daemon keeps in its state directory (event spool, sequence numbers, speaker adaptation).

Each is kept per device id (`spool.<id>.sqlite`, `seq.<id>`, `adaptation.<id>.json`): one state
directory may serve runs under several ids (two daemons, or one restarted with another
`device.id`), and what one device queued or learnt must never be published or used as another's.
A device id is safe inside a file name because DeviceConfig refuses '/', control characters (NUL
among them) and the empty id, and the fixed prefix keeps "." and ".." from naming a directory.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("edge_ser.app.state")

# What SQLite keeps beside a database in WAL mode: committed rows not yet checkpointed live in -wal.
SQLITE_COMPANIONS = ("-wal", "-shm")


def device_file(state_dir: str | Path, legacy_name: str, device_id: str) -> Path:
    """The per-device file that replaces `legacy_name`: the id goes before its suffix, so
    spool.sqlite becomes spool.<id>.sqlite and keeps its type, and seq becomes seq.<id>."""
    legacy = Path(legacy_name)
    return Path(state_dir) / f"{legacy.stem}.{device_id}{legacy.suffix}"


def adopt_legacy(path: Path, legacy_name: str, what: str, companions: tuple[str, ...] = ()) -> None:
    """Rename the file from before per-device state (`legacy_name`, beside `path`) to `path` when
    `path` does not exist yet, so an upgrade loses nothing, and say so in a warning: the default log
    level shows it, and whoever reads it learns which file became whose.

    Whose the legacy file was is not recorded in it: it belongs to whichever device ran there, and
    the first id to start after the upgrade adopts it. That is right for a single-device install,
    the common case; with several ids on one directory the operator can tell from the warning.
    `companions` (SQLite's -wal and -shm) are moved first and the main file last: a crash between
    the renames leaves the legacy main file, which the next start adopts, and never a database
    separated from the rows still in its WAL. Each rename is atomic (one file system). A legacy
    file that another daemon adopted in the meantime is simply not there any more; one that cannot
    be renamed stays where it is, for a later start, and the device starts without it.
    """
    legacy = path.with_name(legacy_name)
    if path.exists() or not legacy.is_file():
        return
    try:
        for suffix in companions:
            part = legacy.with_name(legacy.name + suffix)
            if part.exists():
                os.replace(part, path.with_name(path.name + suffix))
        os.replace(legacy, path)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.warning("cannot adopt %s %s from before state was kept per device id (%s); starting without it",
                    what, legacy, exc)
        return
    log.warning("adopted %s %s from before state was kept per device id as %s", what, legacy, path)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash or power cut leaves the old or the new content, never
    half of one: written beside it first, then renamed over it. The temporary is the whole name
    hidden behind a dot (".seq.kiosk.tmp"): files that differ only in their last suffix never share
    one, and no device's own file can be named like it (device files start with their kind, so
    device "a.tmp"'s seq.a.tmp is not device "a"'s temporary)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
