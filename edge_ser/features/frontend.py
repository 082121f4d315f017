"""The front end: samples in, per-frame feature columns (MFCCs, then pitch) and frame energy out.

Batch (`signal_features`) and streaming (`StreamingFrontEnd`) share `frame_features`, and every
frame is computed alone, so both give identical numbers for any chunking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from edge_ser.features.config import FeatureConfig
from edge_ser.features.framing import frame_energy_db, frame_signal, frame_spans, windowed_part
from edge_ser.features.mfcc import mfcc_frames
from edge_ser.features.pitch import with_pitch


def frame_features(spans: np.ndarray, cfg: FeatureConfig, first: int = 0) -> np.ndarray:
    """The model's per-frame columns (frames, n_features) from frame spans: MFCCs, then pitch if
    the config asks."""
    return with_pitch(mfcc_frames(windowed_part(spans, cfg), cfg, first), spans, cfg)


BATCH_FRAMES = 256  # frames per block in batch mode: intermediates stay in cache (~0.5 MB)


def _in_blocks(frames: np.ndarray, cfg: FeatureConfig,
               per_frames: Callable[[np.ndarray, FeatureConfig, int], np.ndarray]) -> np.ndarray:
    """`per_frames` over all `frames` in blocks of BATCH_FRAMES: the same numbers (every frame is
    computed on its own) with a working set that fits in cache."""
    if len(frames) <= BATCH_FRAMES:
        return per_frames(frames, cfg, 0)
    return np.concatenate([per_frames(frames[i : i + BATCH_FRAMES], cfg, i)
                           for i in range(0, len(frames), BATCH_FRAMES)])


def mfcc(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Batch MFCCs of a whole float32 signal: (frames, n_mfcc), the librosa-comparable part."""
    return _in_blocks(frame_signal(np.asarray(signal, dtype=np.float32), cfg), cfg, mfcc_frames)


def signal_features(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Batch frame features of a whole float32 signal: (frames, n_features), what streaming yields."""
    return _in_blocks(frame_spans(np.asarray(signal, dtype=np.float32), cfg), cfg, frame_features)


@dataclass(frozen=True)
class FrameBlock:
    """Consecutive frames produced by the front end: `start` is the index of the first frame."""

    start: int
    features: np.ndarray  # (n, n_features) float32: MFCCs (+ pitch columns)
    energy_db: np.ndarray  # (n,) float32

    def __len__(self) -> int:
        return len(self.energy_db)


class StreamingFrontEnd:
    """Incremental front end: push samples of any chunk size, get the frames they complete.

    Keeps only the samples not yet consumed by a complete frame, so memory is bounded by n_fft.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self._pending = np.zeros(0, dtype=np.float32)
        self._next_frame = 0

    def push(self, samples: np.ndarray) -> FrameBlock:
        """Add float32 samples; return the frames that are now complete (possibly none)."""
        buf = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        spans = frame_spans(buf, self.cfg)
        count = len(spans)
        block = FrameBlock(self._next_frame, frame_features(spans, self.cfg, self._next_frame),
                           frame_energy_db(windowed_part(spans, self.cfg)))
        self._pending = buf[count * self.cfg.hop_length :]
        self._next_frame += count
        return block


def stream_frames(chunks: Iterable[np.ndarray], cfg: FeatureConfig) -> Iterator[FrameBlock]:
    """Generator stage: float32 sample chunks in, non-empty FrameBlocks out."""
    front_end = StreamingFrontEnd(cfg)
    for chunk in chunks:
        block = front_end.push(chunk)
        if len(block):
            yield block
