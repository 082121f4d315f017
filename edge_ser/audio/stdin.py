"""Raw 16-bit little-endian mono PCM on stdin: `arecord -f S16_LE -r 16000 -c 1 | edge-ser run --stdin`.

A reader thread owns the blocking reads, so the daemon still ticks (commands, signals) while the
pipe is quiet, and ends cleanly when the writer closes it.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Iterator

import numpy as np

from edge_ser.audio.pcm import pcm16_to_float
from edge_ser.audio.resampler import StreamResampler
from edge_ser.audio.source import EMPTY, HEARTBEAT_S, AudioSource

_EOF = b""


class StdinSource(AudioSource):
    """PCM from a file descriptor (stdin by default) at `input_rate`, resampled to `sample_rate`."""

    def __init__(self, input_rate: int, sample_rate: int, chunk_ms: int, fd: int | None = None) -> None:
        super().__init__(sample_rate)
        self.input_rate = input_rate
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._read_size = 2 * max(1, input_rate * chunk_ms // 1000)
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=64)

    def describe(self) -> str:
        return f"stdin (raw s16le mono at {self.input_rate} Hz)"

    def _reader(self) -> None:
        while True:
            try:
                data = os.read(self._fd, self._read_size)
            except OSError as exc:
                self.health.fail(f"stdin: {exc.strerror or exc}")
                data = _EOF
            self._queue.put(data)  # blocks when the daemon falls behind: back-pressure on the pipe
            if not data:
                return

    def chunks(self) -> Iterator[np.ndarray]:
        threading.Thread(target=self._reader, name="stdin-reader", daemon=True).start()
        resampler = StreamResampler(self.input_rate, self.sample_rate)
        carry = b""  # an odd byte left over from a read that split a sample
        while not self.closed:
            try:
                data = self._queue.get(timeout=HEARTBEAT_S)
            except queue.Empty:
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
