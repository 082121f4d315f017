"""The daemon end to end: a real `python -m edge_ser run` process, real WAV audio, a real mosquitto.

Assertions are on structure, validity, counts and order, never on which emotion the tiny test
model hears. Every wait polls with a generous timeout, so a loaded machine is slower, not red.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge_ser.mqtt.spool import Spool
from edge_ser.protocol.payloads import iso_utc, load_schema, make_event, new_event_id
from edge_ser_testing.broker import MosquittoBroker, wait_until
from tests.daemon_process import DaemonProcess, silence_wav, synthetic_speech_wav
from tests.mqtt_fixtures import MqttCollector
from tests.test_mqtt_publisher import ChildPublisher

DEVICE = "test-dev"
BASE = f"edge-ser/{DEVICE}"
WAIT_S = 20.0
UTTERANCES = 4  # in synthetic_speech_wav's default audio


def config_file(tmp_path: Path, text: str = "") -> Path:
    """A profile with fast MQTT reconnects, plus `text`. The speech check is off: generated tones
    stand in for speech here, and a tone is rightly not speech-like (tests/test_speech_likeness.py)."""
    path = tmp_path / "edge-ser.toml"
    path.write_text(f'[device]\nid = "{DEVICE}"\n[speech_check]\nenabled = false\n'
                    f'[mqtt]\nreconnect_min_s = 0.2\nreconnect_max_s = 1.0\n{text}')
    return path


def mqtt_args(broker: MosquittoBroker, config: Path) -> list[str]:
    return ["--config", str(config), "--mqtt-host", broker.host, "--mqtt-port", str(broker.port)]


def events_of(collector: MqttCollector) -> list[dict[str, Any]]:
    return [json.loads(p) for p in collector.payloads(f"{BASE}/event")]


def unique_ids(events: list[dict[str, Any]]) -> list[str]:
    """Event ids in first-arrival order, duplicates (at-least-once redelivery) dropped."""
    return list(dict.fromkeys(e["event_id"] for e in events))


def command(collector: MqttCollector, payload: dict[str, Any]) -> dict[str, Any]:
    """Send a command until its result arrives (the daemon subscribes just after going online)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        collector.publish(f"{BASE}/cmd", json.dumps(payload))
        try:
            return wait_until(lambda: next((json.loads(p) for p in collector.payloads(f"{BASE}/cmd/result")
                                            if json.loads(p).get("id") == payload.get("id")), None),
                              timeout=2.0, what="command result")
        except AssertionError:
            continue
    raise AssertionError(f"no result for command {payload}")


def test_file_source_events_validate_against_schemas(tmp_path: Path, mqtt_broker: MosquittoBroker,
                                                     mqtt_collector: Callable[..., MqttCollector],
                                                     daemon_runner: Callable[..., DaemonProcess]) -> None:
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/#"])
    wav = synthetic_speech_wav(tmp_path / "speech.wav")
    daemon = daemon_runner([*mqtt_args(mqtt_broker, config_file(tmp_path)), "--file", str(wav), "--fast",
                            "--stdout"])
    assert daemon.wait() == 0, daemon.stderr()
    printed = daemon.events()
    assert len(printed) == UTTERANCES
    wait_until(lambda: len(unique_ids(events_of(collector))) == UTTERANCES, what="all events over MQTT")
    received = events_of(collector)
    schema = load_schema("event")
    for event in received:
        jsonschema.validate(event, schema)
        assert set(event["probabilities"]) == {"neutral", "happy", "angry"}
    assert unique_ids(received) == [e["event_id"] for e in printed]
    assert [e["seq"] for e in printed] == list(range(UTTERANCES))
    wait_until(lambda: collector.payloads(f"{BASE}/status")[-1:] == [b"offline"], what="offline status")
    state = collector.last(f"{BASE}/state")
    assert state is not None
    jsonschema.validate(state.json(), load_schema("state"))
    assert state.json()["emotion"] in {"neutral", "happy", "angry"}


def test_silence_gives_no_events(tmp_path: Path, daemon_runner: Callable[..., DaemonProcess]) -> None:
    daemon = daemon_runner(["--file", str(silence_wav(tmp_path / "quiet.wav", 5.0)), "--fast", "--no-mqtt",
                            "--stdout"])
    assert daemon.wait() == 0, daemon.stderr()
    assert daemon.events() == []
    assert "stopped after 0 events" in daemon.stderr()


def test_label_groups_and_threshold_shape_the_event(tmp_path: Path,
                                                    daemon_runner: Callable[..., DaemonProcess]) -> None:
    config = config_file(tmp_path, '[inference]\nthreshold = 0.999\n'
                                   '[inference.groups]\ncalm = ["neutral"]\naroused = ["happy", "angry"]\n')
    wav = synthetic_speech_wav(tmp_path / "speech.wav")
    daemon = daemon_runner(["--config", str(config), "--file", str(wav), "--fast", "--no-mqtt", "--stdout"])
    assert daemon.wait() == 0, daemon.stderr()
    events = daemon.events()
    assert len(events) == UTTERANCES
    for event in events:
        jsonschema.validate(event, load_schema("event"))
        assert set(event["groups"]) == {"calm", "aroused"}
        assert abs(sum(event["groups"].values()) - 1.0) < 1e-3
        top = max(event["groups"].values())
        assert event["confidence"] == top
        assert event["label"] == ("uncertain" if top < 0.999 else max(event["groups"], key=event["groups"].get))


def test_pause_stops_processing_and_resume_restarts_it(tmp_path: Path, mqtt_broker: MosquittoBroker,
                                                        mqtt_collector: Callable[..., MqttCollector],
                                                        daemon_runner: Callable[..., DaemonProcess]) -> None:
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/#"])
    wav = synthetic_speech_wav(tmp_path / "speech.wav")  # looped: speech 1.6 s out of every 2.4 s
    daemon = daemon_runner([*mqtt_args(mqtt_broker, config_file(tmp_path)), "--file", str(wav), "--loop"])
    paused = command(collector, {"command": "mute", "id": "p1"})
    paused_at = time.time()
    assert paused["ok"] and paused["command"] == "pause"
    assert paused["state"]["paused"] is True and paused["state"]["listening"] is False
    wait_until(lambda: (s := collector.last(f"{BASE}/state")) and s.json()["paused"], what="paused state")
    time.sleep(5.0)  # two whole utterances go by unheard
    assert daemon.alive
    late = [e for e in events_of(collector) if e["start"] > iso_utc(paused_at)]
    assert late == [], "events for speech that started while paused"
    resumed = command(collector, {"command": "unmute", "id": "r1"})
    resumed_at = time.time()
    assert resumed["state"]["paused"] is False
    wait_until(lambda: [e for e in events_of(collector) if e["start"] > iso_utc(resumed_at)],
               what="events after resume")
    state = collector.last(f"{BASE}/state")
    assert state is not None and state.json()["listening"] is True


def test_sigterm_finishes_the_utterance_and_goes_offline(tmp_path: Path, mqtt_broker: MosquittoBroker,
                                                          mqtt_collector: Callable[..., MqttCollector],
                                                          daemon_runner: Callable[..., DaemonProcess]) -> None:
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/#"])
    wav = synthetic_speech_wav(tmp_path / "long.wav", classes=(1,), seconds=8.0)  # one 8 s utterance
    daemon = daemon_runner([*mqtt_args(mqtt_broker, config_file(tmp_path)), "--file", str(wav), "--stdout"])
    # A smoothed emotion in the state means windows are being classified: we are mid-utterance.
    wait_until(lambda: (s := collector.last(f"{BASE}/state")) and s.json()["emotion"], what="mid-utterance")
    assert daemon.events() == []
    daemon.send(signal.SIGTERM)
    sent = time.monotonic()
    assert daemon.wait() == 0, daemon.stderr()
    # The requirement is 2 s; the margin is for a loaded test machine, not for the daemon.
    assert time.monotonic() - sent < 4.0
    assert len(daemon.events()) == 1  # the interrupted utterance became the last event
    wait_until(lambda: collector.payloads(f"{BASE}/status")[-1:] == [b"offline"], what="offline")
    assert unique_ids(events_of(collector)) == [daemon.events()[0]["event_id"]]


def test_kill_9_leaves_offline_as_last_will(tmp_path: Path, mqtt_broker: MosquittoBroker,
                                           mqtt_collector: Callable[..., MqttCollector],
                                           daemon_runner: Callable[..., DaemonProcess]) -> None:
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/status"])
    daemon = daemon_runner([*mqtt_args(mqtt_broker, config_file(tmp_path)), "--file",
                            str(silence_wav(tmp_path / "quiet.wav")), "--loop"])
    wait_until(lambda: collector.payloads(f"{BASE}/status")[-1:] == [b"online"], what="online")
    daemon.kill()
    wait_until(lambda: collector.payloads(f"{BASE}/status")[-1:] == [b"offline"], what="last will")


def test_broker_outage_mid_stream_delivers_every_event_in_order(
        tmp_path: Path, mqtt_persistent_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        daemon_runner: Callable[..., DaemonProcess]) -> None:
    broker = mqtt_persistent_broker
    # A persistent session: the broker keeps the subscription and queues what the daemon drains.
    collector = mqtt_collector(broker, [f"{BASE}/event"], client_id="outage-watcher", clean_session=False)
    wav = synthetic_speech_wav(tmp_path / "speech.wav", classes=(0, 1, 2, 0, 1, 2))
    daemon = daemon_runner([*mqtt_args(broker, config_file(tmp_path)), "--file", str(wav), "--stdout"])
    wait_until(lambda: events_of(collector), timeout=WAIT_S, what="first event")
    broker.stop()
    wait_until(lambda: len(daemon.events()) >= 3, what="events while the broker is down")
    broker.start()
    assert daemon.wait(timeout=40.0) == 0, daemon.stderr()
    printed = [e["event_id"] for e in daemon.events()]
    assert len(printed) == 6
    wait_until(lambda: len(unique_ids(events_of(collector))) == 6, what="every event after the outage")
    assert unique_ids(events_of(collector)) == printed


def test_events_spooled_while_broker_down_survive_a_kill(
        tmp_path: Path, mqtt_persistent_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        daemon_runner: Callable[..., DaemonProcess]) -> None:
    broker = mqtt_persistent_broker
    collector = mqtt_collector(broker, [f"{BASE}/event"], client_id="spool-watcher", clean_session=False)
    broker.stop()
    config = config_file(tmp_path, f'[state]\ndir = "{tmp_path / "state"}"\n')
    speech = synthetic_speech_wav(tmp_path / "speech.wav")
    # Speech looped as fast as possible while the broker is down, killed once it has said enough.
    first = daemon_runner([*mqtt_args(broker, config), "--file", str(speech), "--fast", "--loop", "--stdout"])
    wait_until(lambda: len(first.events()) >= 2 * UTTERANCES, what="events spooled")
    first.kill()
    spooled = [e["event_id"] for e in first.events()]  # an event is spooled before it is printed
    broker.start()
    second = daemon_runner([*mqtt_args(broker, config), "--file", str(silence_wav(tmp_path / "quiet.wav")),
                            "--loop", "--stdout"])
    wait_until(lambda: len(unique_ids(events_of(collector))) >= len(spooled), what="spooled events after restart")
    received = unique_ids(events_of(collector))
    assert received[: len(spooled)] == spooled
    seqs = {e["event_id"]: e["seq"] for e in events_of(collector)}
    assert [seqs[i] for i in spooled] == list(range(len(spooled)))
    second.send(signal.SIGTERM)
    assert second.wait() == 0
    assert second.events() == []


def test_devices_sharing_a_state_dir_replay_only_their_own_spooled_events(
        tmp_path: Path, mqtt_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        daemon_runner: Callable[..., DaemonProcess]) -> None:
    config = config_file(tmp_path, f'[state]\ndir = "{tmp_path / "state"}"\n')
    args = [*mqtt_args(mqtt_broker, config), "--stdout"]
    quiet = str(silence_wav(tmp_path / "quiet.wav"))
    mqtt_broker.stop()
    # Device A hears speech while the broker is down: the file ends, its events stay spooled.
    first = daemon_runner([*args, "--device-id", "dev-a", "--file", str(synthetic_speech_wav(tmp_path / "s.wav")),
                           "--fast"])
    assert first.wait() == 0, first.stderr()
    spooled = [e["event_id"] for e in first.events()]
    assert len(spooled) == UTTERANCES
    mqtt_broker.start()
    collector = mqtt_collector(mqtt_broker, ["edge-ser/+/event", "edge-ser/+/status"])

    # Device B starts on the same directory, connects, and stops (flushing its own spool on the way).
    other = daemon_runner([*args, "--device-id", "dev-b", "--file", quiet, "--loop"])
    wait_until(lambda: collector.payloads("edge-ser/dev-b/status")[-1:] == [b"online"], what="device B online")
    other.send(signal.SIGTERM)
    assert other.wait() == 0, other.stderr()
    assert collector.payloads("edge-ser/dev-b/event") == []

    again = daemon_runner([*args, "--device-id", "dev-a", "--file", quiet, "--loop"])
    wait_until(lambda: set(unique_ids([json.loads(p) for p in collector.payloads("edge-ser/dev-a/event")]))
               >= set(spooled), what="device A's spooled events on its own topic")
    again.send(signal.SIGTERM)
    assert again.wait() == 0, again.stderr()
    assert collector.payloads("edge-ser/dev-b/event") == []


def deliver_spooled(tmp_path: Path, state: Path, broker: MosquittoBroker, collector: MqttCollector,
                    daemon_runner: Callable[..., DaemonProcess], expected: list[str], what: str) -> str:
    """Run the daemon on `state` (on silence, so it adds no event of its own) until exactly the
    `expected` event ids have arrived, stop it cleanly; its stderr."""
    config = config_file(tmp_path, f'[state]\ndir = "{state}"\n')
    daemon = daemon_runner([*mqtt_args(broker, config), "--file", str(silence_wav(tmp_path / "quiet.wav")),
                            "--loop", "--stdout"])
    wait_until(lambda: unique_ids(events_of(collector)) == expected, what=what)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.stderr()
    return daemon.stderr()


def test_a_legacy_spool_left_by_a_crash_is_adopted_and_delivered(
        tmp_path: Path, mqtt_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        daemon_runner: Callable[..., DaemonProcess]) -> None:
    state = tmp_path / "state"
    legacy = state / "spool.sqlite"
    # The shared spool of a version before per-device spools, as a killed publisher leaves it: its
    # rows are still in the write-ahead log beside it, not in the database file.
    mqtt_broker.stop()
    ids = [new_event_id() for _ in range(5)]
    child = ChildPublisher({"host": mqtt_broker.host, "port": mqtt_broker.port, "device_id": DEVICE,
                            "spool_path": str(legacy)}, ids)
    try:
        child.wait_stats(lambda s: s["spool_pending"] == len(ids) and not s["connected"], "events spooled")
    finally:
        child.kill()
    assert legacy.with_name("spool.sqlite-wal").stat().st_size > 0
    mqtt_broker.start()
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/event"])

    stderr = deliver_spooled(tmp_path, state, mqtt_broker, collector, daemon_runner, ids, "the legacy spool's events")
    adopted = state / f"spool.{DEVICE}.sqlite"
    assert f"adopted event spool {legacy} from before state was kept per device id as {adopted}" in stderr
    assert adopted.is_file() and not legacy.exists() and not legacy.with_name("spool.sqlite-wal").exists()


def test_a_legacy_spool_is_left_alone_when_the_device_has_its_own(
        tmp_path: Path, mqtt_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        daemon_runner: Callable[..., DaemonProcess]) -> None:
    state = tmp_path / "state"
    legacy, own = state / "spool.sqlite", state / f"spool.{DEVICE}.sqlite"

    def spool(path: Path, count: int) -> list[str]:
        events = [make_event(device_id=DEVICE, seq=seq, start=0.0, end=1.0, label="happy",
                             probabilities={"happy": 1.0}, windows=1, model_name="m", model_version="1")
                  for seq in range(count)]
        queue = Spool(path, 100)
        for event in events:
            queue.append(event["event_id"], json.dumps(event))
        queue.close()
        return [e["event_id"] for e in events]

    spool(legacy, 3)
    legacy_bytes = legacy.read_bytes()
    own_ids = spool(own, 2)
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/event"])
    stderr = deliver_spooled(tmp_path, state, mqtt_broker, collector, daemon_runner, own_ids,
                             "the device's own spooled events")
    assert unique_ids(events_of(collector)) == own_ids
    assert legacy.read_bytes() == legacy_bytes
    assert "adopted" not in stderr


def test_wrong_password_is_reported_and_retried(tmp_path: Path, mqtt_tls_broker: MosquittoBroker,
                                               tls_material: Any,
                                               daemon_runner: Callable[..., DaemonProcess]) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password\n")
    config = config_file(tmp_path, f'username = "{tls_material.username}"\npassword_file = "{wrong}"\n'
                                   f'tls = true\nca_file = "{tls_material.ca_file}"\n')
    daemon = daemon_runner([*mqtt_args(mqtt_tls_broker, config), "--file",
                            str(silence_wav(tmp_path / "quiet.wav")), "--loop"])
    daemon.wait_for_output("refused the connection")
    out = daemon.stdout()
    assert "not-the-password" not in out  # the secret never reaches the log
    time.sleep(2.5)  # several retries
    assert daemon.alive
    assert "Traceback" not in daemon.stdout() + daemon.stderr()
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


def test_malformed_commands_are_answered_and_survived(tmp_path: Path, mqtt_broker: MosquittoBroker,
                                                     mqtt_collector: Callable[..., MqttCollector],
                                                     daemon_runner: Callable[..., DaemonProcess]) -> None:
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/#"])
    daemon = daemon_runner([*mqtt_args(mqtt_broker, config_file(tmp_path)), "--file",
                            str(silence_wav(tmp_path / "quiet.wav")), "--loop"])
    assert command(collector, {"command": "status", "id": 1})["ok"]
    for bad in (b"not json", b"[1, 2]", b'{"command": "dance", "id": 2}', b'{"comand": "pause"}'):
        collector.publish(f"{BASE}/cmd", bad)
    results = wait_until(lambda: r if len(r := collector.payloads(f"{BASE}/cmd/result")) >= 5 else None,
                         what="error results")
    schema = load_schema("cmd_result")
    for payload in results[1:]:
        result = json.loads(payload)
        jsonschema.validate(result, schema)
        assert result["ok"] is False and result["error"]
    status = command(collector, {"command": "status", "id": "after"})
    assert status["ok"] and status["state"]["paused"] is False
    jsonschema.validate(status["state"], load_schema("state"))
    assert daemon.alive


@pytest.mark.parametrize(("toml", "expected"), [
    ('[mqtt]\nport = "1883"\n', "mqtt.port: expected integer"),
    ('[mqtt]\nprot = 1883\n', "mqtt.prot: unknown key"),
    ('[inference.groups]\nbad = ["furious"]\n', "inference.groups.bad: 'furious' is not a label"),
    ('[gate]\nthreshold_db = -3.0\n', "gate: threshold_db must be > 0"),
    ("[audio\n", "not valid TOML"),
])
def test_config_errors_are_one_line_naming_file_and_key(tmp_path: Path, toml: str, expected: str,
                                                       daemon_runner: Callable[..., DaemonProcess]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    daemon = daemon_runner(["--config", str(config), "--file", str(silence_wav(tmp_path / "q.wav")), "--no-mqtt"])
    assert daemon.wait() == 2
    err = daemon.stderr().strip()
    assert "Traceback" not in err
    assert err.count("\n") == 0, err
    assert err.startswith(f"edge-ser: error: {config}"), err
    assert expected in err


def test_missing_wav_and_config_files_are_named(tmp_path: Path,
                                               daemon_runner: Callable[..., DaemonProcess]) -> None:
    daemon = daemon_runner(["--file", str(tmp_path / "nope.wav"), "--no-mqtt"])
    assert daemon.wait() == 2
    assert f"{tmp_path / 'nope.wav'}" in daemon.stderr() and "Traceback" not in daemon.stderr()
    daemon = daemon_runner(["--config", str(tmp_path / "nope.toml")])
    assert daemon.wait() == 2
    assert "nope.toml: config file not found" in daemon.stderr()
