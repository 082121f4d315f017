"""WAV input: every common layout reads to the same 16 kHz mono signal; bad files say why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import load_audio, read_wav, write_wav
from edge_ser.errors import AudioFileError

sf = pytest.importorskip("soundfile", reason="soundfile (train extra) writes the reference files")

SUBTYPES = {"PCM_U8": 2e-2, "PCM_16": 1e-3, "PCM_24": 1e-3, "PCM_32": 1e-3, "FLOAT": 1e-3, "DOUBLE": 1e-3}


def tone(rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)).astype(np.float32)


@pytest.mark.parametrize("subtype", list(SUBTYPES))
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000, 96000])
def test_every_layout_reads_as_16k_mono(tmp_path: Path, subtype: str, rate: int) -> None:
    path = tmp_path / f"t_{subtype}_{rate}.wav"
    sf.write(path, tone(rate), rate, subtype=subtype, format="WAV")
    got = load_audio(path, 16000)
    want = tone(16000)
    assert got.dtype == np.float32 and got.ndim == 1
    assert abs(len(got) - len(want)) <= 1
    n = min(len(got), len(want))
    interior = slice(400, n - 400)  # resampling filters ring at the edges
    tol = SUBTYPES[subtype] + (0.01 if rate == 8000 else 2e-3)  # 8 kHz lacks nothing of the 1250 Hz tone
    np.testing.assert_allclose(got[interior], want[:n][interior], atol=tol)


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_and_extensible_headers_are_averaged_to_mono(tmp_path: Path, channels: int) -> None:
    mono = tone(16000)
    data = np.stack([mono * (0.5 + 0.5 * (c % 2)) for c in range(channels)], axis=1)
    path = tmp_path / "multi.wav"
    sf.write(path, data, 16000, subtype="PCM_24", format="WAVEX")  # WAVE_FORMAT_EXTENSIBLE
    _, info = read_wav(path)
    assert (info.channels, info.bits, info.encoding) == (channels, 24, "pcm")
    np.testing.assert_allclose(load_audio(path, 16000), data.mean(axis=1), atol=1e-4)


def test_own_writer_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "rt.wav"
    write_wav(path, tone(16000), 16000)
    ref, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    np.testing.assert_allclose(load_audio(path, 16000), ref, atol=1e-6)


def _valid_wav_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "valid.wav"
    sf.write(path, tone(16000, 0.2), 16000, subtype="PCM_16")
    return path.read_bytes()


@pytest.mark.parametrize("name,make,reason", [
    ("empty.wav", lambda b: b"", "empty file"),
    ("notes.wav", lambda b: b"this is a text file, not audio\n" * 4, "not a WAV file"),
    ("riff.wav", lambda b: b"RIFF", "not a WAV file"),
    ("cut.wav", lambda b: b[: len(b) // 2], "truncated WAV"),
    ("nodata.wav", lambda b: b[:36], "no data chunk"),
    ("nofmt.wav", lambda b: b[:12] + b"data" + (4).to_bytes(4, "little") + b"\0\0\0\0", "data chunk before fmt"),
    ("shortfmt.wav", lambda b: b[:12] + b"fmt " + (8).to_bytes(4, "little") + b"\1\0\1\0\0\0\0\0", "fmt chunk"),
    ("zero.wav", lambda b: b[:40] + (0).to_bytes(4, "little"), "no audio samples"),
])
def test_bad_files_name_the_file_and_the_reason(tmp_path: Path, name: str, make, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(make(_valid_wav_bytes(tmp_path)))
    with pytest.raises(AudioFileError) as err:
        load_audio(path, 16000)
    message = str(err.value)
    assert str(path) in message and reason in message
    assert "\n" not in message
    assert "object at 0x" not in message  # libsndfile's name for the in-memory buffer is no reason


def test_unsupported_encoding_is_named(tmp_path: Path) -> None:
    path = tmp_path / "alaw.wav"
    sf.write(path, tone(8000, 0.2), 8000, subtype="ALAW")
    with pytest.raises(AudioFileError, match=r"encoding 0x0006"):
        load_audio(path, 16000)


def test_nan_samples_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    data = tone(16000, 0.1)
    data[10] = np.nan
    sf.write(path, data, 16000, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="NaN"):
        load_audio(path, 16000)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="cannot read"):
        load_audio(tmp_path / "absent.wav", 16000)
    with pytest.raises(AudioFileError, match="is a directory"):
        load_audio(tmp_path, 16000)
