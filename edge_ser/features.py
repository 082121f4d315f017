"""Window-local MFCC front end in NumPy/SciPy, shared by the device, `predict` and training.

Why it is written the way it is:

* Every frame is computed on its own (a stack of 1-row matrix products), never as part of a
  larger matrix whose BLAS kernel depends on how many rows happen to be there. That makes the
  streaming path bit-identical to the batch path for any chunking, which the design demands.
* The log uses a fixed power floor instead of a clip-relative ``top_db``: a frame's features
  depend on the frame alone, so a window's features depend on the window alone.
* SciPy's FFT is imported on first use: it is ~5x faster than NumPy's on batches of frames, but
  importing it costs about half a second and 30 MB (it pulls in scipy.special), which would
  otherwise be paid by every `import edge_ser` and model load.
* Frames follow librosa's ``center=False`` convention (a ``frame_length`` window centred in an
  ``n_fft`` span) so the numbers can be checked against ``librosa.feature.mfcc``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from edge_ser.errors import ConfigError

MEL_SCALES = ("slaney", "htk")
NORMALISATIONS = ("none", "level", "cmn", "cmvn")
WINDOWS = ("hann", "hamming")
PITCH_COLUMNS = 2  # voicing strength, log2(F0 / PITCH_REFERENCE_HZ)
PITCH_REFERENCE_HZ = 150.0  # between typical male and female voices: log-F0 columns centre near 0
VOICING_THRESHOLD = 0.5  # normalised autocorrelation peak above which a frame counts as voiced
MAX_PITCH_LAG_FRACTION = 0.6  # longest period searched, as a fraction of the frame span
PITCH_CANDIDATE_RATIO = 0.85  # the shortest-lag peak this close to the best wins (no subharmonics)


@dataclass(frozen=True)
class FeatureConfig:
    """Every parameter that shapes the features; stored in each model manifest and checked at load."""

    sample_rate: int = 16000
    frame_length: int = 400  # samples under the analysis window (25 ms)
    hop_length: int = 160  # samples between frames (10 ms)
    n_fft: int = 512  # FFT size; also the span of one frame, as in librosa with center=False
    window: str = "hann"  # periodic window of `frame_length` samples
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 8000.0
    mel_scale: str = "slaney"  # "slaney" (librosa default) or "htk"
    n_mfcc: int = 20
    log_floor: float = 1e-10  # power floor before 10*log10: fixed, never relative to the clip
    lifter: int = 0
    # Per analysis window: "none", "level" (mean of c0 only), "cmn" (mean) or "cmvn" (mean+variance).
    normalisation: str = "cmvn"
    # Fixed divisor per coefficient, applied after the per-window normalisation; fitted on training
    # data by the converter (empty: none). The model's int8 input has one scale for all coefficients,
    # and after CMN c0 spans ~15x the range of c19, which would leave the small cepstra a few steps.
    coefficient_scale: tuple[float, ...] = ()
    # Append per frame (voicing, log2 F0 / 150 Hz) after the cepstra: the prosody (pitch level and
    # contour) that 20 cepstra of 40 mel bands smooth away, and which separates sad from neutral or
    # happy from angry far better than the spectral envelope does. See pitch_features.
    pitch: bool = False
    pitch_fmin: float = 70.0
    pitch_fmax: float = 500.0

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate <= 0:
            problems.append("sample_rate must be positive")
        if not 0 < self.frame_length <= self.n_fft:
            problems.append("frame_length must be in 1..n_fft")
        if self.hop_length <= 0:
            problems.append("hop_length must be positive")
        if self.window not in WINDOWS:
            problems.append(f"window must be one of {WINDOWS}")
        if self.mel_scale not in MEL_SCALES:
            problems.append(f"mel_scale must be one of {MEL_SCALES}")
        if self.normalisation not in NORMALISATIONS:
            problems.append(f"normalisation must be one of {NORMALISATIONS}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append("need 0 <= fmin < fmax <= sample_rate/2")
        if not 0 < self.n_mfcc <= self.n_mels:
            problems.append("n_mfcc must be in 1..n_mels")
        if self.log_floor <= 0:
            problems.append("log_floor must be positive")
        if self.lifter < 0:
            problems.append("lifter must be >= 0")
        if self.coefficient_scale and (len(self.coefficient_scale) != self.n_features
                                       or not all(v > 0 for v in self.coefficient_scale)):
            problems.append("coefficient_scale must be empty or one positive number per feature column")
        if not 0 < self.pitch_fmin < self.pitch_fmax <= self.sample_rate / 4:
            problems.append("need 0 < pitch_fmin < pitch_fmax <= sample_rate/4")
        elif self.pitch and self.sample_rate / self.pitch_fmin > MAX_PITCH_LAG_FRACTION * self.n_fft:
            problems.append("pitch_fmin too low for n_fft: its period must overlap itself in a frame span")
        if problems:
            raise ConfigError("invalid feature config: " + "; ".join(problems))

    @property
    def n_features(self) -> int:
        """Columns per frame: the cepstra, then the pitch columns if enabled."""
        return self.n_mfcc + (PITCH_COLUMNS if self.pitch else 0)

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    def frame_start(self, frame: int) -> float:
        """Time (s) of the first sample of `frame`."""
        return max(frame, 0) * self.hop_length / self.sample_rate

    def frame_end(self, end_frame: int) -> float:
        """Time (s) just after the last sample of the frames before `end_frame`."""
        return ((end_frame - 1) * self.hop_length + self.n_fft) / self.sample_rate

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown feature config keys: {', '.join(unknown)}")
        fields = dict(data)
        if isinstance(fields.get("coefficient_scale"), list):  # JSON has no tuples
            fields["coefficient_scale"] = tuple(fields["coefficient_scale"])
        return cls(**fields)  # type: ignore[arg-type]


def _hz_to_mel(hz: np.ndarray, scale: str) -> np.ndarray:
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    # Slaney: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray, scale: str) -> np.ndarray:
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


@lru_cache(maxsize=16)
def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Triangular mel filters, area-normalised (Slaney), shape (n_fft//2+1, n_mels), float32."""
    bins = np.linspace(0.0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    edges_mel = np.linspace(
        _hz_to_mel(np.array(cfg.fmin), cfg.mel_scale),
        _hz_to_mel(np.array(cfg.fmax), cfg.mel_scale),
        cfg.n_mels + 2,
    )
    edges = _mel_to_hz(edges_mel, cfg.mel_scale)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - left) / (centre - left)
    falling = (right - bins[None, :]) / (right - centre)
    tri = np.maximum(0.0, np.minimum(rising, falling))
    tri *= (2.0 / (right - left))  # equal area per filter
    return np.ascontiguousarray(tri.T, dtype=np.float32)


@lru_cache(maxsize=16)
def dct_matrix(cfg: FeatureConfig) -> np.ndarray:
    """Orthonormal DCT-II (n_mels -> n_mfcc) with optional liftering folded in, float32."""
    k = np.arange(cfg.n_mfcc)[:, None]
    n = np.arange(cfg.n_mels)[None, :]
    basis = np.sqrt(2.0 / cfg.n_mels) * np.cos(np.pi * k * (2 * n + 1) / (2 * cfg.n_mels))
    basis[0] /= np.sqrt(2.0)
    if cfg.lifter > 0:
        n = np.arange(1, cfg.n_mfcc + 1)
        basis = basis * (1.0 + (cfg.lifter / 2.0) * np.sin(np.pi * n / cfg.lifter))[:, None]
    return np.ascontiguousarray(basis.T, dtype=np.float32)


@lru_cache(maxsize=16)
def analysis_window(cfg: FeatureConfig) -> np.ndarray:
    """Periodic window (the FFT convention librosa and scipy use), float32."""
    n = np.arange(cfg.frame_length)
    alpha = 0.5 if cfg.window == "hann" else 0.54
    return (alpha - (1 - alpha) * np.cos(2 * np.pi * n / cfg.frame_length)).astype(np.float32)


def n_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Number of complete frames in `n_samples` (librosa center=False convention)."""
    return 0 if n_samples < cfg.n_fft else 1 + (n_samples - cfg.n_fft) // cfg.hop_length


def frame_spans(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Read-only view (no copy) of the full n_fft span of every complete frame: (frames, n_fft)."""
    signal = np.ascontiguousarray(signal)
    count = n_frames(len(signal), cfg)
    if count == 0:
        return np.empty((0, cfg.n_fft), dtype=signal.dtype)
    size = signal.itemsize
    # The ndarray constructor, not as_strided: same view, a tenth of the per-call cost, which
    # matters when the device pushes a few frames at a time.
    view = np.ndarray((count, cfg.n_fft), dtype=signal.dtype, buffer=signal, strides=(cfg.hop_length * size, size))
    view.flags.writeable = False
    return view


def windowed_part(spans: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The `frame_length` samples centred in each span: what the MFCC window covers (a view)."""
    offset = (cfg.n_fft - cfg.frame_length) // 2
    return spans[:, offset : offset + cfg.frame_length]


def frame_signal(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Read-only view (no copy) of the windowed part of every complete frame: (frames, frame_length)."""
    return windowed_part(frame_spans(signal, cfg), cfg)


@lru_cache(maxsize=1)
def _fft_module() -> Any:
    import scipy.fft  # deferred: see the module docstring

    return scipy.fft


def power_spectrum(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """|rfft|^2 of windowed frames, float32. A frame shorter than n_fft is zero-padded at the end:
    the same magnitudes as librosa's centred padding, because a circular shift only changes phase."""
    padded = np.zeros((len(frames), cfg.n_fft), dtype=np.float32)
    np.multiply(frames, analysis_window(cfg), out=padded[:, : cfg.frame_length])
    power = np.abs(_fft_module().rfft(padded, axis=-1, overwrite_x=True))  # |z| of complex64 is float32
    power *= power
    return power


MATMUL_GROUP = 8  # frames per matrix product, aligned to the global frame index


def _grouped_matmul(rows: np.ndarray, matrix: np.ndarray, first: int) -> np.ndarray:
    """`rows @ matrix`, where rows[i] is global frame `first + i`.

    BLAS picks its kernels by the shape of a product and a row's place in it, so a frame's result
    could change with the number of frames computed together. Here frames are always multiplied in
    groups of MATMUL_GROUP at the position their global index gives them (partial groups padded
    with zeros): the same frame meets the same kernel whatever the chunking, and the products are
    still large enough to be fast.
    """
    lead, n, width = first % MATMUL_GROUP, len(rows), rows.shape[1]
    total = -(-(lead + n) // MATMUL_GROUP) * MATMUL_GROUP
    if lead == 0 and total == n:
        padded = rows
    else:
        padded = np.zeros((total, width), dtype=rows.dtype)
        padded[lead : lead + n] = rows
    out = np.matmul(padded.reshape(-1, MATMUL_GROUP, width), matrix)
    return out.reshape(total, matrix.shape[1])[lead : lead + n]


def log_mel_from_power(power: np.ndarray, cfg: FeatureConfig, first: int = 0) -> np.ndarray:
    """Log-mel power in dB with a fixed floor, one row per frame, float32 (`first`: global index
    of the first frame, see _grouped_matmul)."""
    mel = _grouped_matmul(power, mel_filterbank(cfg), first)
    np.maximum(mel, np.float32(cfg.log_floor), out=mel)
    np.log10(mel, out=mel)
    mel *= np.float32(10.0)
    return mel


def mfcc_from_power(power: np.ndarray, cfg: FeatureConfig, first: int = 0) -> np.ndarray:
    """MFCCs from power spectra: the step training augmentations that warp the spectrum (VTLP)
    share with the device, so their features cannot drift from it."""
    return _grouped_matmul(log_mel_from_power(power, cfg, first), dct_matrix(cfg), first)


def mfcc_frames(frames: np.ndarray, cfg: FeatureConfig, first: int = 0) -> np.ndarray:
    """MFCCs (frames, n_mfcc), float32, from framed samples whose first is global frame `first`."""
    return mfcc_from_power(power_spectrum(frames, cfg), cfg, first)


@lru_cache(maxsize=16)
def _pitch_tables(cfg: FeatureConfig) -> tuple[int, int, int, np.ndarray, np.ndarray]:
    """(FFT size, shortest and longest lag searched, the Hann window over a span, that window's own
    normalised autocorrelation)."""
    size = 1 << int(np.ceil(np.log2(2 * cfg.n_fft)))  # no circular wrap-around within a span
    shortest = int(np.floor(cfg.sample_rate / cfg.pitch_fmax))
    longest = int(np.ceil(cfg.sample_rate / cfg.pitch_fmin))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft)
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(window, size)) ** 2, size)
    return (size, shortest, longest, window.astype(np.float32),
            (window_ac[: longest + 2] / window_ac[0]).astype(np.float32))


def pitch_features(spans: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(frames, 2) float32 from frame spans (frame_spans): voicing strength in [0, 1] and
    log2(F0 / 150 Hz) (0 when unvoiced).

    Why this estimator: the autocorrelation of the Hann-windowed span, divided by the window's own
    autocorrelation (Boersma 1993), peaks near 1 at the pitch period of a voiced frame, so its
    height is a voicing strength and its lag the period. Among the peaks within
    PITCH_CANDIDATE_RATIO of the best the shortest lag wins, because a periodic signal also peaks
    at two and three periods (the classic octave-too-low error). Each frame is computed alone, so
    the columns are as chunk-invariant and window-local as the cepstra, and they are gain-invariant
    by construction (a ratio of autocorrelations and a frequency). It uses the whole n_fft span
    (32 ms), not the 25 ms MFCC window: a low male voice (85 Hz) needs close to three periods.
    """
    size, shortest, longest, window, window_ac = _pitch_tables(cfg)
    out = np.zeros((len(spans), PITCH_COLUMNS), dtype=np.float32)
    if len(spans) == 0:
        return out
    fft = _fft_module()
    spectrum = fft.rfft(spans * window, size, axis=-1)
    ac = fft.irfft((spectrum * spectrum.conj()).real, size, axis=-1)[:, : longest + 2]
    energy = ac[:, :1]
    ac = ac / np.where(energy > 1e-12, energy, np.inf) / window_ac
    span = ac[:, shortest - 1 : longest + 2]  # one lag either side, for the peak test and interpolation
    centre = span[:, 1:-1]
    is_peak = (centre >= span[:, :-2]) & (centre >= span[:, 2:])
    best = np.where(is_peak, centre, -np.inf).max(axis=1, keepdims=True)
    choice = (is_peak & (centre >= PITCH_CANDIDATE_RATIO * best)).argmax(axis=1)
    rows = np.arange(len(spans))
    left, top, right = span[rows, choice], span[rows, choice + 1], span[rows, choice + 2]
    curvature = left - 2 * top + right
    offset = np.clip(0.5 * (left - right) / np.where(np.abs(curvature) > 1e-9, curvature, -1.0), -0.5, 0.5)
    voicing = np.clip(np.where(np.isfinite(best[:, 0]), top, 0.0), 0.0, 1.0)
    lag = shortest + choice + offset
    out[:, 0] = voicing
    out[:, 1] = np.where(voicing >= VOICING_THRESHOLD, np.log2(cfg.sample_rate / lag / PITCH_REFERENCE_HZ), 0.0)
    return out


def with_pitch(cepstra: np.ndarray, spans: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The cepstra of the frames of `spans`, then their pitch columns if the config asks for them."""
    return np.hstack([cepstra, pitch_features(spans, cfg)]) if cfg.pitch else cepstra


def frame_features(spans: np.ndarray, cfg: FeatureConfig, first: int = 0) -> np.ndarray:
    """The model's per-frame columns (frames, n_features) from frame spans: MFCCs, then pitch if
    the config asks."""
    return with_pitch(mfcc_frames(windowed_part(spans, cfg), cfg, first), spans, cfg)


def frame_energy_db(frames: np.ndarray) -> np.ndarray:
    """Mean power of each raw frame in dBFS (float input in [-1, 1]); used by the voice gate."""
    power = np.einsum("ij,ij->i", frames, frames) / max(frames.shape[-1], 1)
    return (10.0 * np.log10(np.maximum(power, 1e-12))).astype(np.float32)


BATCH_FRAMES = 256  # frames per block in batch mode: intermediates stay in cache (~0.5 MB)


def _in_blocks(frames: np.ndarray, cfg: FeatureConfig,
               per_frames: Callable[[np.ndarray, FeatureConfig, int], np.ndarray]) -> np.ndarray:
    """`per_frames` over all `frames` in blocks of BATCH_FRAMES: the same numbers (every frame is
    computed on its own) with a working set that fits in cache."""
    if len(frames) <= BATCH_FRAMES:
        return per_frames(frames, cfg, 0)
    return np.concatenate([per_frames(frames[i : i + BATCH_FRAMES], cfg, i)
                           for i in range(0, len(frames), BATCH_FRAMES)])


def mfcc(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Batch MFCCs of a whole float32 signal: (frames, n_mfcc), the librosa-comparable part."""
    return _in_blocks(frame_signal(np.asarray(signal, dtype=np.float32), cfg), cfg, mfcc_frames)


def signal_features(signal: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Batch frame features of a whole float32 signal: (frames, n_features), what streaming yields."""
    return _in_blocks(frame_spans(np.asarray(signal, dtype=np.float32), cfg), cfg, frame_features)


def normalise_window(features: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Per-window cepstral normalisation, so a window carries no level or channel offset from
    outside it (recording levels and spectral tilt differ between corpora and microphones),
    then divided by the config's fixed per-coefficient scale, if it has one.

    "level" removes only the window mean of c0: a gain of g dB adds g to every log-mel band, which
    the orthonormal DCT maps to c0 alone, so this is exactly gain (distance to the microphone)
    invariant while the window keeps its average spectral shape (tilt, formants: voice quality).
    Pitch columns are never normalised: they are gain-invariant already, and a window's pitch
    level is what tells a raised voice from a calm one.
    """
    normalised = np.array(features, dtype=np.float32, copy=True)
    cepstra = normalised[:, : cfg.n_mfcc]
    if cfg.normalisation == "level":
        cepstra[:, 0] -= cepstra[:, 0].mean()
    elif cfg.normalisation in ("cmn", "cmvn"):
        mean = cepstra.mean(axis=0, keepdims=True)
        std = cepstra.std(axis=0, keepdims=True)
        cepstra -= mean
        if cfg.normalisation == "cmvn":
            cepstra /= np.maximum(std, 1e-3)
    if cfg.coefficient_scale:
        normalised = normalised / _scale_vector(cfg.coefficient_scale)
    return normalised.astype(np.float32, copy=False)


@lru_cache(maxsize=4)
def _scale_vector(scale: tuple[float, ...]) -> np.ndarray:
    return np.asarray(scale, dtype=np.float32)


@dataclass(frozen=True)
class FrameBlock:
    """Consecutive frames produced by the front end: `start` is the index of the first frame."""

    start: int
    features: np.ndarray  # (n, n_features) float32: MFCCs (+ pitch columns)
    energy_db: np.ndarray  # (n,) float32

    def __len__(self) -> int:
        return len(self.energy_db)


class StreamingFrontEnd:
    """Incremental front end: push samples of any chunk size, get the frames they complete.

    Keeps only the samples not yet consumed by a complete frame, so memory is bounded by n_fft.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self._pending = np.zeros(0, dtype=np.float32)
        self._next_frame = 0

    def push(self, samples: np.ndarray) -> FrameBlock:
        """Add float32 samples; return the frames that are now complete (possibly none)."""
        buf = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        spans = frame_spans(buf, self.cfg)
        count = len(spans)
        block = FrameBlock(self._next_frame, frame_features(spans, self.cfg, self._next_frame),
                           frame_energy_db(windowed_part(spans, self.cfg)))
        self._pending = buf[count * self.cfg.hop_length :]
        self._next_frame += count
        return block


def stream_frames(chunks: Iterable[np.ndarray], cfg: FeatureConfig) -> Iterator[FrameBlock]:
    """Generator stage: float32 sample chunks in, non-empty FrameBlocks out."""
    front_end = StreamingFrontEnd(cfg)
    for chunk in chunks:
        block = front_end.push(chunk)
        if len(block):
            yield block
