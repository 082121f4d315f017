"""Keys of the terminal view: choose a device and send it a command, as the window's buttons do.

Why: the terminal view is what a technician has on a headless kiosk over SSH, and the most common
thing to do there is exactly what a command is for: a new visitor steps up, so the device should
forget the last one's voice (`reset_adaptation`); or the kiosk must stop listening for a while.

Keys are read in cbreak mode (one key at a time, no echo, Ctrl-C still interrupts) and only when
the view owns a real terminal; through a pipe or in a log the view stays read-only.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO

KEY_COMMANDS = {"p": "pause", "u": "resume", "r": "reset_adaptation", "s": "status"}
QUIT_KEY = "q"
NEXT_KEY = "\t"
HELP = ("keys: 1-9 or Tab choose a device · r reset adaptation (a new visitor) · p pause · u resume · "
        "s status · q quit")


@dataclass
class Controls:
    """The chosen device and what the last key did; `send(device_id, command) -> id` publishes."""

    send: Callable[[str, str], str]
    selected: str | None = None
    message: str = ""

    def keep_valid(self, device_ids: list[str]) -> str | None:
        """The chosen device, or the first one when none is chosen or the chosen one is gone."""
        if self.selected not in device_ids:
            self.selected = device_ids[0] if device_ids else None
        return self.selected

    def press(self, key: str, device_ids: list[str], connected: bool) -> bool:
        """Act on one key; False when it asks to quit."""
        chosen = self.keep_valid(device_ids)
        if key == QUIT_KEY:
            return False
        if key == NEXT_KEY and chosen is not None:
            self.selected = device_ids[(device_ids.index(chosen) + 1) % len(device_ids)]
        elif key.isdigit() and key != "0":
            index = int(key) - 1
            if index < len(device_ids):
                self.selected = device_ids[index]
            else:
                self.message = f"no device {key}: {len(device_ids)} shown"
        elif key in KEY_COMMANDS:
            command = KEY_COMMANDS[key]
            if chosen is None:
                self.message = f"{command}: no device to send it to"
            elif not connected:
                self.message = f"{command} not sent to {chosen}: the monitor is not connected"
            else:
                self.message = f"sent {command} to {chosen} (id {self.send(chosen, command)}), waiting for its result"
        return True


def read_keys(stream: TextIO, timeout: float) -> str:
    """The keys typed within `timeout` seconds ('' if none): returns as soon as one arrives."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return os.read(stream.fileno(), 64).decode(errors="replace") if ready else ""


@contextlib.contextmanager
def cbreak(stream: TextIO) -> Iterator[None]:
    """Keys without Enter and without echo for the duration; the terminal is restored on any exit."""
    import termios
    import tty

    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def interactive(stream: TextIO | None) -> bool:
    """Keys are read only from a real terminal (not a pipe, not /dev/null under systemd)."""
    return stream is not None and stream.isatty() and sys.platform != "win32"
