"""The report folder keeps each fold's training curve, as strict JSON even without validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from converter.fit import History
from converter.metrics import scores
from converter.report import write_report

LABELS = ("neutral", "angry")


def _fold() -> dict:
    result = scores(np.array([0, 1]), np.array([0, 1]), LABELS)
    return {"float": {"clip": result, "window": result}, "int8": {"clip": result, "window": result},
            "top1_agreement": 1.0, "tflite_bytes": 1024}


def test_curves_are_kept_and_missing_validation_is_null_not_nan(tmp_path: Path) -> None:
    fixed = History(train_loss=[1.5, 1.0, 0.7], val_loss=[math.nan] * 3, val_ua=[math.nan] * 3, best_epoch=2)
    stopped = History(train_loss=[1.4, 0.9], val_loss=[1.2, 1.3], val_ua=[0.4, 0.5], best_epoch=0)
    for name, histories in (("fixed", [fixed, fixed]), ("stopped", [stopped, fixed])):
        write_report(tmp_path / name, LABELS, [_fold(), _fold()], histories, {"folds": 2})
        text = (tmp_path / name / "metrics.json").read_text()
        assert "NaN" not in text
        assert (tmp_path / name / "training_curves.png").stat().st_size > 1000
    curves = json.loads((tmp_path / "stopped" / "metrics.json").read_text())["curves"]
    assert curves[0] == {"train_loss": [1.4, 0.9], "val_loss": [1.2, 1.3], "val_ua": [0.4, 0.5], "best_epoch": 1}
    assert curves[1]["val_loss"] == [None, None, None] and curves[1]["best_epoch"] == 3
