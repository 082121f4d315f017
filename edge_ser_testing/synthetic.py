"""Generated 'speech' whose class is audible, for fixtures and smoke tests that must not need a corpus.

Each class is a harmonic tone with its own pitch and vibrato, framed by silence like a corpus clip,
so the voice gate, windowing and MFCC code see the same structure they see in real recordings and a
model can actually learn to separate the classes (a test that cannot fail proves nothing).
"""

from __future__ import annotations

import numpy as np

from edge_ser.features.config import FeatureConfig
from edge_ser.recognise.gate import GateConfig
from edge_ser.recognise.recogniser import speech_windows
from edge_ser.recognise.segmenter import WindowSpec

CLASS_PITCH_HZ = (120.0, 210.0, 330.0, 480.0)  # one fundamental per class, far enough apart to learn


def synthetic_clip(class_index: int, seed: int, sample_rate: int = 16000, seconds: float = 1.6) -> np.ndarray:
    """A float32 clip: 0.4 s near-silence, `seconds` of a voiced tone for the class, 0.4 s near-silence."""
    rng = np.random.default_rng(seed)
    f0 = CLASS_PITCH_HZ[class_index] * rng.uniform(0.94, 1.06)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = f0 * (1.0 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 6) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    voiced = 0.2 * envelope * voiced / np.max(np.abs(voiced))
    pad = np.zeros(int(0.4 * sample_rate))
    clip = np.concatenate([pad, voiced, pad])
    return (clip + rng.normal(0.0, 1e-4, len(clip))).astype(np.float32)


def synthetic_windows(n_classes: int, clips_per_class: int, features: FeatureConfig,
                      spec: WindowSpec, first_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(windows, labels) of generated clips cut by edge_ser's own gate, windowing and MFCC code."""
    xs, ys = [], []
    for label in range(n_classes):
        for seed in range(first_seed, first_seed + clips_per_class):
            windows = speech_windows(synthetic_clip(label, seed, features.sample_rate), features, GateConfig(), spec)
            xs += [w.features for w in windows]
            ys += [label] * len(windows)
    return np.stack(xs), np.array(ys)
