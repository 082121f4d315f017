"""The Recogniser: samples pushed in, utterances and their emotion probabilities out.

One object owns the whole chain a device runs: the streaming front end, the voice-gated
segmenter, the classifier and the per-utterance averaging. The caller drives it (`push` a chunk,
get what that chunk completed), so the daemon is a flat loop that decides itself when to pause,
stop or publish, and the same object serves `edge-ser predict`, the benchmarks and training
(without a classifier it yields the windows the device would classify: the training examples).

Positions are sample indices from the start of the stream (or the last `reset`), never wall
time: the caller owns the clock (see `SampleClock`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_ser.audio.pcm import chunked
from edge_ser.errors import ConfigError, ModelError
from edge_ser.features.adaptation import AdaptationConfig, SpeakerAdapter
from edge_ser.features.config import SPEAKER_NORMALISATIONS, FeatureConfig
from edge_ser.features.frontend import SpectralTransform, StreamingFrontEnd
from edge_ser.features.normalise import adapt_and_normalise, normalise_window
from edge_ser.features.pitch import pitch_features
from edge_ser.recognise.gate import GateConfig
from edge_ser.recognise.segmenter import Segmenter, UtteranceEnd, UtteranceStart, Window, WindowSpec, history_frames
from edge_ser.recognise.speech_likeness import SpeechCheckConfig, SpeechEvidence, measure

if TYPE_CHECKING:
    from edge_ser.model.classifier import Classifier
    from edge_ser.model.manifest import Manifest


@dataclass(frozen=True)
class UtteranceStarted:
    """The gate opened: somebody started speaking at sample `start`."""

    utterance: int
    start: int


@dataclass(frozen=True)
class WindowScored:
    """One analysis window: its normalised features and, with a classifier, its probabilities."""

    utterance: int
    start: int  # first sample (negative only for the padded window at the very start of a stream)
    end: int  # one past the last sample
    features: np.ndarray = field(repr=False)  # (window_frames, n_features), normalised, float32
    speech_fraction: float
    probabilities: np.ndarray | None  # over the classifier's labels; None without a classifier
    # The speech-likeness check (recognise.speech_likeness), measured only with a classifier and
    # until a window of the utterance passes (None after that): a window that fails it still has
    # probabilities, but they are no evidence of an emotion.
    evidence: SpeechEvidence | None = None
    speech_like: bool = True


@dataclass(frozen=True)
class UtteranceEnded:
    """The gate closed on an utterance that had at least one window."""

    utterance: int
    start: int  # first sample
    end: int  # one past the last sample of its last speech frame
    windows: int
    probabilities: np.ndarray | None  # mean over its windows; None without a classifier
    speech_like: bool = True  # at least one window passed the speech-likeness check: report "uncertain" if not


Output = UtteranceStarted | WindowScored | UtteranceEnded


def gate_from_manifest(manifest: Manifest, source: str) -> GateConfig:
    """The gate a model's training windows were cut with; today's defaults for older manifests."""
    try:
        return GateConfig(**manifest.gate)
    except (TypeError, ValueError, ConfigError) as exc:  # unknown keys, wrong types, values out of range
        raise ModelError(f"{source}: manifest gate settings are invalid: {exc}") from None


class Recogniser:
    """Push-based recognition for one stream. Not thread-safe: one caller drives it."""

    def __init__(self, features: FeatureConfig, gate: GateConfig, spec: WindowSpec,
                 classifier: Classifier | None = None, *, spectral_transform: SpectralTransform | None = None,
                 speech_check: SpeechCheckConfig | None = None, adaptation: AdaptationConfig | None = None) -> None:
        self.features, self.gate, self.spec, self.classifier = features, gate, spec, classifier
        self.speech_check = speech_check or SpeechCheckConfig()
        self._front_end = StreamingFrontEnd(features, history_frames(gate, spec), spectral_transform)
        self._segmenter = Segmenter(features, gate, spec, self._front_end)
        self._collected: list[np.ndarray] = []
        self._speech_like = False
        # The speaker's running statistics outlive a stream reset (a pause, the next file of the
        # same speaker); `reset_adaptation` is what forgets them.
        self.adapter = SpeakerAdapter(features, adaptation) if adaptation is not None else None
        self._counted_end = 0  # frames before this one have been counted by the adapter
        if adaptation is None and features.normalisation in SPEAKER_NORMALISATIONS:
            raise ConfigError(f"normalisation {features.normalisation!r} needs an adaptation prior")

    @classmethod
    def from_manifest(cls, classifier: Classifier, *, gate: Mapping[str, Any] | None = None,
                      hop_frames: int | None = None, min_speech_fraction: float = WindowSpec.min_speech_fraction,
                      speech_check: SpeechCheckConfig | None = None) -> Recogniser:
        """The chain a model was trained for: its features and window from the manifest, its gate
        with the keys a device configures (`gate`) replaced, and its hop unless overridden."""
        m = classifier.manifest
        spec = WindowSpec(m.window_frames, hop_frames or m.hop_frames, min_speech_fraction)
        gate_config = gate_from_manifest(m, str(classifier.path))
        if gate:
            try:
                gate_config = replace(gate_config, **gate)
            except (TypeError, ValueError, ConfigError) as exc:
                raise ConfigError(f"gate: with the model's gate settings: {exc}") from None
        return cls(m.features, gate_config, spec, classifier, speech_check=speech_check, adaptation=m.adaptation)

    @property
    def samples(self) -> int:
        """Samples pushed since the start of the stream or the last reset."""
        return self._front_end.samples

    def push(self, samples: np.ndarray) -> list[Output]:
        """Feed the next chunk (int16 PCM or float32 in [-1, 1), at the model's rate, any length);
        return what it completed, in stream order."""
        if not len(samples):
            return []
        segments = self._segmenter.push(self._front_end.push(samples))
        return self._outputs(segments) if segments else []

    def flush(self) -> list[Output]:
        """End of stream: close the utterance being spoken, as far as it has been heard."""
        return self._outputs(self._segmenter.flush())

    def reset(self) -> None:
        """Drop everything heard so far, unscored; the next sample pushed is sample 0 again."""
        self._front_end.reset()
        self._segmenter.reset()
        self._collected = []
        self._speech_like = False
        self._counted_end = 0

    def reset_adaptation(self) -> None:
        """Forget the voices heard so far: back to the model's prior (a no-op without adaptation)."""
        if self.adapter is not None:
            self.adapter.reset()

    def run(self, signal: np.ndarray, chunk: int = 4096) -> Iterator[Output]:
        """Generator over a whole signal: push it in chunks, then flush."""
        for part in chunked(signal, chunk):
            yield from self.push(part)
        yield from self.flush()

    def _outputs(self, segments: list[UtteranceStart | Window | UtteranceEnd]) -> list[Output]:
        fs = self.features
        out: list[Output] = []
        for item in segments:
            if isinstance(item, Window):
                probabilities, evidence = None, None
                features = self._normalise(item)
                if self.classifier is not None:
                    probabilities = self.classifier.predict(features)
                    self._collected.append(probabilities)
                    # Once a window of the utterance has passed, the utterance is speech: its later
                    # windows are not measured (the check costs ~0.8 ms a window, pure Python).
                    if self.speech_check.enabled and not self._speech_like:
                        evidence = self._evidence(item)
                speech_like = evidence is None or evidence.passes(self.speech_check)
                self._speech_like |= speech_like
                out.append(WindowScored(item.utterance, item.start * fs.hop_length, _frames_end(item.end, fs),
                                        features, item.speech_fraction, probabilities, evidence, speech_like))
            elif isinstance(item, UtteranceStart):
                self._collected, self._speech_like = [], False
                out.append(UtteranceStarted(item.utterance, item.start * fs.hop_length))
            else:
                mean = np.mean(self._collected, axis=0) if self._collected else None
                out.append(UtteranceEnded(item.utterance, item.start * fs.hop_length, _frames_end(item.end, fs),
                                          item.windows, mean, self._speech_like))
        return out

    def _normalise(self, window: Window) -> np.ndarray:
        """The window's features as the model expects them. With adaptation, the frames of the window
        not counted yet go into the speaker's statistics first: the window is normalised with what
        the device has heard up to its end, never with anything later."""
        if self.adapter is None:
            return normalise_window(window.features, self.features)
        features, self._counted_end = adapt_and_normalise(self.adapter, window.features, window.start,
                                                           self._counted_end, self.features)
        return features

    def _evidence(self, window: Window) -> SpeechEvidence:
        """The speech-likeness of a window's frames, from their raw (unnormalised) columns, as the
        segmenter hands them over: the level is c0 (the mean log-mel level times
        sqrt(n_mels) under the orthonormal DCT), the pitch the model's own pitch columns or, for a
        model without them, the same estimator run on the frames' samples."""
        fs = self.features
        first = max(window.start, 0)  # the padded window at stream start: its real frames only
        raw = window.real
        if fs.pitch:
            pitch = raw[:, fs.n_mfcc : fs.n_mfcc + 2]
        else:
            pitch = pitch_features(self._front_end.spans(first, window.end), fs)
        return measure(raw[:, 0] / np.sqrt(fs.n_mels), pitch[:, 0], pitch[:, 1], fs.frame_seconds)


def _frames_end(end_frame: int, fs: FeatureConfig) -> int:
    """One past the last sample of the frames before `end_frame` (a frame spans n_fft samples)."""
    return (end_frame - 1) * fs.hop_length + fs.n_fft


class SampleClock:
    """Maps stream sample positions to wall-clock time.

    Anchored at the newest chunk's arrival: a live source gets real times (the chunk's last
    sample was captured just now), and a file played faster than real time still gets true
    durations between positions.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._samples, self._wall = 0, 0.0

    def arrived(self, samples_so_far: int, wall: float) -> None:
        """The stream has delivered `samples_so_far` samples by wall time `wall`."""
        self._samples, self._wall = samples_so_far, wall

    def wall(self, sample: int) -> float:
        """Wall time of `sample` (clamped to the samples delivered so far)."""
        return self._wall - (self._samples - min(sample, self._samples)) / self.sample_rate


@dataclass
class ClipAnalysis:
    """Everything `predict` reports about one recording."""

    windows: list[WindowScored] = field(default_factory=list)
    utterances: list[UtteranceEnded] = field(default_factory=list)

    @property
    def probabilities(self) -> np.ndarray | None:
        """Clip level: the mean over all speech windows, or None when nobody spoke."""
        scored = [w.probabilities for w in self.windows if w.probabilities is not None]
        return np.mean(scored, axis=0) if scored else None

    @property
    def speech_like(self) -> bool:
        """Whether any utterance passed the speech-likeness check (its emotion means something)."""
        return any(u.speech_like for u in self.utterances)


def analyse(recogniser: Recogniser, signal: np.ndarray, chunk: int = 4096) -> ClipAnalysis:
    """Run a whole float32 signal (at the model's rate) through a fresh stream of `recogniser`."""
    recogniser.reset()
    result = ClipAnalysis()
    for item in recogniser.run(signal, chunk):
        if isinstance(item, WindowScored):
            result.windows.append(item)
        elif isinstance(item, UtteranceEnded):
            result.utterances.append(item)
    return result


def speech_windows(signal: np.ndarray, features: FeatureConfig, gate: GateConfig, spec: WindowSpec,
                   spectral_transform: SpectralTransform | None = None,
                   adaptation: AdaptationConfig | None = None) -> list[WindowScored]:
    """The normalised windows the device would classify in `signal`: the training examples
    (`spectral_transform`: an augmentation of the power spectrum, e.g. VTLP; `adaptation`: a model's
    speaker adaptation, starting from its prior)."""
    recogniser = Recogniser(features, gate, spec, spectral_transform=spectral_transform, adaptation=adaptation)
    return [w for w in recogniser.run(signal) if isinstance(w, WindowScored)]

