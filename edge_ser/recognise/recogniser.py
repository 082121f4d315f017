"""The chain every user of edge-ser runs: chunks -> frames -> segments -> scored windows -> results.

Each stage is a generator over the previous one, so the daemon, `edge-ser predict`, the
benchmarks and the training data builder differ only in their source and sink.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from edge_ser.audio.pcm import chunked
from edge_ser.features.config import FeatureConfig
from edge_ser.features.frontend import stream_frames
from edge_ser.model.classifier import Classifier
from edge_ser.recognise.gate import GateConfig
from edge_ser.recognise.segmenter import Segment, Segmenter, UtteranceEnd, UtteranceStart, Window, WindowSpec, segment


@dataclass(frozen=True)
class ScoredWindow:
    window: Window
    probabilities: np.ndarray  # over the classifier's labels


@dataclass(frozen=True)
class UtteranceResult:
    utterance: int
    start: int  # frames
    end: int
    probabilities: np.ndarray  # mean over the utterance's windows
    windows: int


Scored = UtteranceStart | ScoredWindow | UtteranceEnd





def segments(chunks: Iterable[np.ndarray], features: FeatureConfig, gate: GateConfig,
             spec: WindowSpec) -> Iterator[Segment]:
    """Float sample chunks to utterance boundaries and speech windows."""
    return segment(stream_frames(chunks, features), Segmenter(features, gate, spec))


def score(items: Iterable[Segment], classifier: Classifier) -> Iterator[Scored]:
    """Run the classifier on every window; pass utterance boundaries through."""
    for item in items:
        if isinstance(item, Window):
            yield ScoredWindow(item, classifier.predict(item.features))
        else:
            yield item


def utterances(items: Iterable[Scored]) -> Iterator[Scored | UtteranceResult]:
    """Pass everything through and add an UtteranceResult after each utterance that had windows."""
    collected: list[np.ndarray] = []
    for item in items:
        yield item
        if isinstance(item, UtteranceStart):
            collected = []
        elif isinstance(item, ScoredWindow):
            collected.append(item.probabilities)
        elif isinstance(item, UtteranceEnd) and collected:
            yield UtteranceResult(item.utterance, item.start, item.end,
                                  np.mean(collected, axis=0), len(collected))


def window_spec(classifier: Classifier, hop_frames: int | None = None,
                min_speech_fraction: float = 0.3) -> WindowSpec:
    """The window geometry the model was trained for (hop may be overridden by the device)."""
    m = classifier.manifest
    return WindowSpec(m.window_frames, hop_frames or m.hop_frames, min_speech_fraction)


@dataclass
class ClipAnalysis:
    """Everything `predict` reports about one recording."""

    windows: list[ScoredWindow] = field(default_factory=list)
    utterances: list[UtteranceResult] = field(default_factory=list)

    @property
    def probabilities(self) -> np.ndarray | None:
        """Clip level: the mean over all speech windows, or None when nobody spoke."""
        if not self.windows:
            return None
        return np.mean([w.probabilities for w in self.windows], axis=0)


def analyse(signal: np.ndarray, classifier: Classifier, gate: GateConfig,
            spec: WindowSpec | None = None, chunk: int = 4096) -> ClipAnalysis:
    """Run a whole float32 signal (at the model's rate) through the streaming chain."""
    spec = spec or window_spec(classifier)
    result = ClipAnalysis()
    items = segments(chunked(signal, chunk), classifier.manifest.features, gate, spec)
    for item in utterances(score(items, classifier)):
        if isinstance(item, ScoredWindow):
            result.windows.append(item)
        elif isinstance(item, UtteranceResult):
            result.utterances.append(item)
    return result


def speech_windows(signal: np.ndarray, features: FeatureConfig, gate: GateConfig,
                   spec: WindowSpec) -> list[Window]:
    """The normalised windows the device would classify in `signal`: the training examples."""
    return [w for w in segments(chunked(signal, 4096), features, gate, spec) if isinstance(w, Window)]
