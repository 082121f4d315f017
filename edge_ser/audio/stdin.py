"""Raw 16-bit little-endian mono PCM on stdin: `arecord -f S16_LE -r 16000 -c 1 | edge-ser run --stdin`.

The daemon's own thread reads the pipe, waiting in `select` at most HEARTBEAT_S at a time: the
daemon still ticks (commands, signals) while the pipe is quiet, a writer that outpaces it is held
back by the pipe itself, and it ends cleanly when the writer closes it. No reader thread and no
queue: at a chunk every 64 ms, handing data between threads cost more CPU than the recognition.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterator

import numpy as np

from edge_ser.audio.pcm import pcm16_to_float
from edge_ser.audio.resampler import StreamResampler
from edge_ser.audio.source import EMPTY, HEARTBEAT_S, AudioSource


class StdinSource(AudioSource):
    """PCM from a file descriptor (stdin by default) at `input_rate`, resampled to `sample_rate`."""

    def __init__(self, input_rate: int, sample_rate: int, chunk_ms: int, fd: int | None = None) -> None:
        super().__init__(sample_rate)
        self.input_rate = input_rate
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._read_size = 2 * max(1, input_rate * chunk_ms // 1000)

    def describe(self) -> str:
        return f"stdin (raw s16le mono at {self.input_rate} Hz)"

    def _read(self) -> bytes | None:
        """The next bytes (b"" at end of input), or None when nothing arrived within a heartbeat."""
        try:
            ready, _, _ = select.select([self._fd], [], [], HEARTBEAT_S)
            return os.read(self._fd, self._read_size) if ready else None
        except OSError as exc:
            self.health.fail(f"stdin: {exc.strerror or exc}")
            return b""

    def chunks(self) -> Iterator[np.ndarray]:
        resampler = StreamResampler(self.input_rate, self.sample_rate)
        carry = b""  # an odd byte left over from a read that split a sample
        while not self.closed:
            data = self._read()
            if data is None:
                yield EMPTY
                continue
            if not data:
                break
            data, carry = carry + data, b""
            if len(data) % 2:
                data, carry = data[:-1], data[-1:]
            samples = np.frombuffer(data, dtype="<i2")
            yield samples if resampler.passthrough else resampler.push(pcm16_to_float(samples))
        if not resampler.passthrough:
            yield resampler.flush()
