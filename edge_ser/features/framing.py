"""Framing helpers shared by the MFCC and pitch columns and the voice gate.

Frames follow librosa's ``center=False`` convention: a ``frame_length`` window centred in an
``n_fft`` span. The transforms applied to them are in `edge_ser.features.fft`.
"""

from __future__ import annotations

import numpy as np

from edge_ser.features.config import FeatureConfig


def n_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Number of complete frames in `n_samples` (librosa center=False convention)."""
    return 0 if n_samples < cfg.n_fft else 1 + (n_samples - cfg.n_fft) // cfg.hop_length


def frame_spans(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Read-only view (no copy) of the full n_fft span of every complete frame: (frames, n_fft)."""
    signal = np.ascontiguousarray(signal)
    count = n_frames(len(signal), cfg)
    if count == 0:
        return np.empty((0, cfg.n_fft), dtype=signal.dtype)
    size = signal.itemsize
    # The ndarray constructor, not as_strided: same view, a tenth of the per-call cost, which
    # matters when the device pushes a few frames at a time.
    view = np.ndarray((count, cfg.n_fft), dtype=signal.dtype, buffer=signal, strides=(cfg.hop_length * size, size))
    view.flags.writeable = False
    return view


def windowed_part(spans: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The `frame_length` samples centred in each span: what the MFCC window covers (a view)."""
    offset = (cfg.n_fft - cfg.frame_length) // 2
    return spans[:, offset : offset + cfg.frame_length]


def frame_signal(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Read-only view (no copy) of the windowed part of every complete frame: (frames, frame_length)."""
    return windowed_part(frame_spans(signal, cfg), cfg)


_POWER_FLOOR = np.float32(1e-12)
_TEN = np.float32(10.0)


def frame_energy_db(frames: np.ndarray) -> np.ndarray:
    """Mean power of each raw float32 frame in dBFS (input in [-1, 1]); used by the voice gate.
    In place and with ready-made scalars: it runs on every push, a few frames at a time, so the
    cost is NumPy's per-call overhead, not the arithmetic."""
    power: np.ndarray = np.einsum("ij,ij->i", frames, frames)
    power /= np.float32(max(frames.shape[-1], 1))
    np.maximum(power, _POWER_FLOOR, out=power)
    np.log10(power, out=power)
    power *= _TEN
    return power
