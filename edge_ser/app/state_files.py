"""Files the daemon keeps in its state directory (sequence numbers, speaker adaptation)."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash or power cut leaves the old or the new content, never
    half of one: written beside it first (the same name plus ".tmp", so files that differ only in
    their last suffix, like seq.kiosk and seq.hall, never share a temporary), then renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
