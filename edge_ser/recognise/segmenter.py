"""Voice-gated segmentation of the frame stream into utterances and fixed analysis windows.

One object decides, frame by frame, when somebody starts and stops speaking and which windows
of features go to the classifier. The same code cuts training examples out of corpus clips, so
the model only ever sees the kind of windows the device will show it.

Rules:
* No window without speech: a window is classified only inside an utterance and only when at
  least `min_speech_fraction` of its frames are speech.
* Inside an utterance a window is taken every `hop_frames`, aligned to the utterance start.
* An utterance that ends before it filled a window (or with an uncovered tail of at least one
  hop) gets one last window centred on its speech as far as the frames already seen allow: it
  never waits for frames past the hangover, so the event is not delayed. At the very start of a
  stream missing frames are filled by repeating the first frame.
* Memory is bounded: only the last `window_frames + hangover + onset + 1` frames are kept.
* Decisions use frame energies only; a window's feature columns are fetched from the front end
  when it is emitted (see features.frontend for why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge_ser.errors import ConfigError
from edge_ser.features.config import FeatureConfig
from edge_ser.recognise.gate import GateConfig, NoiseFloor


@dataclass(frozen=True)
class WindowSpec:
    """Analysis window geometry, in frames of the front end."""

    window_frames: int = 200
    hop_frames: int = 50
    min_speech_fraction: float = 0.3

    def __post_init__(self) -> None:
        if self.window_frames < 1 or self.hop_frames < 1:
            raise ConfigError("window: window_frames and hop_frames must be >= 1")
        if not 0.0 <= self.min_speech_fraction <= 1.0:
            raise ConfigError("window: min_speech_fraction must be within 0..1")


@dataclass(frozen=True)
class UtteranceStart:
    utterance: int
    start: int  # first frame


@dataclass(frozen=True)
class Window:
    utterance: int
    start: int  # first frame (may be negative only for the padded window at stream start)
    end: int  # one past the last frame
    features: np.ndarray  # (window_frames, n_features) float32, unnormalised (the recogniser normalises)
    speech_fraction: float

    @property
    def real(self) -> np.ndarray:
        """The frames actually heard: without the copies of the first frame that pad the window at
        the start of a stream."""
        return self.features[max(-self.start, 0) :]


@dataclass(frozen=True)
class UtteranceEnd:
    utterance: int
    start: int
    end: int  # one past the last speech frame
    speech_frames: int
    windows: int  # windows classified for this utterance


Segment = UtteranceStart | Window | UtteranceEnd


def _reach_frames(gate: GateConfig, spec: WindowSpec) -> int:
    """How far before the newest frame a window may start: a closing utterance's last window
    reaches back over the hangover and the onset."""
    return spec.window_frames + gate.hangover_frames + gate.onset_frames + 1


def history_frames(gate: GateConfig, spec: WindowSpec) -> int:
    """Frames the segmenter and the front end must keep: the reach, plus the frame being read."""
    return _reach_frames(gate, spec) + 1


class FrameFeatures(Protocol):
    """Where the segmenter gets a window's frames from (features.frontend.StreamingFrontEnd)."""

    def features(self, start: int, end: int) -> np.ndarray: ...


class Segmenter:
    """Frame energies in, utterance boundaries and windows out; chunk-size invariant by design.

    It decides from energies alone and asks `frames` for feature columns only when it emits a
    window, so frames nobody classifies are never computed.
    """

    def __init__(self, features: FeatureConfig, gate: GateConfig, spec: WindowSpec, frames: FrameFeatures) -> None:
        self.features, self.gate, self.spec, self.frames = features, gate, spec, frames
        self.reach_frames = _reach_frames(gate, spec)
        self.history_frames = history_frames(gate, spec)
        self.reset()

    def reset(self) -> None:
        """Start afresh, as at the start of a stream (the noise floor too)."""
        self._floor = NoiseFloor(self.gate, self.features.frame_seconds)
        self._speech = [False] * self.history_frames  # ring: is frame t speech, at t % size
        self._next = 0  # global index of the next frame
        self._run = 0  # consecutive speech frames while idle
        self._active = False
        self._utterance = -1
        self._utt_start = self._last_speech = self._speech_frames = self._windows = 0
        self._last_window_end = 0

    def push(self, energy_db: np.ndarray) -> list[Segment]:
        """Consume the energies of the next frames; return what they completed, in stream order."""
        out: list[Segment] = []
        size, ring, first = self.history_frames, self._speech, self._next
        flags = self._floor.is_speech(energy_db)
        if not flags:
            return out
        self._next += len(flags)
        if not self._active and not any(flags):  # the usual case between utterances: nothing to decide
            for t in range(first, self._next):
                ring[t % size] = False
            self._run = 0
            return out
        for t, is_speech in enumerate(flags, first):
            ring[t % size] = is_speech
            self._step(t, is_speech, out)
        return out

    def flush(self) -> list[Segment]:
        """End of stream: close an open utterance with what has been seen."""
        out: list[Segment] = []
        if self._active:
            self._close(self._next, out)
        return out

    def _step(self, t: int, is_speech: bool, out: list[Segment]) -> None:
        g, spec = self.gate, self.spec
        if not self._active:
            self._run = self._run + 1 if is_speech else 0
            if self._run >= g.onset_frames:
                self._open(t - g.onset_frames + 1, t, g.onset_frames, out)
            return
        if is_speech:
            self._last_speech, self._speech_frames = t, self._speech_frames + 1
        end = t + 1
        filled = end - self._utt_start - spec.window_frames
        if filled >= 0 and filled % spec.hop_frames == 0:
            self._emit(end - spec.window_frames, out, require_speech=True)
        if t - self._last_speech >= g.hangover_frames:
            self._close(end, out)
        elif end - self._utt_start >= g.max_utterance_frames:
            self._close(end, out)
            self._open(end, end - 1, 0, out)  # speech goes on: the next utterance starts at once

    def _open(self, start: int, last_speech: int, speech_frames: int, out: list[Segment]) -> None:
        self._active = True
        self._utterance += 1
        self._utt_start, self._last_speech, self._speech_frames = start, last_speech, speech_frames
        self._windows, self._last_window_end = 0, start
        out.append(UtteranceStart(self._utterance, start))

    def _close(self, available_end: int, out: list[Segment]) -> None:
        speech_end = self._last_speech + 1
        keep = self._windows > 0 or self._speech_frames >= self.gate.min_speech_frames
        if keep and (self._windows == 0 or speech_end - self._last_window_end >= self.spec.hop_frames):
            w = self.spec.window_frames
            centred = (self._utt_start + speech_end) // 2 - w // 2
            start = min(centred, available_end - w)
            oldest = available_end - self.reach_frames
            if oldest > 0:  # older frames are gone; at stream start, pad instead
                start = max(start, oldest)
            self._emit(start, out, require_speech=False)
        if keep:
            out.append(UtteranceEnd(self._utterance, self._utt_start, speech_end,
                                    self._speech_frames, self._windows))
        self._active, self._run = False, 0

    def _emit(self, start: int, out: list[Segment], *, require_speech: bool) -> None:
        w = self.spec.window_frames
        first = max(start, 0)
        size = self.history_frames
        frames = range(first, start + w)
        fraction = sum(self._speech[t % size] for t in frames) / len(frames) if len(frames) else 0.0
        if require_speech and fraction < self.spec.min_speech_fraction:
            return
        feats = self.frames.features(first, start + w)
        if len(feats) < w:  # only at the start of a stream: repeat the first frame
            feats = np.concatenate([np.repeat(feats[:1], w - len(feats), axis=0), feats])
        out.append(Window(self._utterance, start, start + w, feats, fraction))
        self._windows += 1
        self._last_window_end = start + w
