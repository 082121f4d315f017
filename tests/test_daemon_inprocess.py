"""The daemon in this process: the real file source, the real tiny model, a recording publisher.

What a subscriber is promised — one event per utterance with increasing seq numbers and wall-clock
times that match the audio, at most two state updates a second, no events while paused, the
utterance being spoken flushed on stop — is checked through the public API only (constructor,
run, stop, handle_command and the published payloads) and with tolerances, so these tests hold
for any implementation of the loop. The publisher is the one fake: MqttPublisher has its own tests
against a real broker, and tests/test_daemon.py runs the daemon process end to end.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import jsonschema
import pytest

from edge_ser.app.build import open_source
from edge_ser.app.config import load_config
from edge_ser.app.daemon import Daemon
from edge_ser.errors import ConfigError
from edge_ser.model.classifier import Classifier
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.protocol.payloads import load_schema
from tests.daemon_process import TINY_MODEL, synthetic_speech_wav
from tests.mqtt_fixtures import wait_until

LABELS = {"neutral", "happy", "angry"}  # the tiny model's
GAP_S = 0.4  # synthetic_speech_wav frames every utterance with this much silence on each side
SPEECH_S = 0.8  # voiced length of each utterance in the real-time runs (short: they play in real time)
CYCLE_S = GAP_S + SPEECH_S + GAP_S
DURATION_TOL_S = 0.25  # an utterance's edges may move by up to one window hop of the tiny model
WALL_TOL_S = 0.3  # a loaded machine hands chunks over late, and the times follow the hand-over
STATE_INTERVAL_S = 0.5  # limits.state_interval_s for these runs (the default is 2 s)
WAIT_S = 10.0


@dataclass(frozen=True)
class Published:
    kind: str  # "event" or "state"
    payload: dict[str, Any]
    at: float  # time.monotonic() of the call


class RecordingPublisher:
    """The daemon's Publisher protocol, recording every call in order with the time it was made."""

    def __init__(self) -> None:
        self.log: list[Published] = []  # appended by the daemon's thread, read by the test's

    def publish_event(self, event: dict[str, Any]) -> None:
        self.log.append(Published("event", event, time.monotonic()))

    def publish_state(self, state: dict[str, Any]) -> None:
        self.log.append(Published("state", state, time.monotonic()))

    def stats(self) -> dict[str, Any]:
        return {"spool_pending": 0, "spool_dropped": 0}

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        return [p.payload for p in self.log[after:] if p.kind == "event"]

    def states(self, after: int = 0) -> list[Published]:
        return [p for p in self.log[after:] if p.kind == "state"]

    def past_state(self, matches: Callable[[dict[str, Any]], bool], after: int = 0) -> int | None:
        """The log position just past the first state from `after` on that `matches` (None: none yet),
        to ask what was published after it."""
        return next((i + 1 for i, p in enumerate(self.log)
                     if i >= after and p.kind == "state" and matches(p.payload)), None)


def make_daemon(wav: Path, publisher: RecordingPublisher, *, realtime: bool, loop: bool = False,
                state_dir: Path | None = None, stdout: TextIO | None = None, model: Path = TINY_MODEL,
                device_id: str = "inproc", **settings: Any) -> Daemon:
    """A daemon on `wav` as `edge-ser run --file` builds one, without MQTT; `settings` are more
    config overrides ({"limits.event_burst": 1} spelled limits__event_burst=1)."""
    overrides: dict[str, Any] = {"device.id": device_id, "audio.source": "file", "audio.file": str(wav),
                                 "limits.state_interval_s": STATE_INTERVAL_S,
                                 "audio.realtime": realtime, "audio.loop": loop, "audio.chunk_ms": 50,
                                 "model.path": str(model), "mqtt.enabled": False,
                                 # generated tones stand in for speech here, and a tone is rightly not
                                 # speech-like (tests/test_speech_likeness.py): the daemon's loop is tested
                                 "speech_check.enabled": False}
    if state_dir is not None:
        overrides["state.dir"] = str(state_dir)
    overrides.update({key.replace("__", "."): value for key, value in settings.items()})
    cfg = load_config(None, overrides)
    classifier = Classifier(cfg.model.path)
    source = open_source(cfg.audio, classifier.manifest.features.sample_rate)
    return Daemon(cfg, source, classifier, publisher=publisher, stdout=stdout)


@contextmanager
def running(daemon: Daemon) -> Iterator[Future[int]]:
    """`daemon.run()` on a thread of its own, as beside the MQTT thread; stopped and joined at exit."""
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(daemon.run)
        try:
            yield result
        finally:
            daemon.stop()
            result.result(timeout=WAIT_S)  # re-raises what run() raised


def wall(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def test_a_fast_run_publishes_one_valid_event_per_utterance(tmp_path: Path) -> None:
    classes, speech_s = (0, 1, 2, 0), 1.6
    wav = synthetic_speech_wav(tmp_path / "speech.wav", classes, seconds=speech_s)
    publisher, printed = RecordingPublisher(), io.StringIO()
    assert make_daemon(wav, publisher, realtime=False, stdout=printed).run() == 0
    events = publisher.events()
    assert [e["seq"] for e in events] == list(range(len(classes)))
    assert [json.loads(line) for line in printed.getvalue().splitlines()] == events
    for event in events:
        jsonschema.validate(event, load_schema("event"))
        assert set(event["probabilities"]) == LABELS
        assert wall(event["start"]) < wall(event["end"])
        assert event["duration_s"] == pytest.approx(speech_s, abs=DURATION_TOL_S)
    states = [p.payload for p in publisher.states()]
    for state in states:
        jsonschema.validate(state, load_schema("state"))
    assert states[0]["listening"] is True and states[-1]["listening"] is False  # the file ended
    assert states[-1]["emotion"] in LABELS


def test_a_fast_run_places_each_event_in_the_file_by_stream_offsets(tmp_path: Path) -> None:
    classes, speech_s = (0, 1, 2), 1.6
    cycle = GAP_S + speech_s + GAP_S
    wav = synthetic_speech_wav(tmp_path / "speech.wav", classes, seconds=speech_s)
    publisher = RecordingPublisher()
    started = time.time()
    assert make_daemon(wav, publisher, realtime=False).run() == 0
    elapsed = time.time() - started
    events = publisher.events()
    assert elapsed < len(classes) * cycle / 2  # faster than real time: wall times cannot place the speech
    assert [e["stream_start"] for e in events] == pytest.approx(
        [GAP_S + k * cycle for k in range(len(classes))], abs=DURATION_TOL_S)
    assert [e["stream_end"] for e in events] == pytest.approx(
        [GAP_S + speech_s + k * cycle for k in range(len(classes))], abs=DURATION_TOL_S)
    for event in events:
        assert len(json.dumps(event, separators=(",", ":")).encode()) <= 512  # as MqttPublisher sends it


def test_seq_numbers_continue_after_a_restart_with_a_state_dir(tmp_path: Path) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0, 1), seconds=1.0)
    state_dir = tmp_path / "state"
    state_dir.mkdir()  # as `edge-ser run` does before it builds the daemon
    seqs = []
    for _ in range(2):
        publisher = RecordingPublisher()
        make_daemon(wav, publisher, realtime=False, state_dir=state_dir).run()
        seqs.append([e["seq"] for e in publisher.events()])
    assert seqs == [[0, 1], [2, 3]]


def test_seq_numbers_are_per_device_id_in_a_shared_state_dir(tmp_path: Path) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0, 1), seconds=1.0)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "seq").write_text("40")  # left by a version with one counter for the whole directory

    def run(device_id: str) -> list[int]:
        publisher = RecordingPublisher()
        make_daemon(wav, publisher, realtime=False, state_dir=state_dir, device_id=device_id).run()
        return [e["seq"] for e in publisher.events()]

    # each id counts on its own (from the old counter, so an upgraded device never repeats a number);
    # "kitchen.tmp"'s file seq.kitchen.tmp must not be where "kitchen" writes its next value first
    ids = ("kitchen", "kitchen.tmp", "kitchen", "kitchen.tmp")
    assert [run(i) for i in ids] == [[40, 41], [40, 41], [42, 43], [42, 43]]


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RecordingPublisher, float]:
    """Two utterances played at real-time pace: (what was published, wall time the run started)."""
    wav = synthetic_speech_wav(tmp_path_factory.mktemp("live") / "speech.wav", (0, 1), seconds=SPEECH_S)
    publisher = RecordingPublisher()
    daemon = make_daemon(wav, publisher, realtime=True)
    started = time.time()
    assert daemon.run() == 0
    return publisher, started


def test_live_events_carry_the_wall_clock_times_of_the_speech(live_run: tuple[RecordingPublisher, float]) -> None:
    publisher, started = live_run
    events = publisher.events()
    assert [e["seq"] for e in events] == [0, 1]
    for k, event in enumerate(events):
        assert wall(event["start"]) == pytest.approx(started + GAP_S + k * CYCLE_S, abs=WALL_TOL_S)
        assert wall(event["end"]) == pytest.approx(started + GAP_S + SPEECH_S + k * CYCLE_S, abs=WALL_TOL_S)
        assert event["duration_s"] == pytest.approx(SPEECH_S, abs=DURATION_TOL_S)
    for earlier, later in itertools.pairwise(events):
        assert wall(earlier["start"]) < wall(earlier["end"]) <= wall(later["start"]) < wall(later["end"])


def test_state_updates_from_the_audio_path_are_changes_at_most_every_interval(
        live_run: tuple[RecordingPublisher, float]) -> None:
    publisher, _ = live_run
    listening = [p for p in publisher.states() if p.payload["listening"]]  # all but the one at the end
    assert len(listening) >= 2, "the speech should have updated the state"  # else this proves nothing
    for earlier, later in itertools.pairwise(listening):
        assert later.at - earlier.at >= STATE_INTERVAL_S - 0.02
        moved = {k for k in later.payload if later.payload[k] != earlier.payload[k]}
        assert moved - {"timestamp", "confidence", "probabilities"}, "a state that changed nothing was sent"
    assert {p.payload["emotion"] for p in listening[1:]} <= LABELS


def test_events_past_the_rate_limit_are_dropped_before_they_are_numbered(tmp_path: Path) -> None:
    """Six utterances, one every 2.4 s of audio, against a burst of 2 and 4 per minute of audio
    (a token per 15 s): the first two pass, and the bucket refills by 0.16 token per utterance,
    too little for any of the other four within the file. Fast replay counts audio time."""
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0, 1, 2, 0, 1, 2), seconds=1.6)
    publisher, printed = RecordingPublisher(), io.StringIO()
    daemon = make_daemon(wav, publisher, realtime=False, stdout=printed,
                         limits__events_per_minute=4.0, limits__event_burst=2)
    assert daemon.run() == 0
    assert [e["seq"] for e in publisher.events()] == [0, 1]
    assert len(printed.getvalue().splitlines()) == 2
    assert daemon.rate_limit.dropped == 4


def test_pause_drops_the_audio_until_resume(tmp_path: Path) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=SPEECH_S)
    publisher = RecordingPublisher()
    # An interval far longer than the test: the paused state must not wait for it.
    daemon = make_daemon(wav, publisher, realtime=True, loop=True, limits__state_interval_s=60.0)
    with running(daemon):
        wait_until(publisher.events, timeout=WAIT_S, what="a first event")
        commanded = time.monotonic()
        reply = daemon.handle_command({"command": "pause"})
        assert (reply["state"]["paused"], reply["state"]["listening"]) == (True, False)
        paused_at = wait_until(lambda: publisher.past_state(lambda s: s["paused"] and not s["listening"]),
                               timeout=1.0, what="a paused state")
        assert publisher.log[paused_at - 1].at - commanded < 0.4
        time.sleep(CYCLE_S + 0.5)  # long enough for a whole utterance to be heard, were audio processed
        assert publisher.events(after=paused_at) == []
        assert all(p.payload["paused"] and not p.payload["listening"] for p in publisher.states(after=paused_at))

        reply = daemon.handle_command({"command": "resume"})
        assert (reply["state"]["paused"], reply["state"]["listening"]) == (False, True)
        resumed_at = wait_until(lambda: publisher.past_state(lambda s: s["listening"], after=paused_at),
                                timeout=1.0, what="a listening state after resume")
        wait_until(lambda: publisher.events(after=resumed_at), timeout=WAIT_S, what="an event after resume")
    # Stream offsets count the audio read while paused: at real-time pace they advance with the wall clock
    # across the pause, and every utterance still ends where the looped file has it end (one resumed into
    # may start late: the speech before the resume was dropped).
    first, last = publisher.events()[0], publisher.events()[-1]
    assert last["stream_end"] - first["stream_end"] == pytest.approx(wall(last["end"]) - wall(first["end"]),
                                                                     abs=WALL_TOL_S)
    speech_end = GAP_S + SPEECH_S
    for end in (e["stream_end"] for e in publisher.events()):
        assert end == pytest.approx(speech_end + round((end - speech_end) / CYCLE_S) * CYCLE_S, abs=DURATION_TOL_S)


def test_stop_flushes_the_utterance_in_progress_as_the_last_event(tmp_path: Path) -> None:
    speech_s = 3.0
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=speech_s)
    publisher = RecordingPublisher()
    daemon = make_daemon(wav, publisher, realtime=True)
    with running(daemon) as run:
        # A state with an emotion means a window of the utterance was scored: it is being spoken.
        wait_until(lambda: publisher.past_state(lambda s: s["emotion"] is not None), timeout=WAIT_S,
                   what="speech being heard")
        daemon.stop()
        stopped = time.monotonic()
        assert run.result(timeout=WAIT_S) == 0
        assert time.monotonic() - stopped < 1.0  # within a tick, not at the end of the file
    (event,) = publisher.events()
    assert 0 < event["duration_s"] < speech_s - 1.0  # cut short by the stop, not heard to its end
    assert publisher.log[-1].kind == "state" and publisher.log[-1].payload["listening"] is False


ROBOT_GROUPS = {"negative": ["sad", "angry", "fearful", "disgust"], "neutral": ["neutral"],
                "positive": ["happy", "surprised"]}  # firmware_config/robot.toml's


def test_grouped_seven_class_events_from_a_file_fit_in_512_bytes_without_stream_offsets(tmp_path: Path) -> None:
    """The robot profile on the bundled 7-class model, from a file: stream offsets would push the
    widest event past 512 bytes, so they are left out (a file read at its own pace has right wall
    times) and every event fits. (The widest numbers and device id: tests/test_events_schema.py.)"""
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0, 1), seconds=1.0)
    publisher = RecordingPublisher()
    daemon = make_daemon(wav, publisher, realtime=False, model=DEFAULT_MODEL, device_id="robot",
                         inference__groups=ROBOT_GROUPS)
    assert daemon.run() == 0
    events = publisher.events()
    assert len(events) == 2
    for event in events:
        assert set(event["groups"]) == set(ROBOT_GROUPS)
        assert "stream_start" not in event and "stream_end" not in event
        assert len(json.dumps(event, separators=(",", ":")).encode()) <= 512  # as MqttPublisher sends it


def test_groups_whose_names_cannot_fit_in_an_event_are_refused_at_start(tmp_path: Path) -> None:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=1.0)
    groups = {f"{name}-{'very-' * 12}long": [name] for name in ("neutral", "happy", "angry")}
    with pytest.raises(ConfigError) as info:
        make_daemon(wav, RecordingPublisher(), realtime=False, device_id="d" * 16, inference__groups=groups)
    message = str(info.value)
    assert "over the 512 the MQTT contract allows" in message
    assert "shorten device.id ('dddddddddddddddd'; at most 0 bytes fit" in message and "[inference.groups]" in message
