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


def level_scores(probs: np.ndarray, data: ExampleSet, labels: tuple[str, ...]) -> dict[str, Any]:
    """Clip-level (headline, windows averaged per clip as on the device; a clip of the set's speakers
    without windows is an error) and window-level scores."""
    clips = data.clips()
    clip_pred = predictions(clip_probabilities(probs, data.clip, clips))
    window_pred = predictions(probs)
    return {"clip": scores(data.clip_label[clips], clip_pred, labels),
            "window": scores(data.y, window_pred, labels)}


@dataclass(frozen=True)
class Comparison:
    float_scores: dict[str, Any]
    int8_scores: dict[str, Any]
    top1_agreement: float  # window level: int8 argmax == float argmax
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
                "ua_drop": self.ua_drop}


def compare(model: Any, tflite: bytes, data: ExampleSet, labels: tuple[str, ...]) -> Comparison:
    """Float and int8 scores on `data`, and how well the two agree."""
    float_probs = model.predict(data.x, batch_size=256, verbose=0)
    int8_probs = int8_predict(tflite, data.x)
    finite = bool(np.isfinite(int8_probs).all() and np.isfinite(float_probs).all())
    agreement = float(np.mean(np.nan_to_num(int8_probs, nan=-1).argmax(1) == float_probs.argmax(1)))
    float_scores = level_scores(float_probs, data, labels)
    int8_clean = np.nan_to_num(int8_probs, nan=0.0)
    int8_scores = level_scores(int8_clean, data, labels)
    return Comparison(float_scores, int8_scores, agreement,
                      float_scores["clip"]["ua"] - int8_scores["clip"]["ua"], finite, int8_clean)
