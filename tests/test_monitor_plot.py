"""Timeline plots: `edge-ser predict --timeline --plot` on a generated recording with two utterances,
through the bundled model, checked by the PNG's size and by what is drawn in it."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import write_wav
from edge_ser.model.classifier import Classifier
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.monitor.colours import colour
from edge_ser.monitor.plot import HEIGHT_PX, WIDTH_PX, plot_timeline
from edge_ser.recognise.recogniser import Recogniser, analyse

pytest.importorskip("matplotlib", reason="plots need the 'plot' extra (matplotlib)")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header, read independently of matplotlib."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.fixture
def two_utterances(speech_16k: np.ndarray) -> np.ndarray:
    """Speech, a second and a half of quiet room, the same speech at half the level."""
    gap = np.random.default_rng(1).standard_normal(24000).astype(np.float32) * 1e-3
    return np.concatenate([gap[:8000], speech_16k, gap, 0.5 * speech_16k, gap[:8000]]).astype(np.float32)


def test_predict_plot_writes_a_png_of_the_documented_size(tmp_path: Path, two_utterances: np.ndarray) -> None:
    wav = tmp_path / "talk.wav"
    write_wav(wav, two_utterances, 16000)
    out = tmp_path / "plots" / "talk.png"
    result = subprocess.run([sys.executable, "-m", "edge_ser", "predict", "--timeline", "--plot", str(out), str(wav)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "talk.wav:" in result.stdout
    assert png_size(out) == (1200, 600) == (WIDTH_PX, HEIGHT_PX)


def test_plot_of_a_multi_utterance_recording_shows_each_utterance_label(tmp_path: Path,
                                                                         two_utterances: np.ndarray) -> None:
    from PIL import Image

    classifier = Classifier(DEFAULT_MODEL)
    clip = analyse(Recogniser.from_manifest(classifier), two_utterances)
    assert len(clip.utterances) >= 2, "the fixture must give the segmenter several utterances"
    out = plot_timeline(tmp_path / "t.png", two_utterances, 16000, clip, classifier.labels, title="two")
    pixels = np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3).astype(int)
    # Every class that tops some window is painted in the probability stack in its own colour.
    tops = {classifier.labels[int(np.argmax(w.probabilities))] for w in clip.windows if w.probabilities is not None}
    for label in tops:
        rgb = np.array([int(colour(label)[i:i + 2], 16) for i in (1, 3, 5)])
        near = np.abs(pixels - rgb).max(axis=1) <= 40
        assert near.sum() > 200, f"{label} ({colour(label)}) is not drawn"


def test_plot_with_several_files_is_a_one_line_error(tmp_path: Path, speech_16k: np.ndarray) -> None:
    for name in ("a.wav", "b.wav"):
        write_wav(tmp_path / name, speech_16k, 16000)
    result = subprocess.run([sys.executable, "-m", "edge_ser", "predict", "--plot", str(tmp_path / "x.png"),
                             str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "edge-ser: error: --plot draws one recording: give one audio file, not 2"
    assert not (tmp_path / "x.png").exists()
