"""Speaker-independent scores: UA (mean per-class recall, the headline), WA, macro-F1, confusion.

Clip-level predictions average the window probabilities of a clip, exactly like `edge-ser predict`
does for a file; a clip in which the gate found no speech gets no prediction and counts as an error
rather than silently disappearing from the denominator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NO_PREDICTION = -1


def clip_probabilities(window_probs: np.ndarray, window_clip: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """(len(clips), labels) mean window probabilities per clip; NaN rows for clips without windows."""
    out = np.full((len(clips), window_probs.shape[1]), np.nan, dtype=np.float64)
    for row, clip in enumerate(clips):
        mine = window_probs[window_clip == clip]
        if len(mine):
            out[row] = mine.mean(axis=0)
    return out


def predictions(probs: np.ndarray) -> np.ndarray:
    """argmax per row, NO_PREDICTION where the row is NaN (nothing was classified)."""
    pred = np.full(len(probs), NO_PREDICTION, dtype=np.int64)
    ok = ~np.isnan(probs).any(axis=1)
    pred[ok] = probs[ok].argmax(axis=1)
    return pred


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Counts[true, predicted]; predictions of NO_PREDICTION are dropped from the matrix but not from
    the recalls (they lower the row's recall)."""
    matrix = np.zeros((n_labels, n_labels), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if p != NO_PREDICTION:
            matrix[t, p] += 1
    return matrix


def scores(y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[str, ...]) -> dict[str, Any]:
    """UA, WA, macro-F1, per-class recall/precision/F1 and the confusion matrix."""
    n = len(labels)
    matrix = confusion(y_true, y_pred, n)
    support = np.bincount(y_true, minlength=n)
    hits = np.diag(matrix)
    recall = np.divide(hits, support, out=np.zeros(n), where=support > 0)
    predicted = matrix.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros(n), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=precision + recall > 0)
    present = support > 0
    return {
        "ua": float(recall[present].mean()),
        "wa": float(hits.sum() / max(len(y_true), 1)),
        "macro_f1": float(f1[present].mean()),
        "per_class_recall": dict(zip(labels, recall.round(4).tolist(), strict=True)),
        "per_class_precision": dict(zip(labels, precision.round(4).tolist(), strict=True)),
        "per_class_f1": dict(zip(labels, f1.round(4).tolist(), strict=True)),
        "support": dict(zip(labels, support.tolist(), strict=True)),
        "no_prediction": int(np.sum(y_pred == NO_PREDICTION)),
        "confusion": matrix.tolist(),
    }


def mean_std(fold_scores: list[dict[str, Any]], keys: tuple[str, ...] = ("ua", "wa", "macro_f1")) -> dict:
    """Mean and (population) std over folds of the scalar metrics."""
    return {k: {"mean": float(np.mean([s[k] for s in fold_scores])),
                "std": float(np.std([s[k] for s in fold_scores]))} for k in keys}


def classification_report(s: dict[str, Any], labels: tuple[str, ...]) -> str:
    """A plain-text table like scikit-learn's, from `scores` output."""
    lines = [f"{'class':>12} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for name in labels:
        lines.append(f"{name:>12} {s['per_class_precision'][name]:9.3f} {s['per_class_recall'][name]:7.3f} "
                     f"{s['per_class_f1'][name]:6.3f} {s['support'][name]:8d}")
    lines.append(f"\nUA {s['ua']:.4f}  WA {s['wa']:.4f}  macro-F1 {s['macro_f1']:.4f}  "
                 f"clips without speech windows: {s['no_prediction']}")
    return "\n".join(lines)


ECE_BINS = 10


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label expected calibration error: rows binned by their top probability into `bins`
    equal-width bins ((0, 0.1], (0.1, 0.2], ...; 0 joins the first), then the support-weighted mean of
    |accuracy - mean confidence| per bin. 0 means "confidence c is right c of the time"; an
    over-confident model scores high even when its accuracy is good. Rows with NaN (clips without
    speech windows) have no confidence to judge and are left out."""
    ok = ~np.isnan(probs).any(axis=1)
    probs, y_true = probs[ok], y_true[ok]
    if not len(probs):
        return float("nan")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(probs))
