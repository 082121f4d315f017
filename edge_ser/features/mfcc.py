"""MFCCs in NumPy/SciPy: window, power spectrum, mel filterbank, fixed-floor log, DCT-II.

Why it is written the way it is:

* Every frame is computed on its own (a stack of fixed-size matrix products aligned to the global
  frame index), never as part of a larger matrix whose BLAS kernel depends on how many rows
  happen to be there. That makes the streaming path bit-identical to the batch path for any
  chunking, which the design demands.
* The log uses a fixed power floor instead of a clip-relative ``top_db``: a frame's features
  depend on the frame alone, so a window's features depend on the window alone.
* The power spectrum is a separate step (`power_spectrum` then `mfcc_from_power`) so a training
  augmentation that transforms the spectrum (VTLP) plugs into the same code the device runs, via
  the front end's spectral hook (frontend.SpectralTransform).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edge_ser.features.config import FeatureConfig
from edge_ser.features.fft import transforms


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


SPECTRUM_BLOCK = 32  # frames transformed at a time: scratch arrays of 64 KB, below glibc's mmap threshold


def power_spectrum(frames: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """|rfft|^2 of windowed frames, float32. A frame shorter than n_fft is zero-padded at the end:
    the same magnitudes as librosa's centred padding, because a circular shift only changes phase.

    Why in blocks of SPECTRUM_BLOCK frames: transforming a long signal at once makes padded and
    complex temporaries of megabytes, which the allocator maps fresh from the kernel on every call
    and releases after; their page faults cost more than the FFT (60 s of speech: 15 ms at once,
    5-6 ms in blocks, here). Small blocks reuse the same cached memory. Every frame's transform is
    the same whatever the block size, so the numbers do not change."""
    count = len(frames)
    power = np.empty((count, cfg.n_fft // 2 + 1), dtype=np.float32)
    padded = np.zeros((min(count, SPECTRUM_BLOCK), cfg.n_fft), dtype=np.float32)
    window, fft = analysis_window(cfg), transforms()
    for start in range(0, count, SPECTRUM_BLOCK):
        stop = min(start + SPECTRUM_BLOCK, count)
        block = padded[: stop - start]
        np.multiply(frames[start:stop], window, out=block[:, : cfg.frame_length])
        np.abs(fft.rfft(block), out=power[start:stop])  # |z| of complex64 is float32
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
    out: np.ndarray = np.matmul(padded.reshape(-1, MATMUL_GROUP, width), matrix)
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
