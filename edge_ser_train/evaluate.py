"""Score a float Keras model and its int8 conversion on the same held-out windows.

Used by cross-validation (every fold reports float and int8) and by `edge-ser-convert`, which
refuses to write a model whose int8 predictions disagree with the float model beyond a threshold
(a weightless or NaN conversion agrees with nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_ser_train.examples import ExampleSet
from edge_ser_train.export import int8_predict
from edge_ser_train.metrics import clip_probabilities, predictions, scores


def clip_predictions(probs: np.ndarray, data: ExampleSet) -> np.ndarray:
    """The label of each of `data.clips()`, windows averaged per clip as on the device
    (NO_PREDICTION for a clip without windows)."""
    return predictions(clip_probabilities(probs, data.clip, data.clips()))


def level_scores(probs: np.ndarray, data: ExampleSet, labels: tuple[str, ...]) -> dict[str, Any]:
    """Clip-level (headline, windows averaged per clip as on the device; a clip of the set's speakers
    without windows is an error) and window-level scores."""
    window_pred = predictions(probs)
    return {"clip": scores(data.clip_label[data.clips()], clip_predictions(probs, data), labels),
            "window": scores(data.y, window_pred, labels)}


@dataclass(frozen=True)
class Comparison:
    float_scores: dict[str, Any]
    int8_scores: dict[str, Any]
    top1_agreement: float  # window level: int8 argmax == float argmax
    clip_agreement: float  # clip level (windows averaged per clip, as the device decides): the same labels
    int8_ties: float  # share of windows whose two highest int8 outputs are equal (see top_ties)
    ua_drop: float  # clip-level float UA minus int8 UA (points of 1.0)
    finite: bool  # int8 outputs were all finite numbers
    int8_probs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))  # per window, for calibration

    def problems(self, min_agreement: float, max_ua_drop: float) -> list[str]:
        """Reasons not to ship the int8 model; empty when it is fit to write."""
        found = []
        if not self.finite:
            found.append("int8 model outputs non-finite values")
        if self.top1_agreement < min_agreement:
            found.append(f"top-1 agreement with the float model {self.top1_agreement:.3f} < {min_agreement}")
        if self.ua_drop > max_ua_drop:
            found.append(f"clip-level UA drops by {self.ua_drop:.3f} > {max_ua_drop} after quantisation")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"float": self.float_scores, "int8": self.int8_scores, "top1_agreement": self.top1_agreement,
                "clip_agreement": self.clip_agreement, "int8_ties": self.int8_ties, "ua_drop": self.ua_drop}


def top_ties(probs: np.ndarray) -> float:
    """Share of rows whose two highest values are exactly equal.

    Why it is reported: an int8 softmax output moves in steps of 1/256, so two classes closer than
    that come out equal and argmax takes the first. Such a window disagrees with the float model by
    the index order of the labels, not by a wrong judgement, and no calibration or quantisation-aware
    training can separate them: only a finer output could. Agreement below target is read against it."""
    if probs.shape[1] < 2 or len(probs) == 0:
        return 0.0
    top2 = np.sort(probs, axis=1)[:, -2:]
    return float(np.mean(top2[:, 0] == top2[:, 1]))


def clip_agreement(float_probs: np.ndarray, int8_probs: np.ndarray, data: ExampleSet) -> float:
    """Share of `data`'s clips that the two models label alike, windows averaged per clip as
    `edge-ser predict` does: what a user of the int8 model sees differ (a clip without windows has
    no label in either, which is alike)."""
    if len(data.clips()) == 0:
        return 1.0
    return float(np.mean(clip_predictions(float_probs, data) == clip_predictions(int8_probs, data)))


def compare(model: Any, tflite: bytes, data: ExampleSet, labels: tuple[str, ...]) -> Comparison:
    """Float and int8 scores on `data`, and how well the two agree."""
    float_probs = model.predict(data.x, batch_size=256, verbose=0)
    int8_probs = int8_predict(tflite, data.x)
    finite = bool(np.isfinite(int8_probs).all() and np.isfinite(float_probs).all())
    agreement = float(np.mean(np.nan_to_num(int8_probs, nan=-1).argmax(1) == float_probs.argmax(1)))
    float_scores = level_scores(float_probs, data, labels)
    int8_clean = np.nan_to_num(int8_probs, nan=0.0)
    int8_scores = level_scores(int8_clean, data, labels)
    return Comparison(float_scores, int8_scores, agreement, clip_agreement(float_probs, int8_clean, data),
                      top_ties(int8_clean), float_scores["clip"]["ua"] - int8_scores["clip"]["ua"], finite, int8_clean)
