"""The real daemon as a subprocess (`python -m edge_ser run`), fed by real WAV audio, and the
audio it is fed: end-to-end tests in the manner of rhasspy's wyoming tests.

Output goes to files, not pipes, so a chatty daemon can never block on a full pipe while a test
waits for something else.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_ser.audio.wavfile import write_wav
from edge_ser_testing.synthetic import synthetic_clip

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = REPO / "tests" / "fixtures" / "tiny.tflite"
WAIT_S = 20.0  # generous: the suite must pass on a loaded 2-core machine


def synthetic_speech_wav(path: Path, classes: tuple[int, ...] = (0, 1, 2, 0), seconds: float = 1.6) -> Path:
    """One utterance per entry (voiced tone of the tiny model's class), each framed by 0.4 s of silence."""
    signal_ = np.concatenate([synthetic_clip(c, seed=i, seconds=seconds) for i, c in enumerate(classes)])
    write_wav(path, signal_, 16000)
    return path


def silence_wav(path: Path, seconds: float = 3.0) -> Path:
    """Room noise far below speech level: the gate must never open on it."""
    noise = np.random.default_rng(0).normal(0.0, 3e-4, int(seconds * 16000))
    write_wav(path, noise, 16000)
    return path


class DaemonProcess:
    """`python -m edge_ser -v run --model tiny.tflite ARGS`, with its output captured to files."""

    def __init__(self, args: list[str], workdir: Path, env: dict[str, str] | None = None,
                 model: Path = TINY_MODEL) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = workdir / "stdout.txt", workdir / "stderr.txt"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "edge_ser", "-v", "run", "--model", str(model), *args],
                                         cwd=REPO, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """Events printed with --stdout (log lines go to stderr then)."""
        return [json.loads(line) for line in self.stdout().splitlines() if line.startswith("{")]

    def wait_for_output(self, text: str, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stdout() + self.stderr():
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) before printing {text!r}:\n"
                                     f"{self.stderr()}\n{self.stdout()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"daemon did not print {text!r} within {timeout:.0f} s:\n{self.stderr()}")
            time.sleep(0.05)

    def wait(self, timeout: float = WAIT_S) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"daemon still running after {timeout:.0f} s:\n{self.stderr()}") from None

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def daemon_runner(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Factory: `daemon_runner(args, env=None)`; every daemon still running is killed at teardown."""
    started: list[DaemonProcess] = []

    def run(args: list[str], env: dict[str, str] | None = None, **kwargs: Any) -> DaemonProcess:
        daemon = DaemonProcess(args, tmp_path / f"daemon{len(started)}", env, **kwargs)
        started.append(daemon)
        return daemon

    yield run
    for daemon in started:
        daemon.kill()
