"""Confidence that means something: the manifest's temperature through the real classifier, ECE on a
hand-worked example, and the temperature fit recovering a known over-confidence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_ser.errors import ModelError
from edge_ser.model.classifier import Classifier
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.model.manifest import Manifest, manifest_path
from edge_ser_train.calibration import HeldOut, calibration_summary, fit_temperature
from edge_ser_train.convert import cv_calibration
from edge_ser_train.metrics import expected_calibration_error


def set_calibration(model: Path, block: object) -> None:
    data = json.loads(manifest_path(model).read_text())
    data["calibration"] = block
    manifest_path(model).write_text(json.dumps(data))


def windows(n: int = 20) -> np.ndarray:
    return np.random.default_rng(3).standard_normal((n, 50, 20)).astype(np.float32)


def test_temperature_in_the_manifest_softens_the_real_models_outputs(model_copy: Path) -> None:
    plain = [Classifier(model_copy).predict(w) for w in windows()]
    set_calibration(model_copy, {"temperature": 2.0, "fitted_on": "test"})
    scaled = [Classifier(model_copy).predict(w) for w in windows()]
    for p, q in zip(plain, scaled, strict=True):
        # softmax(log p / 2) written another way: sqrt(p) renormalised (zeros floored at half an int8 step)
        root = np.sqrt(np.maximum(p.astype(np.float64), 1 / 512))
        np.testing.assert_allclose(q, root / root.sum(), rtol=1e-5)
        assert np.argmax(q) == np.argmax(p)  # the decision never changes, only the confidence
        assert q.max() <= p.max() + 1e-7


def test_without_the_block_outputs_and_manifests_are_untouched(model_copy: Path, tiny_model: Path) -> None:
    before = Classifier(tiny_model)
    set_calibration(model_copy, {"temperature": 1.0})
    same = Classifier(model_copy)
    for w in windows(5):
        assert np.array_equal(before.predict(w), same.predict(w))
    tiny = Manifest.load(manifest_path(tiny_model))
    assert tiny.calibration is None and "calibration" not in tiny.to_dict()
    # and a manifest with the block (the bundled model's) re-saves byte for byte
    bundled = Manifest.load(manifest_path(DEFAULT_MODEL))
    assert bundled.calibration is not None
    assert json.dumps(bundled.to_dict(), indent=2) + "\n" == manifest_path(DEFAULT_MODEL).read_text()


@pytest.mark.parametrize("block,message", [
    ({"temperature": -1.0}, "temperature must be a positive number"),
    ({"temperature": "warm"}, "could not convert"),
    ({"fitted_on": "x"}, "calibration lacks the key 'temperature'"),
    (3, "calibration must be an object"),
])
def test_a_bad_calibration_block_is_one_line_naming_the_file(model_copy: Path, block: object, message: str) -> None:
    set_calibration(model_copy, block)
    with pytest.raises(ModelError, match=message) as err:
        Classifier(model_copy)
    assert str(manifest_path(model_copy)) in str(err.value) and "\n" not in str(err.value)


def test_ece_on_a_hand_worked_example() -> None:
    probs = np.array([[0.95, 0.05], [0.85, 0.15], [0.15, 0.85], [0.55, 0.45], [0.35, 0.65], [np.nan, np.nan]])
    y = np.array([0, 1, 1, 0, 0, 1])
    # top confidences 0.95 (right), 0.85 (wrong), 0.85 (right), 0.55 (right), 0.65 (wrong); NaN row left out.
    # bins: (0.9, 1] {0.95: acc 1} -> |1 - 0.95| = 0.05 x 1
    #       (0.8, 0.9] {0.85, 0.85: acc 0.5} -> |0.5 - 0.85| = 0.35 x 2
    #       (0.6, 0.7] {0.65: acc 0} -> 0.65 x 1;  (0.5, 0.6] {0.55: acc 1} -> 0.45 x 1
    assert expected_calibration_error(probs, y) == pytest.approx((0.05 + 0.70 + 0.65 + 0.45) / 5)


def test_ece_bin_edges_are_closed_on_the_right() -> None:
    # 0.6 falls into (0.5, 0.6] with 0.55, so both share one bin: |1 - 0.575| = 0.425
    probs = np.array([[0.6, 0.4], [0.55, 0.45]])
    assert expected_calibration_error(probs, np.array([0, 0])) == pytest.approx(0.425)


def overconfident_folds(true_temperature: float, folds: int = 3, clips: int = 300) -> list[HeldOut]:
    """Held-out folds whose labels are drawn from softmax(z) while the 'model' reports
    softmax(z * T): a model over-confident by exactly T, one window per clip."""
    rng = np.random.default_rng(7)
    out = []
    for _ in range(folds):
        z = rng.normal(0.0, 0.8, (clips, 4))
        truth = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        labels = np.array([rng.choice(4, p=row) for row in truth])
        reported = np.exp(z * true_temperature) / np.exp(z * true_temperature).sum(axis=1, keepdims=True)
        ids = np.arange(clips)
        out.append(HeldOut(np.maximum(reported, 1 / 512), ids, ids, labels))
    return out


def test_the_fit_recovers_a_known_over_confidence_and_lowers_ece() -> None:
    folds = overconfident_folds(2.5)
    assert fit_temperature(folds) == pytest.approx(2.5, rel=0.15)
    summary = calibration_summary(folds)
    assert summary["ece_after"] < summary["ece_before"] / 2
    assert all(1.5 < f["temperature"] < 6 for f in summary["folds"])
    calibration = cv_calibration({"calibration": summary})
    assert calibration is not None and calibration.temperature == summary["temperature"]
    assert cv_calibration({"summary": {"ua": 0.5}}) is None  # reports older than calibration: T = 1


def test_the_report_and_metrics_json_carry_ece_before_and_after(tmp_path: Path) -> None:
    from edge_ser_train.fit import History
    from edge_ser_train.metrics import scores
    from edge_ser_train.report import write_report

    labels = ("neutral", "angry")
    result = scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), labels)
    fold = {"float": {"clip": result, "window": result}, "int8": {"clip": result, "window": result},
            "top1_agreement": 1.0, "clip_agreement": 1.0, "int8_ties": 0.0}
    calibration = calibration_summary(overconfident_folds(2.5, folds=2))
    summary = write_report(tmp_path, labels, [fold, fold], [History(), History()], {"folds": 2}, calibration)
    assert summary["calibration"]["temperature"] == calibration["temperature"]
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["calibration"]["ece_after"] == calibration["ece_after"]
    assert stored["summary"]["calibration"]["ece_before"] == calibration["ece_before"]
    text = (tmp_path / "classification_report.txt").read_text()
    assert f"ECE {calibration['ece_before']:.4f} before, {calibration['ece_after']:.4f} after" in text
