"""One canonical emotion vocabulary for every corpus, and the label sets a model can be trained on.

Corpora spell the same emotion differently (`ANG`, `a`, `W` for German *Wut*, folder `angry`);
loaders translate their own codes into CANONICAL names, and a LabelSet then decides which of them a
model predicts, which are merged (RAVDESS calm into neutral) and which are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_ser_train.errors import TrainingError

CANONICAL = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", "boredom")

ALIASES: dict[str, str] = {
    "neu": "neutral", "neutral": "neutral", "calm": "calm",
    "hap": "happy", "happy": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "ang": "angry", "angry": "angry", "anger": "angry",
    "fea": "fearful", "fear": "fearful", "fearful": "fearful",
    "dis": "disgust", "disgust": "disgust", "disgusted": "disgust",
    "sur": "surprised", "surprise": "surprised", "surprised": "surprised", "ps": "surprised",
    "pleasant_surprise": "surprised", "pleasant_surprised": "surprised",
    "bor": "boredom", "boredom": "boredom",
}


def canonical_label(name: str) -> str:
    """A corpus or folder spelling of an emotion -> its canonical name (case and separators ignored)."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return ALIASES[key]
    except KeyError:
        raise TrainingError(f"unknown emotion label {name!r}; known: {', '.join(sorted(ALIASES))}") from None


@dataclass(frozen=True)
class LabelSet:
    """The classes a model predicts (in output order) and how canonical labels map onto them."""

    name: str
    labels: tuple[str, ...]
    merge: dict[str, str] = field(default_factory=dict)  # canonical -> one of `labels`

    def index(self, canonical: str) -> int | None:
        """Output index for a canonical label, or None when this set leaves it out."""
        target = self.merge.get(canonical, canonical)
        return self.labels.index(target) if target in self.labels else None


LABEL_SETS: dict[str, LabelSet] = {
    "ravdess8": LabelSet("ravdess8", ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                                      "surprised")),
    "seven": LabelSet("seven", ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
                      {"calm": "neutral"}),
    "four": LabelSet("four", ("neutral", "happy", "sad", "angry"), {"calm": "neutral"}),
}


def label_set(name: str) -> LabelSet:
    """The label set called `name` (a recipe or an option names it)."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise TrainingError(f"unknown label set {name!r}; known: {', '.join(sorted(LABEL_SETS))}") from None
