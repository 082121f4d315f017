"""The training-window fingerprint a model records, which tells a rebuild before training whether it
sees the very windows the model was trained on (edge_ser_train.build_default)."""

from __future__ import annotations

import numpy as np

from edge_ser_train.examples import ExampleSet


def windows(x: np.ndarray, y: np.ndarray) -> ExampleSet:
    n = len(x)
    return ExampleSet(x, y, np.arange(n), np.zeros(n, np.int16), y.copy(), np.array(["a"] * n))


def test_the_fingerprint_sees_a_change_in_the_last_bit_of_one_value_or_one_label() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 5, 3)).astype(np.float32), np.array([0, 1, 2, 0, 1, 2])
    reference = windows(x, y).fingerprint()
    assert windows(x.copy(), y.copy()).fingerprint() == reference
    nudged = x.copy()
    nudged[3, 2, 1] = np.nextafter(nudged[3, 2, 1], np.float32(np.inf))
    assert windows(nudged, y).fingerprint() != reference
    relabelled = y.copy()
    relabelled[5] = 0
    assert windows(x, relabelled).fingerprint() != reference
    assert windows(x[::-1].copy(), y[::-1].copy()).fingerprint() != reference  # order is part of training
    assert windows(x.astype(np.float64), y).fingerprint() == reference  # the values, not the array's dtype
