"""Fitting the temperature that makes the model's confidence mean something (model.calibration).

Why on held-out folds: a model is over-confident exactly on speakers it did not train on, so T must
be fitted on probabilities for such speakers; in cross-validation every clip is scored by the fold
that did not train on it, so the pooled out-of-fold probabilities are that sample. Why at clip
level: the device reports the mean of an utterance's (calibrated) window probabilities, so T is
chosen to make that mean honest, which is what a consumer of events reads.

The shipped T is fitted on all folds; the before/after ECE in the report is cross-fitted (each
fold scored with a T fitted on the other folds), so the improvement is not measured on the data
that chose T.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from edge_ser.model.calibration import PROBABILITY_FLOOR, apply_temperature
from edge_ser_train.metrics import clip_probabilities, expected_calibration_error

TEMPERATURE_BOUNDS = (0.05, 20.0)  # far beyond any sensible T; keeps the 1-D search bounded


@dataclass(frozen=True)
class HeldOut:
    """One fold's int8 window probabilities on its test speakers, with their clips' labels."""

    window_probs: np.ndarray  # (windows, labels)
    window_clip: np.ndarray  # clip id per window
    clips: np.ndarray  # clip ids of the fold (clips without windows included)
    clip_labels: np.ndarray  # label per entry of `clips`

    def clip_probs(self, temperature: float) -> np.ndarray:
        """Clip-level probabilities as the device computes them: mean of calibrated windows."""
        return clip_probabilities(apply_temperature(self.window_probs, temperature), self.window_clip, self.clips)


def clip_nll(temperature: float, folds: list[HeldOut]) -> float:
    """Mean negative log-likelihood of the true labels at clip level (clips without windows left out)."""
    losses = []
    for fold in folds:
        probs = fold.clip_probs(temperature)
        ok = ~np.isnan(probs).any(axis=1)
        true = probs[ok, fold.clip_labels[ok]]
        losses.append(-np.log(np.maximum(true, PROBABILITY_FLOOR)))
    return float(np.mean(np.concatenate(losses)))


def fit_temperature(folds: list[HeldOut]) -> float:
    """The T minimising clip-level NLL on `folds` (bounded 1-D search over log T, where NLL is smooth)."""
    lo, hi = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(lambda log_t: clip_nll(float(np.exp(log_t)), folds), bounds=(lo, hi),
                             method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def _ece(fold: HeldOut, temperature: float) -> float:
    return expected_calibration_error(fold.clip_probs(temperature), fold.clip_labels)


def calibration_summary(folds: list[HeldOut]) -> dict[str, Any]:
    """The temperature to ship (fitted on all folds) and ECE before/after, cross-fitted per fold and
    pooled: what metrics.json and the report show, and what edge-ser-convert copies into a manifest."""
    per_fold = []
    before_all, after_all, labels_all = [], [], []
    for i, fold in enumerate(folds):
        others = [f for j, f in enumerate(folds) if j != i] or [fold]
        t = fit_temperature(others)
        per_fold.append({"temperature": t, "ece_before": _ece(fold, 1.0), "ece_after": _ece(fold, t),
                         "nll_before": clip_nll(1.0, [fold]), "nll_after": clip_nll(t, [fold])})
        before_all.append(fold.clip_probs(1.0))
        after_all.append(fold.clip_probs(t))
        labels_all.append(fold.clip_labels)
    labels = np.concatenate(labels_all)
    return {"temperature": fit_temperature(folds),
            "fitted_on": f"int8 clip probabilities of {len(folds)} cross-validation test folds (NLL)",
            "ece_before": expected_calibration_error(np.concatenate(before_all), labels),
            "ece_after": expected_calibration_error(np.concatenate(after_all), labels),
            "ece_after_note": "cross-fitted: each fold scored with T fitted on the other folds",
            "folds": per_fold}
