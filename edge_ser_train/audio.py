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
from edge_ser.errors import AudioFileError


def read_corpus_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 in [-1, 1] at `sample_rate`: channels averaged, then polyphase-resampled."""
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, OSError) as exc:  # a broken file in a corpus, or a CSV naming none
        reason = "no such file" if not Path(path).is_file() else getattr(exc, "error_string", str(exc))
        raise AudioFileError(f"{path}: cannot read audio ({reason})") from None
    return resample(data.mean(axis=1), int(rate), sample_rate)
