"""Real speech for tests: a RAVDESS clip when ../shared/data is there, else espeak-ng speech.

Both are real recordings of speech-like signals with silence around them, which is what the
front end, the gate and the segmenter are built for; synthetic sines would not exercise them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import load_audio

REPO = Path(__file__).resolve().parents[1]
RAVDESS = REPO.parent / "shared" / "data" / "ravdess"
TINY_MODEL = REPO / "tests" / "fixtures" / "tiny.tflite"


def ravdess_clip(name: str = "Actor_01/03-01-05-02-01-01-01.wav") -> Path | None:
    path = RAVDESS / name
    return path if path.is_file() else None


def espeak_wav(path: Path, text: str, voice: str = "en", speed: int = 150) -> Path:
    """Synthesise `text` to `path` with espeak-ng (skips the test if espeak-ng is missing)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True,
                   capture_output=True)
    return path


ROOM_NOISE_DBFS = -60.0  # a quiet room through a real microphone


@pytest.fixture(scope="session")
def speech_16k(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """A few seconds of real speech at 16 kHz, float32: one utterance with silence around it.

    The espeak-ng stand-in is one sentence without punctuation (a full stop makes a pause the gate
    rightly splits) with seeded room noise added: a synthesiser writes exact digital zeros, which
    no microphone delivers and which pin silent frames to the log floor, so a gain change would
    no longer be a pure c0 shift there."""
    clip = ravdess_clip()
    if clip is not None:
        return load_audio(clip, 16000)
    wav = espeak_wav(tmp_path_factory.mktemp("speech") / "speech.wav",
                     "Kids are talking by the door while the dogs are sitting by the window")
    speech = load_audio(wav, 16000)
    noise = np.random.default_rng(0).standard_normal(len(speech)) * 10 ** (ROOM_NOISE_DBFS / 20)
    return (speech + noise).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The committed tiny int8 model (built by tests/fixtures/make_tiny_model.py)."""
    assert TINY_MODEL.is_file(), "tests/fixtures/tiny.tflite is missing: run tests/fixtures/make_tiny_model.py"
    return TINY_MODEL


@pytest.fixture
def model_copy(tmp_path: Path, tiny_model: Path) -> Path:
    """A private copy of the tiny model and its manifest that a test may edit or damage."""
    target = tmp_path / "model.tflite"
    shutil.copy(tiny_model, target)
    shutil.copy(tiny_model.with_suffix(".json"), target.with_suffix(".json"))
    return target


ADAPTING_PRIOR_FRAMES = 80.0


@pytest.fixture
def adapting_model(model_copy: Path) -> Path:
    """The tiny model as an adapting one: speaker CMVN and a prior in its manifest (the weights were
    trained on per-window CMVN, so its outputs mean little; what adapts and what is kept is tested)."""
    manifest = json.loads(model_copy.with_suffix(".json").read_text())
    manifest["features"]["normalisation"] = "speaker-cmvn"
    manifest["adaptation"] = {"pitch": False, "prior_frames": ADAPTING_PRIOR_FRAMES, "horizon_frames": 6000.0,
                              "prior_mean": [-150.0] + [0.0] * 19, "prior_var": [400.0] + [25.0] * 19,
                              "prior_f0_hz": 150.0}
    model_copy.with_suffix(".json").write_text(json.dumps(manifest))
    return model_copy
