"""Per-window normalisation: what makes a window's features independent of recording level and
channel, applied to every window the device classifies and every window training sees."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edge_ser.features.config import FeatureConfig


def normalise_window(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Per-window cepstral normalisation, so a window carries no level or channel offset from
    outside it (recording levels and spectral tilt differ between corpora and microphones),
    then divided by the config's fixed per-coefficient scale, if it has one.

    "level" removes only the window mean of c0: a gain of g dB adds g to every log-mel band, which
    the orthonormal DCT maps to c0 alone, so this is exactly gain (distance to the microphone)
    invariant while the window keeps its average spectral shape (tilt, formants: voice quality).
    Pitch columns are never normalised: they are gain-invariant already, and a window's pitch
    level is what tells a raised voice from a calm one.
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
    if cfg.coefficient_scale:
        normalised = normalised / _scale_vector(cfg.coefficient_scale)
    return normalised.astype(np.float32, copy=False)


@lru_cache(maxsize=4)
def _scale_vector(scale: tuple[float, ...]) -> np.ndarray:
    return np.asarray(scale, dtype=np.float32)
