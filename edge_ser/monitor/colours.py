"""One colour per emotion, shared by the window, the terminal view and the plots, so an operator
who learnt "red is angry" in one reads the others the same way."""

from __future__ import annotations

# Hex colours for Tk and matplotlib; readable on white and on a dark terminal.
EMOTION_COLOURS = {
    "neutral": "#8c8c8c", "calm": "#5fa8a0", "happy": "#e6b422", "sad": "#3f6fbf", "angry": "#d43c2c",
    "fearful": "#8e5ac8", "disgust": "#4f9a3a", "surprised": "#f08a24", "uncertain": "#c8c8c8",
}
# For labels of other models (groups, other corpora): stable, distinct, never the known ones.
_SPARE = ("#17becf", "#bcbd22", "#e377c2", "#7f3f00", "#1f3f5f", "#9edae5")

# The nearest of the 8 basic ANSI foreground colours (30-37), for terminals without more.
ANSI_COLOURS = {"neutral": 37, "calm": 36, "happy": 33, "sad": 34, "angry": 31, "fearful": 35, "disgust": 32,
                "surprised": 33, "uncertain": 37}


def colour(label: str) -> str:
    """The colour of ``label``; an unknown label gets a spare one chosen by its name (stable across runs)."""
    known = EMOTION_COLOURS.get(label)
    if known is not None:
        return known
    return _SPARE[sum(label.encode()) % len(_SPARE)]


def ansi(label: str) -> int:
    return ANSI_COLOURS.get(label, 36)
