"""Each augmentation does what its name promises, measured independently of its implementation."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ser.audio.pcm import chunked
from edge_ser.features.config import FeatureConfig
from edge_ser.features.frontend import mfcc, signal_features, stream_features
from edge_ser.recognise.gate import GateConfig
from edge_ser.recognise.recogniser import speech_windows
from edge_ser.recognise.segmenter import WindowSpec
from edge_ser_testing.synthetic import synthetic_clip
from edge_ser_train.augment import (
    WaveAugment,
    add_noise,
    apply_gain,
    change_speed,
    pitch_shift,
    spec_augment,
    time_shift,
)
from edge_ser_train.examples import clip_windows
from edge_ser_train.spectral import vtlp, warp_power

RATE = 16000


def sine(hz: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(signal: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / RATE)[spectrum.argmax()])


def db(x: float) -> float:
    return 10 * np.log10(x)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
@pytest.mark.parametrize("colour", ["white", "pink"])
def test_noise_is_added_at_the_requested_snr(snr: float, colour: str) -> None:
    clean = sine(300.0)
    noisy = add_noise(clean, snr, np.random.default_rng(1), colour)
    measured = db(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))
    assert measured == pytest.approx(snr, abs=0.05)


def test_noise_snr_refers_to_the_speech_not_the_silence_around_it() -> None:
    clean = np.concatenate([np.zeros(RATE, np.float32), sine(300.0), np.zeros(RATE, np.float32)])
    noisy = add_noise(clean, 10.0, np.random.default_rng(2))
    speech = slice(RATE, 2 * RATE)
    measured = db(np.mean(clean[speech] ** 2) / np.mean((noisy - clean)[speech] ** 2))
    assert measured == pytest.approx(10.0, abs=0.3)


def test_gain_changes_level_by_db_and_never_clips() -> None:
    x = sine(200.0, amplitude=0.1)
    assert db(np.mean(apply_gain(x, -6.0) ** 2) / np.mean(x**2)) == pytest.approx(-6.0, abs=1e-3)
    loud = apply_gain(x, 40.0)
    assert np.max(np.abs(loud)) < 1.0


def test_time_shift_delays_and_advances_keeping_length() -> None:
    x = np.arange(10, dtype=np.float32) + 1
    assert time_shift(x, 3).tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert time_shift(x, -2).tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]


def test_speed_changes_duration_and_pitch_together() -> None:
    faster = change_speed(sine(400.0), 1.25, RATE)
    assert len(faster) == pytest.approx(RATE / 1.25, rel=0.01)
    assert peak_hz(faster) == pytest.approx(500.0, rel=0.01)


@pytest.mark.parametrize("semitones", [-3.0, 2.0])
def test_pitch_shift_moves_pitch_and_keeps_duration(semitones: float) -> None:
    shifted = pitch_shift(sine(300.0), semitones, RATE)
    assert len(shifted) == RATE
    assert peak_hz(shifted[2000:-2000]) == pytest.approx(300.0 * 2 ** (semitones / 12), rel=0.02)


def spectral_centroid(power: np.ndarray) -> float:
    bins = np.arange(power.shape[-1])
    return float((power * bins).sum() / power.sum())


def test_vtlp_factor_above_one_moves_energy_up_and_below_one_down() -> None:
    power = np.exp(-0.5 * ((np.arange(257) - 60) / 8.0) ** 2)[None, :]  # a formant near 1.9 kHz
    centre = spectral_centroid(power)
    assert spectral_centroid(warp_power(power, 1.1, RATE)) == pytest.approx(centre * 1.1, rel=0.02)
    assert spectral_centroid(warp_power(power, 0.9, RATE)) == pytest.approx(centre * 0.9, rel=0.02)


def test_vtlp_with_factor_one_is_edge_ser_mfcc_exactly() -> None:
    clip = synthetic_clip(1, seed=3)
    cfg = FeatureConfig()
    assert np.array_equal(signal_features(clip, cfg, vtlp(1.0, RATE)), mfcc(clip, cfg))
    assert not np.allclose(signal_features(clip, cfg, vtlp(1.1, RATE)), mfcc(clip, cfg))


def test_vtlp_warps_the_cepstra_but_not_the_pitch() -> None:
    """A longer or shorter vocal tract moves formants, not the voice's F0."""
    clip = synthetic_clip(1, seed=3)
    cfg = FeatureConfig(pitch=True)
    plain, warped = signal_features(clip, cfg), signal_features(clip, cfg, vtlp(1.1, RATE))
    np.testing.assert_array_equal(warped[:, cfg.n_mfcc :], plain[:, cfg.n_mfcc :])
    assert not np.allclose(warped[:, : cfg.n_mfcc], plain[:, : cfg.n_mfcc])


def test_the_spectral_hook_keeps_streaming_identical_to_batch() -> None:
    clip = synthetic_clip(2, seed=5)
    cfg = FeatureConfig(pitch=True)
    streamed, _ = stream_features(chunked(clip, 777), cfg, vtlp(0.92, RATE))
    np.testing.assert_array_equal(streamed, signal_features(clip, cfg, vtlp(0.92, RATE)))


def test_warped_training_windows_are_cut_where_the_device_cuts_them() -> None:
    """The gate decides on frame energy, which VTLP leaves alone: same windows, other cepstra."""
    cfg, spec = FeatureConfig(), WindowSpec(60, 20)
    clip = synthetic_clip(2, seed=4)
    plain = speech_windows(clip, cfg, GateConfig(), spec)
    warped = speech_windows(clip, cfg, GateConfig(), spec, vtlp(1.1, RATE))
    assert len(plain) >= 2
    assert [(w.start, w.end) for w in warped] == [(w.start, w.end) for w in plain]
    assert not np.allclose(warped[0].features, plain[0].features)
    windows, starts = clip_windows(clip, cfg, spec, GateConfig())
    np.testing.assert_array_equal(windows, np.stack([w.features for w in plain]))
    assert starts.tolist() == [w.start // cfg.hop_length for w in plain]
    np.testing.assert_array_equal(clip_windows(clip, cfg, spec, GateConfig(), 1.1)[0],
                                  np.stack([w.features for w in warped]))


def test_spec_augment_zeroes_bands_and_leaves_the_rest() -> None:
    window = np.random.default_rng(0).standard_normal((100, 20)).astype(np.float32) + 5.0
    masked = spec_augment(window, np.random.default_rng(7), time_masks=1, max_time=30, freq_masks=1, max_freq=4)
    zero_rows = np.where((masked == 0).all(axis=1))[0]
    zero_cols = np.where((masked == 0).all(axis=0))[0]
    assert len(zero_rows) + len(zero_cols) > 0
    for idx in (zero_rows, zero_cols):  # each mask is one contiguous band
        assert len(idx) == 0 or idx[-1] - idx[0] + 1 == len(idx)
    untouched = np.ones_like(window, bool)
    untouched[zero_rows] = False
    untouched[:, zero_cols] = False
    np.testing.assert_array_equal(masked[untouched], window[untouched])
    assert (window != 0).all()  # the input is not modified in place


def test_wave_augment_is_reproducible_from_its_seed() -> None:
    clip = synthetic_clip(0, seed=5)
    a = WaveAugment()(clip, RATE, np.random.default_rng([1, 2]))
    b = WaveAugment()(clip, RATE, np.random.default_rng([1, 2]))
    c = WaveAugment()(clip, RATE, np.random.default_rng([1, 3]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mixup_blends_windows_and_targets_by_the_same_weight() -> None:
    from edge_ser_train.fit import mixup

    rng = np.random.default_rng(3)
    n = 64
    x = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, 10, 4))  # window i is all i
    targets = np.eye(n, dtype=np.float32)  # every window its own class, so the blend can be read back
    mixed, soft = mixup(x, targets, 0.4, rng)
    assert mixed.shape == x.shape and soft.shape == targets.shape
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(np.diag(soft) >= 0.5 - 1e-6)  # each window keeps the larger share of its own class
    assert np.any(np.diag(soft) < 0.9)  # and some really are blended
    np.testing.assert_allclose(mixed[:, 0, 0], soft @ np.arange(n), rtol=1e-5)  # same weights for both
    np.testing.assert_allclose(mixed, mixed[:, :1, :1] * np.ones((1, 10, 4)), rtol=1e-6)


def test_an_epochs_inputs_are_masked_and_blended_only_as_the_recipe_says() -> None:
    from edge_ser_train.fit import TrainConfig, epoch_inputs

    rng = np.random.default_rng(4)
    x = rng.normal(1.0, 0.1, size=(32, 50, 6)).astype(np.float32)  # no zeros of its own
    targets = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 32)]
    same_x, same_t = epoch_inputs(x, targets, TrainConfig(spec_augment=False, mixup=0.0), rng)
    assert same_x is x and same_t is targets
    masked, hard = epoch_inputs(x, targets, TrainConfig(spec_augment=True, mixup=0.0), rng)
    assert (masked == 0).any() and hard is targets
    _, soft = epoch_inputs(x, targets, TrainConfig(spec_augment=False, mixup=0.4), rng)
    assert ((soft > 0) & (soft < 1)).any()


def test_an_epochs_inputs_in_reused_scratch_are_the_values_computed_afresh() -> None:
    """Training refills the same two arrays every epoch (fit.EpochScratch): the values must be those
    of the recipe written out with fresh arrays, epoch after epoch, and the windows stay untouched."""
    from edge_ser_train.augment import spec_augment
    from edge_ser_train.fit import EpochScratch, TrainConfig, epoch_inputs

    x = np.random.default_rng(5).normal(0.0, 1.0, size=(40, 50, 6)).astype(np.float32)
    original = x.copy()
    targets = np.eye(4, dtype=np.float32)[np.arange(40) % 4]
    cfg = TrainConfig(spec_augment=True, mixup=0.4)
    scratch, rng, reference_rng = EpochScratch(x), np.random.default_rng(6), np.random.default_rng(6)
    for _epoch in range(3):
        got_x, got_t = epoch_inputs(x, targets, cfg, rng, scratch)
        masked = np.stack([spec_augment(w, reference_rng) for w in x])
        lam = reference_rng.beta(0.4, 0.4, size=len(x)).astype(np.float32)
        lam = np.maximum(lam, 1 - lam)
        other = reference_rng.permutation(len(x))
        want_x = lam[:, None, None] * masked + (1 - lam[:, None, None]) * masked[other]
        assert np.array_equal(got_x, want_x)
        assert np.array_equal(got_t, lam[:, None] * targets + (1 - lam[:, None]) * targets[other])
        assert np.array_equal(x, original)
