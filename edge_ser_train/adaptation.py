"""Speaker adaptation in training: the device's adapter, run the way a device would have run it.

The windows are cut raw (ExampleConfig.cut_features). For every split, the prior is fitted on the
training speakers only, then each speaker's clips are streamed through a fresh
`edge_ser.features.adaptation.SpeakerAdapter` in a random order, one stream per augmented copy (a
copy is the same voice in another room), with `adapt_and_normalise`, the function the device's
recogniser calls. So a window is only ever normalised with statistics of frames a device would have
heard before its end, the first clip of every stream starts cold from the prior, and the test
speakers' statistics come from their own clips in the same causal way.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from edge_ser.features.adaptation import AdaptationConfig, SpeakerAdapter
from edge_ser.features.config import FeatureConfig
from edge_ser.features.normalise import adapt_and_normalise
from edge_ser.features.pitch import PITCH_REFERENCE_HZ, VOICING_THRESHOLD
from edge_ser_train.errors import TrainingError
from edge_ser_train.examples import ExampleSet


def fit_prior(windows: ExampleSet, features: FeatureConfig, template: AdaptationConfig) -> AdaptationConfig:
    """The template with its prior fitted on raw windows (original audio only): the mean and
    variance of every cepstrum over their frames (their voiced frames with `voiced_only`, as the
    device will count them), and the median F0 of their voiced frames."""
    original = windows.x[windows.copy == 0]
    if not len(original):
        raise TrainingError("no training windows to fit the speaker adaptation prior on")
    frames = original.reshape(-1, original.shape[-1]).astype(np.float64)
    voiced = frames[frames[:, features.n_mfcc] >= VOICING_THRESHOLD] if features.pitch else frames[:0]
    cepstra = (voiced if template.voiced_only else frames)[:, : features.n_mfcc]
    if not len(cepstra):
        raise TrainingError("no voiced training frames to fit the speaker adaptation prior on")
    f0_hz = template.prior_f0_hz
    if len(voiced):
        f0_hz = float(PITCH_REFERENCE_HZ * 2 ** np.median(voiced[:, features.n_mfcc + 1]))
    return replace(template, prior_mean=tuple(np.round(cepstra.mean(axis=0), 4).tolist()),
                   prior_var=tuple(np.round(np.maximum(cepstra.var(axis=0), 1e-4), 4).tolist()),
                   prior_f0_hz=round(f0_hz, 2))


def stream_order(clips: np.ndarray, speaker: str, copy: int, seed: int) -> np.ndarray:
    """The order a device hears one speaker's clips in: random, reproducible per speaker and copy."""
    rng = np.random.default_rng([seed, zlib.crc32(speaker.encode()), copy])
    return clips[rng.permutation(len(clips))]


def adapt(data: ExampleSet, features: FeatureConfig, adaptation: AdaptationConfig, seed: int) -> ExampleSet:
    """The same windows, normalised as a device adapting to each speaker would have normalised them
    (`features`: the model's own config, speaker normalisation included; no coefficient scale)."""
    if data.start is None:
        raise TrainingError("speaker adaptation needs the windows' first frames (examples cut before it existed)")
    out = np.empty_like(data.x)
    window_speaker = data.clip_speaker[data.clip]
    for speaker in np.unique(window_speaker):
        mine = window_speaker == speaker
        for copy in np.unique(data.copy[mine]):
            rows = np.flatnonzero(mine & (data.copy == copy))
            adapter = SpeakerAdapter(features, adaptation)
            for clip in stream_order(np.unique(data.clip[rows]), str(speaker), int(copy), seed):
                counted_end = 0  # each clip is a stream of its own positions, heard after the last
                clip_rows = rows[data.clip[rows] == clip]
                for row in clip_rows[np.argsort(data.start[clip_rows], kind="stable")]:
                    out[row], counted_end = adapt_and_normalise(adapter, data.x[row], int(data.start[row]),
                                                                counted_end, features)
    return replace(data, x=out)
