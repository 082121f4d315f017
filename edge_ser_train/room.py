"""Training-only simulation of real rooms and microphones on the waveform.

Corpora are recorded close to a studio microphone; a kiosk hears a stranger through a cheap MEMS
microphone, a few metres away, in a reverberant room, with other people talking. Each function here
models one of those differences and is applied BEFORE edge_ser's gate and front end (like
edge_ser_train.augment), so an augmented example is still exactly what the device would compute for
that audio. Every random choice comes from an explicit numpy Generator: a run is reproducible.

The order in `RoomAugment` follows the physical path: the room (reverberation, other talkers,
noise), then the microphone (its response, a telephone-like band), then the input gain, which
clips where a real converter would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.signal

from edge_ser_train.augment import active_power, add_noise, mix_at_snr

DECAY_60_DB = np.log(1000.0)  # amplitude falls by 60 dB when exp(-t * this / rt60) reaches 1e-3
TELEPHONE_BAND_HZ = (300.0, 3400.0)


def synthetic_rir(rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A room impulse response with reverberation time `rt60` seconds: a direct path after 1-5 ms of
    flight, a few discrete early reflections (walls, table) within 50 ms, then a diffuse tail of
    Gaussian noise whose amplitude decays by 60 dB every `rt60`. Early reflections follow the same
    envelope, so the energy decay is one straight line in dB (what an RT60 means). Unit energy, so a
    convolution keeps the signal's level. 1.5 x rt60 long: the tail ends 90 dB down."""
    n = int(1.5 * rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    envelope = np.exp(-DECAY_60_DB * t / rt60)
    direct = int(rng.uniform(0.001, 0.005) * sample_rate)
    rir = np.zeros(n)
    rir[direct:] = rng.standard_normal(n - direct) * envelope[direct:] * 0.3
    rir[direct] = 1.0
    for _ in range(int(rng.integers(4, 9))):
        at = direct + int(rng.uniform(0.002, 0.05) * sample_rate)
        rir[at] += rng.choice((-1.0, 1.0)) * rng.uniform(0.3, 0.8) * envelope[at]
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(signal: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """`signal` as heard in the room of `rir`: same length (the tail past the clip's end is cut, as a
    recording would be), rescaled to the dry signal's speech level so that reverberation is not
    also a level change."""
    wet = scipy.signal.fftconvolve(signal.astype(np.float64), rir.astype(np.float64))[: len(signal)]
    scale = np.sqrt(active_power(signal) / max(active_power(wet), 1e-20))
    return (wet * scale).astype(np.float32)


def babble(n: int, pool: Sequence[tuple[str, np.ndarray]], target_speaker: str, rng: np.random.Generator,
           talkers: tuple[int, int] = (3, 6)) -> np.ndarray | None:
    """`n` samples of 3-6 other people talking at once: clips of `pool` ((speaker, signal) pairs given
    by the caller) from speakers other than `target_speaker`, each at the same speech level, from a
    random offset, looped to length. Distinct speakers first; a small pool repeats speakers but
    never uses the target's own voice. None when the pool has no other speaker."""
    others = [(speaker, clip) for speaker, clip in pool if speaker != target_speaker and len(clip)]
    if not others:
        return None
    count = int(rng.integers(talkers[0], talkers[1] + 1))
    by_speaker: dict[str, list[np.ndarray]] = {}
    for speaker, clip in others:
        by_speaker.setdefault(speaker, []).append(clip)
    speakers = list(rng.permutation(sorted(by_speaker)))
    out = np.zeros(n)
    for i in range(count):
        clips = by_speaker[speakers[i % len(speakers)]]
        clip = clips[int(rng.integers(len(clips)))].astype(np.float64)
        looped = np.resize(np.roll(clip, -int(rng.integers(len(clip)))), n)
        out += looped / np.sqrt(max(active_power(clip), 1e-20))
    return out.astype(np.float32)


def peaking(freq: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """Second-order sections of a peaking EQ (RBJ cookbook): `gain_db` at `freq`, 0 dB far from it."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * freq / sample_rate
    alpha = np.sin(w) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w), 1 - alpha / a]
    return np.array([[*np.divide(b, den[0]), 1.0, den[1] / den[0], den[2] / den[0]]])


def high_shelf(freq: float, gain_db: float, sample_rate: int) -> np.ndarray:
    """Second-order sections of a high shelf (RBJ cookbook, slope 1): 0 dB well below `freq`,
    `gain_db` well above: a tilt of the spectrum."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * freq / sample_rate
    alpha = np.sin(w) / np.sqrt(2)
    cos, root = np.cos(w), 2 * np.sqrt(a) * alpha
    b = [a * ((a + 1) + (a - 1) * cos + root), -2 * a * ((a - 1) + (a + 1) * cos), a * ((a + 1) + (a - 1) * cos - root)]
    den = [(a + 1) - (a - 1) * cos + root, 2 * ((a - 1) - (a + 1) * cos), (a + 1) - (a - 1) * cos - root]
    return np.array([[*np.divide(b, den[0]), 1.0, den[1] / den[0], den[2] / den[0]]])


def _filtered(signal: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """Causal filtering (a microphone or a line does not look ahead)."""
    return scipy.signal.sosfilt(sos, signal.astype(np.float64)).astype(np.float32)


def telephone_band(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Band-limit to the telephone band, 300-3400 Hz (8th-order Butterworth band-pass): what a call,
    an intercom or a narrow-band Bluetooth headset leaves of the voice."""
    sos = scipy.signal.butter(8, TELEPHONE_BAND_HZ, btype="bandpass", fs=sample_rate, output="sos")
    return _filtered(signal, sos)


def mems_response(signal: np.ndarray, sample_rate: int, rng: np.random.Generator,
                  roll_off_hz: tuple[float, float] = (80.0, 250.0),
                  presence_hz: tuple[float, float] = (2500.0, 6000.0),
                  presence_db: tuple[float, float] = (3.0, 8.0)) -> np.ndarray:
    """A cheap MEMS microphone: a second-order low-frequency roll-off (small back volume and vent)
    and a presence peak (the port's Helmholtz resonance, pulled into the speech band by a housing)."""
    corner = float(rng.uniform(*roll_off_hz))
    peak = peaking(float(rng.uniform(*presence_hz)), float(rng.uniform(*presence_db)), 1.5, sample_rate)
    high_pass = scipy.signal.butter(2, corner, btype="highpass", fs=sample_rate, output="sos")
    return _filtered(signal, np.vstack([high_pass, peak]))


def colouration(signal: np.ndarray, sample_rate: int, rng: np.random.Generator, max_tilt_db: float = 6.0,
                max_peak_db: float = 6.0) -> np.ndarray:
    """A random, gentle microphone and placement colouration: a tilt (high shelf at 1 kHz, within
    ±`max_tilt_db`) and two broad peaks or dips (±`max_peak_db`, 200-6000 Hz), the spread between
    one microphone, housing and mounting and the next."""
    sections = [high_shelf(1000.0, float(rng.uniform(-max_tilt_db, max_tilt_db)), sample_rate)]
    for _ in range(2):
        freq = float(np.exp(rng.uniform(np.log(200.0), np.log(6000.0))))
        sections.append(peaking(freq, float(rng.uniform(-max_peak_db, max_peak_db)), float(rng.uniform(0.7, 2.0)),
                                sample_rate))
    return _filtered(signal, np.vstack(sections))


def change_level(signal: np.ndarray, gain_db: float) -> np.ndarray:
    """The input gain of another device or a speaker at another distance: scale by `gain_db` and clip
    at full scale, as a real converter does when the input is too hot (unlike augment.apply_gain,
    which avoids clipping)."""
    return np.clip(signal.astype(np.float64) * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class RoomAugment:
    """Which room and microphone effects a training copy draws, with their probabilities and ranges.
    Defaults: each effect on a minority of copies, so a copy is usually changed in one or two ways
    and the clean and studio-like copies still dominate."""

    reverb_probability: float = 0.4
    rt60: tuple[float, float] = (0.2, 0.8)
    babble_probability: float = 0.25
    babble_snr_db: tuple[float, float] = (5.0, 20.0)
    noise_probability: float = 0.25
    noise_snr_db: tuple[float, float] = (0.0, 20.0)
    mems_probability: float = 0.25
    colour_probability: float = 0.3
    telephone_probability: float = 0.1
    level_probability: float = 0.3
    level_db: tuple[float, float] = (-20.0, 20.0)

    def __call__(self, signal: np.ndarray, sample_rate: int, rng: np.random.Generator, speaker: str = "",
                 pool: Sequence[tuple[str, np.ndarray]] = ()) -> np.ndarray:
        """One copy of `signal` in a random room, through a random microphone. Babble is drawn from
        `pool` without `speaker`'s own clips (skipped when the pool has no other speaker)."""
        out = signal
        if rng.random() < self.reverb_probability:
            out = reverberate(out, synthetic_rir(float(rng.uniform(*self.rt60)), sample_rate, rng))
        if rng.random() < self.babble_probability:
            talk = babble(len(out), pool, speaker, rng)
            if talk is not None:
                out = mix_at_snr(out, talk, float(rng.uniform(*self.babble_snr_db)))
        if rng.random() < self.noise_probability:
            out = add_noise(out, float(rng.uniform(*self.noise_snr_db)), rng, "pink" if rng.random() < 0.5 else "white")
        if rng.random() < self.mems_probability:
            out = mems_response(out, sample_rate, rng)
        if rng.random() < self.colour_probability:
            out = colouration(out, sample_rate, rng)
        if rng.random() < self.telephone_probability:
            out = telephone_band(out, sample_rate)
        if rng.random() < self.level_probability:
            out = change_level(out, float(rng.uniform(*self.level_db)))
        return out
