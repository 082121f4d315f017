"""The window's second tab without the window: analyse a WAV file or a few seconds from the local
microphone with the same Recogniser as ``edge-ser predict``, and describe each utterance.

Kept apart from Tk so what the tab shows is plain data a test can check, and so the slow part
(loading audio, classifying) runs on a worker thread while the window stays responsive.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ser.audio.wavfile import load_audio
from edge_ser.errors import ConfigError
from edge_ser.model.classifier import Classifier
from edge_ser.recognise.labelling import InferenceConfig, Labeller
from edge_ser.recognise.recogniser import ClipAnalysis, Recogniser, analyse


@dataclass(frozen=True)
class UtteranceRow:
    start_s: float
    end_s: float
    label: str
    confidence: float

    def text(self) -> str:
        return f"{self.start_s:7.2f} s - {self.end_s:7.2f} s   {self.label:<10} {self.confidence:.2f}"


@dataclass(frozen=True)
class Analysis:
    """One analysed recording: what the tab lists, and its timeline PNG (None without matplotlib)."""

    name: str
    duration_s: float
    utterances: list[UtteranceRow]
    plot: Path | None
    plot_error: str | None


class RecordingAnalyser:
    """Loads the model once; analyses any number of recordings one after another (one at a time:
    the Recogniser is a single stream)."""

    def __init__(self, model: str | Path) -> None:
        self.classifier = Classifier(model)
        self.recogniser = Recogniser.from_manifest(self.classifier)
        # predict's labelling: no threshold or groups, but "uncertain" for what is not speech-like
        self.labeller = Labeller(InferenceConfig(), self.classifier.labels)
        self.rate = self.classifier.manifest.features.sample_rate
        # Removed at exit; each plot gets a new name so a view never reads a half-written file.
        self._plots = tempfile.TemporaryDirectory(prefix="edge-ser-monitor-")
        self._count = 0

    def analyse_file(self, path: str | Path) -> Analysis:
        """``AudioFileError`` (one line, names the file) for what cannot be read."""
        return self.analyse_signal(load_audio(Path(path), self.rate), Path(path).name)

    def analyse_signal(self, signal: np.ndarray, name: str) -> Analysis:
        self.recogniser.reset_adaptation()  # each recording its own speaker, as in `predict`
        clip = analyse(self.recogniser, signal)
        verdicts = [(u, self.labeller.verdict(u.probabilities, u.speech_like))
                    for u in clip.utterances if u.probabilities is not None]
        rows = [UtteranceRow(u.start / self.rate, u.end / self.rate, v.label, v.confidence) for u, v in verdicts]
        plot, error = self._plot(signal, clip, name)
        return Analysis(name, len(signal) / self.rate, rows, plot, error)

    def record(self, seconds: float) -> np.ndarray:
        """``seconds`` of the default microphone at the model's rate; ``ConfigError`` without one."""
        from edge_ser.audio.mic import MicSource

        if not microphone_available():
            raise ConfigError("no microphone: the default audio input device cannot be opened")
        source = MicSource(None, self.rate)
        wanted, parts, got = int(seconds * self.rate), [], 0
        try:
            for chunk in source.chunks():
                parts.append(chunk)
                got += len(chunk)
                if got >= wanted:
                    break
        finally:
            source.close()
        return np.concatenate(parts)[:wanted].astype(np.float32)

    def _plot(self, signal: np.ndarray, clip: ClipAnalysis, name: str) -> tuple[Path | None, str | None]:
        from edge_ser.monitor.plot import plot_timeline

        self._count += 1
        try:
            out = plot_timeline(Path(self._plots.name) / f"timeline-{self._count}.png", signal, self.rate, clip,
                                self.classifier.labels, title=name)
        except ConfigError as exc:  # matplotlib missing: the labels are still worth showing
            return None, str(exc)
        return out, None


def microphone_available() -> bool:
    """Whether PyAudio is installed and sees a default input device (`edge-ser devices --check`)."""
    try:
        from edge_ser.audio.mic import DeviceUnavailable, choose_device, import_pyaudio, input_devices
        from edge_ser.native_stderr import filtered_stderr

        pyaudio = import_pyaudio()
        with filtered_stderr():
            pa = pyaudio.PyAudio()
        try:
            choose_device(input_devices(pa), None)
        finally:
            pa.terminate()
    except (DeviceUnavailable, ConfigError, ImportError, OSError):
        return False
    return True
