"""From class probabilities to what a device reports: label groups, a confidence threshold, and an
exponential moving average across windows for the retained state.

Decisions, documented in firmware_config/README.md:

* Groups (e.g. negative/neutral/positive for a robot) sum the probabilities of their member
  classes. Every member must be a model label, no label may be in two groups, and every model
  label must be in a group, so group probabilities still sum to one. When groups are configured,
  the reported label and confidence are the group's; the per-class probabilities are kept too.
* Below `threshold` the label is "uncertain" and the confidence is still the top probability, so a
  consumer can apply its own, stricter cut. Events are published anyway: silence never produces an
  event, but an utterance with an unclear emotion is still an utterance.
* A sound that failed the speech-likeness check (recognise.speech_likeness: tones, music, noise,
  knocks) is labelled "uncertain" whatever its probabilities, rather than dropped: the gate did hear
  something, the event schema stays as it is, and a consumer that only wants emotions already
  ignores "uncertain".
* The EMA weighs the newest window by `ema` (1.0 = no smoothing). It drives only the retained
  state; events use the plain mean over their utterance's windows (the Recogniser's UtteranceEnded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_ser.errors import ConfigError

UNCERTAIN = "uncertain"
# Probabilities are reported to 0.001: finer digits are noise for a cue of this accuracy, and each
# one costs 11 bytes of a grouped 7-class event's 512. The threshold is applied to the rounded
# value, so a reported confidence never contradicts its label.
PROBABILITY_DECIMALS = 3


@dataclass(frozen=True)
class InferenceConfig:
    """How probabilities become reported labels: [inference] in the device config."""

    threshold: float = 0.0  # top probability below this -> label "uncertain"
    ema: float = 0.5  # weight of the newest window in the smoothed state (0 < ema <= 1)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # group -> member labels

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"inference.threshold: expected a number in 0..1, got {self.threshold}")
        if not 0.0 < self.ema <= 1.0:
            raise ConfigError(f"inference.ema: expected a number in (0, 1], got {self.ema}")
        for name, members in self.groups.items():
            if not members:
                raise ConfigError(f"inference.groups.{name}: expected a non-empty list of model labels")
            if name == UNCERTAIN:
                raise ConfigError(f"inference.groups.{name}: {UNCERTAIN!r} is reserved for low confidence")


@dataclass(frozen=True)
class Verdict:
    """What is reported for one probability vector."""

    label: str  # a model label, a group name, or "uncertain"
    confidence: float  # the top probability (of a group when grouped)
    probabilities: dict[str, float]  # per model label
    groups: dict[str, float] | None  # per group, when groups are configured


class Labeller:
    """Applies groups and the threshold for one model's labels; checks the groups against them."""

    def __init__(self, cfg: InferenceConfig, labels: Sequence[str], origin: str = "config") -> None:
        self.cfg, self.labels = cfg, tuple(labels)
        self._groups = _group_matrix(cfg.groups, self.labels, origin)

    def verdict(self, probabilities: np.ndarray, speech_like: bool = True) -> Verdict:
        """The label for `probabilities`; "uncertain" below the threshold or when the sound was not
        speech-like (the probabilities and confidence are reported anyway)."""
        probs = np.asarray(probabilities, dtype=np.float64)
        per_label = {label: round(float(p), PROBABILITY_DECIMALS) for label, p in zip(self.labels, probs, strict=True)}
        groups = None
        names: Sequence[str] = self.labels
        scores = probs
        if self._groups is not None:
            names, matrix = self._groups
            scores = matrix @ probs
            groups = {name: round(float(p), PROBABILITY_DECIMALS) for name, p in zip(names, scores, strict=True)}
        best = int(np.argmax(scores))
        confidence = round(float(scores[best]), PROBABILITY_DECIMALS)
        label = names[best] if speech_like and confidence >= self.cfg.threshold else UNCERTAIN
        return Verdict(label, confidence, per_label, groups)


def _group_matrix(groups: Mapping[str, tuple[str, ...]], labels: tuple[str, ...],
                  origin: str) -> tuple[tuple[str, ...], np.ndarray] | None:
    """(group names, 0/1 matrix groups x labels), or None without groups."""
    if not groups:
        return None
    owner: dict[str, str] = {}
    for name, members in groups.items():
        for member in members:
            if member not in labels:
                raise ConfigError(f"{origin}: inference.groups.{name}: {member!r} is not a label of the model "
                                  f"(expected some of {', '.join(labels)})")
            if member in owner:
                raise ConfigError(f"{origin}: inference.groups.{name}: {member!r} is already in group "
                                  f"{owner[member]!r}; a label may belong to one group only")
            owner[member] = name
    missing = [label for label in labels if label not in owner]
    if missing:
        raise ConfigError(f"{origin}: inference.groups: model labels {', '.join(missing)} are in no group "
                          "(expected every label in exactly one group, so group probabilities sum to 1)")
    names = tuple(groups)
    matrix = np.array([[1.0 if owner[label] == name else 0.0 for label in labels] for name in names])
    return names, matrix


class Ema:
    """Exponential moving average of probability vectors; None until the first update."""

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.value: np.ndarray | None = None

    def update(self, probabilities: np.ndarray) -> np.ndarray:
        p = np.asarray(probabilities, dtype=np.float64)
        self.value = p if self.value is None else self.weight * p + (1.0 - self.weight) * self.value
        return self.value

    def reset(self) -> None:
        self.value = None
