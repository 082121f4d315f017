"""Report folders: the table quotes the metrics files (a hand-checkable report gives the expected
row), and each fold's training curve is kept as strict JSON even without validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from edge_ser_train.fit import History
from edge_ser_train.metrics import scores
from edge_ser_train.report import write_report
from edge_ser_train.summarise import main, row

LABELS = ("neutral", "angry")


def fold(y_pred: list[int], agreement: float) -> dict:
    # Four test clips, two per class; the int8 and the float model predict the same here.
    result = scores(np.array([0, 0, 1, 1]), np.array(y_pred), LABELS)
    return {"float": {"clip": result, "window": result}, "int8": {"clip": result, "window": result},
            "top1_agreement": agreement, "clip_agreement": 1.0, "int8_ties": 0.0, "tflite_bytes": 2048,
            "member_float_clip_ua": [0.5, 1.0]}


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


def test_a_folder_without_metrics_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err == f"summarise: error: no metrics.json in {tmp_path / 'empty'}\n"


def test_curves_are_kept_and_missing_validation_is_null_not_nan(tmp_path: Path) -> None:
    fixed = History(train_loss=[1.5, 1.0, 0.7], val_loss=[math.nan] * 3, val_ua=[math.nan] * 3, best_epoch=2)
    stopped = History(train_loss=[1.4, 0.9], val_loss=[1.2, 1.3], val_ua=[0.4, 0.5], best_epoch=0)
    for name, histories in (("fixed", [fixed, fixed]), ("stopped", [stopped, fixed])):
        write_report(tmp_path / name, LABELS, [fold([0, 0, 1, 1], 1.0)] * 2, histories, {"folds": 2})
        text = (tmp_path / name / "metrics.json").read_text()
        assert "NaN" not in text
        assert (tmp_path / name / "training_curves.png").stat().st_size > 1000
    curves = json.loads((tmp_path / "stopped" / "metrics.json").read_text())["curves"]
    assert curves[0] == {"train_loss": [1.4, 0.9], "val_loss": [1.2, 1.3], "val_ua": [0.4, 0.5], "best_epoch": 1}
    assert curves[1]["val_loss"] == [None, None, None] and curves[1]["best_epoch"] == 3


def scored(y_true: list[int], y_pred: list[int]) -> dict:
    result = scores(np.array(y_true), np.array(y_pred), LABELS)
    return {"float": {"clip": result, "window": result}, "int8": {"clip": result, "window": result}}


def test_per_corpus_and_leave_one_corpus_out_tables(tmp_path: Path) -> None:
    # Two folds; each tests one speaker of corpus a (two clips) and one of corpus b (two clips).
    # Corpus a: fold 1 gets both right, fold 2 calls its angry clip neutral -> pooled recall
    # neutral 2/2, angry 1/2: UA 75 %. Corpus b: every clip called neutral -> UA 50 %, WA 50 %.
    a1, a2 = scored([0, 1], [0, 1]), scored([0, 1], [0, 0])
    b1, b2 = scored([0, 1], [0, 0]), scored([0, 1], [0, 0])
    folds = [{**scored([0, 1, 0, 1], [0, 1, 0, 0]), "corpora": {"a": a1, "b": b1}, "top1_agreement": 1.0,
              "clip_agreement": 1.0, "int8_ties": 0.0},
             {**scored([0, 1, 0, 1], [0, 0, 0, 0]), "corpora": {"a": a2, "b": b2}, "top1_agreement": 0.9,
              "clip_agreement": 0.75, "int8_ties": 0.04}]
    # Leave-one-corpus-out: a scored 4/4 right (UA 100 %), b 2/4 with both neutral clips wrong (UA 50 %).
    loco = [{"corpus": "a", "train_corpora": ["b", "tess"], **scored([0, 0, 1, 1], [0, 0, 1, 1]),
             "top1_agreement": 0.95},
            {"corpus": "b", "train_corpora": ["a", "tess"], **scored([0, 0, 1, 1], [1, 1, 1, 1]),
             "top1_agreement": 0.85}]
    settings = {"protocol": "both", "corpora": ["a", "b", "tess"], "dropped_clips": {"boredom": 3},
                "speakers": {"a": ["a:1", "a:2"], "b": ["b:1", "b:2"], "tess": ["tess:OAF"]}}
    summary = write_report(tmp_path, LABELS, folds, [History(), History()], settings, loco=loco)
    assert summary["loco"]["int8_clip"]["ua"] == {"mean": 0.75, "std": 0.25}
    report = json.loads((tmp_path / "metrics.json").read_text())
    corpora = report["per_corpus"]
    assert corpora["a"]["pooled_clip"]["int8"]["ua"] == 0.75
    assert corpora["a"]["pooled_clip"]["int8"]["confusion"] == [[2, 0], [1, 1]]
    assert corpora["b"]["pooled_clip"]["int8"]["per_class_recall"] == {"neutral": 1.0, "angry": 0.0}
    assert "pooled_clip" not in corpora["tess"] and "one speaker" in corpora["tess"]["note"]
    assert [r["corpus"] for r in report["loco"]] == ["a", "b"]
    md = (tmp_path / "report.md").read_text()
    assert "| a | b, tess | 4 | 100.0 | 100.0 | 100.0 | 100.0 | 95.0 |" in md
    assert "| b | a, tess | 4 | 50.0 | 50.0 | 33.3 | 50.0 | 85.0 |" in md
    assert "| **mean over corpora** | | | **75.0** | 75.0 | 66.7 | 75.0 | |" in md
    assert "| a | 2 | 4 | 75.0 | 75.0 | 73.3 | 75.0 |" in md
    assert "| b | 2 | 4 | 50.0 | 50.0 | 33.3 | 50.0 |" in md
    assert "| tess | 1 | – |" in md and "boredom 3" in md
    assert ("lowest fold (mean over folds): windows 90.0 % (95.0 %), clips 75.0 % (87.5 %)" in md
            and "2.0 % (at most 4.0 % in a fold)" in md)
    assert md.index("Leave one corpus out") < md.index("Cross-validation by speaker")
    assert "== int8, leave b out (trained on a, tess) ==" in (tmp_path / "classification_report.txt").read_text()


def test_a_leave_one_corpus_out_run_alone_has_no_cv_tables(tmp_path: Path) -> None:
    loco = [{"corpus": c, "train_corpora": ["x"], **scored([0, 1], [0, 1]), "top1_agreement": 1.0} for c in "ab"]
    summary = write_report(tmp_path, LABELS, [], [], {"protocol": "loco", "speakers": {}}, loco=loco)
    assert list(summary) == ["loco"]
    assert "Cross-validation" not in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "confusion_int8.png").exists()


def test_summarise_names_a_folder_without_folds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loco = [{"corpus": "a", "train_corpora": ["x"], **scored([0, 1], [0, 1]), "top1_agreement": 1.0}]
    write_report(tmp_path / "loco", LABELS, [], [], {"protocol": "loco", "speakers": {}}, loco=loco)
    assert main([str(tmp_path / "loco")]) == 2
    assert capsys.readouterr().err == (f"summarise: error: no cross-validation folds in {tmp_path / 'loco'} "
                                       "(leave-one-corpus-out only: see report.md there)\n")


def test_a_test_clip_without_speech_windows_counts_as_a_miss() -> None:
    """Three clips of speaker a, one of b; a's third clip gave the gate nothing. Scored for a, that
    clip is an error (UA over a's two labels: 1/1 and 1/2), not a row left out (which would give 1.0)."""
    from edge_ser_train.evaluate import level_scores
    from edge_ser_train.examples import ExampleSet

    x = np.zeros((3, 4, 2), np.float32)
    data = ExampleSet(x, np.array([0, 1, 1]), np.array([0, 1, 3]), np.zeros(3, np.int16),
                      np.array([0, 1, 1, 1]), np.array(["a", "a", "a", "b"]))
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    only_a = data.select_speakers(["a"])
    assert only_a.clips().tolist() == [0, 1, 2]
    assert level_scores(probs[:2], only_a, ("x", "y"))["clip"]["ua"] == 0.75
    # selecting again within it never brings b's clips back
    assert only_a.select_speakers(["a", "b"]).clips().tolist() == [0, 1, 2]
