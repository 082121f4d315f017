"""Batch MFCC: edge_ser's front end against librosa, python_speech_features and the FFT floor.

Why these three: librosa is what the seed projects used (the front end must beat it by 2x to
justify being our own code); python_speech_features is the other common pure-Python choice; and a
bare `scipy.fft.rfft` over the already-framed signal is the floor no MFCC implementation on this
stack can go below (the FFT is the only O(n log n) step), so "within 2x of the floor" bounds what
is left to gain. All run on the same speech, with parameters taken from the same FeatureConfig.
Two more cases add the pitch columns (`signal_features` with pitch on), to show what prosody costs
on top of the cepstra: with the "spectrum" estimator new models use (target: the whole front end
within 2x the MFCC alone) and, for reference, with the "acf" estimator of models up to 2.0.0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import librosa
import numpy as np
import python_speech_features as psf
import scipy.fft

from bench.context import Context
from bench.results import Target, ratio_figure
from bench.timing import interleave, paired_ratio
from edge_ser.features.config import FeatureConfig
from edge_ser.features.framing import frame_signal
from edge_ser.features.frontend import mfcc, signal_features

NAME = "mfcc"
TITLE = "Batch MFCC front end"
LIBROSA_SPEEDUP = Target(">=", 2.0)
FLOOR_RATIO = Target("<=", 2.0)
PITCH_COST = Target("<=", 2.0)  # MFCC + pitch columns ("spectrum") / MFCC alone


def librosa_mfcc(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """librosa with exactly our parameters: frames, window, mel filters, fixed dB floor, DCT."""
    power = librosa.feature.melspectrogram(
        y=signal, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.frame_length,
        window=cfg.window, center=False, power=2.0, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
        htk=cfg.mel_scale == "htk", norm="slaney")
    log_mel = librosa.power_to_db(power, ref=1.0, amin=cfg.log_floor, top_db=None)
    return librosa.feature.mfcc(S=log_mel, n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho", lifter=cfg.lifter).T


def psf_mfcc(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """python_speech_features with comparable parameters (its own mel filters, natural log)."""
    window = np.hanning if cfg.window == "hann" else np.hamming
    return psf.mfcc(signal, samplerate=cfg.sample_rate, winlen=cfg.frame_length / cfg.sample_rate,
                    winstep=cfg.hop_length / cfg.sample_rate, numcep=cfg.n_mfcc, nfilt=cfg.n_mels,
                    nfft=cfg.n_fft, lowfreq=cfg.fmin, highfreq=cfg.fmax, preemph=0.0, ceplifter=cfg.lifter,
                    appendEnergy=False, winfunc=window)


def cases(signal: np.ndarray, cfg: FeatureConfig) -> dict[str, Callable[[], object]]:
    frames = frame_signal(signal, cfg)
    with_pitch = replace(cfg, pitch=True, pitch_method="spectrum")
    with_acf_pitch = replace(cfg, pitch=True, pitch_method="acf")
    return {
        "edge_ser": lambda: mfcc(signal, cfg),
        "edge_ser_with_pitch": lambda: signal_features(signal, with_pitch),
        "edge_ser_with_acf_pitch": lambda: signal_features(signal, with_acf_pitch),
        "librosa": lambda: librosa_mfcc(signal, cfg),
        "python_speech_features": lambda: psf_mfcc(signal, cfg),
        "rfft_floor": lambda: scipy.fft.rfft(frames, n=cfg.n_fft, axis=-1),
    }


def agreement(signal: np.ndarray, cfg: FeatureConfig) -> dict[str, float]:
    """How close our numbers are to librosa's: a speed comparison is only fair between equals."""
    ours, theirs = mfcc(signal, cfg), librosa_mfcc(signal, cfg)
    return {"max_abs_diff": float(np.max(np.abs(ours - theirs))), "max_abs_value": float(np.max(np.abs(theirs)))}


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.features
    figures, timings, checks = [], {}, {}
    for seconds, signal in sorted(ctx.speech.signals.items()):
        stats = interleave(cases(signal, cfg), ctx.repeats, ctx.min_sample_s)
        timings[f"{seconds}s"] = {name: s.to_dict() for name, s in stats.items()}
        speedup = paired_ratio(stats["librosa"], stats["edge_ser"])
        floor = paired_ratio(stats["edge_ser"], stats["rfft_floor"])
        psf_ratio = paired_ratio(stats["python_speech_features"], stats["edge_ser"])
        pitch_ratio = paired_ratio(stats["edge_ser_with_pitch"], stats["edge_ser"])
        acf_ratio = paired_ratio(stats["edge_ser_with_acf_pitch"], stats["edge_ser"])
        ms = stats["edge_ser"].median * 1e3
        figures += [
            ratio_figure(f"librosa_speedup_{seconds}s", f"MFCC speed-up vs librosa ({seconds} s speech)",
                         speedup, LIBROSA_SPEEDUP,
                         f"edge_ser {ms:.1f} ms, librosa {stats['librosa'].median * 1e3:.1f} ms"),
            ratio_figure(f"floor_ratio_{seconds}s", f"MFCC time / bare rfft floor ({seconds} s speech)",
                         floor, FLOOR_RATIO, f"rfft floor {stats['rfft_floor'].median * 1e3:.1f} ms"),
            ratio_figure(f"psf_speedup_{seconds}s", f"MFCC speed-up vs python_speech_features ({seconds} s)",
                         psf_ratio, None,
                         f"python_speech_features {stats['python_speech_features'].median * 1e3:.1f} ms"),
            ratio_figure(f"pitch_spectrum_cost_{seconds}s",
                         f"MFCC + pitch columns (spectrum) / MFCC alone ({seconds} s)", pitch_ratio, PITCH_COST,
                         f"with pitch {stats['edge_ser_with_pitch'].median * 1e3:.1f} ms"),
            ratio_figure(f"pitch_cost_{seconds}s", f"MFCC + pitch columns (acf, models <= 2.0.0) / MFCC alone "
                         f"({seconds} s)", acf_ratio, None,
                         f"with acf pitch {stats['edge_ser_with_acf_pitch'].median * 1e3:.1f} ms"),
        ]
        checks[f"{seconds}s"] = {"ratios": {"librosa_over_edge": speedup, "edge_over_floor": floor,
                                            "psf_over_edge": psf_ratio, "pitch_over_mfcc": pitch_ratio,
                                            "acf_pitch_over_mfcc": acf_ratio},
                                 "agreement_with_librosa": agreement(signal, cfg)}
    return {"figures": figures, "timings": timings, "ratios": checks, "feature_config": cfg.to_dict(),
            "notes": ["rfft floor: scipy.fft.rfft(frame_signal(x), n=n_fft) on the strided frame view, "
                      "no window, no mel, no log",
                      "ratios are medians of per-round ratios (cases interleaved round by round)"]}
