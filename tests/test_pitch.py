"""The pitch columns of the front end, for both estimators ("acf" of models up to 2.0.0 and the
cheaper "spectrum" of new models): right F0 on signals of known pitch, agreement with librosa's
pYIN and with each other on real speech, no octave-too-low picks, gain invariance, untouched by
normalisation and by spectral augmentation, and old manifests keep the old estimator unchanged."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_ser.errors import ConfigError
from edge_ser.features.config import FeatureConfig
from edge_ser.features.framing import frame_spans
from edge_ser.features.frontend import signal_features
from edge_ser.features.mfcc import analysis_window, power_spectrum
from edge_ser.features.normalise import normalise_window
from edge_ser.features.pitch import PITCH_REFERENCE_HZ, VOICING_THRESHOLD, _spectrum_autocorrelation, pitch_features
from edge_ser_testing.tones import harmonic_tone, white_noise

CFG = FeatureConfig(pitch=True)
RATE = CFG.sample_rate
METHODS = ("acf", "spectrum")
# Model 2.0.0's feature block as its manifest first shipped it, without pitch_method
FEATURES_2_0_0 = Path(__file__).resolve().parent / "fixtures" / "features_2_0_0.json"
GOLDEN_2_0_0 = Path(__file__).resolve().parent / "fixtures" / "features_2_0_0_acf.npy"


@pytest.fixture(params=METHODS)
def cfg(request: pytest.FixtureRequest) -> FeatureConfig:
    return FeatureConfig(pitch=True, pitch_method=request.param)


def estimated_hz(pitch: np.ndarray) -> np.ndarray:
    return PITCH_REFERENCE_HZ * 2.0 ** pitch[:, 1]


def pitch_of(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    return pitch_features(frame_spans(signal, cfg), cfg)


@pytest.mark.parametrize("f0", [100.0, 123.0, 180.0, 262.0, 440.0, 480.0])
def test_the_f0_of_a_harmonic_tone_is_found(f0: float, cfg: FeatureConfig) -> None:
    pitch = pitch_of(harmonic_tone(f0), cfg)
    assert (pitch[:, 0] > 0.8).all(), "a steady harmonic tone is voiced in every frame"
    np.testing.assert_allclose(estimated_hz(pitch), f0, rtol=0.01)


@pytest.mark.parametrize(("method", "voiced", "rtol"), [("acf", 1.0, 0.01), ("spectrum", 0.9, 0.025)])
def test_a_low_male_voice(method: str, voiced: float, rtol: float) -> None:
    """85 Hz: near three periods in the 32 ms span "acf" reads, two in the 25 ms MFCC window
    "spectrum" reads, which is why its voicing dips on some frames and its F0 is looser there."""
    cfg = FeatureConfig(pitch=True, pitch_method=method)
    pitch = pitch_of(harmonic_tone(85.0), cfg)
    on = pitch[:, 0] >= VOICING_THRESHOLD
    assert on.mean() >= voiced
    np.testing.assert_allclose(estimated_hz(pitch[on]), 85.0, rtol=rtol)


def test_a_strong_second_harmonic_does_not_halve_the_pitch(cfg: FeatureConfig) -> None:
    """A periodic signal also peaks at two periods; the shortest good lag must win."""
    tone = harmonic_tone(220.0, harmonics=(0.4, 1.0, 0.2))
    np.testing.assert_allclose(estimated_hz(pitch_of(tone, cfg)), 220.0, rtol=0.01)


@pytest.mark.parametrize("f0", [110.0, 240.0])
def test_a_missing_fundamental_is_still_heard(f0: float, cfg: FeatureConfig) -> None:
    """The period, not the lowest spectral line, is the pitch (telephone speech has no fundamental)."""
    pitch = pitch_of(harmonic_tone(f0, harmonics=(0.0, 0.6, 0.5, 0.4)), cfg)
    assert (pitch[:, 0] > 0.8).all()
    np.testing.assert_allclose(estimated_hz(pitch), f0, rtol=0.01)


def test_noise_and_silence_are_unvoiced(cfg: FeatureConfig) -> None:
    pitch = pitch_of(white_noise(2.0), cfg)
    assert np.mean(pitch[:, 0] < VOICING_THRESHOLD) > 0.97
    assert (pitch[pitch[:, 0] < VOICING_THRESHOLD, 1] == 0).all(), "unvoiced frames carry no F0"
    silent = pitch_of(np.zeros(RATE // 4, np.float32), cfg)
    assert np.isfinite(silent).all() and (silent == 0).all()


def test_pitch_columns_do_not_depend_on_the_gain(speech_16k: np.ndarray, cfg: FeatureConfig) -> None:
    quiet, loud = (pitch_of(speech_16k * g, cfg) for g in (0.05, 1.0))
    np.testing.assert_allclose(quiet, loud, atol=1e-3)


def test_agrees_with_librosa_pyin_on_real_speech(speech_16k: np.ndarray, cfg: FeatureConfig) -> None:
    librosa = pytest.importorskip("librosa", reason="librosa (dev extra) is the pitch reference")
    ours = pitch_of(speech_16k, cfg)
    # pYIN with 1024-sample frames: its frame i is centred 256 samples (1.6 hops) after ours.
    ref, ref_voiced, _ = librosa.pyin(speech_16k, fmin=cfg.pitch_fmin, fmax=cfg.pitch_fmax, sr=RATE,
                                      frame_length=1024, hop_length=cfg.hop_length, center=False)
    n = min(len(ref), len(ours) - 2)
    mine = ours[2 : 2 + n]
    both = ref_voiced[:n] & (mine[:, 0] >= VOICING_THRESHOLD)
    assert both.sum() > 50, "the clip has voiced speech both estimators find"
    semitones = np.abs(12 * np.log2(estimated_hz(mine[both]) / ref[:n][both]))
    assert np.median(semitones) < 0.6
    assert np.mean(semitones < 1.5) > 0.7, "most voiced frames within a semitone and a half of pYIN"
    assert np.mean(mine[ref_voiced[:n], 0] >= VOICING_THRESHOLD) > 0.75, "what pYIN calls voiced is mostly voiced here"


def test_the_spectrum_estimator_agrees_with_the_acf_one_on_real_speech(speech_16k: np.ndarray) -> None:
    """Same two columns, same meaning: a model retrained on the new estimator sees the prosody it
    saw before, not a different feature under the same name."""
    old = pitch_of(speech_16k, replace(CFG, pitch_method="acf"))
    new = pitch_of(speech_16k, replace(CFG, pitch_method="spectrum"))
    old_on, new_on = old[:, 0] >= VOICING_THRESHOLD, new[:, 0] >= VOICING_THRESHOLD
    assert old_on.sum() > 50
    assert np.mean(old_on == new_on) > 0.85, "voicing decisions agree on most frames"
    both = old_on & new_on
    cents = np.abs(1200 * np.log2(estimated_hz(new[both]) / estimated_hz(old[both])))
    assert np.median(cents) < 10
    assert np.mean(cents < 100) > 0.9, "octave and other gross disagreements are rare"
    assert np.corrcoef(old[:, 0], new[:, 0])[0, 1] > 0.8, "voicing strength means the same"


def test_the_spectrum_autocorrelation_is_the_windows_own_at_every_other_lag() -> None:
    """The fold-and-DCT shortcut against the definition: the circular autocorrelation (period
    n_fft) of the windowed, zero-padded frame, summed directly, over the window's own."""
    frame = np.random.default_rng(3).standard_normal(CFG.frame_length).astype(np.float32)
    window = analysis_window(CFG).astype(np.float64)

    def circular_ac(x: np.ndarray) -> np.ndarray:
        padded = np.zeros(CFG.n_fft)
        padded[: len(x)] = x
        return np.array([padded @ np.roll(padded, -lag) for lag in range(0, CFG.n_fft // 2, 2)])

    direct = circular_ac(frame * window) / circular_ac(window)
    direct /= direct[0]
    ours = _spectrum_autocorrelation(power_spectrum(frame[None, :], CFG), CFG)[0]
    np.testing.assert_allclose(ours, direct[: len(ours)], atol=2e-5)


def test_the_front_end_takes_spectrum_pitch_from_the_untransformed_power(speech_16k: np.ndarray) -> None:
    """The spectral hook (VTLP) may rewrite the power in place; the pitch columns, read from the
    same power spectrum, must not see it (a warped vocal tract does not change the F0)."""
    def scramble(power: np.ndarray, first: int) -> np.ndarray:
        power *= np.linspace(0.1, 3.0, power.shape[1], dtype=np.float32)
        return power

    signal = speech_16k[:32000]
    plain, warped = signal_features(signal, CFG), signal_features(signal, CFG, transform=scramble)
    assert not np.allclose(plain[:, :20], warped[:, :20]), "the hook did change the cepstra"
    np.testing.assert_array_equal(warped[:, 20:], plain[:, 20:])
    np.testing.assert_array_equal(plain[:, 20:], pitch_of(signal, CFG))


def golden_signal() -> np.ndarray:
    """One second: a five-harmonic glide 110 -> 311 Hz for 0.7 s, then seeded noise alone."""
    t = np.arange(RATE) / RATE
    f0 = 110.0 * 2.0 ** (1.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(0.3 / k * np.sin(k * phase) for k in range(1, 6)) * (t < 0.7)
    noise = np.random.default_rng(11).standard_normal(RATE) * 0.01
    return (voiced + noise).astype(np.float32)


def test_a_legacy_manifest_keeps_the_acf_estimator_and_its_features() -> None:
    """Manifests written before pitch_method existed (model 2.0.0) were trained on "acf" features:
    they must load with it, and give the features recorded with the code as of commit b9d6f62,
    before the second estimator existed. Tolerance: FFT and BLAS builds differ in the last bits
    between machines; in float32 next to a c0 of -165 that reaches 3e-5 on small cepstra (measured
    on a fresh machine with NumPy 2.4), while the spectrum estimator moves the pitch columns by
    3e-3 and 0.25, so atol 1e-4 still tells the estimators apart."""
    features = FeatureConfig.from_dict(json.loads(FEATURES_2_0_0.read_text()))
    assert features.pitch and features.pitch_method == "acf"
    np.testing.assert_allclose(signal_features(golden_signal(), features), np.load(GOLDEN_2_0_0),
                               rtol=1e-5, atol=1e-4)


def test_the_method_is_recorded_and_new_configs_use_the_spectrum() -> None:
    assert FeatureConfig().pitch_method == "spectrum"
    legacy = {k: v for k, v in CFG.to_dict().items() if k != "pitch_method"}
    assert FeatureConfig.from_dict(legacy).pitch_method == "acf"
    without_pitch = {k: v for k, v in FeatureConfig().to_dict().items() if k != "pitch_method"}
    assert FeatureConfig.from_dict(without_pitch) == FeatureConfig(), "no pitch columns, nothing to keep"
    for method in METHODS:
        written = replace(CFG, pitch_method=method)
        assert FeatureConfig.from_dict(written.to_dict()) == written


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
                                 {"pitch_fmin": 300.0, "pitch_fmax": 200.0}, {"coefficient_scale": (1.0,) * 20},
                                 {"pitch_method": "yin"}, {"pitch_method": "acf", "pitch_fmin": 50.0},
                                 {"frame_length": 256, "pitch_fmin": 80.0}, {"n_fft": 510, "frame_length": 400},
                                 {"pitch_fmin": 0.0}])  # the fuzzer found 0 dividing by zero (spectrum)
def test_invalid_pitch_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="invalid feature config"):
        FeatureConfig(pitch=True, **bad)  # type: ignore[arg-type]
