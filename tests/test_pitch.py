"""The pitch columns of the front end: right F0 on signals of known pitch, agreement with librosa's
pYIN on real speech, no octave-too-low picks, gain invariance, and untouched by normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ser.errors import ConfigError
from edge_ser.features.config import FeatureConfig
from edge_ser.features.framing import frame_spans
from edge_ser.features.frontend import signal_features
from edge_ser.features.normalise import normalise_window
from edge_ser.features.pitch import PITCH_REFERENCE_HZ, pitch_features

CFG = FeatureConfig(pitch=True)
RATE = CFG.sample_rate


def harmonic_tone(f0: float, seconds: float = 0.5, harmonics: tuple[float, ...] = (1.0, 0.5, 0.33, 0.25),
                  amplitude: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(a * np.sin(2 * np.pi * f0 * (k + 1) * t) for k, a in enumerate(harmonics))
    return (amplitude * tone).astype(np.float32)


def estimated_hz(pitch: np.ndarray) -> np.ndarray:
    return PITCH_REFERENCE_HZ * 2.0 ** pitch[:, 1]


@pytest.mark.parametrize("f0", [85.0, 123.0, 180.0, 262.0, 440.0])
def test_the_f0_of_a_harmonic_tone_is_found(f0: float) -> None:
    pitch = pitch_features(frame_spans(harmonic_tone(f0), CFG), CFG)
    assert (pitch[:, 0] > 0.8).all(), "a steady harmonic tone is voiced in every frame"
    np.testing.assert_allclose(estimated_hz(pitch), f0, rtol=0.01)


def test_a_strong_second_harmonic_does_not_halve_the_pitch() -> None:
    """A periodic signal also peaks at two periods; the shortest good lag must win."""
    tone = harmonic_tone(220.0, harmonics=(0.4, 1.0, 0.2))
    np.testing.assert_allclose(estimated_hz(pitch_features(frame_spans(tone, CFG), CFG)), 220.0, rtol=0.01)


def test_noise_and_silence_are_unvoiced() -> None:
    noise = np.random.default_rng(0).standard_normal(RATE // 2).astype(np.float32) * 0.1
    pitch = pitch_features(frame_spans(noise, CFG), CFG)
    assert np.mean(pitch[:, 0] < 0.5) > 0.9
    assert (pitch[pitch[:, 0] < 0.5, 1] == 0).all(), "unvoiced frames carry no F0"
    silent = pitch_features(frame_spans(np.zeros(RATE // 4, np.float32), CFG), CFG)
    assert np.isfinite(silent).all() and (silent == 0).all()


def test_pitch_columns_do_not_depend_on_the_gain(speech_16k: np.ndarray) -> None:
    quiet, loud = (pitch_features(frame_spans(speech_16k * g, CFG), CFG) for g in (0.05, 1.0))
    np.testing.assert_allclose(quiet, loud, atol=1e-3)


def test_agrees_with_librosa_pyin_on_real_speech(speech_16k: np.ndarray) -> None:
    librosa = pytest.importorskip("librosa", reason="librosa (dev extra) is the pitch reference")
    ours = pitch_features(frame_spans(speech_16k, CFG), CFG)
    # pYIN with 1024-sample frames: its frame i is centred 256 samples (1.6 hops) after ours.
    ref, ref_voiced, _ = librosa.pyin(speech_16k, fmin=CFG.pitch_fmin, fmax=CFG.pitch_fmax, sr=RATE,
                                      frame_length=1024, hop_length=CFG.hop_length, center=False)
    n = min(len(ref), len(ours) - 2)
    mine = ours[2 : 2 + n]
    both = ref_voiced[:n] & (mine[:, 0] >= 0.5)
    assert both.sum() > 50, "the clip has voiced speech both estimators find"
    semitones = np.abs(12 * np.log2(estimated_hz(mine[both]) / ref[:n][both]))
    assert np.median(semitones) < 0.6
    assert np.mean(semitones < 1.5) > 0.7, "most voiced frames within a semitone and a half of pYIN"
    assert np.mean(mine[ref_voiced[:n], 0] >= 0.5) > 0.75, "what pYIN calls voiced is mostly voiced here"


def test_pitch_columns_follow_the_cepstra_and_escape_normalisation(speech_16k: np.ndarray) -> None:
    feats = signal_features(speech_16k[:32000], FeatureConfig(pitch=True, normalisation="cmvn"))
    assert feats.shape[1] == CFG.n_mfcc + 2 == FeatureConfig(pitch=True).n_features
    cfg = FeatureConfig(pitch=True, normalisation="cmvn")
    norm = normalise_window(feats, cfg)
    np.testing.assert_array_equal(norm[:, 20:], feats[:, 20:])
    np.testing.assert_allclose(norm[:, :20].mean(axis=0), 0.0, atol=1e-4)


def test_level_normalisation_removes_only_the_c0_mean(speech_16k: np.ndarray) -> None:
    cfg = FeatureConfig(normalisation="level")
    feats = signal_features(speech_16k[:32000], cfg)
    norm = normalise_window(feats, cfg)
    assert abs(norm[:, 0].mean()) < 1e-3
    np.testing.assert_array_equal(norm[:, 1:], feats[:, 1:])
    np.testing.assert_allclose(norm[:, 0] - feats[:, 0], -feats[:, 0].mean(), rtol=1e-5)
    # 20 dB louder moves c0 only, so the normalised window stays the same.
    louder = normalise_window(signal_features(speech_16k[:32000] * 10, cfg), cfg)
    np.testing.assert_allclose(louder, norm, atol=2e-3)


@pytest.mark.parametrize("bad", [{"pitch_fmin": 50.0}, {"pitch_fmax": 5000.0},
                                 {"pitch_fmin": 300.0, "pitch_fmax": 200.0}, {"coefficient_scale": (1.0,) * 20}])
def test_invalid_pitch_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="invalid feature config"):
        FeatureConfig(pitch=True, **bad)  # type: ignore[arg-type]
