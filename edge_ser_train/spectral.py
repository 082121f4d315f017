"""VTLP: vocal tract length perturbation as a warp of each frame's power spectrum.

A warp has to happen before the mel filterbank. The device's front end takes it through its
spectral hook (edge_ser.features.frontend.SpectralTransform), so warped training features are
computed by the very code the device runs, with only the warp added.
"""

from __future__ import annotations

import numpy as np

from edge_ser.features.frontend import SpectralTransform

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


def vtlp(factor: float, sample_rate: int) -> SpectralTransform:
    """The front end's spectral hook (features.frontend.SpectralTransform) that warps every frame's
    power spectrum by `factor`: VTLP inside the device's own feature code."""
    return lambda power, _first: warp_power(power, factor, sample_rate)
