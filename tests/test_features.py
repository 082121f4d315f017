"""The MFCC front end: librosa parity, streaming == batch for any chunking, window locality."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_ser.audio.pcm import chunked
from edge_ser.errors import ConfigError
from edge_ser.features.config import FeatureConfig
from edge_ser.features.framing import frame_signal
from edge_ser.features.frontend import StreamingFrontEnd, mfcc, signal_features, stream_features
from edge_ser.features.mfcc import SPECTRUM_BLOCK, analysis_window, mel_filterbank, power_spectrum
from edge_ser.features.normalise import normalise_window

librosa = pytest.importorskip("librosa", reason="librosa (dev extra) is the parity reference")

CONFIGS = [
    FeatureConfig(),
    FeatureConfig(n_mels=64, n_mfcc=40, mel_scale="htk", frame_length=512),
    FeatureConfig(lifter=22),
    FeatureConfig(frame_length=256, n_fft=256, hop_length=128, n_mels=26, n_mfcc=13, window="hamming"),
    FeatureConfig(fmin=0.0, fmax=7600.0, n_mels=32, n_mfcc=16, log_floor=1e-8),
]


def librosa_mfcc(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """librosa's MFCC with the same parameters; the log is taken with the same fixed floor."""
    power = librosa.feature.melspectrogram(
        y=signal, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
        win_length=cfg.frame_length, window=cfg.window, center=False, power=2.0,
        n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, htk=cfg.mel_scale == "htk")
    log_mel = librosa.power_to_db(power, ref=1.0, amin=cfg.log_floor, top_db=None)
    return librosa.feature.mfcc(S=log_mel, n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho", lifter=cfg.lifter).T


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.mel_scale}-{c.n_mels}m-{c.n_mfcc}c-l{c.lifter}")
def test_matches_librosa_on_real_speech(speech_16k: np.ndarray, cfg: FeatureConfig) -> None:
    ours = mfcc(speech_16k, cfg)
    ref = librosa_mfcc(speech_16k, cfg)
    assert ours.shape == ref.shape
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)


def test_mel_filterbank_matches_librosa() -> None:
    for cfg in CONFIGS:
        ref = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin,
                                  fmax=cfg.fmax, htk=cfg.mel_scale == "htk")
        np.testing.assert_allclose(mel_filterbank(cfg).T, ref, rtol=1e-5, atol=1e-7)


# One sample a push is the extreme case, and some 10 s apiece: slow, so the quick loop keeps the other sizes.
@pytest.mark.parametrize("chunk", [160, 1000, 4096, pytest.param(1, marks=pytest.mark.slow), 777])
@pytest.mark.parametrize("pitch", [None, "acf", "spectrum"], ids=["mfcc", "mfcc+acf", "mfcc+spectrum"])
def test_streaming_is_identical_to_batch_for_any_chunk_size(speech_16k: np.ndarray, chunk: int,
                                                            pitch: str | None) -> None:
    cfg = FeatureConfig(pitch=pitch is not None, pitch_method=pitch or "spectrum")
    streamed, energy = stream_features(chunked(speech_16k, chunk), cfg)
    np.testing.assert_array_equal(streamed, signal_features(speech_16k, cfg))
    np.testing.assert_array_equal(streamed[:, : cfg.n_mfcc], mfcc(speech_16k, cfg))
    assert len(energy) == len(streamed) == 1 + (len(speech_16k) - cfg.n_fft) // cfg.hop_length


def test_features_on_demand_match_batch_whatever_was_asked_before(speech_16k: np.ndarray) -> None:
    """Windows overlap and are asked for in any order: cached and fresh rows must agree with batch."""
    cfg = FeatureConfig(pitch=True)
    reference = signal_features(speech_16k, cfg)
    front_end = StreamingFrontEnd(cfg, history_frames=120)
    rng = np.random.default_rng(0)
    for chunk in chunked(speech_16k, 1024):
        front_end.push(chunk)
        for _ in range(3):
            end = int(rng.integers(max(front_end.oldest_frame, front_end.frames - 120) + 1, front_end.frames + 1))
            start = int(rng.integers(max(front_end.oldest_frame, end - 120), end))
            np.testing.assert_array_equal(front_end.features(start, end), reference[start:end])


def test_streaming_keeps_bounded_state_and_refuses_forgotten_frames(speech_16k: np.ndarray) -> None:
    cfg = FeatureConfig()
    front_end = StreamingFrontEnd(cfg, history_frames=50)
    sizes = set()
    for chunk in chunked(speech_16k, 1000):
        front_end.push(chunk)
        sizes.add(len(front_end._buf))
    assert max(sizes) <= 2 * (49 * cfg.hop_length + cfg.n_fft)
    assert front_end.oldest_frame > 0
    with pytest.raises(ValueError, match="not kept"):
        front_end.features(0, 10)


def test_energy_is_computed_for_every_frame_and_features_only_when_asked(speech_16k: np.ndarray) -> None:
    cfg = FeatureConfig()
    front_end = StreamingFrontEnd(cfg, history_frames=64)
    energy = front_end.push(speech_16k[:16000])
    assert len(energy) == front_end.frames == 1 + (16000 - cfg.n_fft) // cfg.hop_length
    assert (front_end._cached == -1).all()  # nothing computed that nobody asked for
    front_end.features(front_end.frames - 10, front_end.frames)
    assert (front_end._cached >= 0).sum() == 10


def test_frame_features_depend_only_on_the_frame(speech_16k: np.ndarray) -> None:
    """What lies outside a frame (a loud burst, say) must not change it: no clip-relative top_db."""
    cfg = FeatureConfig()
    quiet = speech_16k * 0.01
    loud_tail = np.concatenate([quiet, np.ones(16000, dtype=np.float32) * 0.9])
    head = mfcc(quiet, cfg)
    np.testing.assert_array_equal(mfcc(loud_tail, cfg)[: len(head)], head)


def test_power_spectrum_is_the_same_frame_by_frame_and_across_blocks(speech_16k: np.ndarray) -> None:
    """Long signals are transformed SPECTRUM_BLOCK frames at a time: each frame's power must equal
    its power computed alone, and NumPy's own FFT of the windowed, zero-padded frame."""
    cfg = FeatureConfig()
    frames = frame_signal(speech_16k, cfg)[: 3 * SPECTRUM_BLOCK + 5]
    together = power_spectrum(frames, cfg)
    alone = np.concatenate([power_spectrum(frames[i : i + 1], cfg) for i in range(len(frames))])
    np.testing.assert_array_equal(together, alone)
    reference = np.abs(np.fft.rfft(frames.astype(np.float64) * analysis_window(cfg), cfg.n_fft)) ** 2
    np.testing.assert_allclose(together, reference, rtol=1e-4, atol=1e-6 * reference.max())
    assert power_spectrum(frames[:0], cfg).shape == (0, cfg.n_fft // 2 + 1)


def test_framing_is_a_view_not_a_copy(speech_16k: np.ndarray) -> None:
    frames = frame_signal(speech_16k, FeatureConfig())
    assert np.shares_memory(frames, speech_16k)
    assert frames.shape == (1 + (len(speech_16k) - 512) // 160, 400)


def test_short_signal_gives_no_frames() -> None:
    assert mfcc(np.zeros(100, dtype=np.float32), FeatureConfig()).shape == (0, 20)


def test_cmvn_removes_level_and_scales_to_unit_variance(speech_16k: np.ndarray) -> None:
    cfg = FeatureConfig()
    feats = mfcc(speech_16k[:32000], cfg)
    norm = normalise_window(feats, cfg)
    np.testing.assert_allclose(norm.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(norm.std(axis=0), 1.0, atol=1e-3)
    # A 20 dB gain change shifts c0 only; after CMVN the window is unchanged.
    louder = normalise_window(mfcc(speech_16k[:32000] * 10, cfg), cfg)
    np.testing.assert_allclose(louder, norm, atol=2e-3)


def test_coefficient_scale_divides_each_normalised_coefficient(speech_16k: np.ndarray) -> None:
    feats = mfcc(speech_16k[:32000], FeatureConfig(normalisation="cmn"))
    scale = tuple(float(v) for v in np.arange(1, 21))
    scaled = normalise_window(feats, FeatureConfig(normalisation="cmn", coefficient_scale=scale))
    np.testing.assert_allclose(scaled * np.arange(1, 21), feats - feats.mean(axis=0), rtol=1e-5, atol=1e-3)


def test_coefficient_scale_survives_the_manifest_json_round_trip() -> None:
    cfg = FeatureConfig(coefficient_scale=tuple(0.5 + i for i in range(20)))
    assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("bad", [
    {"coefficient_scale": (1.0,) * 19}, {"coefficient_scale": (1.0,) * 19 + (0.0,)},
    {"frame_length": 600}, {"hop_length": 0}, {"window": "kaiser"}, {"mel_scale": "bark"},
    {"normalisation": "zscore"}, {"fmax": 9000.0}, {"n_mfcc": 50}, {"log_floor": 0.0},
])
def test_invalid_feature_config_is_refused_with_reason(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="invalid feature config"):
        FeatureConfig(**bad)  # type: ignore[arg-type]


def test_unknown_feature_key_is_named() -> None:
    with pytest.raises(ConfigError, match="pre_emphasis"):
        FeatureConfig.from_dict({"pre_emphasis": 0.97})
