"""edge-ser-train on three tiny generated corpora in their real layouts (RAVDESS, TESS, EmoDB):
speaker folds within every corpus, a one-speaker corpus kept for training, leave-one-corpus-out,
and the report that shows both. The generated classes are audible in every corpus alike, so a
model that learnt anything scores well above chance on a corpus it never trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_ser.audio.wavfile import write_wav
from edge_ser_testing.synthetic import synthetic_clip
from edge_ser_train import train

pytestmark = pytest.mark.slow

# The "four" label set, and each corpus's own code for those classes (synthetic class index order).
RAVDESS_CODES = ("01", "03", "04", "05")  # neutral, happy, sad, angry
TESS_FOLDERS = ("OAF_neutral", "OAF_Happy", "OAF_sad", "oaf_angry")  # folder case varies in real copies
EMODB_LETTERS = ("N", "F", "T", "W")


def write_corpora(root: Path) -> list[str]:
    """Two clips per class and speaker: RAVDESS actors 01-03, TESS OAF, EmoDB speakers 03 and 08, plus
    one EmoDB boredom clip that the label set drops."""
    seed = 0

    def clip(path: Path, class_index: int) -> None:
        nonlocal seed
        seed += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, synthetic_clip(class_index, seed), 16000)

    for k in range(4):
        for take in (1, 2):
            for actor in ("01", "02", "03"):
                clip(root / "ravdess" / f"Actor_{actor}" / f"03-01-{RAVDESS_CODES[k]}-01-01-0{take}-{actor}.wav", k)
            clip(root / "tess" / TESS_FOLDERS[k] / f"OAF_word{take}_{TESS_FOLDERS[k][4:].lower()}.wav", k)
            for speaker in ("03", "08"):
                clip(root / "emodb" / "wav" / f"{speaker}a0{take}{EMODB_LETTERS[k]}a.wav", k)
    clip(root / "emodb" / "wav" / "03a05La.wav", 0)
    return [f"{kind}={root / kind}" for kind in ("ravdess", "tess", "emodb")]


def test_cv_within_corpora_and_leave_one_corpus_out(tmp_path: Path) -> None:
    data = write_corpora(tmp_path / "corpora")
    argv = [arg for spec in data for arg in ("--data", spec)]
    argv += ["--labels", "four", "--protocol", "both", "--folds", "2", "--out", str(tmp_path / "run"),
             "--cache", str(tmp_path / "cache"), "--window-frames", "50", "--train-hop", "10", "--device-hop", "25",
             "--copies", "0", "--members", "1", "--width", "8", "--depth", "2", "--epochs", "10",
             "--batch-size", "32", "--learning-rate", "3e-3", "--mixup", "0"]
    assert train.main(argv) == 0
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["settings"]["dropped_clips"] == {"boredom": 1}
    assert report["settings"]["training_only_speakers"] == ["tess:OAF"]
    for fold in report["folds"]:  # both corpora that can be split test speakers in every fold
        assert sorted(fold["corpora"]) == ["emodb", "ravdess"]
        assert "tess:OAF" not in fold["test_speakers"]
    corpora = report["per_corpus"]
    # Every clip of a splittable corpus is tested exactly once: 3 actors x 8, 2 speakers x 8.
    assert sum(corpora["ravdess"]["pooled_clip"]["int8"]["support"].values()) == 24
    assert sum(corpora["emodb"]["pooled_clip"]["int8"]["support"].values()) == 16
    assert "pooled_clip" not in corpora["tess"]
    loco = {r["corpus"]: r for r in report["loco"]}
    assert loco["tess"]["train_corpora"] == ["emodb", "ravdess"]
    assert loco["tess"]["test_speakers"] == ["tess:OAF"]
    assert sum(loco["tess"]["int8"]["clip"]["support"].values()) == 8
    assert report["summary"]["loco"]["int8_clip"]["ua"]["mean"] >= 0.5, report["summary"]["loco"]  # chance 0.25
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Leave one corpus out" in md and "| tess | emodb, ravdess | 8 |" in md
    assert "| tess | 1 | – |" in md
