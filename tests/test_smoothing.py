"""Label groups, the confidence threshold and the EMA of the retained state."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ser.errors import ConfigError
from edge_ser.recognise.labelling import UNCERTAIN, Ema, InferenceConfig, Labeller

LABELS = ("neutral", "happy", "angry", "sad")
ROBOT = {"negative": ("angry", "sad"), "neutral": ("neutral",), "positive": ("happy",)}


def test_top_label_without_groups() -> None:
    v = Labeller(InferenceConfig(), LABELS).verdict(np.array([0.1, 0.6, 0.2, 0.1]))
    assert (v.label, v.confidence, v.groups) == ("happy", 0.6, None)
    assert v.probabilities == {"neutral": 0.1, "happy": 0.6, "angry": 0.2, "sad": 0.1}


def test_groups_sum_members_and_report_the_group() -> None:
    v = Labeller(InferenceConfig(groups=ROBOT), LABELS).verdict(np.array([0.1, 0.35, 0.3, 0.25]))
    assert v.groups == {"negative": 0.55, "neutral": 0.1, "positive": 0.35}
    assert (v.label, v.confidence) == ("negative", 0.55)
    assert set(v.probabilities) == set(LABELS)


def test_below_threshold_is_uncertain_but_keeps_probabilities() -> None:
    v = Labeller(InferenceConfig(threshold=0.5), LABELS).verdict(np.array([0.3, 0.4, 0.2, 0.1]))
    assert (v.label, v.confidence) == (UNCERTAIN, 0.4)
    assert v.probabilities["happy"] == 0.4


@pytest.mark.parametrize(("groups", "message"), [
    ({"negative": ("angry", "furious"), "rest": ("neutral", "happy", "sad")}, "'furious' is not a label"),
    ({"a": ("angry", "sad"), "b": ("sad", "neutral", "happy")}, "'sad' is already in group 'a'"),
    ({"a": ("angry", "sad")}, "neutral, happy are in no group"),
])
def test_group_errors_name_file_and_key(groups: dict[str, tuple[str, ...]], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Labeller(InferenceConfig(groups=groups), LABELS, origin="robot.toml")
    assert str(info.value).startswith("robot.toml: inference.groups")


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"ema": 0.0}, {"groups": {"uncertain": ("sad",)}}])
def test_invalid_inference_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="inference"):
        InferenceConfig(**kwargs)  # type: ignore[arg-type]


def test_ema_weighs_the_newest_window() -> None:
    ema = Ema(0.25)
    assert np.allclose(ema.update(np.array([1.0, 0.0])), [1.0, 0.0])
    assert np.allclose(ema.update(np.array([0.0, 1.0])), [0.75, 0.25])
    ema.reset()
    assert ema.value is None
