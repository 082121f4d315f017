"""Audio sources: what every source promises the daemon (app.build picks one for a config).

A source yields mono chunks at the model's sample rate (int16 or float32: the Recogniser takes
either). It also yields an empty chunk at least every HEARTBEAT_S while no audio arrives (a
stalled microphone, a quiet pipe), so the daemon keeps answering commands and signals without a
second thread of control. `close()` may be called from any thread (a signal handler, an MQTT
command) and makes `chunks()` end soon. `health` is what the retained state reports.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

HEARTBEAT_S = 0.25
EMPTY = np.zeros(0, dtype=np.float32)


@dataclass
class SourceHealth:
    """Mutable status shared with the daemon: written by the capture side, read for the state."""

    ok: bool = True
    error: str | None = None
    overflows: int = 0  # input overflows (audio lost) since start

    def fail(self, error: str) -> None:
        self.ok, self.error = False, error

    def recover(self) -> None:
        self.ok, self.error = True, None


class AudioSource:
    """Base class: a stoppable iterator of chunks at `sample_rate` with a health report."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.health = SourceHealth()
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Ask `chunks()` to end; safe from any thread or a signal handler."""
        self._closed.set()

    def chunks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the log: what is being listened to."""
        return type(self).__name__
