"""The project as a user gets it from a package index: an sdist and a wheel built from it, the wheel
installed into a fresh venv, and the commands run from there.

`python -m build` builds the wheel *from the sdist*, so a file the sdist leaves out breaks the
wheel here. The fresh venv installs the wheel without its dependencies and borrows them from this
environment through a path file (`pip check` then confirms the wheel's requirements are met):
downloading NumPy, SciPy and the TFLite runtime again would only test the package index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import write_wav

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
                              "test-artefacts")

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run without the test run's PYTHONPATH (it names the checkout), in `cwd` (not the checkout:
    `python -c` imports from its working directory)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, f"{cmd}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build", reason="the 'build' package (dev extra) builds the sdist and the wheel")
    source = tmp_path_factory.mktemp("src") / "edge-ser"
    shutil.copytree(REPO, source, symlinks=True, ignore=SKIP)  # never write build output into the checkout
    out = source.parent / "dist"
    _run(sys.executable, "-m", "build", "--outdir", out, source, cwd=source.parent)
    return out


def _only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_the_wheel_carries_the_profiles_the_unit_and_both_licences(dist: Path) -> None:
    names = set(zipfile.ZipFile(_only(dist, "*.whl")).namelist())
    for profile in ("rpi4.toml", "rpi-zero2w.toml", "kiosk-x86.toml", "robot.toml", "edge-ser.service",
                    "README.md", "mosquitto/acl", "mosquitto/mosquitto.conf", "mosquitto/bridge.conf"):
        assert f"edge_ser/firmware_config/{profile}" in names
    assert {"edge_ser/model/bundled/default.tflite", "edge_ser/protocol/schemas/event.json"} <= names
    meta = zipfile.ZipFile(_only(dist, "*.whl")).read("edge_ser-0.1.0.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0 AND CC-BY-NC-SA-4.0" in meta
    assert "Classifier: Topic :: Home Automation" in meta
    assert {"edge_ser-0.1.0.dist-info/licenses/LICENSE", "edge_ser-0.1.0.dist-info/licenses/NOTICE"} <= names


def test_the_sdist_runs_its_own_tests(dist: Path, tmp_path: Path) -> None:
    with tarfile.open(_only(dist, "*.tar.gz")) as sdist:
        sdist.extractall(tmp_path, filter="data")
    root = _only(tmp_path, "edge_ser-*")
    assert (root / "firmware_config" / "edge-ser.service").is_file() and (root / "LICENSE").is_file()
    # the layer rules and the payload schemas, run from the unpacked sdist against its own code
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_layers.py",
                             "tests/test_events_schema.py"], cwd=root, env={"PATH": "/usr/bin:/bin",
                                                                            "PYTHONPATH": str(root)},
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]


def test_a_fresh_venv_with_the_wheel_runs_edge_ser(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"

    def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
        return _run(*cmd, cwd=tmp_path)

    run(py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", _only(dist, "*.whl"))
    site = Path(run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after the venv's own
    run(py, "-m", "pip", "check")
    where = run(py, "-c", "import edge_ser; print(edge_ser.__file__)").stdout.strip()
    assert where.startswith(str(site)), "edge_ser must come from the installed wheel, not the checkout"

    exe = venv / "bin" / "edge-ser"
    assert "predict" in run(exe, "--help").stdout
    wav = tmp_path / "tone.wav"
    t = np.arange(3 * 16000) / 16000
    write_wav(wav, 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 0.4 * t) > 0), 16000)
    (line,) = run(exe, "predict", wav).stdout.splitlines()
    assert line.startswith(f"{wav}: ")  # a label (or "no speech detected"), from the bundled model
    # the documented way to find the profiles of a wheel install (firmware_config/README.md)
    fw = run(py, "-c", "import edge_ser, pathlib; print(pathlib.Path(edge_ser.__file__).parent / "
                        "'firmware_config')").stdout.strip()
    assert (Path(fw) / "edge-ser.service").is_file()
