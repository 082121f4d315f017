"""What every benchmark shares: the speech it runs on, the model, the feature config, the effort.

Built once per run, so all benchmarks measure the same audio and the same model side by side.
Speech comes from RAVDESS clips concatenated across actors (real speech with its pauses, which
is what the gate and the windows see on a device); espeak-ng speech is the fallback when the
corpus is not on this machine, and the result files say which one was used.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ser.audio.wavfile import load_audio
from edge_ser.features.config import FeatureConfig
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.model.manifest import Manifest, manifest_path

REPO = Path(__file__).resolve().parents[1]
RAVDESS = REPO.parent / "shared" / "data" / "ravdess"
TINY_MODEL = REPO / "tests" / "fixtures" / "tiny.tflite"
SAMPLE_RATE = 16000
ESPEAK_TEXT = ("The quick brown fox jumps over the lazy dog. I can't believe you did that again! "
               "Please sit down, we need to talk about what happened yesterday at the station. ")


@dataclass(frozen=True)
class Speech:
    """Speech signals keyed by duration in seconds, all prefixes of one concatenation."""

    signals: dict[int, np.ndarray]
    source: str
    clips: int

    def describe(self) -> dict[str, object]:
        return {"source": self.source, "clips": self.clips, "sample_rate": SAMPLE_RATE,
                "durations_s": sorted(self.signals)}


@dataclass(frozen=True)
class ModelChoice:
    """The int8 model under test; `note` says when it is a stand-in for the default model."""

    path: Path | None
    note: str
    manifest: Manifest | None = None

    def describe(self) -> dict[str, object]:
        info: dict[str, object] = {"path": str(self.path) if self.path else None, "note": self.note}
        if self.manifest is not None:
            m = self.manifest
            info |= {"name": m.name, "version": m.version, "window_frames": m.window_frames,
                     "hop_frames": m.hop_frames, "labels": len(m.labels), "bytes": self.path.stat().st_size}
        return info


@dataclass(frozen=True)
class Context:
    """Shared inputs and effort settings (`quick` = tiny inputs for the smoke test)."""

    speech: Speech
    model: ModelChoice
    quick: bool
    repeats: int
    min_sample_s: float
    work_dir: Path  # scratch space for this run (generated models, espeak audio), removed afterwards

    @property
    def features(self) -> FeatureConfig:
        """The front end the device would run: the model's, else the default config."""
        return self.model.manifest.features if self.model.manifest else FeatureConfig()


def choose_model(explicit: Path | None) -> ModelChoice:
    """The given model, else the bundled default, else the tiny test fixture (noted as such)."""
    if explicit is not None:
        return ModelChoice(explicit, "given on the command line", Manifest.load(manifest_path(explicit)))
    if DEFAULT_MODEL.is_file():
        return ModelChoice(DEFAULT_MODEL, "bundled default model", Manifest.load(manifest_path(DEFAULT_MODEL)))
    if TINY_MODEL.is_file():
        return ModelChoice(TINY_MODEL, "default model absent: tiny test fixture used instead; classifier "
                           "latencies are those of a much smaller network",
                           Manifest.load(manifest_path(TINY_MODEL)))
    return ModelChoice(None, "no model found (neither edge_ser/model/bundled/default.tflite nor the tiny fixture)")


def _ravdess_clips(root: Path) -> list[Path]:
    """Clips ordered so consecutive ones come from different actors (a mix of voices)."""
    actors = [sorted(d.glob("*.wav")) for d in sorted(root.glob("Actor_*")) if d.is_dir()]
    longest = max((len(a) for a in actors), default=0)
    return [clips[i] for i in range(longest) for clips in actors if i < len(clips)]


def _espeak_clip(work_dir: Path) -> Path:
    out = work_dir / "espeak.wav"
    subprocess.run(["espeak-ng", "-w", str(out), ESPEAK_TEXT], check=True, capture_output=True)
    return out


def load_speech(durations: tuple[int, ...], data_dir: Path, work_dir: Path) -> Speech:
    """Concatenate real speech until the longest duration is covered; cut every duration from it."""
    need = max(durations) * SAMPLE_RATE
    clips = _ravdess_clips(data_dir) if data_dir.is_dir() else []
    source = f"RAVDESS clips from {data_dir}, concatenated across actors"
    if not clips:
        clips = [_espeak_clip(work_dir)]
        source = f"espeak-ng synthetic speech (no RAVDESS at {data_dir}), resampled to {SAMPLE_RATE} Hz"
    parts, total, used = [], 0, 0
    while total < need:
        audio = load_audio(clips[used % len(clips)], SAMPLE_RATE)
        parts.append(audio)
        total += len(audio)
        used += 1
    whole = np.concatenate(parts)
    return Speech({d: whole[: d * SAMPLE_RATE] for d in durations}, source, used)
