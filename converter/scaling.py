"""The fixed per-coefficient input scale (FeatureConfig.coefficient_scale), fitted on training windows.

Why: a full-int8 model quantises its whole input tensor with one scale. After per-window CMN the
frame energy c0 swings ~15x wider than the high cepstra, so with one scale those would get only a
few int8 steps and the int8 model would drift from the float one. Dividing every coefficient by
its spread in the training data (a global variance normalisation; the per-window mean removal
stays) gives each the same share of the int8 range. The divisors are constants in the manifest,
so the device applies them to a window without looking outside it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from converter.examples import ExampleSet


def fit_coefficient_scale(windows: np.ndarray) -> tuple[float, ...]:
    """Standard deviation of each coefficient over all frames of `windows` (n, frames, coefficients),
    rounded to 4 significant digits so the manifest's JSON holds exactly the numbers trained with."""
    std = windows.reshape(-1, windows.shape[-1]).astype(np.float64).std(axis=0)
    return tuple(float(f"{max(v, 1e-3):.4g}") for v in std)


def apply_coefficient_scale(data: ExampleSet, scale: tuple[float, ...]) -> ExampleSet:
    """The same windows divided by `scale`, as edge_ser.features.normalise_window does on the device."""
    return replace(data, x=(data.x / np.asarray(scale, dtype=np.float32)).astype(np.float32))
