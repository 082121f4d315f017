"""The classifier on a real .tflite through real interpreters, and every manifest mismatch it refuses."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_ser.errors import ModelError
from edge_ser.features.config import FeatureConfig
from edge_ser.model.classifier import Classifier, dequantise, load_interpreter_class, quantise
from edge_ser.model.manifest import Manifest, Quantisation, manifest_path, sha256_file


def edit_manifest(model: Path, change) -> None:
    data = json.loads(manifest_path(model).read_text())
    change(data)
    manifest_path(model).write_text(json.dumps(data))


def window(seed: int, frames: int = 50) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((frames, 20)).astype(np.float32)


def test_predicts_a_distribution_over_the_manifest_labels(tiny_model: Path) -> None:
    clf = Classifier(tiny_model)
    assert clf.backend == "ai-edge-litert"
    assert clf.labels == ("neutral", "happy", "angry")
    probs = clf.predict(window(0))
    assert probs.shape == (3,) and np.all(probs >= 0)
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)


def test_matches_a_hand_driven_interpreter(tiny_model: Path) -> None:
    """Quantisation done independently here, with the raw LiteRT API, must give the same answer."""
    from ai_edge_litert.interpreter import Interpreter

    raw = Interpreter(model_path=str(tiny_model))
    raw.allocate_tensors()
    inp, out = raw.get_input_details()[0], raw.get_output_details()[0]
    in_scale, in_zp = inp["quantization"]
    out_scale, out_zp = out["quantization"]
    clf = Classifier(tiny_model)
    for seed in range(5):
        x = window(seed)
        q = np.clip(np.round(x / in_scale) + in_zp, -128, 127).astype(np.int8)[None]
        raw.set_tensor(inp["index"], q)
        raw.invoke()
        expected = (raw.get_tensor(out["index"])[0].astype(np.float32) - out_zp) * out_scale
        np.testing.assert_allclose(clf.predict(x), expected / expected.sum(), atol=1e-6)


@pytest.mark.slow
def test_tensorflow_backend_agrees_with_litert(tiny_model: Path) -> None:
    pytest.importorskip("tensorflow", reason="full TensorFlow is only in the train extra")
    litert = Classifier(tiny_model, backend="ai-edge-litert")
    tf_lite = Classifier(tiny_model, backend="tensorflow")
    assert tf_lite.backend == "tensorflow"
    for seed in range(3):
        np.testing.assert_allclose(tf_lite.predict(window(seed)), litert.predict(window(seed)), atol=1e-6)


def test_unavailable_backend_is_explained(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)  # as on a machine without it
    with pytest.raises(ModelError, match=r"no TFLite interpreter available.*tflite-runtime"):
        load_interpreter_class("tflite-runtime")
    with pytest.raises(ModelError, match="unknown TFLite backend 'onnx'"):
        Classifier(tiny_model, backend="onnx")


def test_quantise_round_trip_and_saturation() -> None:
    q = Quantisation("int8", scale=0.1, zero_point=-3)
    x = np.array([-20.0, -1.0, 0.0, 0.56, 20.0], dtype=np.float32)
    codes = quantise(x, q)
    assert codes.dtype == np.int8
    assert codes.tolist() == [-128, -13, -3, 3, 127]  # 0.56/0.1 rounds to 6, minus 3
    np.testing.assert_allclose(dequantise(codes, q), [-12.5, -1.0, 0.0, 0.6, 13.0], atol=1e-6)


def test_features_mismatch_is_refused(model_copy: Path) -> None:
    with pytest.raises(ModelError, match=r"other features.*n_mfcc model=20 runtime=13"):
        Classifier(model_copy, expected_features=FeatureConfig(n_mfcc=13))
    Classifier(model_copy, expected_features=FeatureConfig())  # the same features load fine


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(sha256="0" * 64), "does not match its manifest"),
    (lambda d: d["window"].update(frames=60), r"input shape \[1, 50, 20\] does not match"),
    (lambda d: d.update(labels=["a", "b", "c", "d"]), "3 outputs but the manifest lists 4 labels"),
    (lambda d: d.update(labels=["a", "a", "b"]), "without duplicates"),
    (lambda d: d["input"].update(dtype="uint8"), "input dtype is int8, manifest says uint8"),
    (lambda d: d["output"].update(zero_point=0), "output quantisation"),
    (lambda d: d["features"].update(n_mfcc=13), r"input shape \[1, 50, 20\]"),
    (lambda d: d["features"].update(pre_emphasis=0.97), "unknown feature config keys: pre_emphasis"),
    (lambda d: d["features"].update(window="kaiser"), "window must be one of"),
    (lambda d: d.update(format=99), "format 99 is not supported"),
    (lambda d: d.pop("labels"), "lacks the key 'labels'"),
])
def test_manifest_mismatches_are_refused_with_the_reason(model_copy: Path, change, message: str) -> None:
    edit_manifest(model_copy, change)
    with pytest.raises(ModelError, match=message) as err:
        Classifier(model_copy)
    assert str(model_copy.with_suffix("")) in str(err.value)


def test_missing_or_corrupt_files_name_the_file(model_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        Classifier(tmp_path / "absent.tflite")
    manifest_path(model_copy).write_text("{not json")
    with pytest.raises(ModelError, match=r"model.json: manifest is not valid JSON"):
        Classifier(model_copy)
    manifest_path(model_copy).unlink()
    with pytest.raises(ModelError, match="manifest not found"):
        Classifier(model_copy)


def test_corrupt_tflite_with_matching_manifest_is_refused(model_copy: Path, tiny_model: Path) -> None:
    model_copy.write_bytes(b"\x00garbage, not a flatbuffer" * 50)
    manifest = Manifest.load(manifest_path(tiny_model))
    data = manifest.to_dict()
    data["sha256"] = sha256_file(model_copy)
    manifest_path(model_copy).write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"model.tflite: not a loadable TFLite model"):
        Classifier(model_copy)


def test_manifest_round_trips(tiny_model: Path, tmp_path: Path) -> None:
    original = Manifest.load(manifest_path(tiny_model))
    original.save(tmp_path / "copy.json")
    assert Manifest.load(tmp_path / "copy.json") == original
    assert original.window_seconds == pytest.approx(0.5)
