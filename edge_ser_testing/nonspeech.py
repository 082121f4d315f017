"""Generated sounds that are not speech, for checking that none of them is reported as an emotion.

Each is loud and long enough to open the voice gate and fill windows, framed by quiet room noise
like a recording, and seeded: pure tones, chirps, white noise, harmonic music (a chord, a melody of
steady notes, a harmonic tone with a gliding pitch) and knocks. The harmonic ones are the hard
cases: their spectra look voiced, so only how they evolve over time tells them from a voice.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RATE = 16000
LEVEL = 0.3  # peak amplitude: a loud sound near the microphone
ROOM_NOISE = 10 ** (-60.0 / 20)  # -60 dBFS, a quiet room (no digital zeros)


def _time(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def _harmonics(phase: np.ndarray, count: int = 8) -> np.ndarray:
    """A voiced-looking waveform: `count` harmonics falling off as 1/k, on a running phase."""
    return sum(np.sin(k * phase) / k for k in range(1, count + 1))


def _fade(signal: np.ndarray, seconds: float = 0.02) -> np.ndarray:
    ramp = np.minimum(1.0, np.minimum(np.arange(len(signal)), np.arange(len(signal))[::-1]) / (seconds * RATE))
    return signal * ramp


def _framed(sound: np.ndarray, seed: int) -> np.ndarray:
    """0.5 s of room noise, the sound at LEVEL, 0.8 s of room noise; float32."""
    sound = LEVEL * _fade(sound) / np.max(np.abs(sound))
    pad = np.zeros(int(0.5 * RATE))
    clip = np.concatenate([pad, sound, pad, pad[: int(0.3 * RATE)]])
    return (clip + np.random.default_rng(seed).normal(0.0, ROOM_NOISE, len(clip))).astype(np.float32)


def pure_tone(seed: int = 0, seconds: float = 3.0, hz: float = 440.0) -> np.ndarray:
    return _framed(np.sin(2 * np.pi * hz * _time(seconds)), seed)


def chirp(seed: int = 0, seconds: float = 3.0, low: float = 200.0, high: float = 3000.0) -> np.ndarray:
    """A sine sweeping exponentially from `low` to `high` Hz."""
    t = _time(seconds)
    k = np.log(high / low) / seconds
    return _framed(np.sin(2 * np.pi * low * (np.exp(k * t) - 1) / k), seed)


def white_noise(seed: int = 0, seconds: float = 3.0) -> np.ndarray:
    return _framed(np.random.default_rng(seed + 1000).standard_normal(int(seconds * RATE)), seed)


def chord(seed: int = 0, seconds: float = 3.0, root: float = 220.0) -> np.ndarray:
    """A sustained major triad of harmonic tones."""
    t = _time(seconds)
    return _framed(sum(_harmonics(2 * np.pi * root * ratio * t) for ratio in (1.0, 1.25, 1.5)), seed)


def melody(seed: int = 0, notes: int = 12, note_seconds: float = 0.25) -> np.ndarray:
    """Harmonic notes of steady pitch from a major scale, each with a plucked (decaying) envelope:
    amplitude rises and falls at a syllable-like rate, but the pitch never moves inside a note."""
    rng = np.random.default_rng(seed)
    scale = 220.0 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    t = _time(note_seconds)
    envelope = np.exp(-t / (0.4 * note_seconds))
    parts = [envelope * _harmonics(2 * np.pi * rng.choice(scale) * t) for _ in range(notes)]
    return _framed(np.concatenate(parts), seed)


def gliding_tone(seed: int = 0, seconds: float = 3.0, low: float = 120.0, high: float = 240.0) -> np.ndarray:
    """A harmonic tone whose pitch glides slowly up and down (like a siren or a held sung vowel)."""
    t = _time(seconds)
    pitch = low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * t / seconds))
    return _framed(_harmonics(2 * np.pi * np.cumsum(pitch) / RATE), seed)


def knocks(seed: int = 0, count: int = 10, interval: float = 0.3) -> np.ndarray:
    """Knocks on a door: short decaying low resonances with a noise burst, `interval` s apart."""
    rng = np.random.default_rng(seed)
    t = _time(interval)
    decay = np.exp(-t / 0.015)
    parts = [decay * (np.sin(2 * np.pi * rng.uniform(150, 300) * t) + 0.5 * rng.standard_normal(len(t)))
             for _ in range(count)]
    return _framed(np.concatenate(parts), seed)


NON_SPEECH: dict[str, Callable[[int], np.ndarray]] = {
    "pure_tone": pure_tone, "chirp": chirp, "white_noise": white_noise, "chord": chord,
    "melody": melody, "gliding_tone": gliding_tone, "knocks": knocks,
}
