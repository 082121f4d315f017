"""The three transforms the front end needs (real FFT, its inverse, DCT-I), without `import scipy.fft`.

Why: `import scipy.fft` also imports scipy.special (through scipy.fft's log-FFT module), about 24 MB
of resident memory and 0.2 s of CPU here, seconds on a Pi, that the device never uses. The
transforms themselves live in one small compiled module, SciPy's pocketfft binding
(`scipy/fft/_pocketfft/pypocketfft`), which needs NumPy alone; NumPy's own FFT is 4-5x slower on
batches of frames. Importing the binding by name would run scipy.fft's `__init__` and pay the whole
cost, so it is loaded from its file and registered under its own name: a later `import scipy.fft` in
the same process (training, tests) then reuses this very module instead of initialising the
extension twice. It is called exactly as scipy.fft's wrappers call it, so the numbers are
bit-identical (tests compare them). If a SciPy release moves or reshapes the binding, `transforms`
falls back to scipy.fft itself: slower to import, same results.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np

BINDING = "scipy.fft._pocketfft.pypocketfft"
_ONE_THREAD = 1  # the device's pipeline is single-threaded; scipy.fft's default is one worker too
_NO_SCALING, _DIVIDE_BY_N = 0, 2  # pocketfft's `inorm` codes for the forward and the inverse transform


class Transforms(Protocol):
    """What the MFCC and pitch columns call; every transform runs along the last axis."""

    def rfft(self, x: np.ndarray, n: int | None = None) -> np.ndarray: ...

    def irfft(self, x: np.ndarray, n: int) -> np.ndarray: ...

    def dct1(self, x: np.ndarray) -> np.ndarray: ...


def _fit_last_axis(x: np.ndarray, n: int) -> np.ndarray:
    """`x` cut or zero-padded at the end of its last axis to `n` points (scipy's `n=` semantics)."""
    have = x.shape[-1]
    if have == n:
        return x
    if have > n:
        return x[..., :n]
    padded = np.zeros((*x.shape[:-1], n), dtype=x.dtype)
    padded[..., :have] = x
    return padded


def _real(x: np.ndarray) -> np.ndarray:
    """Float input as pocketfft takes it: float32 stays float32, anything else becomes float64."""
    return x if x.dtype in (np.float32, np.float64) else np.asarray(x, dtype=np.float64)


class PocketFFT:
    """The transforms on SciPy's pocketfft binding, with scipy.fft's defaults (no forward scaling)."""

    def __init__(self, binding: ModuleType) -> None:
        self._pfft = binding

    def rfft(self, x: np.ndarray, n: int | None = None) -> np.ndarray:
        x = _real(x)
        x = x if n is None else _fit_last_axis(x, n)
        result: np.ndarray = self._pfft.r2c(x, (x.ndim - 1,), True, _NO_SCALING, None, _ONE_THREAD)
        return result

    def irfft(self, x: np.ndarray, n: int) -> np.ndarray:
        spectrum = _fit_last_axis(x + 0j if np.isrealobj(x) else x, n // 2 + 1)
        result: np.ndarray = self._pfft.c2r(spectrum, (spectrum.ndim - 1,), n, False, _DIVIDE_BY_N, None,
                                            _ONE_THREAD)
        return result

    def dct1(self, x: np.ndarray) -> np.ndarray:
        x = _real(x)
        result: np.ndarray = self._pfft.dct(x, 1, (x.ndim - 1,), _NO_SCALING, None, _ONE_THREAD, None)
        return result


class ScipyFFT:
    """The fallback: the public scipy.fft API (pays the scipy.special import)."""

    def __init__(self) -> None:
        import scipy.fft

        self._fft = scipy.fft

    def rfft(self, x: np.ndarray, n: int | None = None) -> np.ndarray:
        result: np.ndarray = self._fft.rfft(x, n, axis=-1)
        return result

    def irfft(self, x: np.ndarray, n: int) -> np.ndarray:
        result: np.ndarray = self._fft.irfft(x, n, axis=-1)
        return result

    def dct1(self, x: np.ndarray) -> np.ndarray:
        result: np.ndarray = self._fft.dct(x, type=1, axis=-1)
        return result


def load_binding() -> ModuleType | None:
    """SciPy's pocketfft binding, loaded without running scipy.fft's `__init__`; None if not found.

    When scipy.fft is already imported (training, tests), its own module object is returned."""
    if BINDING in sys.modules:
        return sys.modules[BINDING]
    scipy_spec = importlib.util.find_spec("scipy")  # locates the package without importing it
    if scipy_spec is None or not scipy_spec.submodule_search_locations:
        return None
    folder = Path(next(iter(scipy_spec.submodule_search_locations))) / "fft" / "_pocketfft"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"pypocketfft{suffix}"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(BINDING, path)
            if spec is None or spec.loader is None:
                return None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[BINDING] = module
            return module
    return None


def _binding_is_usable(binding: ModuleType) -> bool:
    """The binding answers the calls PocketFFT makes, with the expected numbers (a tiny probe)."""
    try:
        probe = PocketFFT(binding)
        spectrum = probe.rfft(np.array([1.0, 0.0, 0.0, 0.0]))
        return bool(np.allclose(spectrum, 1.0) and np.allclose(probe.irfft(spectrum, 4), [1.0, 0.0, 0.0, 0.0])
                    and np.allclose(probe.dct1(np.array([1.0, 0.0, 0.0])), 1.0))
    except (TypeError, AttributeError, ValueError, RuntimeError):
        return False


@lru_cache(maxsize=1)
def transforms() -> Transforms:
    """The light binding when this SciPy has a usable one, else scipy.fft (same numbers either way)."""
    try:
        binding = load_binding()
    except ImportError:
        binding = None
    if binding is not None and _binding_is_usable(binding):
        return PocketFFT(binding)
    return ScipyFFT()
