"""Pitch columns: voicing strength and log-F0 per frame, from a normalised autocorrelation.

The prosody (pitch level and contour) that 20 cepstra of 40 mel bands smooth away, and which
separates sad from neutral or happy from angry far better than the spectral envelope does.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edge_ser.features.config import PITCH_COLUMNS, FeatureConfig
from edge_ser.features.framing import fft_module

PITCH_REFERENCE_HZ = 150.0  # between typical male and female voices: log-F0 columns centre near 0
VOICING_THRESHOLD = 0.5  # normalised autocorrelation peak above which a frame counts as voiced
PITCH_CANDIDATE_RATIO = 0.85  # the shortest-lag peak this close to the best wins (no subharmonics)


@lru_cache(maxsize=16)
def _pitch_tables(cfg: FeatureConfig) -> tuple[int, int, int, np.ndarray, np.ndarray]:
    """(FFT size, shortest and longest lag searched, the Hann window over a span, that window's own
    normalised autocorrelation)."""
    size = 1 << int(np.ceil(np.log2(2 * cfg.n_fft)))  # no circular wrap-around within a span
    shortest = int(np.floor(cfg.sample_rate / cfg.pitch_fmax))
    longest = int(np.ceil(cfg.sample_rate / cfg.pitch_fmin))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft)
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(window, size)) ** 2, size)
    return (size, shortest, longest, window.astype(np.float32),
            (window_ac[: longest + 2] / window_ac[0]).astype(np.float32))


def pitch_features(spans: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(frames, 2) float32 from frame spans (frame_spans): voicing strength in [0, 1] and
    log2(F0 / 150 Hz) (0 when unvoiced).

    Why this estimator: the autocorrelation of the Hann-windowed span, divided by the window's own
    autocorrelation (Boersma 1993), peaks near 1 at the pitch period of a voiced frame, so its
    height is a voicing strength and its lag the period. Among the peaks within
    PITCH_CANDIDATE_RATIO of the best the shortest lag wins, because a periodic signal also peaks
    at two and three periods (the classic octave-too-low error). Each frame is computed alone, so
    the columns are as chunk-invariant and window-local as the cepstra, and they are gain-invariant
    by construction (a ratio of autocorrelations and a frequency). It uses the whole n_fft span
    (32 ms), not the 25 ms MFCC window: a low male voice (85 Hz) needs close to three periods.
    """
    size, shortest, longest, window, window_ac = _pitch_tables(cfg)
    out = np.zeros((len(spans), PITCH_COLUMNS), dtype=np.float32)
    if len(spans) == 0:
        return out
    fft = fft_module()
    spectrum = fft.rfft(spans * window, size, axis=-1)
    ac = fft.irfft((spectrum * spectrum.conj()).real, size, axis=-1)[:, : longest + 2]
    energy = ac[:, :1]
    ac = ac / np.where(energy > 1e-12, energy, np.inf) / window_ac
    span = ac[:, shortest - 1 : longest + 2]  # one lag either side, for the peak test and interpolation
    centre = span[:, 1:-1]
    is_peak = (centre >= span[:, :-2]) & (centre >= span[:, 2:])
    best = np.where(is_peak, centre, -np.inf).max(axis=1, keepdims=True)
    choice = (is_peak & (centre >= PITCH_CANDIDATE_RATIO * best)).argmax(axis=1)
    rows = np.arange(len(spans))
    left, top, right = span[rows, choice], span[rows, choice + 1], span[rows, choice + 2]
    curvature = left - 2 * top + right
    offset = np.clip(0.5 * (left - right) / np.where(np.abs(curvature) > 1e-9, curvature, -1.0), -0.5, 0.5)
    voicing = np.clip(np.where(np.isfinite(best[:, 0]), top, 0.0), 0.0, 1.0)
    lag = shortest + choice + offset
    out[:, 0] = voicing
    out[:, 1] = np.where(voicing >= VOICING_THRESHOLD, np.log2(cfg.sample_rate / lag / PITCH_REFERENCE_HZ), 0.0)
    return out


def with_pitch(cepstra: np.ndarray, spans: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The cepstra of the frames of `spans`, then their pitch columns if the config asks for them."""
    return np.hstack([cepstra, pitch_features(spans, cfg)]) if cfg.pitch else cepstra
