"""Room and microphone augmentations, each measured the way an acoustician would measure it (Schroeder
decay, band energies, sine responses, SNR), not by re-running the code under test."""

from __future__ import annotations

import numpy as np
import pytest

from edge_ser_testing.synthetic import synthetic_clip
from edge_ser_train.room import (
    RoomAugment,
    babble,
    change_level,
    colouration,
    mems_response,
    reverberate,
    synthetic_rir,
    telephone_band,
)

RATE = 16000


def db(x: float) -> float:
    return float(10 * np.log10(x))


def sine(hz: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def schroeder_rt60(rir: np.ndarray) -> float:
    """RT60 from the energy decay curve (Schroeder backward integration), extrapolated from the
    -5 to -25 dB range (T20), as ISO 3382 does."""
    energy = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
    edc = 10 * np.log10(energy / energy[0])
    fit = (edc <= -5) & (edc >= -25)
    slope, _ = np.polyfit(np.arange(len(rir))[fit] / RATE, edc[fit], 1)
    return float(-60 / slope)


@pytest.mark.parametrize("rt60", [0.2, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rir_decays_with_the_requested_rt60(rt60: float, seed: int) -> None:
    rir = synthetic_rir(rt60, RATE, np.random.default_rng(seed))
    assert schroeder_rt60(rir) == pytest.approx(rt60, rel=0.2)
    assert np.sum(rir.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
    assert 0.001 * RATE <= np.flatnonzero(rir)[0] <= 0.005 * RATE  # nothing before the direct path's 1-5 ms flight


def test_reverberation_smears_the_end_of_a_tone_and_keeps_the_level() -> None:
    dry = np.concatenate([sine(500.0, 0.5), np.zeros(RATE // 2, np.float32)])
    wet = reverberate(dry, synthetic_rir(0.6, RATE, np.random.default_rng(3)))
    assert len(wet) == len(dry)
    tail = slice(RATE // 2 + 800, RATE // 2 + 2400)  # 50-150 ms after the tone stopped
    assert np.all(dry[tail] == 0)
    assert db(np.mean(wet[tail].astype(np.float64) ** 2) / np.mean(dry[: RATE // 2] ** 2)) > -30
    loud = slice(2000, RATE // 2)
    assert db(np.mean(wet[loud].astype(np.float64) ** 2) / np.mean(dry[loud] ** 2)) == pytest.approx(0.0, abs=1.5)


def band_power(signal: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / RATE)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_telephone_band_removes_what_is_outside_300_to_3400_hz() -> None:
    noise = np.random.default_rng(0).standard_normal(4 * RATE).astype(np.float32) * 0.1
    phone = telephone_band(noise, RATE)
    for low, high in ((0.0, 200.0), (4000.0, 8000.0)):
        assert db(band_power(phone, low, high) / band_power(noise, low, high)) <= -20.0
    assert db(band_power(phone, 500.0, 3000.0) / band_power(noise, 500.0, 3000.0)) == pytest.approx(0.0, abs=1.0)


def gain_at(process: object, hz: float) -> float:
    """dB gain of a (signal -> signal) process for a steady sine at `hz`, after its onset."""
    x = sine(hz, 1.0, 0.1)
    y = process(x)  # type: ignore[operator]
    return db(np.mean(y[RATE // 2 :].astype(np.float64) ** 2) / np.mean(x[RATE // 2 :].astype(np.float64) ** 2))


def test_mems_response_rolls_off_the_lows_and_has_a_presence_peak() -> None:
    rng_seed = 4
    process = lambda x: mems_response(x, RATE, np.random.default_rng(rng_seed))  # noqa: E731
    assert gain_at(process, 40.0) <= -10.0  # a corner of at least 80 Hz, second order
    assert abs(gain_at(process, 1000.0)) <= 1.5
    peak = max(gain_at(process, hz) for hz in np.geomspace(2500, 6000, 12))
    assert 2.5 <= peak <= 8.5


def test_colouration_is_gentle_but_audible() -> None:
    for seed in range(5):
        process = lambda x, s=seed: colouration(x, RATE, np.random.default_rng(s))  # noqa: E731
        gains = [gain_at(process, hz) for hz in np.geomspace(100, 7000, 16)]
        assert max(abs(g) for g in gains) <= 14.0  # tilt and two peaks of at most 6 dB each
        assert max(gains) - min(gains) >= 1.0  # and it does change the response


@pytest.mark.parametrize("gain_db", [-20.0, -6.0, 0.0, 12.0])
def test_level_change_is_exact_while_the_signal_fits(gain_db: float) -> None:
    x = sine(200.0, amplitude=0.05)
    y = change_level(x, gain_db)
    assert db(np.mean(y.astype(np.float64) ** 2) / np.mean(x.astype(np.float64) ** 2)) == pytest.approx(gain_db,
                                                                                                       abs=1e-3)


def test_level_change_clips_at_full_scale_like_a_converter() -> None:
    y = change_level(sine(200.0, amplitude=0.5), 20.0)  # peak would be 5.0
    assert np.max(np.abs(y)) == 1.0
    assert np.mean(np.abs(y) == 1.0) > 0.5  # flat-topped, not rescaled


def speaker_pool(speakers: list[str], clips_each: int = 2) -> list[tuple[str, np.ndarray]]:
    return [(sp, np.full(RATE // 2, float(i + 1), np.float32) * (k + 1))
            for i, sp in enumerate(speakers) for k in range(clips_each)]


def test_babble_never_uses_the_target_speaker() -> None:
    """Each speaker's clips are constant at a level of its own, so the mix shows which were used: a
    pool with only the target and one other speaker must give the other speaker's clips alone."""
    pool = [("target", np.ones(RATE // 2, np.float32) * 0.5), ("other", np.full(RATE // 2, -0.25, np.float32))]
    for seed in range(10):
        talk = babble(RATE, pool, "target", np.random.default_rng(seed))
        assert talk is not None and np.all(talk < 0)  # only "other" (negative) clips were mixed in
    assert babble(RATE, [pool[0]], "target", np.random.default_rng(0)) is None


def test_babble_mixes_three_to_six_other_talkers_from_distinct_speakers_first() -> None:
    rng = np.random.default_rng(7)
    pool = [(f"spk{i}", rng.standard_normal(RATE).astype(np.float32) * (i + 1)) for i in range(8)]
    for seed in range(6):
        talk = babble(2 * RATE, pool, "spk0", np.random.default_rng(seed))
        assert talk is not None and len(talk) == 2 * RATE
        # every talker is scaled to unit speech power and they are independent: power = number of talkers
        assert 3 - 0.5 <= np.mean(talk.astype(np.float64) ** 2) <= 6 + 0.5


@pytest.mark.parametrize("snr", [0.0, 5.0, 10.0, 20.0])
def test_babble_is_mixed_at_the_requested_snr(snr: float) -> None:
    from edge_ser_train.augment import mix_at_snr

    clean = sine(300.0, 2.0)
    pool = [(f"spk{i}", synthetic_clip(i % 4, seed=i)) for i in range(6)]
    talk = babble(len(clean), pool, "spk0", np.random.default_rng(1))
    assert talk is not None
    noisy = mix_at_snr(clean, talk, snr)
    measured = db(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))
    assert measured == pytest.approx(snr, abs=0.5)


def test_room_augment_is_reproducible_from_its_seed_and_changes_the_clip() -> None:
    clip = synthetic_clip(1, seed=5)
    pool = [(f"spk{i}", synthetic_clip(i % 4, seed=20 + i)) for i in range(5)]
    always = RoomAugment(reverb_probability=1, babble_probability=1, noise_probability=1, mems_probability=1,
                         colour_probability=1, telephone_probability=1, level_probability=1)
    a = always(clip, RATE, np.random.default_rng([1, 2]), "spk0", pool)
    b = always(clip, RATE, np.random.default_rng([1, 2]), "spk0", pool)
    c = always(clip, RATE, np.random.default_rng([1, 3]), "spk0", pool)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(a) == len(clip) and np.all(np.isfinite(a)) and np.max(np.abs(a)) <= 1.0
    never = RoomAugment(reverb_probability=0, babble_probability=0, noise_probability=0, mems_probability=0,
                        colour_probability=0, telephone_probability=0, level_probability=0)
    np.testing.assert_array_equal(never(clip, RATE, np.random.default_rng(0)), clip)
