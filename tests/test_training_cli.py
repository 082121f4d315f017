"""The training tools on user mistakes: one line `<prog>: error: <what is wrong>`, exit status 2,
no traceback, for each console entry point, and before any slow work (TensorFlow, features)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import write_wav
from edge_ser.errors import AudioFileError
from edge_ser.recognise.gate import GateConfig
from edge_ser_train import build_default, convert, train
from edge_ser_train.audio import read_corpus_audio
from edge_ser_train.console import TF_NOISE, filtered_fd2
from edge_ser_train.corpora import load_source
from edge_ser_train.options import add_options, settings_from
from edge_ser_train.room import RoomAugment

REPO = Path(__file__).resolve().parents[1]


def ravdess_clip(root: Path, emotion: str, actor: str) -> Path:
    """A RAVDESS-named clip of near-silence: the loaders read names, not sound."""
    path = root / f"Actor_{actor}" / f"03-01-{emotion}-01-01-01-{actor}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, np.zeros(1600), 16000)
    return path


def one_error_line(err: str, prog: str) -> str:
    """The message of the single error line `prog` printed; fails on anything else (a traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    return lines[0].removeprefix(f"{prog}: error: ")


@pytest.mark.parametrize(("module", "prog", "args", "message"), [
    ("train", "edge-ser-train", ["--data", "{tmp}/nowhere", "--out", "{tmp}/run"],
     "{tmp}/nowhere: corpus folder not found"),
    ("convert", "edge-ser-convert", ["--model", "{tmp}/m.keras", "--data", "{tmp}", "--out", "{tmp}/m.tflite"],
     "{tmp}/m.keras: Keras model not found"),
    ("build_default", "build_default", ["--data", "tess-ish={tmp}", "--out", "{tmp}/m.tflite"],
     "unknown corpus 'tess-ish'; known: ravdess, crema-d, tess, savee, emodb (or csv, folders)"),
    ("summarise", "summarise", ["{tmp}"], "no metrics.json in {tmp}"),
])
def test_each_entry_point_reports_a_mistake_in_one_line(tmp_path: Path, module: str, prog: str, args: list[str],
                                                        message: str) -> None:
    """As a user runs them: a real process, so a traceback or a wrong exit status cannot hide."""
    argv = [a.format(tmp=tmp_path) for a in args]
    done = subprocess.run([sys.executable, "-m", f"edge_ser_train.{module}", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert one_error_line(done.stderr, prog) == message.format(tmp=tmp_path)
    assert done.stdout == ""


def run_train(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = train.main(argv)
    return status, capsys.readouterr().err


def test_a_corpus_folder_without_its_clips_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    status, err = run_train(["--data", f"{tmp_path / 'empty'}", "--out", f"{tmp_path / 'run'}"], capsys)
    assert status == 2
    assert one_error_line(err, "edge-ser-train") == f"{tmp_path / 'empty'}: no ravdess clips found under " \
                                                     f"{tmp_path / 'empty'}"
    assert not (tmp_path / "run").exists()


def test_a_folder_that_names_no_emotion_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine" / "contempt").mkdir(parents=True)
    write_wav(tmp_path / "mine" / "contempt" / "anna_1.wav", np.zeros(1600), 16000)
    status, err = run_train(["--data", f"folders={tmp_path / 'mine'}", "--out", f"{tmp_path / 'run'}"], capsys)
    assert status == 2
    assert one_error_line(err, "edge-ser-train").startswith(
        f"{tmp_path / 'mine' / 'contempt'}: the folder names the label: unknown emotion label 'contempt'; known: ")


QAT_CHAIN = ("--qat-epochs fine-tunes the plain Conv1D chain: use it with --members 1, without --attention and "
             "with --pooling mean")


@pytest.mark.parametrize(("options", "message"), [
    (["--val-speakers", "0", "--schedule", "plateau"],
     "--val-speakers 0 leaves nothing to stop early on: use it with --schedule cosine"),
    (["--normalisation", "speaker"], "--normalisation speaker normalises against the speaker's statistics: "
                                     "add --adapt"),
    (["--adapt", "--no-pitch"], "--adapt adapts the pitch columns or, with --normalisation speaker, the cepstra: "
                                "without either it would change nothing"),
    (["--n-mfcc", "80"], "invalid feature config: n_mfcc must be in 1..n_mels"),
    (["--data", "csv=/no/such/list.csv"], "/no/such/list.csv: CSV manifest not found"),
    (["--data", "ravdess="], "data source 'ravdess=' must look like [KIND=]PATH "
                             "(KIND: ravdess, crema-d, tess, savee, emodb, csv, folders)"),
    (["--protocol", "loco"], "leave-one-corpus-out needs two or more corpora, got ravdess"),
    (["--gate-floor", "3"], "--gate-floor 3 dBFS would let no frame through: full scale is 0 dBFS"),
    (["--room-babble", "0.5"], "--room-babble and --room-reverb set how often --room-augment uses an effect: "
                               "add --room-augment"),
    (["--room-reverb", "0.4"], "--room-babble and --room-reverb set how often --room-augment uses an effect: "
                               "add --room-augment"),
    (["--qat-epochs", "1"], QAT_CHAIN),  # --members defaults to 2
    (["--qat-epochs", "1", "--members", "1", "--attention"], QAT_CHAIN),
    (["--qat-epochs", "1", "--members", "1", "--pooling", "stats"], QAT_CHAIN),
    (["--qat-augment"], "--qat-rate and --qat-augment set how --qat-epochs fine-tunes: add --qat-epochs N"),
    (["--qat-rate", "3e-5"], "--qat-rate and --qat-augment set how --qat-epochs fine-tunes: add --qat-epochs N"),
    (["--qat-epochs", "1", "--members", "1", "--qat-rate", "0"], "--qat-rate must be > 0, not 0"),
])
def test_contradictory_or_broken_options_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     options: list[str], message: str) -> None:
    ravdess_clip(tmp_path / "ravdess", "05", "01")
    argv = ["--data", str(tmp_path / "ravdess"), "--out", str(tmp_path / "run"), *options]
    status, err = run_train(argv, capsys)
    assert (status, one_error_line(err, "edge-ser-train")) == (2, message)


def test_a_file_listed_by_two_sources_is_refused_by_build_default(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    clip = ravdess_clip(tmp_path / "ravdess", "05", "01")
    source = f"ravdess={tmp_path / 'ravdess'}"
    assert build_default.main(["--data", source, "--data", source, "--out", str(tmp_path / "m.tflite")]) == 2
    assert one_error_line(capsys.readouterr().err, "build_default") == f"{clip} appears in more than one source"


def keras_file_with_recipe(tmp_path: Path, recipe: dict | None) -> Path:
    """A stand-in .keras path (convert checks inputs before loading it) and, if given, its recipe."""
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read: the inputs are refused first")
    if recipe is not None:
        convert.recipe_path(model).write_text(json.dumps(recipe))
    return model


@pytest.mark.parametrize(("recipe", "message"), [
    (None, "{recipe}: recipe (written beside the model when it was trained) not found"),
    ({"labels": "seven", "examples": {}}, "{recipe}: the recipe lacks train_speakers, held_out_speakers, corpora"),
    ({"labels": "nine", "examples": {}, "train_speakers": [], "held_out_speakers": [], "corpora": []},
     "unknown label set 'nine'; known: four, ravdess8, seven"),
])
def test_convert_refuses_a_missing_or_broken_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    recipe: dict | None, message: str) -> None:
    model = keras_file_with_recipe(tmp_path, recipe)
    ravdess_clip(tmp_path / "ravdess", "05", "01")
    status = convert.main(["--model", str(model), "--data", str(tmp_path / "ravdess"),
                           "--out", str(tmp_path / "out.tflite")])
    expected = message.format(recipe=convert.recipe_path(model))
    assert (status, one_error_line(capsys.readouterr().err, "edge-ser-convert")) == (2, expected)
    assert not (tmp_path / "out.tflite").exists()


def test_an_unreadable_corpus_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "03-01-05-01-01-01-01.wav"
    broken.write_bytes(b"RIFF but not really")
    with pytest.raises(AudioFileError, match=r"03-01-05-01-01-01-01\.wav: cannot read audio \(Format not"):
        read_corpus_audio(broken, 16000)
    with pytest.raises(AudioFileError, match=r"gone\.wav: cannot read audio \(no such file\)"):
        read_corpus_audio(tmp_path / "gone.wav", 16000)


@pytest.mark.parametrize(("options", "method"), [([], "spectrum"), (["--pitch-method", "acf"], "acf")])
def test_the_pitch_method_option_reaches_the_feature_config(tmp_path: Path, options: list[str], method: str) -> None:
    """New models get the cheap estimator; --pitch-method acf trains on the 2.0.0 one."""
    ravdess_clip(tmp_path / "ravdess", "05", "01")
    parser = argparse.ArgumentParser()
    add_options(parser)
    settings = settings_from(parser.parse_args(["--data", str(tmp_path / "ravdess"), *options]))
    assert settings.examples.features.pitch_method == method


def test_the_room_shares_reach_the_augmentation_and_default_to_its_own(tmp_path: Path) -> None:
    """The probabilities on the command line are the ones the copies are drawn with (and so the ones
    the manifest's recipe records); without them the recipe keeps RoomAugment's defaults."""
    ravdess_clip(tmp_path / "ravdess", "05", "01")
    parser = argparse.ArgumentParser()
    add_options(parser)
    base = ["--data", str(tmp_path / "ravdess"), "--room-augment"]
    room = settings_from(parser.parse_args([*base, "--room-babble", "0.5", "--room-reverb", "0"])).examples.room
    assert (room.babble_probability, room.reverb_probability) == (0.5, 0.0)
    assert settings_from(parser.parse_args(base)).examples.room == RoomAugment()


def test_the_gate_floor_is_the_one_the_windows_are_cut_with(tmp_path: Path) -> None:
    """--gate-floor sets the floor the training windows are cut with (and the manifest records);
    without it, models get the device's default gate."""
    ravdess_clip(tmp_path / "ravdess", "05", "01")
    parser = argparse.ArgumentParser()
    add_options(parser)
    base = ["--data", str(tmp_path / "ravdess")]
    assert settings_from(parser.parse_args([*base, "--gate-floor", "-75"])).examples.gate.absolute_floor_db == -75.0
    assert settings_from(parser.parse_args(base)).examples.gate == GateConfig()


def test_the_recipe_gives_convert_the_example_config_the_model_was_trained_with(tmp_path: Path) -> None:
    """edge-ser-convert and make model rebuild the windows from the saved recipe: every block of the
    example config (room shares, gate, adaptation, features) comes back as the object training used,
    not as the JSON dict it was saved as."""
    ravdess_clip(tmp_path / "ravdess", "05", "01")
    parser = argparse.ArgumentParser()
    add_options(parser)
    s = settings_from(parser.parse_args(["--data", str(tmp_path / "ravdess"), "--room-augment", "--room-babble", "0.5",
                                         "--gate-floor", "-70", "--adapt", "--normalisation", "speaker"]))
    keras_path = tmp_path / "model.keras"
    convert.save_recipe(keras_path, s.labels, s.examples, ["ravdess:01"], [], s.utterances, {})
    rebuilt = convert.examples_from_recipe(convert.load_recipe(keras_path))
    assert rebuilt == s.examples
    assert isinstance(rebuilt.room, RoomAugment) and rebuilt.room.babble_probability == 0.5


@pytest.mark.parametrize(("options", "message"), [
    (["--folds", "1"], "argument --folds: must be at least 2, not 1"),
    (["--epochs", "0"], "argument --epochs: must be at least 1, not 0"),
    (["--members", "0"], "argument --members: must be at least 1, not 0"),
    (["--copies", "-1"], "argument --copies: must be at least 0, not -1"),
    (["--batch-size", "many"], "argument --batch-size: expected an integer, not 'many'"),
    (["--room-babble", "1.5"], "argument --room-babble: must lie between 0 and 1, not 1.5"),
    (["--room-reverb", "often"], "argument --room-reverb: expected a probability, not 'often'"),
])
def test_impossible_counts_are_refused_when_the_command_line_is_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str) -> None:
    """argparse's own error (usage, then `prog: error: ...`), before a corpus is even looked at:
    the --data folder here does not exist, and that is not what is reported."""
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), *options])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"edge-ser-train: error: {message}"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("options", "message"), [
    (["--protocol", "none"], "--protocol none evaluates nothing: add --final to train the model to ship"),
    (["--protocol", "none", "--final", "--robustness"],
     "--robustness scores the cross-validation folds: use --protocol cv or both"),
])
def test_a_run_without_the_evaluation_it_asks_for_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            options: list[str], message: str) -> None:
    ravdess_clip(tmp_path / "ravdess", "05", "01")
    status, err = run_train(["--data", str(tmp_path / "ravdess"), "--out", str(tmp_path / "run"), *options], capsys)
    assert (status, one_error_line(err, "edge-ser-train")) == (2, message)
    assert not (tmp_path / "run").exists()


def test_build_default_writes_the_bundled_model_only_when_told_to(capsys: pytest.CaptureFixture[str]) -> None:
    """No default --out: a wheel user's run can never overwrite the model inside the package."""
    with pytest.raises(SystemExit):
        build_default.main(["--data", "/nowhere"])
    assert "the following arguments are required: --out" in capsys.readouterr().err


BLOCK_TRAIN_EXTRA = "import sys; sys.modules.update({name: None for name in sys.argv.pop(1).split(',')}); "


@pytest.mark.parametrize(("prog", "entry"), [("edge-ser-train", "train_main"), ("edge-ser-convert", "convert_main")])
def test_without_the_train_extra_the_commands_say_what_to_install(prog: str, entry: str) -> None:
    """The console scripts as pyproject.toml declares them, in a process where soundfile and
    TensorFlow cannot be imported (a None in sys.modules is how Python marks a module as absent)."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[prog] == f"edge_ser_train.console:{entry}"
    run = BLOCK_TRAIN_EXTRA + f"from edge_ser_train.console import {entry}; sys.argv[0] = {prog!r}; sys.exit({entry}())"
    done = subprocess.run([sys.executable, "-c", run, "soundfile,tensorflow", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert one_error_line(done.stderr, prog) == ("needs the 'train' extra (soundfile, tensorflow not installed): "
                                                 "pip install 'edge-ser[train]'")
    # the same block does break the import the check stands in front of, and the extra, when present, passes
    broken = subprocess.run([sys.executable, "-c", BLOCK_TRAIN_EXTRA + "import edge_ser_train.train", "soundfile"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "ModuleNotFoundError" in broken.stderr
    helped = subprocess.run([sys.executable, "-c", run, "nothing", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith(f"usage: {prog} ")


def test_corpus_folders_that_are_symbolic_links_are_followed(tmp_path: Path) -> None:
    """A corpus assembled from links to a shared copy: a linked actor folder, a linked corpus root,
    and a link back up the tree that must not list a clip twice."""
    shared = tmp_path / "shared"
    ravdess_clip(shared, "05", "02")
    corpus = tmp_path / "corpus"
    ravdess_clip(corpus, "03", "01")
    (corpus / "Actor_02").symlink_to(shared / "Actor_02", target_is_directory=True)
    (corpus / "Actor_01" / "again").symlink_to(corpus, target_is_directory=True)
    (tmp_path / "linked").symlink_to(corpus, target_is_directory=True)
    for root in (corpus, tmp_path / "linked"):
        utterances = load_source(f"ravdess={root}")
        assert sorted((u.speaker, u.label) for u in utterances) == [("ravdess:01", "happy"), ("ravdess:02", "angry")]


def test_tensorflow_noise_on_fd2_is_dropped_and_everything_else_passes(capfd: pytest.CaptureFixture[str]) -> None:
    """Lines as TensorFlow 2.21 and its converter print them (from a real run), written at the file
    descriptor level as C++ code does, between lines that must reach the user."""
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796230230.721380    6131 port.cc:153] oneDNN custom operations are on.",
        "W0000 00:00:1796230239.362294    6131 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
        "appropriate compiler flags.",
        "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    ]
    kept = ["edge-ser-train: error: something a user must see",
            "E0000 00:00:1796230239.362294    6131 kernel.cc:10] an error TensorFlow reports",
            "Traceback (most recent call last):"]
    with filtered_fd2(TF_NOISE):
        for line in [kept[0], *noise[:3], kept[1], *noise[3:], kept[2]]:
            os.write(2, (line + "\n").encode())
    assert capfd.readouterr().err.splitlines() == kept


def test_convert_needs_the_corpora_from_the_recipe_or_the_command_line(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A recipe from before the corpora were recorded in it, converted without --data."""
    model = keras_file_with_recipe(tmp_path, {"labels": "seven", "examples": {}, "train_speakers": ["ravdess:01"],
                                              "held_out_speakers": [], "corpora": ["ravdess"]})
    assert convert.main(["--model", str(model)]) == 2
    assert one_error_line(capsys.readouterr().err, "edge-ser-convert") == (
        f"{convert.recipe_path(model)}: the recipe does not name the corpora it was trained on: give them with --data")
