"""The push-based Recogniser: chunk-size invariance end to end, reset, sample positions, the gate
recorded in the manifest, and the clock that maps positions to wall time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_ser.errors import ModelError
from edge_ser.model.classifier import Classifier
from edge_ser.recognise.gate import GateConfig
from edge_ser.recognise.recogniser import (
    Recogniser,
    SampleClock,
    UtteranceEnded,
    UtteranceStarted,
    WindowScored,
    analyse,
)

RATE = 16000


def quiet(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 3e-4).astype(np.float32)


@pytest.fixture
def recogniser(tiny_model: Path) -> Recogniser:
    return Recogniser.from_manifest(Classifier(tiny_model))


def comparable(outputs: list) -> list[tuple]:
    rows = []
    for item in outputs:
        if isinstance(item, WindowScored):
            rows.append(("window", item.utterance, item.start, item.end, item.features.tobytes(),
                         item.probabilities.tobytes(), item.evidence, item.speech_like))
        elif isinstance(item, UtteranceEnded):
            rows.append(("end", item.utterance, item.start, item.end, item.windows, item.probabilities.tobytes(),
                         item.speech_like))
        else:
            rows.append(("start", item.utterance, item.start))
    return rows


def test_outputs_are_identical_for_any_chunk_size(recogniser: Recogniser, speech_16k: np.ndarray) -> None:
    signal = np.concatenate([quiet(0.5), speech_16k, quiet(0.8, 1), speech_16k, quiet(0.6, 2)])
    reference = comparable(list(recogniser.run(signal, chunk=4096)))
    assert sum(row[0] == "end" for row in reference) == 2
    for chunk in (160, 1024, 1):
        recogniser.reset()
        assert comparable(list(recogniser.run(signal, chunk=chunk))) == reference, f"chunk {chunk}"


def test_int16_and_float_pushes_agree(recogniser: Recogniser, speech_16k: np.ndarray) -> None:
    pcm = np.round(speech_16k * 32767).astype(np.int16)
    as_int = comparable(list(recogniser.run(pcm, chunk=1024)))
    recogniser.reset()
    as_float = comparable(list(recogniser.run(pcm.astype(np.float32) / 32768, chunk=1024)))
    assert as_int == as_float and as_int


def test_reset_forgets_the_utterance_in_progress(recogniser: Recogniser, speech_16k: np.ndarray) -> None:
    """A pause mid-sentence: nothing of the first half is scored later, positions restart at 0."""
    fresh = comparable(list(recogniser.run(np.concatenate([quiet(0.5), speech_16k]))))
    recogniser.reset()
    half = len(speech_16k) // 2
    recogniser.push(np.concatenate([quiet(0.5), speech_16k[:half]]))
    recogniser.reset()
    assert recogniser.samples == 0
    after = comparable(list(recogniser.run(np.concatenate([quiet(0.5), speech_16k]))))
    assert after == fresh


def test_positions_are_samples_around_the_speech(recogniser: Recogniser, speech_16k: np.ndarray) -> None:
    envelope = np.convolve(np.abs(speech_16k), np.ones(800) / 800, mode="same")
    loud = np.flatnonzero(envelope > 0.05 * envelope.max())
    voiced, lead = speech_16k[loud[0] : loud[-1]], quiet(1.0)
    outputs = list(recogniser.run(np.concatenate([lead, voiced, quiet(1.0, 3)])))
    ends = [o for o in outputs if isinstance(o, UtteranceEnded)]
    starts = {o.utterance: o.start for o in outputs if isinstance(o, UtteranceStarted)}
    assert ends and starts[ends[0].utterance] == ends[0].start
    assert abs(ends[0].start - len(lead)) < 0.1 * RATE
    assert abs(ends[-1].end - (len(lead) + len(voiced))) < 0.35 * RATE
    end = ends[-1]
    windows = [o for o in outputs if isinstance(o, WindowScored) and o.utterance == end.utterance]
    assert end.windows == len(windows)
    np.testing.assert_allclose(end.probabilities, np.mean([w.probabilities for w in windows], axis=0), rtol=1e-6)


def test_silence_costs_no_features(recogniser: Recogniser) -> None:
    for _ in range(20):
        assert recogniser.push(quiet(0.1)) == []
    assert (recogniser._front_end._cached == -1).all()


def test_without_a_classifier_it_yields_the_training_windows(tiny_model: Path, speech_16k: np.ndarray) -> None:
    classifier = Classifier(tiny_model)
    with_model = Recogniser.from_manifest(classifier)
    m = classifier.manifest
    bare = Recogniser(m.features, with_model.gate, with_model.spec)
    scored = [o for o in with_model.run(speech_16k) if isinstance(o, WindowScored)]
    plain = [o for o in bare.run(speech_16k) if isinstance(o, WindowScored)]
    assert [w.features.tobytes() for w in plain] == [w.features.tobytes() for w in scored]
    assert all(w.probabilities is None for w in plain)


def manifest_copy(tiny_model: Path, tmp_path: Path, gate: dict | None) -> Path:
    """The tiny model beside an edited copy of its manifest (the .tflite, hence its sha256, unchanged)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    model = tmp_path / "model.tflite"
    shutil.copy(tiny_model, model)
    data = json.loads(tiny_model.with_suffix(".json").read_text())
    data.pop("gate", None)
    if gate is not None:
        data["gate"] = gate
    model.with_suffix(".json").write_text(json.dumps(data))
    return model


def test_predict_uses_the_gate_recorded_in_the_manifest(tiny_model: Path, tmp_path: Path,
                                                        speech_16k: np.ndarray) -> None:
    signal = np.concatenate([quiet(0.5), speech_16k, quiet(0.5, 1)])
    older = Recogniser.from_manifest(Classifier(manifest_copy(tiny_model, tmp_path / "a", None)))
    assert older.gate == GateConfig()  # manifests from before the gate was recorded: today's defaults
    assert analyse(older, signal).utterances
    deaf = Recogniser.from_manifest(Classifier(manifest_copy(tiny_model, tmp_path / "b", {"threshold_db": 90.0})))
    assert deaf.gate.threshold_db == 90.0
    assert analyse(deaf, signal).utterances == []


def test_a_device_gate_replaces_only_the_keys_it_sets(tiny_model: Path, tmp_path: Path,
                                                     speech_16k: np.ndarray) -> None:
    """A profile's [gate] tunes the model's gate key by key: a model trained with a deaf gate stays
    deaf when the device only changes the hangover, and hears once the device sets its threshold."""
    classifier = Classifier(manifest_copy(tiny_model, tmp_path, {"threshold_db": 90.0, "hangover_frames": 40}))
    tuned = Recogniser.from_manifest(classifier, gate={"hangover_frames": 10})
    assert (tuned.gate.threshold_db, tuned.gate.hangover_frames) == (90.0, 10)
    signal = np.concatenate([quiet(0.5), speech_16k, quiet(0.5, 1)])
    assert analyse(tuned, signal).utterances == []
    hearing = Recogniser.from_manifest(classifier, gate={"threshold_db": 12.0})
    assert hearing.gate.hangover_frames == 40 and analyse(hearing, signal).utterances


def test_a_bad_gate_in_the_manifest_names_the_file(tiny_model: Path, tmp_path: Path) -> None:
    model = manifest_copy(tiny_model, tmp_path, {"threshold": 3})
    with pytest.raises(ModelError, match=r"model\.tflite: manifest gate settings are invalid"):
        Recogniser.from_manifest(Classifier(model))


def test_the_clock_anchors_positions_at_the_newest_arrival() -> None:
    clock = SampleClock(RATE)
    clock.arrived(3 * RATE, wall=1000.0)
    assert clock.wall(3 * RATE) == 1000.0
    assert clock.wall(RATE) == pytest.approx(998.0)
    assert clock.wall(5 * RATE) == 1000.0  # not yet heard: clamped to now
