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
    # Reported to 3 decimals: a rounded value is within 5e-4 of the exact one, a mean of rounded
    # window values within 5e-4 of the exact mean.
    np.testing.assert_allclose(list(row["probabilities"].values()), mean, atol=1.001e-3)
    np.testing.assert_allclose(list(row["probabilities"].values()), clip.probabilities, atol=5.001e-4)
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


def _other_containers(root: Path, speech: np.ndarray) -> dict[str, Path]:
    """The same speech as FLAC, OGG/Vorbis and AIFF, the AIFF behind a `.wav` name as corpora ship it."""
    sf = pytest.importorskip("soundfile", reason="soundfile (the 'audio' extra) writes and reads these containers")
    root.mkdir(parents=True, exist_ok=True)
    made = {"flac": root / "s.flac", "ogg": root / "s.ogg", "aiff": root / "aiff_data.wav"}
    sf.write(made["flac"], speech, 16000, format="FLAC", subtype="PCM_16")
    sf.write(made["ogg"], speech, 16000, format="OGG", subtype="VORBIS")
    sf.write(made["aiff"], speech, 16000, format="AIFF", subtype="PCM_16")
    return made


def test_flac_ogg_and_aiff_behind_a_wav_name_are_read_like_the_wav(tmp_path: Path, tiny_model: Path,
                                                                   speech_16k: np.ndarray) -> None:
    made = _other_containers(tmp_path / "other", speech_16k)
    write_wav(tmp_path / "reference.wav", speech_16k, 16000)
    reference = json.loads(predict("--model", str(tiny_model), "--format", "jsonl", str(tmp_path / "reference.wav"))
                           .stdout)
    result = predict("--model", str(tiny_model), "--format", "jsonl", str(tmp_path / "other"))
    assert result.returncode == 0, result.stderr
    rows = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {p.name for p in made.values()}  # a folder of non-WAV files is searched, not skipped
    for name in ("s.flac", "aiff_data.wav"):  # lossless: the same samples as the WAV
        np.testing.assert_allclose(list(rows[name]["probabilities"].values()),
                                   list(reference["probabilities"].values()), atol=2e-3)
    assert rows["s.ogg"]["speech_windows"] >= 1 and rows["s.ogg"]["duration_s"] == pytest.approx(
        reference["duration_s"], abs=0.01)


def test_a_corrupt_flac_names_the_file_and_the_reason(tmp_path: Path, tiny_model: Path,
                                                      speech_16k: np.ndarray) -> None:
    flac = _other_containers(tmp_path, speech_16k)["flac"]
    flac.write_bytes(flac.read_bytes()[:60])  # the stream header survives, the audio does not
    result = predict("--model", str(tiny_model), str(flac))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"edge-ser: skipped {flac}: corrupt FLAC: ")


def test_without_soundfile_wav_still_works_and_a_flac_says_what_to_install(tmp_path: Path, tiny_model: Path,
                                                                          speech_16k: np.ndarray) -> None:
    made = _other_containers(tmp_path / "audio", speech_16k)
    write_wav(tmp_path / "audio" / "plain.wav", speech_16k, 16000)
    # soundfile made unimportable, as on a device installed without the 'audio' extra
    code = ("import sys; sys.modules['soundfile'] = None; from edge_ser.cli import main; "
            "sys.exit(main(['predict', '--model', sys.argv[1], '--format', 'jsonl', sys.argv[2]]))")
    result = subprocess.run([sys.executable, "-c", code, str(tiny_model), str(tmp_path / "audio")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert [Path(json.loads(line)["path"]).name for line in result.stdout.splitlines()] == ["plain.wav"]
    errors = sorted(result.stderr.strip().splitlines())
    assert errors == sorted(f"edge-ser: skipped {made[k]}: {kind} data: install the 'audio' extra (pip install "
                            f"'edge-ser[audio]', i.e. soundfile) to read it, or convert it to WAV"
                            for k, kind in (("flac", "FLAC"), ("ogg", "OGG"), ("aiff", "AIFF")))


def test_reading_a_wav_does_not_import_soundfile(tmp_path: Path, tiny_model: Path, speech_16k: np.ndarray) -> None:
    write_wav(tmp_path / "plain.wav", speech_16k, 16000)
    code = ("import sys; from edge_ser.cli import main; main(['predict', '--model', sys.argv[1], sys.argv[2]]); "
            "print('soundfile' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(tiny_model), str(tmp_path / "plain.wav")],
                            capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.splitlines()[-1] == "False"


def test_a_folder_without_audio_files_is_reported_and_fails(tmp_path: Path, tiny_model: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no audio here")
    result = predict("--model", str(tiny_model), str(empty))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().startswith(f"edge-ser: skipped {empty}: no audio files (.wav, .flac")
    assert len(result.stderr.strip().splitlines()) == 1
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
