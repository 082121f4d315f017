"""The converter refuses broken int8 models (in one line, without a traceback); manifests written by it
load, and mismatches are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edge_ser_train.convert as convert_module
from edge_ser.errors import ConfigError, ModelError, exit_status
from edge_ser.features.config import FeatureConfig
from edge_ser.model.classifier import Classifier
from edge_ser.recognise.segmenter import WindowSpec
from edge_ser_testing.synthetic import synthetic_windows
from edge_ser_train.convert import ConversionRefused, verified_int8
from edge_ser_train.examples import ExampleSet
from edge_ser_train.export import int8_predict, to_int8_tflite, write_model
from edge_ser_train.models import ModelConfig, average_models, build_model
from edge_ser_train.scaling import fold_coefficient_scale

LABELS = ("neutral", "happy", "angry")
TINY = Path(__file__).parent / "fixtures" / "tiny.tflite"


def as_examples(x: np.ndarray, y: np.ndarray) -> ExampleSet:
    """Each window its own clip, so clip-level scores are defined."""
    clips = np.arange(len(y))
    return ExampleSet(x, y, clips, np.zeros(len(y), np.int16), y, np.array(["s"] * len(y)))


@pytest.fixture(scope="module")
def trained() -> tuple[object, ExampleSet, ExampleSet]:
    import keras

    features, spec = FeatureConfig(), WindowSpec(50, 10)
    train = as_examples(*synthetic_windows(3, 4, features, spec))
    held_out = as_examples(*synthetic_windows(3, 2, features, spec, first_seed=100))
    model = build_model(50, features.n_mfcc, 3, ModelConfig(width=8, depth=2), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(train.x, train.y, epochs=25, batch_size=32, verbose=0)
    return model, train, held_out


@pytest.mark.slow
def test_a_faithful_conversion_is_accepted_and_loads_in_edge_ser(trained, tmp_path: Path) -> None:
    model, train, held_out = trained
    tflite, comparison = verified_int8(model, train, held_out, LABELS)
    assert comparison.top1_agreement >= 0.97 and comparison.int8_scores["clip"]["ua"] > 0.7  # chance: 0.33
    path = tmp_path / "m.tflite"
    write_model(path, tflite, name="t", version="0", labels=LABELS, features=FeatureConfig(),
                window_frames=50, hop_frames=25)
    probs = Classifier(path).predict(held_out.x[0])
    assert probs.shape == (3,) and probs.argmax() == held_out.y[0]


@pytest.mark.slow
def test_a_weightless_conversion_is_refused(trained, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The Keras-3 SavedModel trap yields a model without weights; simulate it by converting a
    zeroed copy while verification compares against the real float model. The refusal reaches the
    user as edge-ser-convert's one-line error."""
    import keras

    model, train, held_out = trained
    hollow = keras.models.clone_model(model)
    hollow.set_weights([np.zeros_like(w) for w in model.get_weights()])
    real_convert = to_int8_tflite
    monkeypatch.setattr(convert_module, "to_int8_tflite", lambda _model, x, **kw: real_convert(hollow, x, **kw))
    def convert() -> None:
        verified_int8(model, train, held_out, LABELS)

    assert exit_status("edge-ser-convert", convert) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge-ser-convert: error: refusing to write the int8 model: ") and "agreement" in err
    assert err.count("\n") == 1


def op_output_dtypes(tflite: bytes) -> dict[str, set[str]]:
    """Each builtin op of the file -> the dtypes of the tensors it writes."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    found: dict[str, set[str]] = {}
    for op in interpreter._get_ops_details():  # the only way to list a file's ops
        found.setdefault(op["op_name"], set()).update(dtypes[i] for i in op["outputs"])
    return found


@pytest.mark.slow
def test_a_float_output_layer_is_float_and_everything_before_it_int8(trained, tmp_path: Path) -> None:
    """--output-layer float: the dense layer and softmax compute in float32 on the int8 network's
    dequantised features, so the output follows the float model more closely than the all-int8
    file's (whose logits and probabilities are rounded to int8 steps); the device loads it."""
    model, train, held_out = trained
    all_int8, _ = verified_int8(model, train, held_out, LABELS)
    tflite, comparison = verified_int8(model, train, held_out, LABELS, output_layer="float")
    ops = op_output_dtypes(tflite)
    assert ops["FULLY_CONNECTED"] == ops["SOFTMAX"] == {"float32"}
    assert ops["CONV_2D"] == ops["MEAN"] == {"int8"}
    assert op_output_dtypes(all_int8)["FULLY_CONNECTED"] == {"int8"}
    expected = model.predict(held_out.x, verbose=0)
    error = {name: np.abs(int8_predict(f, held_out.x) - expected).mean() for name, f in (("float", tflite),
                                                                                         ("int8", all_int8))}
    assert error["float"] < error["int8"], error
    assert comparison.int8_ties == 0 and comparison.top1_agreement >= 0.97
    path = tmp_path / "m.tflite"
    write_model(path, tflite, name="t", version="0", labels=LABELS, features=FeatureConfig(),
                window_frames=50, hop_frames=25)
    np.testing.assert_allclose(Classifier(path).predict(held_out.x[0]), expected[0], atol=0.05)


def test_an_unknown_output_layer_is_refused() -> None:
    with pytest.raises(ConfigError, match="output_layer must be one of"):
        ModelConfig(output_layer="int16")


@pytest.mark.slow
def test_a_nan_model_is_refused(trained) -> None:
    import keras

    model, train, held_out = trained
    broken = keras.models.clone_model(model)
    broken.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    with pytest.raises((ConversionRefused, ValueError, RuntimeError)):
        verified_int8(broken, train, held_out, LABELS)


def test_feature_config_mismatch_is_rejected_at_load() -> None:
    Classifier(TINY, expected_features=FeatureConfig())  # the fixture was built with the defaults
    with pytest.raises(ModelError, match="n_mfcc model=20 runtime=13"):
        Classifier(TINY, expected_features=FeatureConfig(n_mfcc=13))
    with pytest.raises(ModelError, match="normalisation"):
        Classifier(TINY, expected_features=FeatureConfig(normalisation="cmn"))


@pytest.mark.slow
def test_an_ensemble_averages_its_members_and_converts_to_one_int8_model(trained) -> None:
    import keras

    model, train, held_out = trained
    other = build_model(50, FeatureConfig().n_mfcc, 3, ModelConfig(width=8, depth=2), seed=1, name="other")
    other.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    other.fit(train.x, train.y, epochs=25, batch_size=32, verbose=0)
    ensemble = average_models([model, other])
    expected = (model.predict(held_out.x, verbose=0) + other.predict(held_out.x, verbose=0)) / 2
    np.testing.assert_allclose(ensemble.predict(held_out.x, verbose=0), expected, atol=1e-5)
    _, comparison = verified_int8(ensemble, train, held_out, LABELS)
    assert comparison.top1_agreement >= 0.97 and comparison.int8_scores["clip"]["ua"] > 0.7


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["mean", "stats"])
def test_folding_the_coefficient_scale_keeps_the_models_outputs(pooling: str) -> None:
    rng = np.random.default_rng(0)
    scale = tuple(float(v) for v in np.linspace(90, 5, 20))  # like CMN: c0 wide, high cepstra narrow
    windows = (rng.standard_normal((16, 50, 20)) * np.float32(scale)).astype(np.float32)
    members = [build_model(50, 20, 3, ModelConfig(width=8, depth=2, pooling=pooling), seed=i, name=f"m{i}")
               for i in range(2)]
    for model in (members[0], average_models(members)):
        folded = fold_coefficient_scale(model, scale)
        expected = model.predict(windows, verbose=0)
        np.testing.assert_allclose(folded.predict(windows / np.float32(scale), verbose=0), expected, atol=1e-5)
        np.testing.assert_allclose(model.predict(windows, verbose=0), expected)  # the original is untouched
    first = next(layer for layer in members[0].layers if layer.name.startswith("conv1d"))
    folded_first = next(layer for layer in fold_coefficient_scale(members[0], scale).layers
                    if layer.name.startswith("conv1d"))
    np.testing.assert_allclose(np.asarray(folded_first.kernel),
                               np.asarray(first.kernel) * np.float32(scale)[None, :, None], rtol=1e-6)


@pytest.mark.slow
def test_a_saved_stats_pooling_model_loads_in_a_fresh_process(tmp_path: Path) -> None:
    """edge-ser-convert loads the .keras file edge-ser-train --final saved, in a process that never
    built a model: the custom |x| layer of --pooling stats must be found there too."""
    path = tmp_path / "model.keras"
    model = build_model(50, 20, 3, ModelConfig(width=8, depth=2, pooling="stats"), seed=0)
    model.save(path)
    windows = np.random.default_rng(0).standard_normal((2, 50, 20)).astype(np.float32)
    np.save(tmp_path / "windows.npy", windows)
    code = ("import sys, numpy as np; from edge_ser_train.models import load_model; "
            "m = load_model(sys.argv[1]); np.save(sys.argv[2], m.predict(np.load(sys.argv[3]), verbose=0))")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "out.npy"),
                           str(tmp_path / "windows.npy")], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(windows, verbose=0), atol=1e-6)
