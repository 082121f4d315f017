"""PCM helpers: the one int16-to-float scaling every source and stage uses, and chunking."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

PCM16_SCALE = np.float32(1.0 / 32768.0)  # a power of two: multiplying by it is exact


def pcm16_to_float(samples: np.ndarray) -> np.ndarray:
    """16-bit PCM to float32 in [-1, 1): the one scaling every source and stage uses."""
    out: np.ndarray = samples.astype(np.float32)
    out *= PCM16_SCALE
    return out


def chunked(signal: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Split a signal into chunks of `size` samples (the last may be shorter)."""
    for i in range(0, len(signal), size):
        yield signal[i : i + size]
