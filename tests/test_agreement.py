"""How the int8 model's agreement with the float model is counted, worked by hand: ties at the int8
output's resolution, and agreement at the clip level a user sees."""

from __future__ import annotations

import numpy as np

from edge_ser_train.evaluate import clip_agreement, top_ties
from edge_ser_train.examples import ExampleSet


def test_ties_are_rows_whose_two_highest_outputs_are_equal() -> None:
    probs = np.array([[0.5, 0.5, 0.0],  # tie at the top
                      [0.4, 0.2, 0.4],  # tie at the top, not adjacent
                      [0.6, 0.2, 0.2],  # tie below the top: not a tie for argmax
                      [0.5, 0.49, 0.01]])  # close, not equal
    assert top_ties(probs) == 0.5
    assert top_ties(np.zeros((0, 3))) == 0.0


def test_clip_agreement_compares_the_labels_of_windows_averaged_per_clip() -> None:
    # Clip 0: two windows, the int8 model flips the second, but the averages still pick class 0.
    # Clip 1: one window, the int8 model picks class 1 where the float model picks 0.
    # Clip 2: no windows (the gate heard no speech): no label from either model, which is alike.
    data = ExampleSet(np.zeros((3, 4, 2), np.float32), np.array([0, 0, 0]), np.array([0, 0, 1]),
                      np.zeros(3, np.int16), np.array([0, 0, 0]), np.array(["a", "a", "a"]), speakers=("a",))
    float_probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.55, 0.45]])
    int8_probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55]])
    window_agreement = np.mean(float_probs.argmax(1) == int8_probs.argmax(1))
    assert window_agreement == 1 / 3
    assert clip_agreement(float_probs, int8_probs, data) == 2 / 3
