"""Multiscale area attention (after Xu et al., ICASSP 2021) over the time axis of a Conv1D feature map.

Keys and values of an "area" are the mean of `a` neighbouring frames (average pooling, stride 1),
so one query can attend to a phone-sized or a syllable-sized stretch; the outputs of the area sizes
are averaged and added to the input (residual). Built only from Dense, AveragePooling1D, matmul
and softmax, which all have int8 TFLite kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def multiscale_area_attention(x: Any, areas: Sequence[int], key_dim: int = 32) -> Any:
    """x: (batch, time, channels) -> same shape, with attention over areas of each size in `areas`."""
    from keras import layers

    channels = x.shape[-1]
    query = layers.Dense(key_dim, use_bias=False)(x)
    outputs = []
    for a in areas:
        area = x if a == 1 else layers.AveragePooling1D(a, strides=1, padding="same")(x)
        key = layers.Dense(key_dim, use_bias=False)(area)
        value = layers.Dense(channels, use_bias=False)(area)
        outputs.append(layers.Attention(use_scale=False, score_mode="dot")([query, value, key]))
    mixed = outputs[0] if len(outputs) == 1 else layers.Average()(outputs)
    return layers.Add()([x, mixed])
