"""Training-only augmentation on the waveform and on finished feature windows.

Waveform changes (noise, gain, shift, speed, pitch) run BEFORE edge_ser's gate and MFCC code, so an
augmented example is still exactly what the device would compute for that audio. Frequency warping
(VTLP) lives in edge_ser_train.spectral, rooms and microphones (reverberation, babble, microphone
responses, clipping level changes) in edge_ser_train.room; SpecAugment masks act on the normalised
windows. Every function takes an explicit numpy Generator, so a run is reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd

import numpy as np
import scipy.signal

RATE_STEP = 160  # speed changes resample via rates that are multiples of this: small polyphase ratios


def active_power(signal: np.ndarray, frame: int = 400, within_db: float = 40.0) -> float:
    """Mean power over the frames within `within_db` of the loudest: the level of the speech,
    not of the silence around it, which is what an SNR should be relative to."""
    usable = signal[: len(signal) // frame * frame].reshape(-1, frame) if len(signal) >= frame else signal[None]
    power = np.mean(usable.astype(np.float64) ** 2, axis=1)
    loud = power[power >= power.max() * 10 ** (-within_db / 10)]
    return float(loud.mean())


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise (spectral shaping of white noise): closer to rooms and fans than white noise."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    return np.fft.irfft(spectrum, n)


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`signal` plus `noise` (same length) scaled so that active speech power / mean noise power =
    `snr_db`: the one definition of SNR that noise and babble augmentation share."""
    noise = noise.astype(np.float64)
    scale = np.sqrt(active_power(signal) / max(float(np.mean(noise**2)), 1e-20) / 10 ** (snr_db / 10))
    return (signal + scale * noise).astype(np.float32)


def add_noise(signal: np.ndarray, snr_db: float, rng: np.random.Generator, colour: str = "white") -> np.ndarray:
    """Add white or pink noise scaled so that active speech power / noise power = `snr_db`."""
    noise = rng.standard_normal(len(signal)) if colour == "white" else pink_noise(len(signal), rng)
    return mix_at_snr(signal, noise, snr_db)


def apply_gain(signal: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by `gain_db`, limited so that the peak never clips (clipping is not a level change)."""
    gain = 10 ** (gain_db / 20)
    peak = float(np.max(np.abs(signal))) if len(signal) else 0.0
    if peak * gain > 0.999:
        gain = 0.999 / peak
    return (signal * gain).astype(np.float32)


def time_shift(signal: np.ndarray, shift: int) -> np.ndarray:
    """Delay by `shift` samples (leading silence) or advance by -shift (drop the start); same length.
    Moves where the analysis windows fall relative to the speech."""
    out = np.zeros_like(signal)
    if shift >= 0:
        out[shift:] = signal[: len(signal) - shift]
    else:
        out[: len(signal) + shift] = signal[-shift:]
    return out


def change_speed(signal: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch together), as in Kaldi-style speed perturbation."""
    target = max(RATE_STEP, round(sample_rate / factor / RATE_STEP) * RATE_STEP)
    if target == sample_rate:
        return signal.astype(np.float32, copy=False)
    # scipy's resample_poly, not the device's streaming resampler: the copies every shipped model
    # was trained on were made this way, and `make model` must rebuild them bit for bit
    g = gcd(sample_rate, target)
    return scipy.signal.resample_poly(signal, target // g, sample_rate // g).astype(np.float32)


def time_stretch(signal: np.ndarray, factor: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Phase-vocoder time stretch: `factor` > 1 is faster (shorter), pitch unchanged."""
    _, _, spec = scipy.signal.stft(signal, nperseg=n_fft, noverlap=n_fft - hop)
    steps = np.arange(0, spec.shape[1] - 1, factor)
    expected = np.linspace(0, np.pi * hop, spec.shape[0])  # phase advance of each bin per hop
    phase = np.angle(spec[:, 0])
    out = np.empty((spec.shape[0], len(steps)), dtype=complex)
    for i, step in enumerate(steps):
        left, frac = int(step), step - int(step)
        magnitude = (1 - frac) * np.abs(spec[:, left]) + frac * np.abs(spec[:, left + 1])
        out[:, i] = magnitude * np.exp(1j * phase)
        delta = np.angle(spec[:, left + 1]) - np.angle(spec[:, left]) - expected
        phase = phase + expected + (delta + np.pi) % (2 * np.pi) - np.pi
    _, stretched = scipy.signal.istft(out, nperseg=n_fft, noverlap=n_fft - hop)
    return stretched.astype(np.float32)


def pitch_shift(signal: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """Shift pitch (and formants) by `semitones` keeping the duration: speed change, then stretch back."""
    factor = 2 ** (semitones / 12)
    faster = change_speed(signal, factor, sample_rate)
    actual = len(signal) / len(faster)  # the speed change rounds its rate; undo exactly what it did
    stretched = time_stretch(faster, 1 / actual)
    out = np.zeros(len(signal), dtype=np.float32)
    out[: min(len(out), len(stretched))] = stretched[: len(out)]
    return out


def spec_augment(window: np.ndarray, rng: np.random.Generator, time_masks: int = 2, max_time: int = 20,
                 freq_masks: int = 1, max_freq: int = 3) -> np.ndarray:
    """SpecAugment on a normalised window: bands of frames and of coefficients set to 0, the window
    mean after normalisation, so a mask adds no offset the device would never see."""
    out = window.copy()
    frames, coefficients = out.shape
    for _ in range(time_masks):
        width = int(rng.integers(0, max_time + 1))
        start = int(rng.integers(0, max(frames - width, 0) + 1))
        out[start : start + width] = 0.0
    for _ in range(freq_masks):
        width = int(rng.integers(0, max_freq + 1))
        start = int(rng.integers(0, max(coefficients - width, 0) + 1))
        out[:, start : start + width] = 0.0
    return out


@dataclass(frozen=True)
class WaveAugment:
    """Which waveform augmentations a training copy draws, and their ranges."""

    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    noise_probability: float = 0.5
    gain_db: tuple[float, float] = (-10.0, 6.0)
    max_shift_seconds: float = 0.25
    speed: tuple[float, float] = (0.9, 1.1)
    speed_probability: float = 0.3
    pitch_semitones: tuple[float, float] = (-2.0, 2.0)
    pitch_probability: float = 0.3

    def __call__(self, signal: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """One randomly perturbed copy of `signal`."""
        out = time_shift(signal, int(rng.integers(0, int(self.max_shift_seconds * sample_rate) + 1)))
        if rng.random() < self.speed_probability:
            out = change_speed(out, float(rng.uniform(*self.speed)), sample_rate)
        if rng.random() < self.pitch_probability:
            out = pitch_shift(out, float(rng.uniform(*self.pitch_semitones)), sample_rate)
        out = apply_gain(out, float(rng.uniform(*self.gain_db)))
        if rng.random() < self.noise_probability:
            colour = "pink" if rng.random() < 0.5 else "white"
            out = add_noise(out, float(rng.uniform(*self.noise_snr_db)), rng, colour)
        return out
