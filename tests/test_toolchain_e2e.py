"""The README's toolchain as a user runs it, each step a console command in its own process, in a
working folder of their own: edge-ser-train --final -> edge-ser-convert --model -> edge-ser predict
--model. A tiny generated corpus in RAVDESS's layout (one actor folder a symbolic link to a shared
copy), a tiny model; no output may land anywhere but that working folder and the named cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import write_wav
from edge_ser_testing.synthetic import synthetic_clip

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CODES = ("01", "03", "04", "05")  # RAVDESS neutral, happy, sad, angry: the "four" label set's order
LABELS = ("neutral", "happy", "sad", "angry")
TINY = ["--labels", "four", "--window-frames", "50", "--train-hop", "10", "--device-hop", "25", "--copies", "0",
        "--members", "1", "--width", "8", "--depth", "2", "--epochs", "10", "--batch-size", "32",
        "--learning-rate", "3e-3", "--mixup", "0"]


def console(entry: str, prog: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A console script of pyproject.toml (`edge_ser_train.console:<entry>`, the check of which is in
    test_training_cli) run as its own process, as pip's generated wrapper runs it."""
    code = f"import sys; from edge_ser_train.console import {entry}; sys.argv[0] = {prog!r}; sys.exit({entry}())"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env())


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def write_corpus(root: Path, shared: Path) -> None:
    """Actors 01-03, two takes per class; Actor_03 lives in `shared` and is linked into `root`."""
    seed = 0
    for k, code in enumerate(CODES):
        for take in (1, 2):
            for actor in ("01", "02", "03"):
                seed += 1
                folder = (shared if actor == "03" else root) / f"Actor_{actor}"
                folder.mkdir(parents=True, exist_ok=True)
                write_wav(folder / f"03-01-{code}-01-01-0{take}-{actor}.wav", synthetic_clip(k, seed), 16000)
    (root / "Actor_03").symlink_to(shared / "Actor_03", target_is_directory=True)


def test_train_final_then_convert_then_predict(tmp_path: Path) -> None:
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    write_corpus(tmp_path / "ravdess", tmp_path / "shared")

    trained = console("train_main", "edge-ser-train", "--data", f"ravdess={tmp_path / 'ravdess'}", "--folds", "3",
                      "--final", "--cache", str(cache), *TINY, "--qat-epochs", "1", cwd=work)
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == ""  # no TensorFlow log dump, no warnings
    out = work / "edge-ser-training"  # the default --out, in the working folder
    assert "features: 24 clips in " in trained.stdout  # the linked actor's 8 clips counted
    assert "training: 30 epochs in " in trained.stdout and "final model: 10 epochs in " in trained.stdout
    assert "\r" not in trained.stdout  # not a terminal: lines, no redraws
    recipe = json.loads((out / "model.recipe.json").read_text())
    assert recipe["data"] == [f"ravdess={tmp_path / 'ravdess'}"] and recipe["cv_report"] == "metrics.json"
    assert recipe["train_speakers"] == ["ravdess:01", "ravdess:02", "ravdess:03"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["folds"] == 3 and metrics["settings"]["train"]["qat_epochs"] == 1
    assert metrics["summary"]["top1_agreement"]["min"] >= 0.97  # every fold's int8 follows its fine-tuned model

    converted = console("convert_main", "edge-ser-convert", "--model", "edge-ser-training/model.keras",
                        "--cache", str(cache), cwd=work)
    assert converted.returncode == 0, converted.stderr
    assert converted.stderr == ""
    assert converted.stdout.startswith("wrote edge-ser-training/model.tflite (")
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["labels"] == list(LABELS)
    assert manifest["metrics"]["verification"]["top1_agreement"] >= 0.9
    assert manifest["metrics"]["cross_validation"]["int8_clip"]["ua"]["mean"] > 0  # the same run's CV report
    assert manifest["calibration"]["fitted_on"].endswith("cross-validation test folds (NLL)")
    assert sorted(p.name for p in work.rglob("*")) == sorted(
        ["edge-ser-training", "metrics.json", "classification_report.txt", "report.md", "confusion_int8.png",
         "training_curves.png", "model.keras", "model.recipe.json", "model.tflite", "model.json"])

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for k, label in enumerate(LABELS):
        write_wav(fresh / f"{k}_{label}.wav", synthetic_clip(k, 900 + k), 16000)
    predicted = subprocess.run([sys.executable, "-m", "edge_ser", "predict", "--format", "jsonl", "--model",
                                str(out / "model.tflite"), str(fresh)], cwd=work, capture_output=True, text=True,
                               timeout=120, env=env())
    assert predicted.returncode == 0, predicted.stderr
    rows = sorted((json.loads(line) for line in predicted.stdout.splitlines()), key=lambda r: r["path"])
    assert [set(r["probabilities"]) for r in rows] == [set(LABELS)] * 4
    best = [LABELS[int(np.argmax([r["probabilities"][label] for label in LABELS]))] for r in rows]
    assert sum(b == label for b, label in zip(best, LABELS, strict=True)) >= 3, best  # chance: 1


def test_an_adapting_final_model_carries_its_prior_through_convert(tmp_path: Path) -> None:
    """--protocol none --final --adapt: only the model to ship, whose recipe holds the prior fitted on
    every training speaker, which convert verifies with and writes into the manifest for the device.
    The recipe's --output-layer float and room shares reach convert too: the file's interface is
    float32, and the manifest's training recipe has the shares. With --qat-epochs the saved model
    already holds the coefficient scale, and convert must not fold it in a second time."""
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    write_corpus(tmp_path / "ravdess", tmp_path / "shared")
    trained = console("train_main", "edge-ser-train", "--data", f"ravdess={tmp_path / 'ravdess'}", "--protocol",
                      "none", "--final", "--adapt", "--normalisation", "speaker", "--output-layer", "float",
                      "--out", "mine", "--cache", str(cache), *TINY, "--copies", "1", "--room-augment",
                      "--room-babble", "0.5", "--qat-epochs", "1", cwd=work)
    assert trained.returncode == 0, trained.stderr
    assert sorted(p.name for p in (work / "mine").iterdir()) == ["model.keras", "model.recipe.json"]  # no report
    recipe = json.loads((work / "mine" / "model.recipe.json").read_text())
    assert "cv_report" not in recipe and recipe["adaptation"] and recipe["model"]["output_layer"] == "float"
    # --qat-epochs: the saved model is the BatchNorm-folded one with the coefficient scale already in it
    assert recipe["train"]["qat_epochs"] == 1 and recipe["scale_folded"] is True and recipe["coefficient_scale"]
    converted = console("convert_main", "edge-ser-convert", "--model", "mine/model.keras", "--cache", str(cache),
                        cwd=work)
    assert converted.returncode == 0, converted.stderr
    manifest = json.loads((work / "mine" / "model.json").read_text())
    assert manifest["adaptation"] == recipe["adaptation"]
    assert manifest["features"]["normalisation"] == "speaker" and "cross_validation" not in manifest["metrics"]
    assert manifest["input"]["dtype"] == manifest["output"]["dtype"] == "float32"
    assert manifest["provenance"]["training"]["examples"]["room"]["babble_probability"] == 0.5
    # the corpora's paths on this machine stay in the recipe, out of the file that ships
    assert recipe["data"] and str(tmp_path) not in (work / "mine" / "model.json").read_text()
    assert manifest["features"]["coefficient_scale"] == recipe["coefficient_scale"]
    # The saved model already takes scaled windows: the file holds its first convolution as trained
    # (on the int8 grid, so to the bit), not with the scale folded in a second time.
    from edge_ser_train.models import load_model
    from tests.tflite_weights import stored_convolutions

    first = next(layer for layer in load_model(work / "mine" / "model.keras").layers
                 if type(layer).__name__ == "Conv1D").get_weights()[0]
    stored = [w for w in stored_convolutions((work / "mine" / "model.tflite").read_bytes()) if w.shape == first.shape]
    assert len(stored) == 1 and np.abs(stored[0] - first).max() <= 1e-6 * np.abs(first).max()


def test_a_rebuild_of_the_bundled_model_says_before_training_whether_it_will_match(tmp_path: Path) -> None:
    """`make model`'s build_default, three times into one --out: the first build has nothing to compare
    with; the second, same recipe on the same machine, sees the same training-window fingerprint
    before training and writes the same bytes; the third, another recipe, is told its windows differ
    and writes other bytes. (Across machines the fingerprint is what tells a rebuild it will differ.)"""
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    write_corpus(tmp_path / "ravdess", tmp_path / "shared")
    out = work / "bundled.tflite"

    def build(*extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "edge_ser_train.build_default", "--data",
                               f"ravdess={tmp_path / 'ravdess'}", "--cache", str(cache), "--out", str(out),
                               "--work", str(work / "keras"), *TINY, *extra], cwd=work, capture_output=True,
                              text=True, timeout=600, env=env())
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = build()
    assert "records no training-window fingerprint" in first and "the model it replaced" not in first
    fingerprint = json.loads(out.with_suffix(".json").read_text())["provenance"]["training"]["training_windows_sha256"]
    assert len(fingerprint) == 64
    first_bytes = out.read_bytes()

    second = build()
    assert f"training windows identical to those {out} was trained with (sha256 {fingerprint[:12]})" in second
    assert second.index("training windows identical") < second.index("final model: 10 epochs in ")
    assert "the same bytes as the model it replaced" in second
    assert out.read_bytes() == first_bytes

    third = build("--train-hop", "5")
    assert "training windows differ from those" in third and f"{fingerprint[:12]} there" in third
    assert "different bytes from" in third and out.read_bytes() != first_bytes
