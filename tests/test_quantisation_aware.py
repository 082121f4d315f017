"""Quantisation-aware fine-tuning (edge_ser_train.quantisation_aware): the BatchNorm folding computes
what the model computed, and the fine-tuned convolution weights are exactly those the int8 file
holds (checked in the converted file itself, so the grid convention is TFLite's, not ours)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge_ser_train.errors import TrainingError
from edge_ser_train.fit import TrainConfig
from edge_ser_train.models import ModelConfig, build_model
from tests.tflite_weights import stored_convolutions

pytest.importorskip("tensorflow")

FRAMES, COEFFICIENTS, LABELS = 40, 6, 4


def trained_looking(seed: int = 0) -> Any:
    """A small model with BatchNorm statistics far from their initial 0/1, as after training."""
    model = build_model(FRAMES, COEFFICIENTS, LABELS, ModelConfig(width=8, depth=3), seed=seed, name=f"member{seed}")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2.0, n), rng.normal(0, 0.5, n), rng.normal(0, 1.0, n),
                               rng.uniform(0.2, 3.0, n)])
    return model


def windows(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, FRAMES, COEFFICIENTS)).astype(np.float32)


def test_folding_batchnorm_into_the_convolutions_computes_the_same_function() -> None:
    from edge_ser_train.quantisation_aware import fold_batchnorm

    model = trained_looking()
    folded = fold_batchnorm(model)
    assert not [layer for layer in folded.layers if type(layer).__name__ == "BatchNormalization"]
    x = windows(16)
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_a_weight_grid_keeps_each_channels_peak_and_rounds_the_rest_to_its_steps() -> None:
    from edge_ser_train.quantisation_aware import on_int8_grid

    kernel = np.random.default_rng(2).normal(size=(5, 3, 4)).astype(np.float32)
    grid = on_int8_grid(kernel)
    step = np.abs(kernel).max(axis=(0, 1)) / 127
    np.testing.assert_allclose(np.abs(grid).max(axis=(0, 1)), np.abs(kernel).max(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(grid / step, np.round(grid / step), atol=1e-3)  # whole steps
    assert np.abs(grid - kernel).max() <= step.max() / 2 + 1e-7


def int8_weight_errors(model: Any, calibration: np.ndarray) -> list[float]:
    """Per convolution: the largest difference between the float kernel and the weights the int8 file
    holds, relative to the kernel's largest weight."""
    from edge_ser_train.export import to_int8_tflite

    stored = stored_convolutions(to_int8_tflite(model, calibration))
    kernels = [layer.get_weights()[0] for layer in model.layers if type(layer).__name__ == "Conv1D"]
    errors = []
    for kernel in kernels:
        (match,) = [w for w in stored if w.shape == kernel.shape]
        errors.append(float(np.abs(kernel - match).max() / np.abs(kernel).max()))
    return errors


def test_fine_tuned_weights_are_exactly_the_weights_the_int8_file_holds() -> None:
    """Untuned, the converter rounds every convolution weight by up to half a step (1/254 of the
    channel's peak); fine-tuned on the grid, nothing is left to round: the same numbers, to the bit."""
    from edge_ser_train.quantisation_aware import fine_tune_on_grid, fold_batchnorm

    model = trained_looking()
    x, y = windows(256), np.random.default_rng(3).integers(0, LABELS, 256)
    tuned = fine_tune_on_grid(model, x, y, None, TrainConfig(batch_size=64, qat_epochs=1))
    kinds = {type(layer).__name__ for layer in tuned.layers}
    assert kinds <= {"InputLayer", "Conv1D", "ReLU", "MaxPooling1D", "GlobalAveragePooling1D", "Dropout", "Dense"}
    assert np.all(np.isfinite(tuned.predict(x[:8], verbose=0)))
    assert int8_weight_errors(tuned, x) == [0.0, 0.0, 0.0]
    assert min(int8_weight_errors(fold_batchnorm(model), x)) > 1e-3


def test_augmented_fine_tuning_sees_the_recipes_masks_and_blends_and_still_ends_on_the_grid() -> None:
    """With qat_augment the epoch's inputs are SpecAugment-masked and mixed up as in training (so the
    weights move differently from plain fine-tuning, from the same start and seed); without any
    regularisation in the recipe the flag changes nothing. Either way the weights end on the grid."""
    from edge_ser_train.quantisation_aware import fine_tune_on_grid

    model = trained_looking()
    x, y = windows(256), np.random.default_rng(3).integers(0, LABELS, 256)

    def tuned_kernels(**changes: Any) -> list[np.ndarray]:
        cfg = TrainConfig(batch_size=64, qat_epochs=2, qat_learning_rate=1e-3, **changes)
        tuned = fine_tune_on_grid(model, x, y, None, cfg)
        assert int8_weight_errors(tuned, x) == [0.0, 0.0, 0.0]
        return [layer.get_weights()[0] for layer in tuned.layers if type(layer).__name__ == "Conv1D"]

    plain = tuned_kernels(qat_augment=False)
    assert any(not np.array_equal(a, b) for a, b in zip(plain, tuned_kernels(qat_augment=True), strict=True))
    for a, b in zip(tuned_kernels(qat_augment=False, spec_augment=False, mixup=0.0),
                    tuned_kernels(qat_augment=True, spec_augment=False, mixup=0.0), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_ensemble_is_refused_by_name() -> None:
    from edge_ser_train.models import average_models
    from edge_ser_train.quantisation_aware import fold_batchnorm

    ensemble = average_models([trained_looking(0), trained_looking(1)])
    with pytest.raises(TrainingError, match=r"needs the plain Conv1D chain.*--members > 1"):
        fold_batchnorm(ensemble)
