"""The terminal view: the board as text, for an SSH session on a headless kiosk.

Plain ANSI only (cursor home, clear to end, the 8 basic colours), no curses: it must work in any
terminal a technician has, including a serial console. On a dumb terminal (``TERM=dumb``, or not
a tty) it prints a new frame only when something changed, with no escape codes at all, so the
output also reads well in a log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from edge_ser.monitor.colours import ansi
from edge_ser.monitor.devices import Device, Snapshot
from edge_ser.monitor.keys import HELP, Controls, cbreak, interactive, read_keys

BAR_WIDTH = 24
RECENT = 8  # utterances listed per device
HOME_AND_CLEAR = "\x1b[H\x1b[J"


def _paint(text: str, label: str | None, use_colour: bool, bold: bool = False) -> str:
    if not use_colour or label is None:
        return text
    return f"\x1b[{'1;' if bold else ''}{ansi(label)}m{text}\x1b[0m"


def _flag(value: bool | None, yes: str, no: str) -> str:
    return "?" if value is None else (yes if value else no)


def _device_lines(d: Device, use_colour: bool, marker: str = "") -> list[str]:
    online = _flag(d.online, "online", "OFFLINE")
    mode = _flag(d.paused, "paused", "listening")
    current = "-" if d.emotion is None else f"{d.emotion} {d.confidence or 0:.2f}"
    lines = [f"{marker}{d.device_id}  [{online}] [{mode}]  now: {_paint(current, d.emotion, use_colour, bold=True)}"
             + (f"  ({d.model})" if d.model else "")]
    fill, empty = ("█", "░") if use_colour else ("#", ".")
    for label, p in d.probabilities.items():
        n = round(max(0.0, min(1.0, p)) * BAR_WIDTH)
        lines.append(f"  {label:<10} {_paint(fill * n, label, use_colour)}{empty * (BAR_WIDTH - n)} {p:.2f}")
    recent = list(d.timeline)[-RECENT:]
    if recent:
        lines.append("  recent: " + " ".join(_paint(f"{u.label}({u.confidence:.2f})", u.label, use_colour)
                                             for u in recent))
    if d.last_result is not None:
        r = d.last_result
        verdict = "ok" if r.get("ok") else f"failed: {r.get('error')}"
        lines.append(f"  last command: {r.get('command')} -> {verdict}")
    return lines


def render(snapshot: Snapshot, use_colour: bool, controls: Controls | None = None) -> list[str]:
    """The frame for one snapshot, one string per line; with `controls`, the devices are numbered,
    the chosen one marked, and the keys and the last key's outcome shown at the bottom."""
    if snapshot.connected:
        head = "edge-ser monitor: connected"
    else:
        head = f"edge-ser monitor: DISCONNECTED ({snapshot.connection_error or 'not connected yet'})"
    lines = [head, f"{len(snapshot.devices)} device(s)", ""]
    chosen = controls.keep_valid([d.device_id for d in snapshot.devices]) if controls else None
    for number, d in enumerate(snapshot.devices, 1):
        marker = "" if controls is None else f"{'>' if d.device_id == chosen else ' '} {number} "
        lines += [*_device_lines(d, use_colour, marker), ""]
    if not snapshot.devices:
        lines += ["(no devices seen yet)", ""]
    lines += [f"warning: {w}" for w in snapshot.warnings[-3:]]
    if controls is not None:
        lines += [HELP] + ([controls.message] if controls.message else [])
    return lines


def wants_ansi(stream: TextIO) -> bool:
    """ANSI only on a real terminal that is not dumb (NO_COLOR, by convention, keeps it plain too)."""
    return stream.isatty() and os.environ.get("TERM", "dumb") != "dumb" and "NO_COLOR" not in os.environ


def run_terminal(snapshot: Callable[[], Snapshot], stop: threading.Event, *, out: TextIO = sys.stdout,
                 interval: float = 0.5, use_ansi: bool | None = None,
                 send: Callable[[str, str], str] | None = None, keys: TextIO | None = None) -> None:
    """Redraw every ``interval`` seconds until ``stop`` is set (or `q`): in place with ANSI, else on
    change. With `send` and `keys` a real terminal in ANSI mode, keys choose a device and send it a
    command (edge_ser.monitor.keys); a key redraws at once."""
    ansi_mode = wants_ansi(out) if use_ansi is None else use_ansi
    controls = Controls(send) if send is not None and ansi_mode and interactive(keys) else None
    with cbreak(keys) if controls is not None and keys is not None else contextlib.nullcontext():
        previous: list[str] | None = None
        while not stop.is_set():
            current = snapshot()
            frame = render(current, ansi_mode, controls)
            if ansi_mode:
                out.write(HOME_AND_CLEAR + "\n".join(frame) + "\n")
            elif frame != previous:
                out.write("\n".join(frame) + "\n" + "-" * 40 + "\n")
            previous = frame
            out.flush()
            if controls is None or keys is None:
                stop.wait(interval)
                continue
            device_ids = [d.device_id for d in current.devices]
            if not all(controls.press(key, device_ids, current.connected) for key in read_keys(keys, interval)):
                return
