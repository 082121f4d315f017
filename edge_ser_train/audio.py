"""Corpus audio in any container the corpora actually ship, as mono float32 at the model's rate.

The runtime WAV reader is strict on purpose; corpora are not: some hold AIFF data behind a `.wav`
name, 32-bit float samples, stereo, or 44.1/48/96 kHz. soundfile (libsndfile) sniffs the real
format from the header, so the file name does not matter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from edge_ser.audio.wavfile import resample


def read_corpus_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 in [-1, 1] at `sample_rate`: channels averaged, then polyphase-resampled."""
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return resample(data.mean(axis=1), int(rate), sample_rate)
