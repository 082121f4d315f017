"""The streaming resampler: same numbers as scipy's resample_poly, whatever the chunking."""

from __future__ import annotations

import subprocess
import sys
from math import gcd
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import firwin, resample_poly

from edge_ser.audio.resampler import KAISER_BETA, StreamResampler, lowpass_taps
from edge_ser.audio.wavfile import read_audio, write_wav


def _stream(signal: np.ndarray, rate_in: int, rate_out: int, chunk: int) -> np.ndarray:
    r = StreamResampler(rate_in, rate_out)
    parts = [r.push(signal[i : i + chunk]) for i in range(0, len(signal), chunk)]
    return np.concatenate([*parts, r.flush()])


def _speechlike(rate: int, seconds: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(rate)
    t = np.arange(int(rate * seconds)) / rate
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    return (0.2 * tone + 0.05 * rng.normal(size=len(t))).astype(np.float32)


@pytest.mark.parametrize("rate_in", [48000, 44100, 22050, 8000])
def test_matches_resample_poly(rate_in: int) -> None:
    x = _speechlike(rate_in)
    g = gcd(rate_in, 16000)
    want = resample_poly(x.astype(np.float64), 16000 // g, rate_in // g)
    got = _stream(x, rate_in, 16000, 1024)
    assert len(got) == len(want)
    np.testing.assert_allclose(got, want, atol=1e-6)


# 44,099 Hz shares no factor with 16 kHz: its sub-filters are gathered, not sliced (TILED_BYTES)
@pytest.mark.parametrize("rate_in", [48000, 44100, 44099, 22050, 11025, 8000])
def test_chunk_invariant(rate_in: int) -> None:
    x = _speechlike(rate_in, 1.0)
    outputs = [_stream(x, rate_in, 16000, size) for size in (160, 441, 1000, 4096, len(x))]
    for out in outputs[1:]:
        assert np.array_equal(out, outputs[0])
    rng = np.random.default_rng(rate_in)
    for largest in (3, 50, 5000):  # chunks far shorter than the filter, and irregular ones
        r = StreamResampler(rate_in, 16000)
        cuts = np.cumsum(rng.integers(1, largest + 1, size=len(x)))
        parts = [r.push(chunk) for chunk in np.split(x, cuts[cuts < len(x)])]
        assert np.array_equal(np.concatenate([*parts, r.flush()]), outputs[0]), largest


def test_chunks_smaller_than_filter_emit_progressively() -> None:
    r = StreamResampler(48000, 16000)
    x = _speechlike(48000, 0.2)
    sizes = [len(r.push(x[i : i + 30])) for i in range(0, len(x), 30)]
    assert sizes[0] == 0  # the first chunk cannot fill the filter's look-ahead
    assert sum(sizes) + len(r.flush()) == len(x) // 3
    assert max(sizes) <= 11


def test_equal_rates_pass_through() -> None:
    x = _speechlike(16000, 0.1)
    r = StreamResampler(16000, 16000)
    assert np.array_equal(r.push(x), x)
    assert len(r.flush()) == 0


@pytest.mark.parametrize(("count", "cutoff"), [(61, 1 / 3), (961, 1 / 48), (6401, 1 / 320)])
def test_lowpass_taps_are_firwins(count: int, cutoff: float) -> None:
    want = firwin(count, cutoff, window=("kaiser", KAISER_BETA))
    np.testing.assert_allclose(lowpass_taps(count, cutoff), want, rtol=0, atol=1e-15 * np.abs(want).max())


def test_a_48k_microphone_does_not_import_scipy() -> None:
    """The resampler a 44.1/48 kHz microphone needs costs no scipy.signal import (~50 MB)."""
    code = ("import sys\nimport numpy as np\nfrom edge_ser.audio.resampler import StreamResampler\n"
            "r = StreamResampler(44100, 16000)\nout = r.push(np.ones(44100, np.float32))\n"
            "print(len(out) > 15000, sorted(m for m in ('scipy', 'scipy.signal') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True []", out


def test_a_file_is_resampled_as_the_microphone_would_be(tmp_path: Path) -> None:
    """A 44.1 kHz WAV read by `load_audio` (what `predict` reads) gives exactly the samples the
    streaming resampler gives a 44.1 kHz microphone pushing 1024-sample chunks, and reading it
    imports no scipy.signal."""
    x = _speechlike(44100, 3.0)
    path = tmp_path / "speech_44k.wav"
    write_wav(path, x, 44100)
    as_stored = read_audio(path)[0][:, 0]
    code = ("import sys\nfrom edge_ser.audio.wavfile import load_audio\n"
            f"y = load_audio({str(path)!r}, 16000)\nsys.stdout.buffer.write(y.tobytes())\n"
            "sys.stderr.write(str(sorted(m for m in ('scipy', 'scipy.signal') if m in sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stderr.decode().strip() == "[]"
    loaded = np.frombuffer(done.stdout, dtype=np.float32)
    assert np.array_equal(loaded, _stream(as_stored, 44100, 16000, 1024))
    assert len(loaded) == 3 * 16000
