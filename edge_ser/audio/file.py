"""An audio file (WAV; FLAC/AIFF/OGG with soundfile) as a microphone: for demos, tests and
replaying recordings through the daemon.

At real-time pace the daemon behaves exactly as with a live microphone (state rate limits, pause
and resume, timestamps); as fast as possible it is a batch run with the daemon's outputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge_ser.audio.pcm import chunked
from edge_ser.audio.source import AudioSource
from edge_ser.audio.wavfile import load_audio


class FileSource(AudioSource):
    """Chunks of an audio file (whatever `load_audio` reads), resampled to `sample_rate`."""

    def __init__(self, path: str | Path, sample_rate: int, chunk: int, *, realtime: bool = True,
                 loop: bool = False) -> None:
        super().__init__(sample_rate)
        self.path, self.chunk, self.realtime, self.loop = Path(path), chunk, realtime, loop
        self._signal = load_audio(self.path, sample_rate)  # raises AudioFileError naming the file

    def describe(self) -> str:
        pace = "real time" if self.realtime else "fast"
        return f"file {self.path} ({len(self._signal) / self.sample_rate:.1f} s, {pace}{', loop' if self.loop else ''})"

    def chunks(self) -> Iterator[np.ndarray]:
        sent = 0  # samples delivered, for the real-time schedule
        t0 = time.monotonic()
        while not self.closed:
            for chunk in chunked(self._signal, self.chunk):
                if self.realtime:
                    # Sleep until the chunk would have been captured; close() interrupts the wait.
                    due = t0 + (sent + len(chunk)) / self.sample_rate
                    if self._closed.wait(max(0.0, due - time.monotonic())):
                        return
                elif self.closed:
                    return
                sent += len(chunk)
                yield chunk
            if not self.loop:
                return
