"""Pitch columns: voicing strength and log-F0 per frame, from a normalised autocorrelation.

The prosody (pitch level and contour) that 20 cepstra of 40 mel bands smooth away, and which
separates sad from neutral or happy from angry far better than the spectral envelope does.

Two ways to get the autocorrelation, chosen by FeatureConfig.pitch_method; both then pick the
period the same way (`_pick_period`), so the two columns mean the same thing whichever is used:

- "acf" (models up to 2.0.0): the exact autocorrelation of each frame's whole n_fft span, through
  its own zero-padded FFT pair. Its two 2*n_fft-point transforms cost ~3.6x the whole MFCC.
- "spectrum" (the default for new models): by Wiener-Khinchin, the inverse transform of the power
  spectrum the cepstra already computed is the (circular) autocorrelation of the MFCC window, so
  the pitch columns cost a DCT of n_fft/4 + 1 points and the peak search, ~0.4x the cepstra on
  an idle machine. Keeping only the bins below 2 or 4 kHz instead was tried and rejected: fewer
  independent samples per window let white noise pass as voiced.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edge_ser.features.config import PITCH_COLUMNS, FeatureConfig
from edge_ser.features.fft import transforms
from edge_ser.features.framing import windowed_part
from edge_ser.features.mfcc import analysis_window, power_spectrum

PITCH_REFERENCE_HZ = 150.0  # between typical male and female voices: log-F0 columns centre near 0
VOICING_THRESHOLD = 0.5  # normalised autocorrelation peak above which a frame counts as voiced
PITCH_CANDIDATE_RATIO = 0.85  # the shortest-lag peak this close to the best wins (no subharmonics)
# "spectrum" reads every other lag (8 kHz at 16 kHz: still 16 lags per period at 500 Hz). Half the
# transform and half the search; on 8 clips of each shared corpus, the median F0 difference from
# "acf" rose from 1.2-2.6 to 1.6-4.0 cents over reading every lag, voicing agreement stayed 93-95 %.
SPECTRUM_LAG_STEP = 2


def _longest_lag(rate: float, cfg: FeatureConfig) -> int:
    """The period of pitch_fmin in lags at `rate` per second, rounded up: the last lag searched."""
    return int(np.ceil(rate / cfg.pitch_fmin))


def _normalised(ac: np.ndarray, window_ac: np.ndarray) -> np.ndarray:
    """Windowed frames' autocorrelations (lag 0 first) divided by their lag 0 and by the window's
    own normalised autocorrelation, over the lags `window_ac` has (Boersma 1993: the ratio
    estimates the autocorrelation of the signal itself). A silent frame gives all zeros."""
    ac = ac[:, : len(window_ac)]
    energy = ac[:, :1]
    normalised: np.ndarray = ac / np.where(energy > 1e-12, energy, np.inf) / window_ac
    return normalised


@lru_cache(maxsize=16)
def _acf_tables(cfg: FeatureConfig) -> tuple[int, np.ndarray, np.ndarray]:
    """"acf": (FFT size, the Hann window over a span, that window's own normalised autocorrelation
    up to the longest lag searched and one beyond)."""
    size = 1 << int(np.ceil(np.log2(2 * cfg.n_fft)))  # no circular wrap-around within a span
    longest = _longest_lag(cfg.sample_rate, cfg)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft)
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(window, size)) ** 2, size)
    return size, window.astype(np.float32), (window_ac[: longest + 2] / window_ac[0]).astype(np.float32)


def _acf_autocorrelation(spans: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """"acf": each span's normalised autocorrelation at lags 0..longest+1, at the sample rate."""
    size, window, window_ac = _acf_tables(cfg)
    fft = transforms()
    spectrum = fft.rfft(spans * window, size)
    return _normalised(fft.irfft((spectrum * spectrum.conj()).real, size), window_ac)


def _spectrum_rate(cfg: FeatureConfig) -> float:
    """"spectrum": lags are read every SPECTRUM_LAG_STEP samples, i.e. at this rate per second."""
    return cfg.sample_rate / SPECTRUM_LAG_STEP


@lru_cache(maxsize=16)
def _spectrum_window_ac(cfg: FeatureConfig) -> np.ndarray:
    """"spectrum": the MFCC window's own normalised autocorrelation at the lags read (up to the
    longest searched and one beyond), computed as the frames' is (on the n_fft circle), so
    Boersma's division also undoes most of what the wrap-around (lags past n_fft - frame_length)
    does to a frame's."""
    window = np.zeros(cfg.n_fft)
    window[: cfg.frame_length] = analysis_window(cfg)
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(window)) ** 2, cfg.n_fft)[::SPECTRUM_LAG_STEP]
    table: np.ndarray = (window_ac[: _longest_lag(_spectrum_rate(cfg), cfg) + 2] / window_ac[0]).astype(np.float32)
    return table


def _spectrum_autocorrelation(power: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """"spectrum": each MFCC window's normalised autocorrelation at every other lag, from its power
    spectrum (n_fft/2 + 1 bins).

    The even lags of the n_fft-periodic autocorrelation are the autocorrelation of the spectrum
    folded about n_fft/4 (halving the lag rate aliases the upper half of the band onto the lower),
    and as the power spectrum is real and even, its inverse transform is a DCT-I: n_fft/4 + 1
    real points, without the complex copy an inverse real FFT makes. About 4x cheaper than the
    n_fft-point inverse FFT of every lag, and the peak search then covers half the lags."""
    quarter = cfg.n_fft // 4
    folded = power[:, : quarter + 1] + power[:, : quarter - 1 : -1]
    ac: np.ndarray = transforms().dct1(folded)
    return _normalised(ac, _spectrum_window_ac(cfg))


def _pick_period(ac: np.ndarray, rate: float, cfg: FeatureConfig) -> np.ndarray:
    """(frames, 2) voicing and log2(F0 / 150 Hz) from normalised autocorrelations at lags
    0.._longest_lag + 1, `rate` lags per second.

    The highest peak within the searched lags is the voicing strength; among the peaks within
    PITCH_CANDIDATE_RATIO of it the shortest lag wins, because a periodic signal also peaks at two
    and three periods (the classic octave-too-low error); a parabola through the peak and its
    neighbours places the period between lags."""
    shortest, longest = int(np.floor(rate / cfg.pitch_fmax)), _longest_lag(rate, cfg)
    span = ac[:, shortest - 1 : longest + 2]  # one lag either side, for the peak test and interpolation
    centre = span[:, 1:-1]
    is_peak = (centre >= span[:, :-2]) & (centre >= span[:, 2:])
    best = np.where(is_peak, centre, -np.inf).max(axis=1, keepdims=True)
    choice = (is_peak & (centre >= PITCH_CANDIDATE_RATIO * best)).argmax(axis=1)
    rows = np.arange(len(ac))
    left, top, right = span[rows, choice], span[rows, choice + 1], span[rows, choice + 2]
    curvature = left - 2 * top + right
    offset = np.clip(0.5 * (left - right) / np.where(np.abs(curvature) > 1e-9, curvature, -1.0), -0.5, 0.5)
    voicing = np.clip(np.where(np.isfinite(best[:, 0]), top, 0.0), 0.0, 1.0)
    lag = shortest + choice + offset
    out = np.zeros((len(ac), PITCH_COLUMNS), dtype=np.float32)
    out[:, 0] = voicing
    out[:, 1] = np.where(voicing >= VOICING_THRESHOLD, np.log2(rate / lag / PITCH_REFERENCE_HZ), 0.0)
    return out


def pitch_features(spans: np.ndarray, cfg: FeatureConfig, power: np.ndarray | None = None) -> np.ndarray:
    """(frames, 2) float32 from frame spans (frame_spans): voicing strength in [0, 1] and
    log2(F0 / 150 Hz) (0 when unvoiced). `power`: the frames' MFCC power spectra (power_spectrum of
    their windowed part) when the caller has them, which the "spectrum" method reuses.

    Why a normalised autocorrelation: the autocorrelation of the windowed frame, divided by the
    window's own autocorrelation (Boersma 1993), peaks near 1 at the pitch period of a voiced frame,
    so its height is a voicing strength and its lag the period. Each frame is computed alone, so
    the columns are as chunk-invariant and window-local as the cepstra, and they are gain-invariant
    by construction (a ratio of autocorrelations and a frequency). "acf" uses the whole n_fft span
    (32 ms), where a low male voice (85 Hz) has close to three periods; "spectrum" the 25 ms MFCC
    window (two), which config validation allows down to pitch_fmin (70 Hz: 1.75 periods).
    """
    if len(spans) == 0:
        return np.zeros((0, PITCH_COLUMNS), dtype=np.float32)
    if cfg.pitch_method == "acf":
        return _pick_period(_acf_autocorrelation(spans, cfg), cfg.sample_rate, cfg)
    if power is None:
        power = power_spectrum(windowed_part(spans, cfg), cfg)
    return _pick_period(_spectrum_autocorrelation(power, cfg), _spectrum_rate(cfg), cfg)
