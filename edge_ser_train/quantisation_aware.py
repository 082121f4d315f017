"""Quantisation-aware fine-tuning: a few epochs that put the float model's convolution weights onto
the int8 grid the converter will round them to, so the int8 model decides as the float one does.

Why: with post-training quantisation alone, the int8 model disagreed with its float model on up to
4 % of windows in a fold (the #11 target is <= 3 % in every fold). In those folds the difference was
made by the int8 *weights* meeting windows whose two best classes are nearly tied in float, not by
activation ranges or ties (reports/ablations/quantisation_aware_diagnostic.md: with the weights
already on the grid, agreement was 98-99 %).

How, and why this way: TFLite folds each BatchNorm into the convolution before it and quantises the
folded weights symmetrically per output channel (scale = max |w| / 127). So the model is first
rewritten with that folding done (Conv1D with bias, no BatchNorm: the same function), then trained
for a few epochs at a small rate with its convolution weights fake-quantised per channel in the
forward pass (straight-through gradients), and finally its weights are rounded onto the grid. The
result is an ordinary Keras model of standard layers, which converts, saves and loads like any other.
Only the plain chain `build_model` makes is supported (no attention, statistics pooling or ensembles).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_ser_train.errors import TrainingError
from edge_ser_train.examples import ExampleSet
from edge_ser_train.fit import TrainConfig, epoch_inputs, example_weights

INT8_STEPS = 127  # symmetric narrow range: -127..127


def on_int8_grid(kernel: np.ndarray) -> np.ndarray:
    """`kernel` (taps, inputs, outputs) rounded to TFLite's per-output-channel symmetric int8 grid."""
    peak = np.abs(kernel).max(axis=(0, 1))
    step = np.where(peak > 0, peak / INT8_STEPS, 1.0)
    return (np.round(kernel / step) * step).astype(np.float32)


def _fake_quantised_conv(kernel: np.ndarray, bias: np.ndarray) -> Any:
    """A Conv1D ('same' padding, stride 1, with bias) whose kernel is fake-quantised per output
    channel in every forward pass; the gradient passes straight through the rounding."""
    import keras
    import tensorflow as tf

    class FakeQuantisedConv1D(keras.layers.Layer):
        def build(self, input_shape: Any) -> None:
            self.kernel = self.add_weight(shape=kernel.shape, initializer=keras.initializers.Constant(kernel))
            self.bias = self.add_weight(shape=bias.shape, initializer=keras.initializers.Constant(bias))

        def call(self, inputs: Any) -> Any:
            peak = tf.stop_gradient(tf.reduce_max(tf.abs(self.kernel), axis=[0, 1]))
            rounded = tf.quantization.fake_quant_with_min_max_vars_per_channel(
                self.kernel, -peak, peak, num_bits=8, narrow_range=True)
            return tf.nn.conv1d(inputs, rounded, stride=1, padding="SAME") + self.bias

    return FakeQuantisedConv1D()


def fold_batchnorm(model: Any, *, trainable_grid: bool = False) -> Any:
    """`model` with every Conv1D + BatchNormalization pair as one convolution with bias, as the
    converter folds them: a plain Conv1D (weights unchanged, not rounded), or with `trainable_grid`
    a fake-quantised one for fine-tuning. Every other layer is copied with its weights."""
    import keras
    from keras import layers

    stateless = (layers.ReLU, layers.MaxPooling1D, layers.GlobalAveragePooling1D, layers.Dropout)
    inputs = keras.Input(shape=model.input_shape[1:], name=model.inputs[0].name)
    x, pending = inputs, None
    for layer in model.layers[1:]:
        if isinstance(layer, layers.Conv1D) and pending is None and layer.padding == "same" and not layer.use_bias:
            pending = layer
        elif isinstance(layer, layers.BatchNormalization) and pending is not None:
            gamma, beta, mean, variance = layer.get_weights()
            factor = gamma / np.sqrt(variance + layer.epsilon)
            kernel = (pending.get_weights()[0] * factor).astype(np.float32)
            bias = (beta - mean * factor).astype(np.float32)
            if trainable_grid:
                x = _fake_quantised_conv(kernel, bias)(x)
            else:
                conv = layers.Conv1D(kernel.shape[-1], kernel.shape[0], padding="same")
                x = conv(x)
                conv.set_weights([kernel, bias])
            pending = None
        elif isinstance(layer, stateless) and pending is None:
            x = layer.__class__.from_config(layer.get_config())(x)
        elif isinstance(layer, layers.Dense) and pending is None:
            dense = layers.Dense.from_config(layer.get_config())
            x = dense(x)
            dense.set_weights(layer.get_weights())
        else:
            raise TrainingError(f"quantisation-aware fine-tuning needs the plain Conv1D chain; {model.name} has "
                                f"{type(layer).__name__} {layer.name!r} there (no --attention, --pooling stats or "
                                "--members > 1)")
    return keras.Model(inputs, x, name=model.name)


def fine_tune_on_grid(model: Any, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None,
                      cfg: TrainConfig) -> Any:
    """`cfg.qat_epochs` of fine-tuning at `cfg.qat_learning_rate` with fake-quantised convolution
    weights on windows `x` (as the model takes them: scaled if the coefficient scale is folded in) and
    labels `y`, each epoch's inputs regularised as in training if `cfg.qat_augment`; returns the
    BatchNorm-folded model of standard layers with its convolution weights on the int8 grid."""
    import keras

    keras.utils.set_random_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tuned = fold_batchnorm(model, trainable_grid=True)
    targets = np.eye(int(model.output_shape[-1]), dtype=np.float32)[y]
    tuned.compile(optimizer=keras.optimizers.Adam(cfg.qat_learning_rate), loss="categorical_crossentropy")
    for _ in range(cfg.qat_epochs):
        inputs, outputs = epoch_inputs(x, targets, cfg, rng) if cfg.qat_augment else (x, targets)
        tuned.fit(inputs, outputs, sample_weight=weights, batch_size=cfg.batch_size, epochs=1, shuffle=True,
                  verbose=0)
    # The plain folded model has the same layers in the same order, each holding the same weights
    # (a fake-quantised convolution's kernel and bias, as a Conv1D's): take them all, then round.
    plain = fold_batchnorm(model)
    plain.set_weights(tuned.get_weights())
    for conv in (layer for layer in plain.layers if isinstance(layer, keras.layers.Conv1D)):
        kernel, bias = conv.get_weights()
        conv.set_weights([on_int8_grid(kernel), bias])
    return plain


def grid_fine_tuned(model: Any, train: ExampleSet, scale: tuple[float, ...], cfg: TrainConfig) -> Any:
    """`fine_tune_on_grid` on the training windows with the loss weights the model was trained with;
    `scale` is the coefficient scale already folded into `model` (() if none), so the windows are
    divided by it first, as the converted model will receive them."""
    x = train.x / np.asarray(scale, dtype=np.float32) if scale else train.x
    weights = example_weights(train.y, train.clip_corpus[train.clip], cfg.balance, train.clip_speaker[train.clip])
    return fine_tune_on_grid(model, x, train.y, weights, cfg)
