"""Speaker-level normalisation, as a training-side *experiment* (docs/DESIGN.md §9): every window of a clip is
normalised with the mean and standard deviation of the same speaker's *other* clips, which is what a
device could approximate with running statistics over its own recent speech. The device does not
implement it, so models trained this way must not ship; `edge-ser-train --speaker-norm` only measures
the lever.

The windows must be built without per-window normalisation (`--normalisation none`), so the raw
MFCCs (absolute level and spectral tilt included) are what the speaker statistics remove.
"""

from __future__ import annotations

import numpy as np

from edge_ser_train.examples import ExampleSet


def speaker_statistics(evaluation: ExampleSet) -> tuple[np.ndarray, np.ndarray]:
    """Per clip (mean, std) over the frames of the same speaker's other clips: arrays (clips, coefficients).

    Frames are taken from the evaluation windows (original audio, device hop), so overlapping windows
    count a frame more than once, as running statistics over overlapping windows would."""
    n_clips, n_coef = len(evaluation.clip_label), evaluation.x.shape[2]
    frames = evaluation.x.reshape(len(evaluation.x), -1, n_coef).astype(np.float64)
    sums, squares = np.zeros((n_clips, n_coef)), np.zeros((n_clips, n_coef))
    counts = np.zeros(n_clips)
    np.add.at(sums, evaluation.clip, frames.sum(axis=1))
    np.add.at(squares, evaluation.clip, (frames**2).sum(axis=1))
    np.add.at(counts, evaluation.clip, frames.shape[1])
    mean, std = np.zeros((n_clips, n_coef)), np.ones((n_clips, n_coef))
    for speaker in np.unique(evaluation.clip_speaker):
        clips = np.flatnonzero(evaluation.clip_speaker == speaker)
        total_n = counts[clips].sum()
        for c in clips:  # leave the clip itself out: its statistics would be unknown in advance
            n = total_n - counts[c]
            if n <= 0:
                continue
            m = (sums[clips].sum(axis=0) - sums[c]) / n
            var = (squares[clips].sum(axis=0) - squares[c]) / n - m**2
            mean[c], std[c] = m, np.sqrt(np.maximum(var, 1e-6))
    return mean.astype(np.float32), std.astype(np.float32)


def apply(data: ExampleSet, mean: np.ndarray, std: np.ndarray | None) -> ExampleSet:
    """The same windows, each normalised with its clip's speaker statistics (mean only if `std` is None)."""
    x = data.x - mean[data.clip][:, None, :]
    if std is not None:
        x = x / std[data.clip][:, None, :]
    return ExampleSet(x.astype(np.float32), data.y, data.clip, data.copy, data.clip_label, data.clip_speaker)


def speaker_normalise(train: ExampleSet, evaluation: ExampleSet,
                      variance: bool = True) -> tuple[ExampleSet, ExampleSet]:
    """Both example sets normalised per speaker (augmented copies use the original audio's statistics):
    mean and variance, or with `variance=False` the mean only (speaker CMN: a window keeps how loud
    and how bright it is relative to the speaker's usual voice, which per-window CMN removes)."""
    mean, std = speaker_statistics(evaluation)
    std_or_none = std if variance else None
    return apply(train, mean, std_or_none), apply(evaluation, mean, std_or_none)
