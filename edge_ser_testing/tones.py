"""Signals of known pitch for the pitch estimators' tests and accuracy report.

A harmonic tone has an exact F0 to measure against, which no corpus clip has (pYIN on speech is a
reference, not the truth); the missing-fundamental tone checks that the period, not the lowest
spectral peak, is what gets estimated; white noise must come out unvoiced.
"""

from __future__ import annotations

import numpy as np

DEFAULT_HARMONICS = (1.0, 0.5, 0.33, 0.25)


def harmonic_tone(f0: float, seconds: float = 0.5, harmonics: tuple[float, ...] = DEFAULT_HARMONICS,
                  amplitude: float = 0.1, sample_rate: int = 16000) -> np.ndarray:
    """float32 sum of sines at k * f0 with amplitudes `harmonics` (k = 1, 2, ...; a leading 0.0
    leaves out the fundamental)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = sum(a * np.sin(2 * np.pi * f0 * (k + 1) * t) for k, a in enumerate(harmonics))
    return (amplitude * tone).astype(np.float32)


def white_noise(seconds: float = 0.5, amplitude: float = 0.1, seed: int = 0, sample_rate: int = 16000) -> np.ndarray:
    """Seeded float32 Gaussian noise: aperiodic, so every frame should be unvoiced."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * sample_rate)) * amplitude).astype(np.float32)
