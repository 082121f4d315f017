"""Per-window loss weights that balance corpora and classes; expected weights worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ser.errors import ConfigError
from edge_ser_train.fit import TrainConfig, example_weights

# Corpus a: three windows of class 0, one of class 1; corpus b: one of class 0, five of class 1.
Y = np.array([0, 0, 0, 1, 0, 1, 1, 1, 1, 1])
CORPUS = np.array(["a"] * 4 + ["b"] * 6)


def test_corpus_class_gives_every_cell_the_same_share() -> None:
    w = example_weights(Y, CORPUS, "corpus-class")
    # 10 windows: 5 per corpus, split 2.5 + 2.5 over its two classes
    np.testing.assert_allclose(w, [5 / 6] * 3 + [2.5, 2.5] + [0.5] * 5, rtol=1e-6)
    for corpus in "ab":
        for label in (0, 1):
            assert w[np.equal(CORPUS, corpus) & np.equal(Y, label)].sum() == pytest.approx(2.5)


def test_corpus_class_gives_a_corpus_without_a_class_its_full_share() -> None:
    # Corpus a: two windows of class 0, one of class 1; corpus b: three of class 0 and no class 1.
    y, corpus = np.array([0, 0, 1, 0, 0, 0]), np.array(["a"] * 3 + ["b"] * 3)
    w = example_weights(y, corpus, "corpus-class")
    # each corpus 6 / 2 = 3 in total; a splits it 1.5 + 1.5 over its two classes
    np.testing.assert_allclose(w, [0.75, 0.75, 1.5, 1.0, 1.0, 1.0], rtol=1e-6)


def test_class_balances_the_pooled_classes_and_one_corpus_is_the_same() -> None:
    w = example_weights(Y, CORPUS, "class")
    # four of class 0, six of class 1: 10 / (2 * 4) and 10 / (2 * 6)
    np.testing.assert_allclose(w, [1.25, 1.25, 1.25, 10 / 12, 1.25] + [10 / 12] * 5, rtol=1e-6)
    one = np.array(["a"] * len(Y))
    np.testing.assert_array_equal(example_weights(Y, one, "corpus-class"), w)
    assert example_weights(Y, CORPUS, "none") is None


def test_speaker_class_shares_corpora_by_their_speakers() -> None:
    # corpus a: one speaker; corpus b: three speakers, so a gets 1/4 of the 10 and b 3/4
    speaker = np.array(["a1"] * 4 + ["b1", "b1", "b2", "b2", "b3", "b3"])
    w = example_weights(Y, CORPUS, "speaker-class", speaker)
    # a: 2.5 over two classes (3 and 1 windows); b: 7.5 over two classes (1 and 5 windows)
    np.testing.assert_allclose(w, [1.25 / 3] * 3 + [1.25, 3.75] + [0.75] * 5, rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="speakers"):
        example_weights(Y, CORPUS, "speaker-class")


def test_speaker_sqrt_class_shares_corpora_by_the_root_of_their_speakers() -> None:
    # corpus a: one speaker; corpus b: four speakers, so a gets 1/3 of the 10 (sqrt 1 : sqrt 4) and b 2/3
    speaker = np.array(["a1"] * 4 + ["b1", "b2", "b3", "b4", "b4", "b4"])
    w = example_weights(Y, CORPUS, "speaker-sqrt-class", speaker)
    # a: 10/3 over two classes (3 and 1 windows); b: 20/3 over two classes (1 and 5 windows)
    np.testing.assert_allclose(w, [5 / 9] * 3 + [5 / 3, 10 / 3] + [2 / 3] * 5, rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="speakers"):
        example_weights(Y, CORPUS, "speaker-sqrt-class")


def test_an_unknown_balance_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="balance must be one of"):
        TrainConfig(balance="speaker")
