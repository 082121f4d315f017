"""The fixed per-coefficient input scale (FeatureConfig.coefficient_scale), fitted on training windows.

Why: a full-int8 model quantises its whole input tensor with one scale. After per-window CMN the
frame energy c0 swings ~15x wider than the high cepstra, so with one scale those would get only a
few int8 steps and the int8 model would drift from the float one. Dividing every coefficient by
its spread in the training data (a global variance normalisation; the per-window mean removal
stays) gives each the same share of the int8 range. The divisors are constants in the manifest,
so the device applies them to a window without looking outside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from edge_ser_train.examples import ExampleSet


def fit_coefficient_scale(windows: np.ndarray) -> tuple[float, ...]:
    """Standard deviation of each coefficient over all frames of `windows` (n, frames, coefficients),
    rounded to 4 significant digits so the manifest's JSON holds exactly the numbers trained with."""
    std = windows.reshape(-1, windows.shape[-1]).astype(np.float64).std(axis=0)
    return tuple(float(f"{max(v, 1e-3):.4g}") for v in std)


def apply_coefficient_scale(data: ExampleSet, scale: tuple[float, ...]) -> ExampleSet:
    """The same windows divided by `scale`, as edge_ser.features.normalise_window does on the device."""
    return replace(data, x=(data.x / np.asarray(scale, dtype=np.float32)).astype(np.float32))


def fold_coefficient_scale(model: Any, scale: tuple[float, ...]) -> Any:
    """A copy of `model` that takes windows divided by `scale` and computes exactly what `model` did.

    Why fold instead of training on scaled windows: trained on them, the model lost 5 points of UA
    in cross-validation (the high cepstra, mostly speaker detail, then weigh as much as the
    envelope and the energy from the start). The first convolution is linear in each input
    coefficient, so multiplying its weights for coefficient c by scale[c] undoes the division; the
    int8 input still gets the even ranges. Ensembles (nested models) have each member folded.
    """
    import keras

    folded = keras.models.clone_model(model)
    folded.set_weights(model.get_weights())
    factors = np.asarray(scale, dtype=np.float32)[None, :, None]  # (taps, coefficients, filters)
    convolutions = list(_input_convolutions(folded))
    if not convolutions:
        raise ValueError(f"{model.name}: no Conv1D on the input to fold the coefficient scale into")
    for conv in convolutions:
        conv.kernel.assign(keras.ops.convert_to_numpy(conv.kernel) * factors)
    return folded


def _input_convolutions(model: Any) -> Iterator[Any]:
    """The first Conv1D of the model and of every nested model (an ensemble's members)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _input_convolutions(layer)
        elif isinstance(layer, keras.layers.Conv1D):
            yield layer
            return
