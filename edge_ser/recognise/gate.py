"""Energy voice-activity gate with an adaptive noise floor, onset confirmation and hangover.

Why energy and not a model: it costs nothing per frame, needs no second network on the device,
and what the classifier needs is only "is somebody speaking above the room's own noise". The
floor follows the room: it drops at once to quieter frames and creeps up slowly, so a fan that
starts is absorbed within seconds while a sentence is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_ser.errors import ConfigError


@dataclass(frozen=True)
class GateConfig:
    """Voice gate parameters, in dB (relative to full scale) and frames (hops of the front end)."""

    threshold_db: float = 12.0  # a frame is speech when it is this far above the noise floor ...
    # ... and above this level (nothing below it is ever speech). -65 drops very soft speech whole
    # (RAVDESS played 20 dB quieter: 28 of 200 clips), -75 keeps it but, trained with, costs
    # reverberant and babbly rooms more (reports/gate_floor.md): a profile chooses.
    absolute_floor_db: float = -65.0
    initial_floor_db: float = -60.0  # noise floor assumed before the room has been heard
    floor_rise_db_per_s: float = 1.0  # how fast the floor may climb towards louder background
    onset_frames: int = 5  # consecutive speech frames that open an utterance
    hangover_frames: int = 30  # non-speech frames that close it (300 ms at a 10 ms hop)
    min_speech_frames: int = 20  # utterances with fewer speech frames are dropped (clicks, knocks)
    max_utterance_frames: int = 1000  # a longer utterance is split (10 s), so events keep coming

    def __post_init__(self) -> None:
        if self.onset_frames < 1 or self.hangover_frames < 0 or self.min_speech_frames < 1:
            raise ConfigError("gate: onset_frames and min_speech_frames must be >= 1, hangover_frames >= 0")
        if self.max_utterance_frames <= self.onset_frames:
            raise ConfigError("gate: max_utterance_frames must exceed onset_frames")
        if self.floor_rise_db_per_s < 0 or self.threshold_db <= 0:
            raise ConfigError("gate: threshold_db must be > 0 and floor_rise_db_per_s >= 0")


class NoiseFloor:
    """Tracks the background level: instant fall, slow rise."""

    def __init__(self, cfg: GateConfig, frame_seconds: float) -> None:
        self.cfg = cfg
        self.level = cfg.initial_floor_db
        self._rise = cfg.floor_rise_db_per_s * frame_seconds

    def is_speech(self, energy_db: np.ndarray) -> list[bool]:
        """Classify each frame against the floor, updating the floor frame by frame (a plain list:
        the segmenter walks it frame by frame, and a handful of frames per push is the usual case)."""
        out = []
        level, rise = self.level, self._rise
        threshold, absolute = self.cfg.threshold_db, self.cfg.absolute_floor_db
        for e in energy_db.tolist():
            out.append(e > level + threshold and e > absolute)
            level = e if e < level else level + min(rise, e - level)
        self.level = level
        return out
