"""Keras classifiers over one analysis window of (frames x coefficients).

Every layer here converts to full-integer int8 TFLite builtins (Conv1D becomes CONV_2D, BatchNorm
is folded, pooling and softmax are int8 kernels), so whatever `build_model` returns can ship.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Architecture knobs; stored with the training run so a model can be rebuilt exactly."""

    width: int = 64  # filters of the first block; doubled every second block
    depth: int = 3  # Conv1D blocks (conv -> BatchNorm -> ReLU -> max-pool)
    kernel: int = 5
    dropout: float = 0.3
    attention: bool = False  # multiscale area attention over time before pooling
    attention_areas: tuple[int, ...] = (1, 2, 4)  # area widths (in pooled frames) of the attention

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_model(window_frames: int, n_coefficients: int, n_labels: int, cfg: ModelConfig,
                seed: int = 0) -> Any:
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
        from converter.attention import multiscale_area_attention

        x = multiscale_area_attention(x, cfg.attention_areas)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(cfg.dropout)(x)
    outputs = layers.Dense(n_labels, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="edge_ser_conv1d")
