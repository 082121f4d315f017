"""Keras classifiers over one analysis window of (frames x coefficients).

Every layer here converts to full-integer int8 TFLite builtins (Conv1D becomes CONV_2D, BatchNorm
is folded, pooling and softmax are int8 kernels), so whatever `build_model` returns can ship.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_ser.errors import ConfigError

POOLINGS = ("mean", "stats")
OUTPUT_LAYERS = ("int8", "float")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture knobs; stored with the training run so a model can be rebuilt exactly."""

    width: int = 64  # filters of the first block; doubled every second block
    depth: int = 3  # Conv1D blocks (conv -> BatchNorm -> ReLU -> max-pool)
    kernel: int = 5
    dropout: float = 0.3
    attention: bool = False  # multiscale area attention over time before pooling
    attention_areas: tuple[int, ...] = (1, 2, 4)  # area widths (in pooled frames) of the attention
    pooling: str = "mean"  # over time: "mean" (global average) or "stats" (mean and mean absolute deviation)
    output_layer: str = "int8"  # the converted dense layer + softmax: "int8" or "float" (see export.to_int8_tflite)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, not {self.pooling!r}")
        if self.output_layer not in OUTPUT_LAYERS:
            raise ConfigError(f"output_layer must be one of {OUTPUT_LAYERS}, not {self.output_layer!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def statistics_pooling(x: Any) -> Any:
    """(batch, time, channels) -> (batch, 2 * channels): the mean over time and the mean absolute
    deviation from it, a spread statistic like the x-vector standard deviation that needs only
    MEAN, SUB and ABS (all int8 TFLite builtins; a square root has no int8 kernel)."""
    from keras import layers

    mean = layers.GlobalAveragePooling1D(keepdims=True)(x)
    deviation = layers.Subtract()([x, mean])
    spread = layers.GlobalAveragePooling1D()(_absolute_layer()(deviation))
    return layers.Concatenate()([layers.GlobalAveragePooling1D()(x), spread])


def _absolute_layer() -> Any:
    """An element-wise |x| layer (TFLite ABS), registered so a saved .keras model loads again."""
    import keras

    @keras.saving.register_keras_serializable(package="edge_ser")
    class Absolute(keras.layers.Layer):
        def call(self, inputs: Any) -> Any:
            return keras.ops.absolute(inputs)

    return Absolute()


def load_model(path: Path) -> Any:
    """A .keras model the training tools saved, in a process that has not built one: the custom
    layers they may contain (`--pooling stats`) are registered when their class is defined, so that
    is done first, or Keras cannot locate them."""
    import keras

    _absolute_layer()
    return keras.saving.load_model(path)


def build_model(window_frames: int, n_coefficients: int, n_labels: int, cfg: ModelConfig,
                seed: int = 0, name: str = "edge_ser_conv1d") -> Any:
    """A Conv1D classifier with softmax output; input (window_frames, n_coefficients)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(window_frames, n_coefficients), name="mfcc")
    x = inputs
    for block in range(cfg.depth):
        filters = cfg.width * 2 ** (block // 2)
        x = layers.Conv1D(filters, cfg.kernel, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if block < cfg.depth - 1:
            x = layers.MaxPooling1D(2)(x)
    if cfg.attention:
        from edge_ser_train.attention import multiscale_area_attention

        x = multiscale_area_attention(x, cfg.attention_areas)
    x = statistics_pooling(x) if cfg.pooling == "stats" else layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(cfg.dropout)(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def average_models(members: list[Any]) -> Any:
    """One model whose output is the mean of the members' probabilities (an int8 AVERAGE of their
    softmax outputs after conversion), so an ensemble ships as one .tflite with one input."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=members[0].input_shape[1:], name="mfcc")
    outputs = layers.Average(name="probabilities")([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name="edge_ser_ensemble")
