"""Room augmentation in the training copies, and the robustness evaluation, on a generated corpus.

The fast tests check the machinery without TensorFlow (babble pools, condition windows cut by the
device's chain); the slow one runs edge-ser-train --robustness end to end with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import write_wav
from edge_ser.features.config import FeatureConfig
from edge_ser_testing.synthetic import synthetic_clip
from edge_ser_train.corpora import Utterance, load_folders
from edge_ser_train.examples import ExampleConfig, babble_pools, build_examples
from edge_ser_train.labels import LABEL_SETS
from edge_ser_train.robustness import CONDITIONS, condition_examples
from edge_ser_train.room import RoomAugment

LABELS = LABEL_SETS["four"]  # neutral, happy, sad, angry: one generated pitch each
SPEAKERS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Utterance]:
    """Four speakers, two takes of each of the four generated classes, as folders per label."""
    root = tmp_path_factory.mktemp("corpus")
    for label_index, label in enumerate(LABELS.labels):
        (root / label).mkdir()
        for speaker in range(SPEAKERS):
            for take in range(2):
                seed = 10 * speaker + take + 100 * label_index
                write_wav(root / label / f"spk{speaker}_{take}.wav", synthetic_clip(label_index, seed), 16000)
    return load_folders(root)


def small_config(**changes: object) -> ExampleConfig:
    return ExampleConfig(FeatureConfig(), window_frames=50, train_hop_frames=10, device_hop_frames=25,
                         **changes)  # type: ignore[arg-type]


def test_babble_pools_stay_inside_the_speaker_group_and_never_hold_the_own_voice(corpus: list[Utterance]) -> None:
    groups = [["folders:spk0", "folders:spk2"], ["folders:spk1", "folders:spk3"]]
    group_of = {sp: i for i, g in enumerate(groups) for sp in g}
    pools = babble_pools(corpus, groups, seed=3)
    for utterance, pool in zip(corpus, pools, strict=True):
        assert len(pool) == 6
        assert all(sp != utterance.speaker and group_of[sp] == group_of[utterance.speaker] for sp, _ in pool)
    everyone = babble_pools(corpus, None, seed=3)
    assert all(len({sp for sp, _ in pool}) == SPEAKERS - 1 for pool in everyone)  # distinct speakers first
    assert everyone == babble_pools(corpus, None, seed=3)
    assert everyone != babble_pools(corpus, None, seed=4)


def test_room_augmented_copies_are_other_windows_and_the_originals_are_untouched(corpus: list[Utterance]) -> None:
    plain_train, plain_eval = build_examples(corpus, LABELS, small_config(augmented_copies=1), workers=1)
    room_train, room_eval = build_examples(corpus, LABELS, small_config(augmented_copies=1, room_augment=True),
                                           workers=1)
    np.testing.assert_array_equal(room_eval.x, plain_eval.x)  # evaluation never sees augmentation
    np.testing.assert_array_equal(room_train.x[room_train.copy == 0], plain_train.x[plain_train.copy == 0])
    room_copies, plain_copies = room_train.x[room_train.copy == 1], plain_train.x[plain_train.copy == 1]
    assert len(room_copies) > 0
    assert len(room_copies) != len(plain_copies) or not np.allclose(room_copies, plain_copies)


def test_the_copies_are_drawn_with_the_configured_room_shares(corpus: list[Utterance]) -> None:
    """`ExampleConfig.room` is what the copies go through: a room that never applies an effect
    leaves them exactly as without room augmentation."""
    plain_train, _ = build_examples(corpus, LABELS, small_config(augmented_copies=1), workers=1)
    quiet = RoomAugment(reverb_probability=0, babble_probability=0, noise_probability=0, mems_probability=0,
                        colour_probability=0, telephone_probability=0, level_probability=0)
    quiet_train, _ = build_examples(corpus, LABELS, small_config(augmented_copies=1, room_augment=True, room=quiet),
                                    workers=1)
    np.testing.assert_array_equal(quiet_train.x, plain_train.x)


def test_conditions_are_cut_by_the_device_chain_and_change_the_windows(corpus: list[Utterance]) -> None:
    cfg = small_config()
    groups = [["folders:spk0", "folders:spk2"], ["folders:spk1", "folders:spk3"]]
    sets = condition_examples(corpus, LABELS, cfg, groups, workers=1)
    assert list(sets) == [c.name for c in CONDITIONS]
    _, evaluation = build_examples(corpus, LABELS, cfg, workers=1)
    clean = sets["clean"].windows
    np.testing.assert_array_equal(clean.x, evaluation.x)  # the clean condition IS the evaluation set
    np.testing.assert_array_equal(clean.clip, evaluation.clip)
    for name, condition in sets.items():
        assert condition.made.all(), name  # every clip has another speaker in its group to babble
        if name not in ("clean", "level -20 dB"):
            same_shape = condition.windows.x.shape == clean.x.shape
            assert not same_shape or not np.allclose(condition.windows.x, clean.x, atol=1e-3), name
    again = condition_examples(corpus, LABELS, cfg, groups, workers=1)
    for name in sets:
        np.testing.assert_array_equal(again[name].windows.x, sets[name].windows.x)


@pytest.mark.slow
def test_edge_ser_train_with_robustness_writes_the_table(tmp_path: Path, corpus: list[Utterance]) -> None:
    from edge_ser_train import train

    root = corpus[0].path.parents[1]
    out = tmp_path / "run"
    status = train.main(["--data", f"folders={root}", "--labels", "four", "--out", str(out), "--folds", "2",
                         "--cache", str(tmp_path / "cache"), "--window-frames", "50", "--train-hop", "10",
                         "--device-hop", "25", "--copies", "1", "--room-augment", "--width", "8", "--depth", "2",
                         "--epochs", "8", "--batch-size", "32", "--members", "1", "--robustness"])
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    table = metrics["summary"]["robustness"]
    assert list(table) == [c.name for c in CONDITIONS]
    for fold in metrics["folds"]:
        # clean re-scoring is the fold's own int8 evaluation: the same clips, the same model
        assert fold["robustness"]["clean"] == pytest.approx(fold["int8"]["clip"]["ua"])
        assert all(0.0 <= ua <= 1.0 for ua in fold["robustness"].values())
    assert table["clean"]["drop"] == 0.0
    for name, row in table.items():
        per_fold = [f["robustness"][name] for f in metrics["folds"]]
        assert row["ua"] == pytest.approx(np.mean(per_fold))
    markdown = (out / "robustness.md").read_text()
    assert all(f"| {c.name} |" in markdown for c in CONDITIONS)
    assert metrics["settings"]["examples"]["room_augment"] is True
