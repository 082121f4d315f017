"""Is this window a voice at all? A cheap check that keeps tones, music, noise and knocks from being
reported as an emotion.

Why it is needed: the classifier was only ever shown speech, so it has no "none of these" output and
maps any sound that opens the voice gate onto some emotion, often with high confidence (a harmonic
tone with a gliding pitch came out neutral at 1.00). The gate listens to energy only. This check
listens to how the sound evolves, using three properties that speech has and that the usual
non-speech sounds lack, each from numbers the front end already computes for the window:

* **Syllable peaks.** Speech switches between syllable nuclei, consonants and short pauses 2–8
  times a second, so its level (c0 of the cepstra, i.e. the mean log-mel level) rises and falls by
  many dB around each syllable. A window must hold at least one such peak: a maximum of the
  smoothed level that stands out by `min_peak_prominence_db` on *both* sides within the window.
  Steady tones, chords, chirps, glides, hums and broadband noise have none; and the step at the
  start or end of a sound is not a peak (it falls on one side only), which a modulation spectrum
  over a short window would count as syllabic.
* **Moving pitch.** A voice's F0 is never still (intonation, jitter, micro-prosody): between
  adjacent voiced frames log-F0 moves by 0.005–0.015 octave (median, measured on three corpora).
  Instruments and tones hold a steady pitch within a note (< 0.0005), so a melody's notes fail here
  even though its envelope is syllabic.
* **Syllable-long voicing.** A vowel is voiced for 50–300 ms. A knock or a click rings for a few
  tens of milliseconds, so its voiced stretches are a handful of frames long.

A window is speech-like when all three hold; an utterance is when at least one of its windows is
(speech is not speech-like everywhere, a pause or a held vowel fails, but an utterance without a
single speech-like window is not speech). Everything is computed from the window's own frames, so
it is as window-local and chunk-size invariant as the features themselves.

Thresholds describe speech, not a model, so they are a config of the recogniser (and of the device,
which may need to loosen them for a very reverberant room), not part of a model's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_ser.errors import ConfigError
from edge_ser.features.pitch import VOICING_THRESHOLD

SMOOTHING_SECONDS = 0.05  # the level averaged over 50 ms: syllables stay, frame-to-frame jitter goes


@dataclass(frozen=True)
class SpeechCheckConfig:
    """Thresholds of the speech-likeness check ([speech_check] in a device config); measured on
    real speech and generated non-speech, see reports/confidence.md."""

    enabled: bool = True  # false: nothing is measured and every window counts as speech
    min_peak_prominence_db: float = 8.0  # a syllable: the smoothed level rises and falls by this much
    min_pitch_motion: float = 0.002  # median |change of log2 F0| between adjacent voiced frames, octaves
    min_voiced_run_frames: int = 10  # longest voiced stretch, frames (100 ms at a 10 ms hop)

    def __post_init__(self) -> None:
        if self.min_peak_prominence_db <= 0 or self.min_pitch_motion < 0 or self.min_voiced_run_frames < 1:
            raise ConfigError("speech_check: min_peak_prominence_db must be > 0, min_pitch_motion >= 0, "
                              "min_voiced_run_frames >= 1")


@dataclass(frozen=True)
class SpeechEvidence:
    """What the check measured in one window (kept on the output for logs, tests and tuning)."""

    peak_prominence_db: float  # of the window's most prominent level peak
    pitch_motion: float
    longest_voiced_run: int

    def passes(self, cfg: SpeechCheckConfig) -> bool:
        return (self.peak_prominence_db >= cfg.min_peak_prominence_db and self.pitch_motion >= cfg.min_pitch_motion
                and self.longest_voiced_run >= cfg.min_voiced_run_frames)


def measure(level_db: np.ndarray, voicing: np.ndarray, log_f0: np.ndarray, frame_seconds: float) -> SpeechEvidence:
    """Evidence from a window's per-frame level (dB, any offset), voicing strength and log2 F0."""
    smoothing = max(1, round(SMOOTHING_SECONDS / frame_seconds))
    envelope = np.convolve(level_db, np.full(smoothing, 1.0 / smoothing), mode="valid")
    return SpeechEvidence(peak_prominence(envelope), pitch_motion(voicing, log_f0),
                          longest_run(voicing > VOICING_THRESHOLD))


def peak_prominence(envelope: np.ndarray) -> float:
    """The largest prominence of a local maximum: its height above the higher of the two lowest
    points between it and the nearest higher sample on each side (or the window's edge). 0 without
    a maximum inside the window. A monotone step has no prominent peak; a syllable does.

    Computed for all maxima at once on a (maxima x samples) grid: a smoothed speech window has
    about ten maxima, so the grid is small, and NumPy does in a few calls what a Python scan over
    every sample did at twice the cost, for every window the device classifies."""
    x = np.asarray(envelope, dtype=np.float64)
    n = len(x)
    if n < 3:
        return 0.0
    inner = x[1:-1]
    peaks = np.flatnonzero((inner > x[:-2]) & (inner >= x[2:])) + 1
    if not len(peaks):
        return 0.0
    index = np.arange(n)
    higher = x[None, :] > x[peaks, None]
    before, after = index < peaks[:, None], index > peaks[:, None]
    left_edge = np.where(higher & before, index, -1).max(axis=1, keepdims=True)
    right_edge = np.where(higher & after, index, n).min(axis=1, keepdims=True)
    left_low = np.where((index > left_edge) & ~after, x, np.inf).min(axis=1)
    right_low = np.where((index < right_edge) & ~before, x, np.inf).min(axis=1)
    return float(np.max(x[peaks] - np.maximum(left_low, right_low)))


def pitch_motion(voicing: np.ndarray, log_f0: np.ndarray) -> float:
    """Median |Δ log2 F0| over pairs of adjacent voiced frames; 0 without such pairs."""
    voiced = voicing > VOICING_THRESHOLD
    pairs = voiced[1:] & voiced[:-1]
    if not pairs.any():
        return 0.0
    return float(np.median(np.abs(np.diff(log_f0))[pairs]))


def longest_run(flags: np.ndarray) -> int:
    """Length of the longest stretch of True."""
    edges = np.diff(np.concatenate(([0], np.asarray(flags, dtype=np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max()) if len(starts) else 0
