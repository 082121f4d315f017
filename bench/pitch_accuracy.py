"""Pitch estimator accuracy: "spectrum" (new models) and "acf" (models up to 2.0.0) against tones
of known F0 and against librosa's pYIN on real speech of every shared corpus.

    python -m bench.pitch_accuracy [--data ../shared/data] [--clips-per-corpus 20]

Not one of run_all's timing benchmarks: it measures agreement, not speed, and pYIN takes about a
second per clip. Why these references: a harmonic tone has an exact F0 (and the missing-fundamental
tone shows the period, not the lowest spectral line, is found); pYIN is the best-known estimator on
speech, but not the truth, so the old estimator's agreement with it is the bar, not zero error.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import librosa
import numpy as np

from bench.context import REPO
from edge_ser.audio.wavfile import load_audio
from edge_ser.features.config import PITCH_METHODS, FeatureConfig
from edge_ser.features.framing import frame_spans
from edge_ser.features.pitch import PITCH_REFERENCE_HZ, VOICING_THRESHOLD, pitch_features
from edge_ser_testing.tones import harmonic_tone, white_noise

DATA = REPO.parent / "shared" / "data"
CORPORA = {"ravdess": "Actor_*/*.wav", "tess": "OAF_*/*.wav", "emodb": "wav/*.wav"}
PYIN_FRAME = 1024
PYIN_OFFSET = 2  # pYIN frame i (1024 samples, center=False) is centred 1.6 hops after our frame i


def configs() -> dict[str, FeatureConfig]:
    base = FeatureConfig(pitch=True)
    return {method: replace(base, pitch_method=method) for method in PITCH_METHODS}


def hz(pitch: np.ndarray) -> np.ndarray:
    return PITCH_REFERENCE_HZ * 2.0 ** pitch[:, 1]


def cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(1200 * np.log2(a / b))


def tone_report(cfg: FeatureConfig) -> dict[str, float]:
    """F0 error and voiced fraction on harmonic tones 80-450 Hz, with and without the fundamental,
    and the voiced fraction of white noise."""
    errors, voiced, missing = [], [], []
    for f0 in np.geomspace(80.0, 450.0, 15):
        for harmonics, sink in ((None, errors), ((0.0, 0.6, 0.5, 0.4), missing)):
            tone = harmonic_tone(f0) if harmonics is None else harmonic_tone(f0, harmonics=harmonics)
            pitch = pitch_features(frame_spans(tone, cfg), cfg)
            on = pitch[:, 0] >= VOICING_THRESHOLD
            sink.extend(cents(hz(pitch[on]), np.full(on.sum(), f0)))
            if harmonics is None:
                voiced.append(on.mean())
    noise = pitch_features(frame_spans(white_noise(2.0), cfg), cfg)
    return {"tone_median_cents": float(np.median(errors)), "tone_max_cents": float(np.max(errors)),
            "tone_voiced_fraction": float(np.mean(voiced)), "tone_min_voiced_fraction": float(np.min(voiced)),
            "missing_fundamental_median_cents": float(np.median(missing)),
            "noise_voiced_fraction": float(np.mean(noise[:, 0] >= VOICING_THRESHOLD))}


def clips(data: Path, per_corpus: int) -> dict[str, list[Path]]:
    """Evenly spaced clips of each corpus present (a deterministic, speaker-spread sample)."""
    found = {}
    for corpus, pattern in CORPORA.items():
        paths = sorted((data / corpus).glob(pattern))
        if paths:
            found[corpus] = paths[:: max(1, len(paths) // per_corpus)][:per_corpus]
    return found


def speech_report(paths: list[Path], cfgs: dict[str, FeatureConfig]) -> dict[str, dict[str, float]]:
    """Per method: median cents from pYIN where both call a frame voiced, the share within 50 cents,
    frame voicing agreement with pYIN, and (for the new method) agreement with "acf"."""
    per: dict[str, dict[str, list[float]]] = {m: {"cents": [], "agree": [], "acf_agree": [], "acf_cents": []}
                                              for m in cfgs}
    for path in paths:
        signal = load_audio(path, 16000)
        ref, ref_voiced, _ = librosa.pyin(signal, fmin=70.0, fmax=500.0, sr=16000, frame_length=PYIN_FRAME,
                                          hop_length=160, center=False)
        ours = {m: pitch_features(frame_spans(signal, c), c)[PYIN_OFFSET:] for m, c in cfgs.items()}
        n = min(len(ref), *(len(p) for p in ours.values()))
        old_on = ours["acf"][:n, 0] >= VOICING_THRESHOLD
        for method, pitch in ours.items():
            on = pitch[:n, 0] >= VOICING_THRESHOLD
            both = on & ref_voiced[:n]
            per[method]["cents"].extend(cents(hz(pitch[:n][both]), ref[:n][both]))
            per[method]["agree"].extend(on == ref_voiced[:n])
            per[method]["acf_agree"].extend(on == old_on)
            with_old = on & old_on
            per[method]["acf_cents"].extend(cents(hz(pitch[:n][with_old]), hz(ours["acf"][:n][with_old])))
    return {m: _summary(r) for m, r in per.items()}


def _summary(r: dict[str, list[float]]) -> dict[str, float]:
    return {"pyin_median_cents": float(np.median(r["cents"])),
            "pyin_within_50_cents": float(np.mean(np.less(r["cents"], 50))),
            "pyin_octave_errors": float(np.mean(np.greater(r["cents"], 600))),  # half or double, or worse
            "pyin_voicing_agreement": float(np.mean(r["agree"])),
            "acf_voicing_agreement": float(np.mean(r["acf_agree"])),
            "acf_median_cents": float(np.median(r["acf_cents"]))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder holding ravdess/, tess/, emodb/")
    p.add_argument("--clips-per-corpus", type=int, default=20)
    args = p.parse_args(argv)
    cfgs = configs()
    for method, cfg in cfgs.items():
        print(method, "tones:", {k: round(v, 3) for k, v in tone_report(cfg).items()})
    found = clips(args.data, args.clips_per_corpus)
    if not found:
        print(f"no corpus under {args.data}: tones only")
    for corpus, paths in found.items():
        for method, row in speech_report(paths, cfgs).items():
            print(f"{corpus} ({len(paths)} clips) {method}:", {k: round(v, 3) for k, v in row.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
