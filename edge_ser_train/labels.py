"""One canonical emotion vocabulary for every corpus, and the label sets a model can be trained on.

Corpora spell the same emotion differently (`ANG`, `a`, `W` for German *Wut*, folder `angry`);
loaders translate their own codes into CANONICAL names, and a LabelSet then decides which of them a
model predicts, which are merged (RAVDESS calm into neutral) and which are left out. Every label set
places every canonical label in exactly one of those three: when corpora are combined, a class one
corpus has and the others lack (EmoDB boredom) must be a written decision, never an accident of a
name that happens not to match.
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
    drop: frozenset[str] = frozenset()  # canonical labels whose clips are left out of training and scoring

    def __post_init__(self) -> None:
        placed = [*self.labels, *self.merge, *self.drop]
        unplaced = sorted(set(CANONICAL) - set(placed))
        twice = sorted({name for name in placed if placed.count(name) > 1})
        wrong_target = sorted(set(self.merge.values()) - set(self.labels))
        if unplaced or twice or wrong_target:
            raise TrainingError(f"label set {self.name!r}: every canonical label must be predicted, merged or "
                                f"dropped exactly once (unplaced {unplaced}, placed twice {twice}, merged into "
                                f"a label it does not predict {wrong_target})")

    def index(self, canonical: str) -> int | None:
        """Output index for a canonical label, or None when this set drops it."""
        if canonical in self.drop:
            return None
        return self.labels.index(self.merge.get(canonical, canonical))


LABEL_SETS: dict[str, LabelSet] = {
    # Boredom (EmoDB only) is dropped by every set: no other corpus has it, so a class for it would be
    # learnt from five German speakers, and merging it into neutral would teach neutral a low-arousal
    # German voice. A set that wants it says so in `merge` or `labels`.
    "ravdess8": LabelSet("ravdess8", ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                                      "surprised"), drop=frozenset({"boredom"})),
    "seven": LabelSet("seven", ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
                      {"calm": "neutral"}, frozenset({"boredom"})),
    "four": LabelSet("four", ("neutral", "happy", "sad", "angry"), {"calm": "neutral"},
                     frozenset({"fearful", "disgust", "surprised", "boredom"})),
}


def label_set(name: str) -> LabelSet:
    """The label set called `name` (a recipe or an option names it)."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise TrainingError(f"unknown label set {name!r}; known: {', '.join(sorted(LABEL_SETS))}") from None
