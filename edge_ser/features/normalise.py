"""Window normalisation: what makes a window's features independent of recording level and
channel, applied to every window the device classifies and every window training sees."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edge_ser.errors import ConfigError
from edge_ser.features.adaptation import SpeakerAdapter, SpeakerReference
from edge_ser.features.config import SPEAKER_NORMALISATIONS, FeatureConfig
from edge_ser.features.pitch import VOICING_THRESHOLD


def normalise_window(features: np.ndarray, cfg: FeatureConfig, speaker: SpeakerReference | None = None) -> np.ndarray:
    """Cepstral normalisation per window or against the speaker's running statistics, the log-F0
    column relative to the speaker's median F0 when `speaker` carries one, then the config's fixed
    per-coefficient scale, if it has one.

    "level" removes only the window mean of c0: a gain of g dB adds g to every log-mel band, which
    the orthonormal DCT maps to c0 alone, so this is exactly gain (distance to the microphone)
    invariant while the window keeps its average spectral shape (tilt, formants: voice quality).
    "speaker" removes the speaker's running mean instead of the window's: the window keeps how loud
    and bright it is *relative to that voice* (arousal), and still loses the microphone's channel.
    Pitch columns are otherwise never normalised: they are gain-invariant already, and a window's
    pitch level is what tells a raised voice from a calm one.
    """
    normalised = np.array(features, dtype=np.float32, copy=True)
    cepstra = normalised[:, : cfg.n_mfcc]
    if cfg.normalisation == "level":
        cepstra[:, 0] -= cepstra[:, 0].mean()
    elif cfg.normalisation in ("cmn", "cmvn"):
        mean = cepstra.mean(axis=0, keepdims=True)
        std = cepstra.std(axis=0, keepdims=True)
        cepstra -= mean
        if cfg.normalisation == "cmvn":
            cepstra /= np.maximum(std, 1e-3)
    elif cfg.normalisation in SPEAKER_NORMALISATIONS:
        if speaker is None:
            raise ConfigError(f'normalisation "{cfg.normalisation}" needs the speaker statistics of an adaptation')
        cepstra -= speaker.mean
        if cfg.normalisation == "speaker-cmvn":
            cepstra /= speaker.std
    if speaker is not None and speaker.log_f0 and cfg.pitch:
        voiced = normalised[:, cfg.n_mfcc] >= VOICING_THRESHOLD
        normalised[voiced, cfg.n_mfcc + 1] -= np.float32(speaker.log_f0)
    if cfg.coefficient_scale:
        normalised = normalised / _scale_vector(cfg.coefficient_scale)
    return normalised.astype(np.float32, copy=False)


def adapt_and_normalise(adapter: SpeakerAdapter, features: np.ndarray, start: int, counted_end: int,
                        cfg: FeatureConfig) -> tuple[np.ndarray, int]:
    """One window (padded at the stream's start when `start` < 0) through speaker adaptation: its
    frames from `counted_end` on go into the statistics first, so each frame is counted once
    however windows overlap, and the window is normalised with what was heard up to its end, never
    later. Returns the normalised window and the new `counted_end`. The device's recogniser and the
    training simulation both call this, so they cannot differ."""
    first_real = max(start, 0)
    real = features[first_real - start :]
    adapter.observe(real[max(counted_end - first_real, 0) :])
    return normalise_window(features, cfg, adapter.reference()), max(counted_end, start + len(features))


@lru_cache(maxsize=4)
def _scale_vector(scale: tuple[float, ...]) -> np.ndarray:
    return np.asarray(scale, dtype=np.float32)
