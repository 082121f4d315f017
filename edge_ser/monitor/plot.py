"""Timeline plots of a recording: the waveform with its speech regions and, under it, every
analysis window's class probabilities over time, with each utterance's label marked.

matplotlib is an optional extra (``edge-ser[plot]``): a device never needs it, so it is imported
here, inside the function, only when a plot is asked for, and its absence is a one-line error.
The Agg backend draws without a display, which is what a kiosk reached over SSH has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_ser.errors import ConfigError
from edge_ser.monitor.colours import colour
from edge_ser.recognise.recogniser import ClipAnalysis

WIDTH_PX, HEIGHT_PX, DPI = 1200, 600, 100
# Waveform points drawn: a min/max envelope this wide looks the same as every sample, and a
# ten-minute recording does not become ten million line segments.
_ENVELOPE_POINTS = 4000


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plotting needs matplotlib: pip install 'edge-ser[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _envelope(signal: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, low, high) of the waveform in at most _ENVELOPE_POINTS buckets."""
    size = max(1, int(np.ceil(len(signal) / _ENVELOPE_POINTS)))
    usable = len(signal) // size * size
    buckets = signal[:usable].reshape(-1, size) if usable else np.zeros((1, 1), np.float32)
    times = (np.arange(len(buckets)) + 0.5) * size / sample_rate
    return times, buckets.min(axis=1), buckets.max(axis=1)


def plot_timeline(out: Path, signal: np.ndarray, sample_rate: int, clip: ClipAnalysis, labels: tuple[str, ...],
                  title: str = "") -> Path:
    """Write the timeline PNG of ``signal`` (float32 at ``sample_rate``) analysed as ``clip``."""
    plt = _pyplot()
    fig, (wave, probs) = plt.subplots(2, 1, figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, sharex=True,
                                      gridspec_kw={"height_ratios": [1, 1.4]})
    try:
        duration = len(signal) / sample_rate
        times, low, high = _envelope(signal, sample_rate)
        wave.fill_between(times, low, high, color="#404040", linewidth=0.5)
        for u in clip.utterances:
            for ax in (wave, probs):
                ax.axvspan(u.start / sample_rate, u.end / sample_rate, color="#9fd0ff", alpha=0.25, linewidth=0)
            if u.probabilities is not None:
                best = labels[int(np.argmax(u.probabilities))]
                middle = (u.start + u.end) / 2 / sample_rate
                wave.annotate(f"{best} {float(np.max(u.probabilities)):.2f}", (middle, 1.0),
                              xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=9,
                              color=colour(best), fontweight="bold")
        wave.set_ylabel("waveform")
        wave.set_xlim(0, max(duration, 1e-3))
        wave.set_title(title, loc="left", fontsize=10, pad=18)

        scored = [w for w in clip.windows if w.probabilities is not None]
        # One stack per utterance, so the silence between two is not drawn as a blend of both; each
        # window holds its probabilities from halfway after the previous window's centre to halfway
        # before the next one's, so a one-window utterance is still a visible block.
        for n, utterance in enumerate(sorted({w.utterance for w in scored})):
            mine = [w for w in scored if w.utterance == utterance]
            centres = np.array([(max(w.start, 0) + w.end) / 2 for w in mine])
            edges = np.concatenate([[max(mine[0].start, 0)], (centres[1:] + centres[:-1]) / 2, [mine[-1].end]])
            matrix = np.stack([w.probabilities for w in mine if w.probabilities is not None]).T
            probs.stackplot(edges / sample_rate, np.column_stack([matrix, matrix[:, -1]]),
                            labels=labels if n == 0 else (), colors=[colour(lab) for lab in labels], step="post",
                            alpha=0.9)
        if scored:
            probs.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        else:
            probs.text(0.5, 0.5, "no speech detected", ha="center", va="center", transform=probs.transAxes)
        probs.set_ylim(0, 1)
        probs.set_ylabel("class probability")
        probs.set_xlabel("time (s)")
        fig.subplots_adjust(left=0.07, right=0.87, top=0.9, bottom=0.1, hspace=0.08)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=DPI)
    finally:
        plt.close(fig)
    return out
