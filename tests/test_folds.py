"""Folds by speaker within every corpus, one-speaker corpora kept for training only, and the
leave-one-corpus-out splits; expected folds are written out by hand."""

from __future__ import annotations

import pytest

from edge_ser_train.errors import TrainingError
from edge_ser_train.folds import corpus_splits, speaker_folds, training_only_speakers, validation_speakers

RAVDESS = [f"ravdess:{a:02d}" for a in range(1, 21)]
EMODB = ["emodb:03", "emodb:08", "emodb:09", "emodb:10", "emodb:11"]


def test_ravdess_alone_keeps_its_folds() -> None:
    folds = speaker_folds(RAVDESS * 3, 5)  # a speaker per clip: repeats do not matter
    assert folds[0] == ["ravdess:01", "ravdess:06", "ravdess:11", "ravdess:16"]
    assert folds[4] == ["ravdess:05", "ravdess:10", "ravdess:15", "ravdess:20"]


def test_every_corpus_tests_in_every_fold_and_tess_only_trains() -> None:
    speakers = ["tess:OAF", *EMODB, *RAVDESS]
    folds = speaker_folds(speakers, 5)
    assert folds[0] == ["emodb:03", "ravdess:01", "ravdess:06", "ravdess:11", "ravdess:16"]
    assert folds[1] == ["emodb:08", "ravdess:02", "ravdess:07", "ravdess:12", "ravdess:17"]
    assert folds[4] == ["emodb:11", "ravdess:05", "ravdess:10", "ravdess:15", "ravdess:20"]
    assert sorted(s for fold in folds for s in fold) == sorted([*EMODB, *RAVDESS])
    assert training_only_speakers(speakers) == ["tess:OAF"]


def test_a_small_corpus_fills_the_folds_the_one_before_left_short() -> None:
    folds = speaker_folds(["a:1", "a:2", "a:3", "a:4", "b:1", "b:2"], 3)
    assert folds == [["a:1", "a:4"], ["a:2", "b:1"], ["a:3", "b:2"]]


def test_too_many_folds_for_the_splittable_speakers_is_refused() -> None:
    with pytest.raises(TrainingError, match=r"corpora of two or more speakers \(5\), got k=6"):
        speaker_folds(["tess:OAF", *EMODB], 6)


def test_leave_one_corpus_out_tests_each_corpus_on_all_its_speakers() -> None:
    splits = corpus_splits(["tess:OAF", *EMODB, "ravdess:02", "ravdess:01"])
    assert splits == [("emodb", EMODB), ("ravdess", ["ravdess:01", "ravdess:02"]), ("tess", ["tess:OAF"])]
    with pytest.raises(TrainingError, match="two or more corpora, got emodb"):
        corpus_splits(EMODB)


def test_no_early_stopping_needs_no_spare_speakers() -> None:
    # A fold whose training side is one speaker per corpus still trains with --val-speakers 0.
    assert validation_speakers([], n=0) == []
    assert validation_speakers(["a:1", "a:2", "a:3", "a:4"], n=2, offset=1) == ["a:3", "a:4"]
