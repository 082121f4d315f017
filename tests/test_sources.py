"""File and stdin sources in-process, and how the microphone source picks its device."""

from __future__ import annotations

import os
import threading
from math import gcd
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from edge_ser.app.build import open_source
from edge_ser.app.config import AudioConfig
from edge_ser.audio.file import FileSource
from edge_ser.audio.mic import DeviceUnavailable, InputDevice, choose_device
from edge_ser.audio.pcm import pcm16_to_float
from edge_ser.audio.stdin import StdinSource
from edge_ser.audio.wavfile import load_audio, write_wav


@pytest.fixture
def tone_44k(tmp_path: Path) -> Path:
    t = np.arange(44100) / 44100
    path = tmp_path / "tone44k.wav"
    write_wav(path, 0.3 * np.sin(2 * np.pi * 220 * t), 44100)
    return path


def test_file_source_fast_delivers_the_whole_file_at_the_model_rate(tone_44k: Path) -> None:
    source = open_source(AudioConfig(source="file", file=str(tone_44k), realtime=False, chunk_ms=100), 16000)
    chunks = list(source.chunks())
    assert {len(c) for c in chunks[:-1]} == {1600}
    audio = np.concatenate([pcm16_to_float(c) if c.dtype == np.int16 else c for c in chunks])
    assert np.array_equal(audio, load_audio(tone_44k, 16000))


def test_file_source_loops_until_closed(tone_44k: Path) -> None:
    source = FileSource(tone_44k, 16000, 4000, realtime=False, loop=True)
    total = 0
    for chunk in source.chunks():
        total += len(chunk)
        if total >= 3 * 16000:
            source.close()
    assert total == 3 * 16000


def test_real_time_file_source_ends_when_closed_from_another_thread(tone_44k: Path) -> None:
    source = FileSource(tone_44k, 16000, 1600, realtime=True, loop=True)
    threading.Timer(0.3, source.close).start()
    got = sum(len(c) for c in source.chunks())  # would never end without close()
    assert 0 < got < 10 * 16000


def _pipe_source(pcm: np.ndarray, rate: int, piece: int) -> np.ndarray:
    """Write int16 PCM into a pipe in `piece`-byte writes (odd sizes split samples); read it back."""
    read_fd, write_fd = os.pipe()
    data = pcm.astype("<i2").tobytes()

    def writer() -> None:
        for i in range(0, len(data), piece):
            os.write(write_fd, data[i : i + piece])
        os.close(write_fd)

    threading.Thread(target=writer, daemon=True).start()
    source = StdinSource(rate, 16000, 20, fd=read_fd)
    try:
        return np.concatenate([pcm16_to_float(c) if c.dtype == np.int16 else c for c in source.chunks() if len(c)])
    finally:
        os.close(read_fd)


def test_stdin_at_16k_passes_samples_through() -> None:
    pcm = np.random.default_rng(1).integers(-20000, 20000, 8000).astype(np.int16)
    out = _pipe_source(pcm, 16000, 777)
    assert np.array_equal(out, pcm.astype(np.float32) / 32768.0)


def test_stdin_resampled_is_independent_of_how_the_pipe_splits_it() -> None:
    t = np.arange(48000) / 48000
    pcm = (12000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    outputs = [_pipe_source(pcm, 48000, piece) for piece in (301, 4096, 96000)]
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])
    g = gcd(48000, 16000)
    want = resample_poly(pcm / 32768.0, 16000 // g, 48000 // g)
    np.testing.assert_allclose(outputs[0], want, atol=1e-6)


DEVICES = [InputDevice(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", 2, 44100, "ALSA", False),
           InputDevice(3, "USB PnP Sound Device: Audio (hw:1,0)", 1, 48000, "ALSA", False),
           InputDevice(7, "default", 32, 44100, "ALSA", True)]


@pytest.mark.parametrize(("wanted", "index"), [(None, 7), (3, 3), ("3", 3), ("usb pnp", 3), ("default", 7),
                                               ("ALC3246", 0)])
def test_choose_device(wanted: str | int | None, index: int) -> None:
    assert choose_device(DEVICES, wanted).index == index


@pytest.mark.parametrize(("devices", "wanted", "message"), [
    (DEVICES, "Blue Yeti", "input device 'Blue Yeti' not found (inputs: 0 'HDA Intel"),
    (DEVICES, 5, "input device 5 not found"),
    ([], None, "no audio input device found"),
    (DEVICES[:2], None, "no default audio input device"),
])
def test_choose_device_says_what_is_there(devices: list[InputDevice], wanted: str | int | None,
                                          message: str) -> None:
    with pytest.raises(DeviceUnavailable, match=message.replace("(", r"\(")):
        choose_device(devices, wanted)
