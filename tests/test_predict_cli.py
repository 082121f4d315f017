"""`edge-ser predict` as a user runs it: a subprocess over real files, good and bad."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import write_wav
from edge_ser.model.classifier import Classifier
from edge_ser.recognise.recogniser import Recogniser, analyse


def predict(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_ser", "predict", *args], capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def corpus(tmp_path: Path, speech_16k: np.ndarray) -> Path:
    """A folder tree with speech at two rates, silence, a corrupt file and a non-audio file."""
    root = tmp_path / "recordings"
    (root / "nested").mkdir(parents=True)
    write_wav(root / "a_speech.wav", speech_16k, 16000)
    from scipy.signal import resample_poly

    write_wav(root / "nested" / "b_speech_48k.WAV", resample_poly(speech_16k, 3, 1), 48000)
    write_wav(root / "c_silence.wav", np.zeros(32000, dtype=np.float32), 16000)
    (root / "d_broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    (root / "notes.txt").write_text("not audio, ignored when walking folders")
    return root


def test_jsonl_over_a_folder_reports_every_good_file_and_fails_the_bad(corpus: Path, tiny_model: Path) -> None:
    result = predict("--model", str(tiny_model), "--format", "jsonl", str(corpus))
    assert result.returncode == 1, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["a_speech.wav", "c_silence.wav", "b_speech_48k.WAV"]
    speech, silence, resampled = rows
    assert set(speech["probabilities"]) == {"neutral", "happy", "angry"}
    assert speech["label"] == max(speech["probabilities"], key=speech["probabilities"].get)
    assert speech["confidence"] == pytest.approx(max(speech["probabilities"].values()))
    assert speech["speech_windows"] >= 1
    assert silence["label"] is None and silence["speech_windows"] == 0
    assert resampled["speech_windows"] >= 1 and resampled["duration_s"] == pytest.approx(speech["duration_s"], abs=0.01)
    assert "d_broken.wav" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_clip_result_is_the_mean_of_the_speech_windows(corpus: Path, tiny_model: Path, speech_16k) -> None:
    """Compare with the library chain run in this process on the same audio."""
    row = json.loads(predict("--model", str(tiny_model), "--format", "jsonl", "--timeline",
                             str(corpus / "a_speech.wav")).stdout)
    clf = Classifier(tiny_model)
    clip = analyse(Recogniser.from_manifest(clf), np.round(speech_16k * 32768).clip(-32768, 32767) / 32768)
    assert len(row["timeline"]) == len(clip.windows) == row["speech_windows"]
    mean = np.mean([list(w["probabilities"].values()) for w in row["timeline"]], axis=0)
    np.testing.assert_allclose(list(row["probabilities"].values()), mean, atol=2e-4)
    np.testing.assert_allclose(list(row["probabilities"].values()), clip.probabilities, atol=1e-4)
    starts = [w["start_s"] for w in row["timeline"]]
    assert starts == sorted(starts) and all(w["end_s"] > w["start_s"] for w in row["timeline"])


def test_text_output_and_timeline(corpus: Path, tiny_model: Path) -> None:
    result = predict("--model", str(tiny_model), "--timeline", str(corpus / "a_speech.wav"),
                     str(corpus / "c_silence.wav"))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{corpus / 'a_speech.wav'}: ")
    assert any(line.startswith("  ") and "s - " in line for line in lines[1:])
    assert lines[-1] == f"{corpus / 'c_silence.wav'}: no speech detected"


def test_model_problems_are_one_line_errors(tmp_path: Path, corpus: Path) -> None:
    result = predict("--model", str(tmp_path / "nope.tflite"), str(corpus))
    assert result.returncode == 2
    assert result.stderr.strip() == f"edge-ser: error: {tmp_path / 'nope.tflite'}: model file not found"


def test_an_adapting_model_adapts_within_a_file_unless_told_to_carry_on(tmp_path: Path, adapting_model: Path,
                                                                        speech_16k: np.ndarray) -> None:
    """Each file starts from the model's prior (one file, one speaker), so the same recording gives
    the same answer wherever it is in the list; --adapt-across-files carries the statistics on, so
    the second copy is heard with the first one's voice in memory."""
    write_wav(tmp_path / "a.wav", speech_16k, 16000)
    write_wav(tmp_path / "b.wav", speech_16k, 16000)
    files = [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    separate = predict("--model", str(adapting_model), "--format", "jsonl", *files)
    across = predict("--model", str(adapting_model), "--format", "jsonl", "--adapt-across-files", *files)
    assert separate.returncode == across.returncode == 0, separate.stderr + across.stderr
    first, second = (json.loads(line)["probabilities"] for line in separate.stdout.splitlines())
    assert first == second
    carried_first, carried_second = (json.loads(line)["probabilities"] for line in across.stdout.splitlines())
    assert carried_first == first and carried_second != first


@pytest.mark.parametrize(("placement", "info_shown"), [
    ([], False),
    (["-v", "predict"], True),
    (["predict", "-v"], True),
    (["predict", "--log-level", "info"], True),
    (["--log-level", "info", "predict"], True),
    (["-v", "predict", "--log-level", "warning"], False),  # an explicit level wins over -v
])
def test_verbosity_works_before_and_after_the_subcommand(tmp_path: Path, tiny_model: Path,
                                                         placement: list[str], info_shown: bool) -> None:
    """The classifier's info line (which model, which TFLite backend) shows exactly when asked for."""
    clip = tmp_path / "clip.wav"
    write_wav(clip, np.zeros(16000, dtype=np.float32), 16000)
    args = [*placement] if placement else ["predict"]
    result = subprocess.run([sys.executable, "-m", "edge_ser", *args, "--model", str(tiny_model), str(clip)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert ("INFO edge_ser.model.classifier: model " in result.stderr) == info_shown, result.stderr
