"""Streaming polyphase resampler for capture devices that cannot open at the model's rate.

Why not call `scipy.signal.resample_poly` per chunk: it treats every chunk as a whole signal and
pads both ends with zeros, so each chunk boundary gets a click and the result depends on the chunk
size. This resampler uses the same filter (Kaiser-windowed FIR, beta 5, ten zero crossings per side
of the slower rate) and the same zero-delay alignment, but keeps the input history between calls:
its output for interior samples equals resample_poly's on the whole signal, and feeding the same
audio in any chunk sizes gives bit-identical output (every output sample is computed with the same
operations in the same order, whatever the chunk).
"""

from __future__ import annotations

from math import gcd

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edge_ser.errors import ConfigError

KAISER_BETA = 5.0  # resample_poly's default window
TILED_BYTES = 8 << 20  # largest table of sub-filters tiled for slicing (44.1 kHz in 0.1 s chunks: ~0.8 MB)


def lowpass_taps(count: int, cutoff: float) -> np.ndarray:
    """Kaiser-windowed sinc low-pass FIR with unit DC gain, `cutoff` as a fraction of Nyquist: the
    filter `scipy.signal.firwin(count, cutoff, window=("kaiser", 5.0))` designs (a test compares
    them), written out so a device whose microphone opens at 44.1 or 48 kHz does not import
    scipy.signal, about 50 MB of resident memory and half a second of CPU, for these few lines."""
    offsets = np.arange(count) - (count - 1) / 2.0
    taps: np.ndarray = cutoff * np.sinc(cutoff * offsets) * np.kaiser(count, KAISER_BETA)
    taps /= taps.sum()
    return taps


class StreamResampler:
    """Push chunks at `rate_in`, get the samples at `rate_out` they complete; `flush` at the end."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ConfigError(f"resampler: rates must be positive, got {rate_in} -> {rate_out}")
        g = gcd(rate_in, rate_out)
        self.rate_in, self.rate_out = rate_in, rate_out
        self.up, self.down = rate_out // g, rate_in // g
        max_rate = max(self.up, self.down)
        self._half = 10 * max_rate
        taps = np.ones(1) if self.passthrough else lowpass_taps(2 * self._half + 1, 1.0 / max_rate) * self.up
        # Polyphase bank: phase p holds taps p, p+up, p+2up, ... (zero-padded to equal length).
        self._taps_per_phase = -(-len(taps) // self.up)
        flat = np.zeros(self.up * self._taps_per_phase)
        flat[: len(taps)] = taps
        bank = flat.reshape(self._taps_per_phase, self.up).T  # (up, taps_per_phase)
        # Output m uses sub-filter (m * down + half) % up, which repeats every `up` outputs: the
        # sub-filters of outputs 0..up-1 in that order, oldest input's tap first, tiled as far as a
        # call needs (`_taps_for`), so a call's filters are a slice of this table, never a gather.
        order = (np.arange(self.up) * self.down + self._half) % self.up
        self._cycle = np.ascontiguousarray(bank[order, ::-1])
        self._tiled = self._cycle
        # Input history from global index _base; it starts with zeros before the first sample, which
        # is how resample_poly pads the start of a signal.
        self._history = np.zeros(self._taps_per_phase, dtype=np.float64)
        self._base = -self._taps_per_phase
        self._received = 0  # input samples seen
        self._emitted = 0  # output samples produced

    @property
    def passthrough(self) -> bool:
        return self.up == self.down

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add input samples (float); return every output sample whose filter support is complete."""
        x = np.asarray(chunk, dtype=np.float64).reshape(-1)
        if self.passthrough:
            return x.astype(np.float32)
        self._history = np.concatenate([self._history, x])
        self._received += len(x)
        # Output m needs inputs up to floor((m*down + half) / up).
        ready = (self._received * self.up - self._half - 1) // self.down + 1 if self._received else 0
        return self._produce(max(ready, self._emitted))

    def flush(self) -> np.ndarray:
        """End of stream: the remaining outputs, with zeros after the last input (as resample_poly)."""
        if self.passthrough:
            return np.zeros(0, dtype=np.float32)
        total = -(-self._received * self.up // self.down)  # ceil(n_in * up / down)
        pad = self._half // self.up + 2
        self._history = np.concatenate([self._history, np.zeros(pad)])
        out = self._produce(total)
        self._history = self._history[: len(self._history) - pad]
        return out

    def _produce(self, stop: int) -> np.ndarray:
        if stop <= self._emitted:  # nothing new is complete (a chunk shorter than the filter's reach)
            return np.zeros(0, dtype=np.float32)
        m = np.arange(self._emitted, stop, dtype=np.int64)
        oldest = (m * self.down + self._half) // self.up - (self._taps_per_phase - 1)  # first input used
        inputs = sliding_window_view(self._history, self._taps_per_phase)[oldest - self._base]
        # Each output is one row's dot product with its sub-filter, a fixed loop over the row
        # whatever the number of rows in this call: that is what makes the stream chunk-invariant
        # (a matrix product would not promise it).
        out: np.ndarray = np.einsum("ij,ij->i", inputs, self._taps_for(self._emitted, len(m)))
        self._emitted = stop
        self._trim()
        return out.astype(np.float32)

    def _taps_for(self, first: int, count: int) -> np.ndarray:
        """The sub-filters of outputs first..first+count-1, as rows: a slice of the tiled cycle, or
        gathered from the cycle where tiling would outgrow TILED_BYTES (rates that share few factors
        with the model's, like 44,099 Hz, have a cycle of thousands of long sub-filters)."""
        start = first % self.up
        if len(self._tiled) < start + count:
            tiles = -(-(start + count) // self.up)
            if tiles * self._cycle.nbytes > TILED_BYTES:
                return self._cycle[(start + np.arange(count)) % self.up]
            self._tiled = np.tile(self._cycle, (tiles, 1))
        return self._tiled[start : start + count]

    def _trim(self) -> None:
        """Drop history no future output can reach."""
        oldest_needed = (self._emitted * self.down + self._half) // self.up - self._taps_per_phase
        drop = oldest_needed - self._base
        if drop > 0:
            self._history = self._history[drop:]
            self._base += drop
