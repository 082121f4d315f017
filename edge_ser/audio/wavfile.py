"""Audio file reading, with errors that name the file and the reason.

WAV in every common layout goes through a small RIFF parser of our own rather than `wave` (no float
or WAVE_FORMAT_EXTENSIBLE on 3.11) or `scipy.io.wavfile` (its errors do not say what is wrong in
words a user can act on). Other containers (FLAC, AIFF, OGG, big-endian RIFX; public corpora ship
AIFF data behind a `.wav` name) are read by `soundfile` when it is installed: it is optional and
imported only when a file turns out not to be RIFF/WAVE, so a device that only ever hears WAV or a
microphone never loads libsndfile. The content decides, never the file name.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_ser.audio.resampler import StreamResampler
from edge_ser.errors import AudioFileError

PCM = 0x0001
IEEE_FLOAT = 0x0003
EXTENSIBLE = 0xFFFE
# Sample rates read at all: every real recording is inside, and resampling from a rate far outside
# (or one sharing no factor with 16 kHz, like 4294967295) would design a filter of billions of taps.
MIN_RATE, MAX_RATE = 1000, 384_000

RESAMPLE_BLOCK = 1 << 14  # input samples per push when resampling a file: bounds the filter's working arrays
# What a folder is searched for: WAV always, the others for soundfile (files without it say so).
AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga")
# Leading bytes of the containers soundfile reads, to tell a user which file wants it.
_OTHER_CONTAINERS = {b"fLaC": "FLAC", b"FORM": "AIFF", b"OggS": "OGG", b"RIFX": "big-endian WAV (RIFX)"}


@dataclass(frozen=True)
class WavInfo:
    """What the header says about the audio."""

    sample_rate: int
    channels: int
    bits: int
    encoding: str  # "pcm" or "float"
    frames: int


def _parse_fmt(body: bytes, path: Path) -> tuple[str, int, int, int]:
    if len(body) < 16:
        raise AudioFileError(f"{path}: corrupt WAV: fmt chunk is {len(body)} bytes, need at least 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == EXTENSIBLE:
        if len(body) < 40:
            raise AudioFileError(f"{path}: corrupt WAV: extensible fmt chunk is too short")
        tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
    if tag == PCM:
        encoding = "pcm"
        if bits not in (8, 16, 24, 32):
            raise AudioFileError(f"{path}: unsupported WAV: {bits}-bit integer PCM")
    elif tag == IEEE_FLOAT:
        encoding = "float"
        if bits not in (32, 64):
            raise AudioFileError(f"{path}: unsupported WAV: {bits}-bit float")
    else:
        raise AudioFileError(f"{path}: unsupported WAV encoding 0x{tag:04x} (need PCM or IEEE float)")
    if channels < 1 or rate < 1:
        raise AudioFileError(f"{path}: corrupt WAV: {channels} channels at {rate} Hz")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioFileError(f"{path}: unsupported WAV: {rate} Hz (need {MIN_RATE}..{MAX_RATE} Hz)")
    if block_align != channels * bits // 8:
        raise AudioFileError(f"{path}: corrupt WAV: block align {block_align} does not fit "
                             f"{channels} channels of {bits} bits")
    return encoding, channels, rate, bits


def _decode(raw: bytes, encoding: str, bits: int, channels: int) -> np.ndarray:
    """Bytes to float32 frames x channels, integers scaled to [-1, 1)."""
    if encoding == "float":
        data = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    elif bits == 8:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 16:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        data = value.astype(np.float32) / float(1 << 23)
    else:
        data = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    return data.reshape(-1, channels)


def _read_bytes(path: Path) -> bytes:
    try:
        blob = path.read_bytes()
    except IsADirectoryError:
        raise AudioFileError(f"{path}: is a directory, not an audio file") from None
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not blob:
        raise AudioFileError(f"{path}: empty file")
    return blob


def _is_riff_wave(blob: bytes) -> bool:
    return len(blob) >= 12 and blob[:4] == b"RIFF" and blob[8:12] == b"WAVE"


def read_wav(path: str | Path) -> tuple[np.ndarray, WavInfo]:
    """Read a WAV file as float32 (frames, channels). Raises AudioFileError with the reason."""
    path = Path(path)
    return _parse_wav(_read_bytes(path), path)


def _parse_wav(blob: bytes, path: Path) -> tuple[np.ndarray, WavInfo]:
    if blob[:4] == b"RIFX":
        raise AudioFileError(f"{path}: unsupported WAV: big-endian (RIFX)")
    if not _is_riff_wave(blob):
        raise AudioFileError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[str, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(blob):
        chunk_id = blob[pos : pos + 4]
        size = struct.unpack("<I", blob[pos + 4 : pos + 8])[0]
        body_start = pos + 8
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(blob[body_start : body_start + size], path)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFileError(f"{path}: corrupt WAV: data chunk before fmt chunk")
            encoding, channels, rate, bits = fmt
            available = len(blob) - body_start
            if size > available and size != 0xFFFFFFFF:
                raise AudioFileError(f"{path}: truncated WAV: header promises {size} data bytes, "
                                     f"file holds {available}")
            size = min(size, available)
            frame_bytes = channels * bits // 8
            usable = size - size % frame_bytes
            if usable == 0:
                raise AudioFileError(f"{path}: WAV holds no audio samples")
            data = _decode(blob[body_start : body_start + usable], encoding, bits, channels)
            if not np.all(np.isfinite(data)):
                raise AudioFileError(f"{path}: corrupt WAV: float samples that are NaN or infinite")
            return data, WavInfo(rate, channels, bits, encoding, len(data))
        pos = body_start + size + (size & 1)  # chunks are word-aligned
    if fmt is None:
        raise AudioFileError(f"{path}: corrupt WAV: no fmt chunk")
    raise AudioFileError(f"{path}: corrupt WAV: no data chunk")


def resample(signal: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """A whole 1-D signal resampled as float32 by the streaming resampler the microphone and stdin
    sources use (fed in blocks, which changes no sample: it is chunk-invariant). Why not scipy's
    resample_poly, which gives the same numbers to 1e-6: a file at 44.1 kHz then yields exactly the
    samples a 44.1 kHz microphone would, and `predict` does not import scipy.signal (~50 MB)."""
    if rate_in == rate_out:
        return signal.astype(np.float32, copy=False)
    resampler = StreamResampler(rate_in, rate_out)
    blocks = [resampler.push(signal[i : i + RESAMPLE_BLOCK]) for i in range(0, len(signal), RESAMPLE_BLOCK)]
    return np.concatenate([*blocks, resampler.flush()])


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """An audio file as float32 (frames, channels) and its sample rate: RIFF/WAVE by our parser,
    anything else by soundfile when it is installed. Raises AudioFileError with the reason."""
    path = Path(path)
    blob = _read_bytes(path)
    if _is_riff_wave(blob):
        data, info = _parse_wav(blob, path)
        return data, info.sample_rate
    return _read_with_soundfile(blob, path)


def _read_with_soundfile(blob: bytes, path: Path) -> tuple[np.ndarray, int]:
    kind = _OTHER_CONTAINERS.get(blob[:4])
    try:
        import soundfile  # optional (the 'audio' extra): imported only for non-WAV data
    except ImportError:
        if kind is None:
            raise AudioFileError(f"{path}: not a WAV file (no RIFF/WAVE header)") from None
        raise AudioFileError(f"{path}: {kind} data: install the 'audio' extra (pip install "
                             f"'edge-ser[audio]', i.e. soundfile) to read it, or convert it to WAV") from None
    try:
        data, rate = soundfile.read(io.BytesIO(blob), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, ValueError) as exc:  # libsndfile's reasons vary by version
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # libsndfile names the in-memory buffer it was given ("Error opening <_io.BytesIO object at
        # 0x7f...>: Format not recognised."): the path is already in front, the object says nothing.
        reason = re.sub(r"^Error opening <[^>]*>: ", "", reason)
        what = f"corrupt {kind}" if kind else "not a WAV file (no RIFF/WAVE header) nor any format soundfile reads"
        raise AudioFileError(f"{path}: {what}: {reason}") from None
    if not len(data):
        raise AudioFileError(f"{path}: {kind or 'file'} holds no audio samples")
    if not np.all(np.isfinite(data)):
        raise AudioFileError(f"{path}: corrupt {kind or 'audio'}: samples that are NaN or infinite")
    return data, int(rate)


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """An audio file (`read_audio`) as mono float32 at `sample_rate`: channels averaged, then resampled."""
    data, rate = read_audio(path)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return resample(mono, rate, sample_rate)


def write_wav(path: str | Path, signal: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples in [-1, 1] as 16-bit PCM (test fixtures, demo audio)."""
    pcm = (np.clip(np.asarray(signal, dtype=np.float64), -1.0, 1.0 - 1.0 / 32768) * 32768.0)
    raw = np.round(pcm).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(raw)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, PCM, 1, sample_rate, sample_rate * 2, 2, 16)
    Path(path).write_bytes(header + b"data" + struct.pack("<I", len(raw)) + raw)
