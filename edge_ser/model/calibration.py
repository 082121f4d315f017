"""Temperature scaling of the classifier's probabilities: the optional `calibration` manifest block.

Why temperature scaling: a small network trained with cross-entropy is over-confident on speakers it
never heard, so "confidence 0.95" would not mean right 95 % of the time. One scalar T, fitted after
training on held-out speakers' probabilities (edge_ser_train.calibration), softens (T > 1) or sharpens
(T < 1) every output without changing which class is on top, so accuracy is untouched and only the
confidence starts to mean something. The int8 model ends in a softmax, so the runtime scales the
log-probabilities: softmax(log(p) / T) equals softmax(logits / T), the textbook definition.

A manifest without the block means T = 1 and the probabilities pass through untouched, bit for bit:
models written before calibration existed (the bundled 2.0.0) behave exactly as they did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# An int8 softmax output is quantised in steps of 1/256 (TFLite fixes that output scale), so a class
# that comes out as exactly 0 had a probability below half a step, not zero: scaling uses this
# floor instead of log(0) = -inf, which no temperature could ever lift.
PROBABILITY_FLOOR = 1.0 / 512


@dataclass(frozen=True)
class Calibration:
    """What scales the probabilities, and what it was fitted on (for the reader of the manifest)."""

    temperature: float = 1.0
    fitted_on: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"calibration.temperature must be a positive number, got {self.temperature!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(temperature=float(data["temperature"]), fitted_on=str(data.get("fitted_on", "")))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) along the last axis; `probabilities` unchanged (the same array) when T is 1."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.maximum(probabilities.astype(np.float64), PROBABILITY_FLOOR)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    out: np.ndarray = (scaled / scaled.sum(axis=-1, keepdims=True)).astype(probabilities.dtype)
    return out
