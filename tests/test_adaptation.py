"""Speaker adaptation: the running statistics, their persistence, and that training simulates exactly
what the device computes."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from edge_ser.errors import ConfigError
from edge_ser.features.adaptation import AdaptationConfig, SpeakerAdapter
from edge_ser.features.config import FeatureConfig
from edge_ser.features.normalise import normalise_window
from edge_ser.features.pitch import PITCH_REFERENCE_HZ
from edge_ser.recognise.gate import GateConfig
from edge_ser.recognise.recogniser import Recogniser, WindowScored
from edge_ser.recognise.segmenter import WindowSpec
from edge_ser_testing.synthetic import synthetic_clip
from edge_ser_train.adaptation import adapt, fit_prior, stream_order
from edge_ser_train.examples import ExampleSet, clip_windows

FEATURES = FeatureConfig(normalisation="speaker", pitch=True)
RAW = replace(FEATURES, normalisation="none")
SPEC = WindowSpec(100, 25)
PRIOR = AdaptationConfig(prior_mean=tuple([0.0] * 20), prior_var=tuple([1.0] * 20), prior_f0_hz=150.0,
                         prior_frames=50.0, horizon_frames=2000.0)


def frames_at(f0_hz: float, n: int, c0: float = -100.0) -> np.ndarray:
    """Raw frames with a given level in c0 and every frame voiced at `f0_hz`."""
    frames = np.zeros((n, FEATURES.n_features), np.float32)
    frames[:, 0] = c0
    frames[:, 20] = 0.9
    frames[:, 21] = np.log2(f0_hz / PITCH_REFERENCE_HZ)
    return frames


def test_cold_start_is_the_prior() -> None:
    adapter = SpeakerAdapter(FEATURES, PRIOR)
    reference = adapter.reference()
    np.testing.assert_allclose(reference.mean, 0.0)
    np.testing.assert_allclose(reference.std, 1.0, rtol=1e-5)
    assert abs(PITCH_REFERENCE_HZ * 2**reference.log_f0 - 150.0) < 150.0 * (2 ** (1 / 24) - 1)
    assert adapter.summary()["frames"] == 50.0


def test_statistics_move_to_the_speaker_and_forget_within_the_horizon() -> None:
    adapter = SpeakerAdapter(FEATURES, PRIOR)
    adapter.observe(frames_at(220.0, 950, c0=-80.0))  # a running average until the horizon
    assert adapter.reference().mean[0] == pytest.approx(-80.0 * 950 / 1000)
    assert 210.0 < adapter.summary()["median_f0_hz"] < 230.0
    for _ in range(20):  # 10 horizons of a second, deeper voice: the first one is forgotten
        adapter.observe(frames_at(110.0, 1000, c0=-60.0))
    assert adapter.reference().mean[0] == pytest.approx(-60.0, abs=0.1)
    assert 105.0 < adapter.summary()["median_f0_hz"] < 115.0
    assert adapter.frames == PRIOR.horizon_frames


def test_unvoiced_frames_leave_the_pitch_statistics_alone() -> None:
    adapter = SpeakerAdapter(FEATURES, PRIOR)
    unvoiced = frames_at(400.0, 500)
    unvoiced[:, 20] = 0.1
    adapter.observe(unvoiced)
    assert abs(adapter.summary()["median_f0_hz"] - 150.0) < 5.0


def test_voiced_only_statistics_ignore_the_pauses_between_words() -> None:
    """A quiet voice in loud pauses: counting every frame drags the reference towards the room's
    noise; voiced_only counts the voice alone (and its frames are what `frames` reports)."""
    speech = frames_at(200.0, 300, c0=-80.0)
    pauses = frames_at(200.0, 700, c0=-40.0)
    pauses[:, 20] = 0.05
    every = SpeakerAdapter(FEATURES, PRIOR)
    voiced = SpeakerAdapter(FEATURES, replace(PRIOR, voiced_only=True))
    for adapter in (every, voiced):
        adapter.observe(np.concatenate([speech, pauses]))
    assert voiced.reference().mean[0] == pytest.approx(-80.0 * 300 / 350)
    assert every.reference().mean[0] == pytest.approx((-80.0 * 300 - 40.0 * 700) / 1050)
    assert voiced.frames == 350.0 and every.frames == 1050.0
    assert voiced.summary()["median_f0_hz"] == every.summary()["median_f0_hz"]


def test_voiced_only_needs_the_pitch_columns() -> None:
    with pytest.raises(ConfigError, match="voiced_only"):
        SpeakerAdapter(replace(FEATURES, pitch=False), replace(PRIOR, pitch=False, voiced_only=True))


def test_reset_returns_to_the_prior_and_state_round_trips_through_json() -> None:
    adapter = SpeakerAdapter(FEATURES, PRIOR)
    adapter.observe(frames_at(250.0, 600, c0=-70.0))
    restored = SpeakerAdapter(FEATURES, PRIOR)
    restored.restore(json.loads(json.dumps(adapter.state())))
    np.testing.assert_array_equal(restored.reference().mean, adapter.reference().mean)
    assert restored.summary() == adapter.summary()
    adapter.reset()
    assert adapter.summary() == SpeakerAdapter(FEATURES, PRIOR).summary()


@pytest.mark.parametrize("state", [{}, {"weight": 1.0}, "x",
                                   {"weight": 10, "mean": [0.0] * 3, "square": [1.0] * 3, "f0_weight": 1,
                                    "f0_hist": [1.0]},
                                   {"weight": float("nan"), "mean": [0.0] * 20, "square": [1.0] * 20,
                                    "f0_weight": 1, "f0_hist": [1.0] * 68},
                                   {"weight": 10**400, "mean": [0.0] * 20, "square": [1.0] * 20,
                                    "f0_weight": 1, "f0_hist": [1.0] * 68}])
def test_a_state_that_does_not_fit_is_refused(state: object) -> None:
    adapter = SpeakerAdapter(FEATURES, PRIOR)
    with pytest.raises(ConfigError, match="adaptation state"):
        adapter.restore(state)


def test_speaker_normalisation_keeps_level_relative_to_the_voice() -> None:
    """Per-window CMN makes a loud and a quiet window of one voice alike; the speaker reference keeps
    the difference (arousal) and still removes a gain that applies to everything."""
    adapter = SpeakerAdapter(FEATURES, PRIOR)
    adapter.observe(frames_at(200.0, 1500, c0=-90.0))
    loud = normalise_window(frames_at(200.0, 100, c0=-70.0), FEATURES, adapter.reference())
    quiet = normalise_window(frames_at(200.0, 100, c0=-90.0), FEATURES, adapter.reference())
    speaker_mean = -90.0 * 1500 / (1500 + PRIOR.prior_frames)  # the prior (0) still weighs 50 frames
    assert loud[:, 0].mean() == pytest.approx(-70.0 - speaker_mean, abs=1e-3)
    assert quiet[:, 0].mean() == pytest.approx(-90.0 - speaker_mean, abs=1e-3)
    cmn = replace(FEATURES, normalisation="cmn")
    assert normalise_window(frames_at(200.0, 100, c0=-70.0), cmn)[:, 0].mean() == pytest.approx(0.0, abs=1e-4)
    # pitch relative to the speaker's median: a voice at its usual pitch sits at ~0
    assert np.abs(quiet[:, 21]).max() < 1 / 24


def test_speaker_normalisation_without_a_prior_is_refused() -> None:
    with pytest.raises(ConfigError, match="adaptation"):
        Recogniser(FEATURES, GateConfig(), SPEC)
    with pytest.raises(ConfigError, match="cepstra"):
        SpeakerAdapter(FEATURES, replace(PRIOR, prior_mean=(0.0,), prior_var=(1.0,)))


@pytest.mark.parametrize("voiced_only", [False, True])
def test_training_simulation_normalises_exactly_as_the_device(voiced_only: bool) -> None:
    """The clips of one speaker, streamed through the device's recogniser one after another (one
    stream reset per clip, the adapter kept), give the same windows bit for bit as the training
    simulation of that speaker in the order it draws."""
    clips = [synthetic_clip(k % 4, seed=k, seconds=2.5) for k in range(5)]
    parts = [clip_windows(c, RAW, SPEC, GateConfig()) for c in clips]
    counts = [len(x) for x, _ in parts]
    raw = ExampleSet(np.concatenate([x for x, _ in parts]), np.zeros(sum(counts), int),
                     np.repeat(np.arange(5), counts).astype(np.int32), np.zeros(sum(counts), np.int16),
                     np.zeros(5, int), np.array(["spk"] * 5), np.concatenate([s for _, s in parts]))
    prior = fit_prior(raw, FEATURES, AdaptationConfig(pitch=True, voiced_only=voiced_only))
    simulated = adapt(raw, FEATURES, prior, seed=3)

    device = Recogniser(FEATURES, GateConfig(), SPEC, adaptation=prior)
    order = stream_order(np.arange(5), "spk", 0, 3)
    assert sorted(order.tolist()) == list(range(5)) and order.tolist() != list(range(5))
    for clip in order:
        device.reset()
        windows = [w.features for w in device.run(clips[clip]) if isinstance(w, WindowScored)]
        np.testing.assert_array_equal(np.stack(windows), simulated.x[simulated.clip == clip])
    # and adaptation did something: the device's last clip differs from a cold start
    cold = Recogniser(FEATURES, GateConfig(), SPEC, adaptation=prior)
    last = [w.features for w in cold.run(clips[order[-1]]) if isinstance(w, WindowScored)]
    assert not np.array_equal(np.stack(last), simulated.x[simulated.clip == order[-1]])


def test_fit_prior_takes_the_training_speech() -> None:
    frames = np.concatenate([frames_at(100.0, 200, c0=-50.0), frames_at(300.0, 200, c0=-70.0)])
    x = frames.reshape(2, 200, FEATURES.n_features)
    data = ExampleSet(x, np.zeros(2, int), np.arange(2, dtype=np.int32), np.zeros(2, np.int16), np.zeros(2, int),
                      np.array(["a", "b"]), np.zeros(2, np.int32))
    prior = fit_prior(data, FEATURES, AdaptationConfig())
    assert prior.prior_mean[0] == pytest.approx(-60.0) and prior.prior_var[0] == pytest.approx(100.0)
    assert 100.0 <= prior.prior_f0_hz <= 300.0
    x[0, :, 20] = 0.0  # the quiet speaker's frames unvoiced: a voiced-only prior is the loud one's
    voiced = fit_prior(data, FEATURES, AdaptationConfig(voiced_only=True))
    assert voiced.prior_mean[0] == pytest.approx(-70.0) and voiced.prior_var[0] == pytest.approx(1e-4)
    assert voiced.prior_f0_hz == pytest.approx(300.0, rel=1e-3)
