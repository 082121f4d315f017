"""A daemon with an adapting model: cold start from the prior, statistics that survive a restart,
`reset_adaptation` for a new visitor, a damaged or foreign state file that costs nothing but the
memory, statistics kept per device id, and the shared file of earlier versions adopted. The real
tiny model runs with an adaptation block added to its manifest."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge_ser.app.adaptation_store import ADAPTATION_FILE
from edge_ser.app.state_files import device_file
from edge_ser.protocol.payloads import load_schema
from tests.audio_fixtures import ADAPTING_PRIOR_FRAMES
from tests.daemon_process import synthetic_speech_wav
from tests.mqtt_fixtures import wait_until
from tests.test_daemon_inprocess import WAIT_S, RecordingPublisher, make_daemon, running

PRIOR_FRAMES = ADAPTING_PRIOR_FRAMES
DEVICE = "inproc"


def adaptation_of(state: dict[str, Any]) -> dict[str, float]:
    jsonschema.validate(state, load_schema("state"))
    return state["adaptation"]


def run_once(wav: Path, model: Path, state_dir: Path, device_id: str = DEVICE) -> RecordingPublisher:
    publisher = RecordingPublisher()
    assert make_daemon(wav, publisher, realtime=False, state_dir=state_dir, model=model, device_id=device_id).run() == 0
    return publisher


def saved_file(state_dir: Path, device_id: str = DEVICE) -> Path:
    return device_file(state_dir, ADAPTATION_FILE, device_id)


def test_cold_start_then_adaptation_survives_a_restart(tmp_path: Path, adapting_model: Path) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0, 1, 2), seconds=1.2)
    state_dir = tmp_path / "state"
    first = run_once(wav, adapting_model, state_dir)
    states = [p.payload for p in first.states()]
    assert adaptation_of(states[0])["frames"] == PRIOR_FRAMES  # cold: the prior alone
    heard = adaptation_of(states[-1])["frames"]
    assert heard > PRIOR_FRAMES + 200  # three utterances of ~1.2 s were counted
    assert len(first.events()) == 3
    saved = json.loads(saved_file(state_dir).read_text())
    assert saved["state"]["weight"] == pytest.approx(heard, abs=0.1)

    second = run_once(wav, adapting_model, state_dir)
    assert adaptation_of(second.states()[0].payload)["frames"] == pytest.approx(heard, abs=0.1)
    assert adaptation_of(second.states()[-1].payload)["frames"] > heard


def test_reset_adaptation_returns_to_the_prior_on_disk_too(tmp_path: Path, adapting_model: Path) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=1.0)
    state_dir = tmp_path / "state"
    publisher = RecordingPublisher()
    daemon = make_daemon(wav, publisher, realtime=True, loop=True, state_dir=state_dir, model=adapting_model,
                         device_id=DEVICE)
    with running(daemon):
        wait_until(publisher.events, timeout=WAIT_S, what="a first event")
        assert adaptation_of(daemon.state())["frames"] > PRIOR_FRAMES
        seen = len(publisher.log)  # before the command: the loop may publish the reset state at once
        reply = daemon.handle_command({"command": "reset_adaptation"})
        assert reply["ok"] is True
        wait_until(lambda: publisher.past_state(lambda s: s["adaptation"]["frames"] == PRIOR_FRAMES, after=seen),
                   timeout=2.0, what="a state back at the prior")
        # written at once (later saves wait SAVE_INTERVAL_S, far beyond this test)
        saved = json.loads(saved_file(state_dir).read_text())
        assert saved["state"]["weight"] == pytest.approx(PRIOR_FRAMES)


def test_a_model_that_does_not_adapt_refuses_the_command_and_shows_no_block(tmp_path: Path) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=1.0)
    daemon = make_daemon(wav, RecordingPublisher(), realtime=False)
    reply = daemon.handle_command({"command": "reset_adaptation"})
    assert reply["ok"] is False and "does not adapt" in reply["error"]
    assert "adaptation" not in daemon.state()


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "cannot restore the speaker adaptation"),
    (json.dumps({"model_sha256": "0" * 64, "state": {}}), "saved for another model"),
    (json.dumps({"model_sha256": None, "state": None}), "saved for another model"),
    ("[" * 100_000, "cannot restore the speaker adaptation"),  # nested past the JSON parser's recursion
    (b"\xff\xfe not text".decode("latin-1"), "cannot restore the speaker adaptation"),
])
def test_a_damaged_or_foreign_state_file_starts_from_the_prior(tmp_path: Path, adapting_model: Path,
                                                              caplog: pytest.LogCaptureFixture, content: str,
                                                              reason: str) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    saved_file(state_dir).write_text(content)
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=1.0)
    with caplog.at_level(logging.INFO, logger="edge_ser.app.adaptation"):
        publisher = run_once(wav, adapting_model, state_dir)
    assert adaptation_of(publisher.states()[0].payload)["frames"] == PRIOR_FRAMES
    assert any(reason in r.getMessage() and str(saved_file(state_dir)) in r.getMessage() for r in caplog.records)
    assert len(publisher.events()) == 1  # and the daemon worked as usual


def test_a_state_of_the_same_model_with_a_wrong_shape_is_refused(tmp_path: Path, adapting_model: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    from edge_ser.model.manifest import sha256_file

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    saved_file(state_dir).write_text(json.dumps({"model_sha256": sha256_file(adapting_model),
                                                         "state": {"weight": 5, "mean": [1.0]}}))
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=1.0)
    with caplog.at_level(logging.WARNING, logger="edge_ser.app.adaptation"):
        publisher = run_once(wav, adapting_model, state_dir)
    assert adaptation_of(publisher.states()[0].payload)["frames"] == PRIOR_FRAMES
    assert any("cannot restore" in r.getMessage() for r in caplog.records)


def test_adaptation_is_per_device_id_in_a_shared_state_dir(tmp_path: Path, adapting_model: Path) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0, 1), seconds=1.2)
    state_dir = tmp_path / "state"
    heard = adaptation_of(run_once(wav, adapting_model, state_dir, "kitchen").states()[-1].payload)["frames"]
    assert heard > PRIOR_FRAMES
    # another device on the same directory hears other people: it starts cold, from the prior
    hall = run_once(wav, adapting_model, state_dir, "hall")
    assert adaptation_of(hall.states()[0].payload)["frames"] == PRIOR_FRAMES
    again = run_once(wav, adapting_model, state_dir, "kitchen")
    assert adaptation_of(again.states()[0].payload)["frames"] == pytest.approx(heard, abs=0.1)


def test_a_legacy_adaptation_file_is_adopted_by_the_device_that_starts(
        tmp_path: Path, adapting_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=1.2)
    state_dir = tmp_path / "state"
    heard = adaptation_of(run_once(wav, adapting_model, state_dir).states()[-1].payload)["frames"]
    legacy = state_dir / ADAPTATION_FILE
    saved_file(state_dir).rename(legacy)  # as a version before per-device statistics left it
    with caplog.at_level(logging.WARNING, logger="edge_ser.app.state"):
        kitchen = run_once(wav, adapting_model, state_dir, "kitchen")
    assert adaptation_of(kitchen.states()[0].payload)["frames"] == pytest.approx(heard, abs=0.1)
    assert [r.getMessage() for r in caplog.records] == [
        f"adopted speaker adaptation {legacy} from before state was kept per device id as "
        f"{saved_file(state_dir, 'kitchen')}"]
    assert not legacy.exists()


def test_a_legacy_adaptation_file_is_left_alone_when_the_device_has_its_own(tmp_path: Path,
                                                                             adapting_model: Path) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=1.2)
    state_dir = tmp_path / "state"
    heard = adaptation_of(run_once(wav, adapting_model, state_dir).states()[-1].payload)["frames"]
    legacy = state_dir / ADAPTATION_FILE
    legacy_text = json.dumps({"model_sha256": "0" * 64, "state": {}})  # another device's, another model's
    legacy.write_text(legacy_text)
    again = run_once(wav, adapting_model, state_dir)
    assert adaptation_of(again.states()[0].payload)["frames"] == pytest.approx(heard, abs=0.1)
    assert legacy.read_text() == legacy_text
