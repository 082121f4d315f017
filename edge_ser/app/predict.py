"""What `edge-ser predict` reports about one recording: the device's own chain run over a file,
as a JSON-ready result or a line of text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_ser.audio.wavfile import AUDIO_SUFFIXES
from edge_ser.recognise.labelling import InferenceConfig, Labeller
from edge_ser.recognise.recogniser import ClipAnalysis


def expand(paths: list[str]) -> tuple[list[Path], list[str]]:
    """(files, problems): files as given, folders searched recursively for audio files (every
    suffix in AUDIO_SUFFIXES: a FLAC that cannot be read is reported, not silently passed over)
    in a stable order; a folder with none is a problem to report, not an empty success."""
    files: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                problems.append(f"{path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder or below")
            files.extend(found)
        else:
            files.append(path)
    return files, problems


def describe(path: Path, clip: ClipAnalysis, labels: tuple[str, ...], sample_rate: int, duration: float,
             timeline: bool) -> dict[str, Any]:
    """The JSON-ready result for one file. Labels come from the daemon's Labeller without threshold
    or groups: a recording (or window) in which nothing sounded like speech is "uncertain"."""
    labeller = Labeller(InferenceConfig(), labels)
    probs = clip.probabilities
    result: dict[str, Any] = {"path": str(path), "duration_s": round(duration, 3),
                              "speech_windows": len(clip.windows)}
    if probs is None:
        result.update(label=None, confidence=None, probabilities={})
    else:
        verdict = labeller.verdict(probs, clip.speech_like)
        result.update(label=verdict.label, confidence=verdict.confidence, probabilities=verdict.probabilities)
    if timeline:
        result["timeline"] = []
        for w in clip.windows:
            if w.probabilities is not None:
                verdict = labeller.verdict(w.probabilities, w.speech_like)
                result["timeline"].append(
                    {"start_s": round(max(w.start, 0) / sample_rate, 3), "end_s": round(w.end / sample_rate, 3),
                     "label": verdict.label, "confidence": verdict.confidence,
                     "probabilities": verdict.probabilities})
    return result


def format_text(result: dict[str, Any]) -> str:
    if result["label"] is None:
        head = f"{result['path']}: no speech detected"
    else:
        probs = " ".join(f"{k}={v:.2f}" for k, v in result["probabilities"].items())
        head = f"{result['path']}: {result['label']} ({result['confidence']:.2f})  {probs}"
    rows = [head]
    for w in result.get("timeline", []):
        rows.append(f"  {w['start_s']:8.2f}s - {w['end_s']:8.2f}s  {w['label']:<10} {w['confidence']:.2f}")
    return "\n".join(rows)
