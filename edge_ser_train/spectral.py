"""VTLP: vocal tract length perturbation as a warp of each frame's power spectrum.

A warp has to happen before the mel filterbank, which edge_ser computes inside `mfcc_frames`. So
this module frames and transforms with edge_ser's own helpers (frame_spans, power_spectrum,
mfcc_from_power, with_pitch) and inserts only the warp; with factor 1 it reproduces
`edge_ser.features.signal_features` exactly, which a test checks, so training features cannot drift
from the device's.
"""

from __future__ import annotations

import numpy as np

from edge_ser.features.config import FeatureConfig
from edge_ser.features.framing import frame_spans, windowed_part
from edge_ser.features.mfcc import mfcc_from_power, power_spectrum
from edge_ser.features.pitch import with_pitch

VTLP_BOUNDARY_HZ = 4800.0  # warp linearly below this, then bend so that Nyquist maps to Nyquist


def vtlp_frequency_map(freqs: np.ndarray, factor: float, nyquist: float,
                       boundary: float = VTLP_BOUNDARY_HZ) -> np.ndarray:
    """Jaitly & Hinton's piecewise-linear warp: f -> f*factor up to a knee, then to Nyquist."""
    knee = boundary * min(factor, 1.0) / factor
    upper = nyquist - (nyquist - boundary * min(factor, 1.0)) / (nyquist - knee) * (nyquist - freqs)
    return np.where(freqs <= knee, freqs * factor, upper)


def warp_power(power: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Move each bin's power from f to warp(f) (factor > 1 moves energy up in frequency)."""
    bins = power.shape[-1]
    nyquist = sample_rate / 2
    freqs = np.linspace(0.0, nyquist, bins)
    # The output bin at g takes the power found at warp^-1(g): invert the monotone map numerically.
    source = np.interp(freqs, vtlp_frequency_map(freqs, factor, nyquist), freqs)
    position = source / nyquist * (bins - 1)
    left = np.clip(np.floor(position).astype(int), 0, bins - 2)
    frac = (position - left).astype(power.dtype)
    return power[..., left] * (1 - frac) + power[..., left + 1] * frac


def warped_features(signal: np.ndarray, cfg: FeatureConfig, factor: float) -> np.ndarray:
    """Frame features (frames, n_features) of `signal` with its spectrum warped by `factor` before the
    mel stage. Pitch columns come from the unwarped frames: a longer or shorter vocal tract moves
    the formants, not the rate at which the vocal folds vibrate."""
    spans = frame_spans(np.asarray(signal, dtype=np.float32), cfg)
    power = power_spectrum(windowed_part(spans, cfg), cfg)
    if factor != 1.0:
        power = warp_power(power, factor, cfg.sample_rate)
    return with_pitch(mfcc_from_power(power, cfg), spans, cfg)
