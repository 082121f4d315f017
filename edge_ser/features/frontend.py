"""The front end: samples in, frame energy and per-frame feature columns (MFCCs, then pitch) out.

Batch (`signal_features`) and streaming (`StreamingFrontEnd`) share `frame_features`, and every
frame is computed alone, so both give identical numbers for any chunking.

Why the streaming front end computes features on demand: the voice gate needs every frame's
energy at once, but the classifier only ever sees frames inside a window, and a window is known
only when the segmenter emits it. So a push costs one dot product per new frame; the spectra,
mel bands, cepstra and pitch of a window's frames are computed when it is requested, in one
batch, and cached for the overlapping windows that follow. Silence costs the energy alone, and
the per-push overhead that dominated the device's CPU (many tiny FFT and matrix calls) is gone.

Spectral augmentation (VTLP and the like) enters through one documented hook, a
`SpectralTransform` applied to each frame's power spectrum before the mel filterbank, so
training warps spectra inside the very code the device runs instead of a copy of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeAlias

import numpy as np

from edge_ser.audio.pcm import PCM16_SCALE
from edge_ser.features.config import FeatureConfig
from edge_ser.features.fft import transforms
from edge_ser.features.framing import frame_energy_db, frame_signal, frame_spans, n_frames, windowed_part
from edge_ser.features.mfcc import mfcc_frames, mfcc_from_power, power_spectrum
from edge_ser.features.pitch import pitch_features

SpectralTransform: TypeAlias = Callable[[np.ndarray, int], np.ndarray]
"""Hook on the power spectrum: ``transform(power, first) -> power``.

`power` is float32 (frames, n_fft // 2 + 1), one row per frame, `first` the global index of its
first row. It must return an array of the same shape and treat each row on its own (a row's
result may not depend on which other rows share the call), or chunk-size invariance is lost.
Pitch columns are computed from the untransformed frames: a warped vocal tract moves formants,
not the rate at which the vocal folds vibrate.
"""


def frame_features(spans: np.ndarray, cfg: FeatureConfig, first: int = 0,
                   transform: SpectralTransform | None = None) -> np.ndarray:
    """The model's per-frame columns (frames, n_features) from frame spans (`first`: global index of
    the first): MFCCs of the (optionally transformed) power spectrum, then pitch if the config asks.
    One power spectrum per frame serves both: the "spectrum" pitch method reads its autocorrelation
    from the untransformed one, before the hook may change it in place."""
    power = power_spectrum(windowed_part(spans, cfg), cfg)
    pitch = pitch_features(spans, cfg, power) if cfg.pitch else None
    cepstra = mfcc_from_power(power if transform is None else transform(power, first), cfg, first)
    return cepstra if pitch is None else np.hstack([cepstra, pitch])


BATCH_FRAMES = 256  # frames per block in batch mode: intermediates stay in cache (~0.5 MB)


def _in_blocks(frames: np.ndarray, per_block: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """`per_block(frames, first)` over all `frames` in blocks of BATCH_FRAMES: the same numbers
    (every frame is computed on its own) with a working set that fits in cache."""
    if len(frames) <= BATCH_FRAMES:
        return per_block(frames, 0)
    return np.concatenate([per_block(frames[i : i + BATCH_FRAMES], i) for i in range(0, len(frames), BATCH_FRAMES)])


def mfcc(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Batch MFCCs of a whole float32 signal: (frames, n_mfcc), the librosa-comparable part."""
    return _in_blocks(frame_signal(np.asarray(signal, dtype=np.float32), cfg),
                      lambda frames, first: mfcc_frames(frames, cfg, first))


def signal_features(signal: np.ndarray, cfg: FeatureConfig,
                    transform: SpectralTransform | None = None) -> np.ndarray:
    """Batch frame features of a whole float32 signal: (frames, n_features), what streaming gives."""
    return _in_blocks(frame_spans(np.asarray(signal, dtype=np.float32), cfg),
                      lambda spans, first: frame_features(spans, cfg, first, transform))


# Frames computed per call when a window needs them: the FFT temporaries of a whole window
# (~1 MB with pitch) would stay in the process's heap after the first window (glibc raises its
# mmap threshold once such a block is freed); 32 frames keep each under 150 kB.
COMPUTE_FRAMES = 32


class StreamingFrontEnd:
    """Incremental front end: `push` samples of any chunk size and get the energy of the frames they
    complete; ask `features(start, end)` for the columns of recent frames.

    Memory is bounded: the samples of the last `history_frames` complete frames (plus the tail of
    an incomplete one) and a feature cache of the same length. Frames older than that are gone,
    and asking for them is a programming error.
    """

    def __init__(self, cfg: FeatureConfig, history_frames: int, transform: SpectralTransform | None = None) -> None:
        if history_frames < 1:
            raise ValueError("history_frames must be >= 1")
        self.cfg, self.history_frames, self.transform = cfg, history_frames, transform
        self._span = (history_frames - 1) * cfg.hop_length + cfg.n_fft  # samples of `history_frames` frames
        self._set_buffer(np.zeros(2 * self._span, dtype=np.float32))
        self._cache = np.zeros((history_frames, cfg.n_features), dtype=np.float32)
        # Load the FFT now, not on the first window: with the scipy.fft fallback that import costs
        # ~0.5 s of CPU, which would otherwise delay the first event of a freshly started device.
        transforms()
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample pushed is sample 0 of frame 0."""
        self._base = 0  # global index of _buf[0]
        self._len = 0  # valid samples in _buf
        self.frames = 0  # complete frames so far
        self._cached = np.full(self.history_frames, -1, dtype=np.int64)  # frame held by each cache slot

    @property
    def samples(self) -> int:
        """Samples pushed since the start (or the last reset)."""
        return self._base + self._len

    @property
    def oldest_frame(self) -> int:
        """The oldest frame whose samples are still kept (features of older frames are gone); the
        buffer starts on its first sample, as samples are dropped a whole number of hops at a time."""
        return self._base // self.cfg.hop_length

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add float32 samples in [-1, 1) (or int16 PCM, scaled on the way in: no temporary copy);
        return the energy (dBFS) of each frame they complete, float32. The first of those frames
        has the global index `frames` had before the call."""
        count = len(samples)
        if self._len + count > len(self._buf):
            self._make_room(count)
        room = self._buf[self._len : self._len + count]
        room[:] = samples  # converts to float32
        if samples.dtype == np.int16:
            room *= PCM16_SCALE  # exactly audio.pcm.pcm16_to_float
        self._len += count
        before, self.frames = self.frames, n_frames(self.samples, self.cfg)
        if self.frames == before:
            return np.zeros(0, dtype=np.float32)
        return frame_energy_db(windowed_part(self.spans(before, self.frames), self.cfg))

    def _make_room(self, incoming: int) -> None:
        """Drop samples no kept frame needs (frames before `frames - history_frames`), then grow
        the buffer if the chunk still does not fit: one copy per buffer length, not per push."""
        keep_from = max(self._base, (self.frames - self.history_frames) * self.cfg.hop_length)
        drop = keep_from - self._base
        if drop > 0:
            self._buf[: self._len - drop] = self._buf[drop : self._len]
            self._base, self._len = keep_from, self._len - drop
        if self._len + incoming > len(self._buf):
            grown = np.zeros(max(2 * len(self._buf), self._len + incoming), dtype=np.float32)
            grown[: self._len] = self._buf[: self._len]
            self._set_buffer(grown)

    def _set_buffer(self, buf: np.ndarray) -> None:
        """Use `buf` as the sample buffer, with a view of every frame position in it: the buffer
        starts on a frame boundary (samples are dropped a whole number of hops at a time), so the
        spans of any kept frames are a slice of rows, not a new strided view per push."""
        self._buf = buf
        self._rows = frame_spans(buf, self.cfg)

    def spans(self, start: int, end: int) -> np.ndarray:
        """Frame spans (a read-only view into the buffer) of the kept frames start..end-1."""
        first = start - self.oldest_frame
        if first < 0 or end > self.frames:
            raise ValueError(f"frames {start}..{end - 1} are not kept (have {self.oldest_frame}..{self.frames - 1})")
        return self._rows[first : first + end - start]

    def features(self, start: int, end: int) -> np.ndarray:
        """Feature columns (end - start, n_features) of frames start..end-1, computing those not in
        the cache in one batch. Identical to `signal_features` rows, whatever was asked before."""
        if end <= start:
            return np.zeros((0, self.cfg.n_features), dtype=np.float32)
        if end - start > self.history_frames:  # more than the cache holds: compute, do not cache
            return frame_features(self.spans(start, end), self.cfg, start, self.transform)
        frames = np.arange(start, end)
        slots = frames % self.history_frames
        missing = np.flatnonzero(self._cached[slots] != frames)
        if len(missing):
            for lo in range(start + int(missing[0]), start + int(missing[-1]) + 1, COMPUTE_FRAMES):
                hi = min(lo + COMPUTE_FRAMES, start + int(missing[-1]) + 1)
                fresh = slots[lo - start : hi - start]
                self._cache[fresh] = frame_features(self.spans(lo, hi), self.cfg, lo, self.transform)
                self._cached[fresh] = frames[lo - start : hi - start]
        return self._cache[slots]


def stream_features(chunks: Iterable[np.ndarray], cfg: FeatureConfig,
                    transform: SpectralTransform | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(features, energy_db) of every frame, computed by pushing `chunks` one by one and asking for
    each new frame's columns at once: the streaming path end to end, for tests and benchmarks."""
    front_end = StreamingFrontEnd(cfg, history_frames=BATCH_FRAMES, transform=transform)
    features, energies = [], []
    for chunk in chunks:
        before = front_end.frames
        energies.append(front_end.push(chunk))
        features.append(front_end.features(before, front_end.frames))
    if not energies:
        return np.zeros((0, cfg.n_features), dtype=np.float32), np.zeros(0, dtype=np.float32)
    return np.concatenate(features), np.concatenate(energies)
