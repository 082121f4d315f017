"""Statistics pooling converts to full int8; model and training options."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from edge_ser.errors import ConfigError
from edge_ser_train.examples import ExampleSet
from edge_ser_train.export import to_int8_tflite
from edge_ser_train.models import ModelConfig, build_model


@pytest.mark.slow
def test_statistics_pooling_converts_to_full_int8_and_reloads(tmp_path: Path) -> None:
    import keras
    from ai_edge_litert.interpreter import Interpreter

    model = build_model(40, 20, 3, ModelConfig(width=8, depth=2, pooling="stats"), seed=0)
    x = np.random.default_rng(0).normal(size=(32, 40, 20)).astype(np.float32)
    interpreter = Interpreter(model_content=to_int8_tflite(model, x))
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert "ABS" in {op["op_name"] for op in interpreter._get_ops_details()}
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), atol=1e-5)


def test_unknown_pooling_is_refused() -> None:
    with pytest.raises(ConfigError, match="pooling"):
        ModelConfig(pooling="max")


def test_epoch_selection_by_clip_ua_breaks_ties_on_the_loss() -> None:
    from edge_ser_train.fit import selection_score

    # (loss, UA) per epoch: the loss is lowest at epoch 0, the UA highest at epochs 2 and 3.
    epochs = [(1.2, 0.40), (1.4, 0.48), (1.6, 0.55), (1.5, 0.55)]
    by_loss = max(range(4), key=lambda e: selection_score(*epochs[e], "loss"))
    by_ua = max(range(4), key=lambda e: selection_score(*epochs[e], "ua"))
    assert (by_loss, by_ua) == (0, 3)


def test_unknown_monitor_is_refused() -> None:
    from edge_ser_train.fit import TrainConfig

    with pytest.raises(ConfigError, match="monitor"):
        TrainConfig(monitor="accuracy")


def test_cosine_schedule_decays_from_the_initial_rate_towards_zero() -> None:
    from edge_ser_train.fit import cosine_rate

    rates = [cosine_rate(2e-3, e, 30) for e in range(30)]
    assert rates[0] == pytest.approx(2e-3)
    assert rates[15] == pytest.approx(1e-3)
    assert all(a > b for a, b in itertools.pairwise(rates)) and 0 < rates[-1] < 1e-5


@pytest.mark.slow
def test_cosine_schedule_keeps_the_last_epoch_and_needs_no_validation_speakers() -> None:
    from edge_ser.features.config import FeatureConfig
    from edge_ser.recognise.segmenter import WindowSpec
    from edge_ser_testing.synthetic import synthetic_windows
    from edge_ser_train.fit import TrainConfig, train_model

    x, y = synthetic_windows(3, 3, FeatureConfig(), WindowSpec(40, 10))
    clips = np.arange(len(y))
    train = ExampleSet(x, y, clips, np.zeros(len(y), np.int16), y, np.array(["s"] * len(y)))
    empty = train.select_speakers([])
    _, history = train_model(train, empty, ("a", "b", "c"), ModelConfig(width=8, depth=2),
                                 TrainConfig(max_epochs=6, batch_size=16, patience=1, schedule="cosine"),
                                 log=lambda _line: None)
    assert history.best_epoch == 5 and len(history.train_loss) == 6  # patience 1 did not stop it
    assert np.isnan(history.val_ua).all()
    assert history.train_loss[-1] < history.train_loss[0]
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig(schedule="step")


def test_the_feature_cache_key_follows_every_module_that_shapes_a_window() -> None:
    from edge_ser_train.code_digest import source_closure

    found = {f"{p.parent.name}/{p.name}" for p in source_closure("edge_ser_train.examples")}
    for shaping in ("features/pitch.py", "features/mfcc.py", "features/normalise.py", "recognise/gate.py",
                    "recognise/segmenter.py", "audio/wavfile.py", "edge_ser_train/augment.py"):
        assert shaping in found, f"{shaping} shapes training windows but is not in the cache key"
    assert "mqtt/publisher.py" not in found


def test_the_code_digest_changes_with_imported_code_only(monkeypatch, tmp_path) -> None:
    from edge_ser_train.code_digest import code_digest

    package = tmp_path / "digestpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "top.py").write_text("from digestpkg import helper\nfrom .deep import value\n")
    (package / "helper.py").write_text("X = 1\n")
    (package / "deep.py").write_text("value = 2\n")
    (package / "unrelated.py").write_text("Y = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_digest("digestpkg.top", ("digestpkg",))
    (package / "unrelated.py").write_text("Y = 4\n")
    assert code_digest("digestpkg.top", ("digestpkg",)) == before
    (package / "deep.py").write_text("value = 5\n")  # imported relatively, one level down
    after_deep = code_digest("digestpkg.top", ("digestpkg",))
    assert after_deep != before
    (package / "helper.py").write_text("X = 6\n")  # imported as `from package import module`
    assert code_digest("digestpkg.top", ("digestpkg",)) != after_deep
