"""A plain-text progress bar with an ETA for the long steps of training (feature building, epochs).

Why not tqdm: the training tools print their own lines (folds, epochs, scores) between updates,
and the bar must stay below them; and one small class is less than another dependency. On a
terminal the bar is redrawn in place and everything printed meanwhile appears above it (stdout is
routed through the bar while it is shown); into a file or a pipe (a log, `tee`, CI) it becomes a
line every `interval` seconds and one at the end, never carriage returns.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TextIO, TypeVar

T = TypeVar("T")
BAR_WIDTH = 24


def clock_text(seconds: float) -> str:
    """1:05 or 1:02:03: minutes and hours a user reads at a glance."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """`total` units of work (clips, epochs) under a `label`; use as a context manager.

    `drop(n)` takes units off the total that will not be done (an early stop), so the ETA, the
    elapsed time per unit done times the units left, does not count them."""

    def __init__(self, total: int, label: str, unit: str, *, stream: TextIO | None = None, show: bool = True,
                 interval: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.label, self.unit, self.done = total, label, unit, 0
        self.stream = stream if stream is not None else sys.stdout
        self.show, self.clock = show, clock
        self.tty = show and self.stream.isatty()
        self.interval = 0.2 if self.tty else interval  # redraws on a terminal, lines elsewhere
        self.started = self.last = 0.0
        self._visible = False  # the bar is on the terminal's last line
        self._saved_stdout: TextIO | None = None

    def __enter__(self) -> Progress:
        self.started = self.last = self.clock()
        if self.tty and self.stream is sys.stdout:
            self._saved_stdout = sys.stdout
            sys.stdout = _Above(self)
        self._update(force=self.tty)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._saved_stdout is not None:
            sys.stdout = self._saved_stdout
        if not self.show:
            return
        if self.tty:
            self._draw()
            self.stream.write("\n")
        elif kind is None:
            self.stream.write(f"{self.label}: {self.done} {self.unit} in {clock_text(self.clock() - self.started)}\n")
        self.stream.flush()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._update()

    def drop(self, n: int) -> None:
        self.total = max(self.done, self.total - n)
        self._update()

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """The items, one unit each as it is consumed."""
        for item in items:
            yield item
            self.advance()

    def text(self) -> str:
        """'37/120 epochs (31 %), 0:12 elapsed, ETA 0:27': the bar's numbers, in words."""
        elapsed = self.clock() - self.started
        share = self.done / self.total if self.total else 1.0
        eta = (f"ETA {clock_text(elapsed / self.done * (self.total - self.done))}" if self.done else "ETA --:--")
        return (f"{self.done}/{self.total} {self.unit} ({100 * share:.0f} %), {clock_text(elapsed)} elapsed, "
                + ("done" if self.done >= self.total else eta))

    def _update(self, force: bool = False) -> None:
        if not self.show:
            return
        now = self.clock()
        finished = self.done >= self.total
        if not force and now - self.last < self.interval and not (self.tty and finished):
            return
        self.last = now
        if self.tty:
            self._draw()
        elif self.done and not finished:  # a line now and then; the final one comes from __exit__
            self.stream.write(f"{self.label}: {self.text()}\n")
            self.stream.flush()

    def _draw(self) -> None:
        filled = round(BAR_WIDTH * self.done / self.total) if self.total else BAR_WIDTH
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.text()}\x1b[K")
        self.stream.flush()
        self._visible = True

    def _clear(self) -> None:
        if self._visible:
            self.stream.write("\r\x1b[K")
            self._visible = False


class _Above(io.TextIOBase):
    """sys.stdout while a bar is on the terminal: what is printed goes above the bar, which is
    redrawn under each finished line."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def write(self, text: str) -> int:
        self.progress._clear()
        written = self.progress.stream.write(text)
        if text.endswith("\n"):
            self.progress._draw()
        return written

    def flush(self) -> None:
        self.progress.stream.flush()

    def isatty(self) -> bool:
        return True
