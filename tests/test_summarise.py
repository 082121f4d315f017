"""The report table quotes the metrics files: a hand-checkable report gives the expected row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.fit import History
from converter.metrics import scores
from converter.report import write_report
from converter.summarise import main, row

LABELS = ("neutral", "angry")


def fold(y_pred: list[int], agreement: float) -> dict:
    # Four test clips, two per class; the int8 and the float model predict the same here.
    result = scores(np.array([0, 0, 1, 1]), np.array(y_pred), LABELS)
    return {"float": {"clip": result, "window": result}, "int8": {"clip": result, "window": result},
            "top1_agreement": agreement, "tflite_bytes": 2048, "member_float_clip_ua": [0.5, 1.0]}


def test_a_report_row_gives_means_over_folds_and_each_fold(tmp_path: Path) -> None:
    # Fold 1: neutral 1/2 and angry 2/2 right (UA 75 %); fold 2: all right (UA 100 %).
    write_report(tmp_path / "run", LABELS, [fold([0, 1, 1, 1], 0.96), fold([0, 0, 1, 1], 0.98)],
                 [History(), History()], {"folds": 2})
    cells = row(tmp_path / "run")
    assert cells[0] == "run"
    assert cells[2] == "87.5 ± 12.5"  # int8 UA: mean and population std of 75 and 100
    assert cells[3] == "87.5 ± 12.5"  # WA: 3/4 and 4/4
    assert cells[5] == "97.0 (96.0)"
    assert cells[6] == "75.0, 100.0"
    assert cells[7] == "50.0, 100.0"
    assert cells[8] == "2"


def test_a_folder_without_metrics_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no metrics\.json in .*empty"):
        main([str(tmp_path / "empty")])
