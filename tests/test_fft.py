"""The front end's transforms: SciPy's pocketfft binding loaded on its own gives scipy.fft's numbers
bit for bit, costs neither scipy.fft's nor scipy.special's import, and falls back to scipy.fft."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.fft

from edge_ser.features import fft
from edge_ser.features.fft import PocketFFT, ScipyFFT, load_binding, transforms

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def light() -> PocketFFT:
    binding = load_binding()
    assert binding is not None, "this SciPy has no pocketfft binding where edge_ser looks for it"
    return PocketFFT(binding)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
@pytest.mark.parametrize("n", [None, 1024, 300])
def test_rfft_is_scipys_bit_for_bit(light: PocketFFT, dtype: type, n: int | None) -> None:
    x = (RNG.standard_normal((9, 512)) * 1000).astype(dtype)
    got, want = light.rfft(x, n), scipy.fft.rfft(x, n, axis=-1)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_irfft_and_dct1_are_scipys_bit_for_bit(light: PocketFFT, dtype: type) -> None:
    spectrum = scipy.fft.rfft(RNG.standard_normal((5, 1024)).astype(dtype), axis=-1)
    power = (spectrum * spectrum.conj()).real
    for value in (spectrum, power):  # complex and real input, as the pitch columns pass it
        assert np.array_equal(light.irfft(value, 1024), scipy.fft.irfft(value, 1024, axis=-1))
    folded = power[:, :129]
    got, want = light.dct1(folded), scipy.fft.dct(folded, type=1, axis=-1)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_transforms_invert_each_other(light: PocketFFT) -> None:
    """Independent of scipy.fft: a real signal survives rfft then irfft, and a unit impulse's DCT-I is flat."""
    x = RNG.standard_normal((3, 400))
    np.testing.assert_allclose(light.irfft(light.rfft(x, 512), 512)[:, :400], x, atol=1e-12)
    impulse = np.zeros(17)
    impulse[0] = 1.0
    np.testing.assert_array_equal(light.dct1(impulse), np.ones(17))


def test_the_device_loads_the_binding_without_scipy_fft_or_special() -> None:
    """In a fresh process the features use the light binding and import neither scipy.fft nor
    scipy.special; a later `import scipy.fft` then reuses the same module and still works."""
    code = ("import sys\nimport numpy as np\nfrom edge_ser.features.fft import transforms, BINDING\n"
            "t = transforms()\nt.rfft(np.ones((2, 512), np.float32))\n"
            "print(type(t).__name__, 'scipy.fft' in sys.modules, 'scipy.special' in sys.modules)\n"
            "import scipy.fft\nprint(scipy.fft._pocketfft.basic.pfft is sys.modules[BINDING],"
            " float(scipy.fft.rfft(np.ones(4))[0].real))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "PocketFFT False False", out
    assert out[1] == "True 4.0", out


def test_without_a_usable_binding_scipy_fft_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    transforms.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(fft, "load_binding", lambda: None)
            assert isinstance(transforms(), ScipyFFT)
            transforms.cache_clear()
            patch.setattr(fft, "load_binding", lambda: object())  # a binding without the expected calls
            assert isinstance(transforms(), ScipyFFT)
    finally:
        transforms.cache_clear()
    assert isinstance(transforms(), PocketFFT)
