"""MqttPublisher against a real mosquitto: status/last will, retained state, durable ordered events
through outages and crashes, spool bound, authentication and TLS, commands, HA discovery."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge_ser.errors import ConfigError
from edge_ser.mqtt.discovery import discovery_messages
from edge_ser.mqtt.publisher import MqttPublisher
from edge_ser.mqtt.settings import MqttSettings
from edge_ser.protocol.payloads import load_schema, make_event, make_state, new_event_id
from edge_ser_testing.broker import MosquittoBroker, wait_until
from tests.mqtt_fixtures import MqttCollector, make_ca, running_broker

REPO = Path(__file__).resolve().parents[1]
DEVICE = "dev1"
BASE = f"edge-ser/{DEVICE}"
NAMESPACE = f"edge-ser_{DEVICE}"  # unique ids and the HA device: the base topic in the characters HA allows
HA_TOPICS = [f"homeassistant/{component}/{DEVICE}/{name}/config" for component, name in (
    ("sensor", "emotion"), ("event", "utterance"), ("switch", "mute"), ("button", "new_speaker"),
    ("binary_sensor", "listening"),
    ("binary_sensor", "source"), ("sensor", "spool_pending"), ("binary_sensor", "events_lost"))]
LABELS = ["angry", "happy", "neutral", "sad"]
MODEL = {"model_name": "ser-test", "model_version": "0.0.1"}

Collect = Callable[..., MqttCollector]


def _settings(broker: MosquittoBroker, **overrides: Any) -> MqttSettings:
    values: dict[str, Any] = dict(
        host=broker.host, port=broker.port, device_id=DEVICE, reconnect_min_s=0.1, reconnect_max_s=0.5
    )
    values.update(overrides)
    return MqttSettings(**values)


def _event(seq: int, event_id: str | None = None) -> dict[str, Any]:
    probs = {"angry": 0.1, "happy": 0.7, "neutral": 0.1, "sad": 0.1}
    return make_event(
        device_id=DEVICE, seq=seq, start=1_700_000_000.0 + seq, end=1_700_000_000.8 + seq, label="happy",
        probabilities=probs, windows=3, event_id=event_id, **MODEL,
    )  # fmt: skip


def _state(paused: bool = False, emotion: str | None = "happy") -> dict[str, Any]:
    return make_state(
        device_id=DEVICE, emotion=emotion, confidence=0.7 if emotion else None, probabilities={},
        listening=not paused, paused=paused, timestamp=1_700_000_000.0, **MODEL,
    )  # fmt: skip


def _event_ids(collector: MqttCollector) -> list[str]:
    return [json.loads(p)["event_id"] for p in collector.payloads(f"{BASE}/event")]


def _first_seen(ids: list[str]) -> list[str]:
    """Collapse at-least-once redeliveries, keeping first-arrival order."""
    return list(dict.fromkeys(ids))


@pytest.fixture
def make_publisher() -> Iterator[Callable[..., MqttPublisher]]:
    made: list[MqttPublisher] = []

    def make(settings: MqttSettings, start: bool = True) -> MqttPublisher:
        publisher = MqttPublisher(settings, labels=LABELS, **MODEL)
        made.append(publisher)
        if start:
            publisher.start()
        return publisher

    yield make
    for publisher in made:
        publisher.stop(timeout=1.0)


def _connected(publisher: MqttPublisher) -> bool:
    return bool(publisher.stats()["connected"])


READY_ID = "ready-ping"


def _wait_commands_ready(collector: MqttCollector) -> None:
    """The publisher subscribes right after CONNACK; ping until a result proves the subscription is live.

    Late answers to extra pings may still arrive: ``_results`` and ``_handled`` leave them out.
    """
    last_ping = [0.0]

    def answered() -> bool:
        if any(json.loads(p).get("id") == READY_ID for p in collector.payloads(f"{BASE}/cmd/result")):
            return True
        if time.monotonic() - last_ping[0] > 0.25:
            collector.publish(f"{BASE}/cmd", json.dumps({"command": "status", "id": READY_ID}))
            last_ping[0] = time.monotonic()
        return False

    wait_until(answered, what="command subscription")


# ---------------------------------------------------------------- a publisher in a child process

_CHILD = r"""
import json, sys, time
from edge_ser.protocol.payloads import make_event
from edge_ser.mqtt.publisher import MqttPublisher
from edge_ser.mqtt.settings import MqttSettings
cfg = json.loads(sys.argv[1])
pub = MqttPublisher(MqttSettings(**cfg["settings"]), model_name="ser-test", model_version="0.0.1", labels=["a", "b"])
pub.start()
for seq, event_id in enumerate(cfg["event_ids"]):
    pub.publish_event(make_event(device_id=cfg["settings"]["device_id"], seq=seq, start=0.0, end=1.0, label="a",
                                 probabilities={"a": 0.9, "b": 0.1}, windows=1, event_id=event_id,
                                 model_name="ser-test", model_version="0.0.1"))
while True:
    print(json.dumps(pub.stats()), flush=True)
    time.sleep(0.05)
"""


class ChildPublisher:
    """A publisher in its own process, so that it can be SIGKILLed like a crashing daemon."""

    def __init__(self, settings: dict[str, Any], event_ids: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        config = json.dumps({"settings": settings, "event_ids": event_ids})
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, config], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.stats: dict[str, Any] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stats = json.loads(line)

    def wait_stats(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> None:
        def ok() -> bool:
            if self.proc.poll() is not None:
                stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"child publisher exited with {self.proc.returncode}: {stderr}")
            return bool(self.stats) and predicate(self.stats)

        wait_until(ok, what=what)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def child_publisher() -> Iterator[Callable[..., ChildPublisher]]:
    children: list[ChildPublisher] = []

    def make(settings: dict[str, Any], event_ids: list[str] | None = None) -> ChildPublisher:
        child = ChildPublisher(settings, event_ids or [])
        children.append(child)
        return child

    yield make
    for child in children:
        if child.proc.poll() is None:
            child.kill()


# ---------------------------------------------------------------- status and state


def test_online_on_connect_and_offline_on_clean_stop(
    mqtt_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    watcher = mqtt_collector(mqtt_broker, [f"{BASE}/status"])
    publisher = make_publisher(_settings(mqtt_broker))
    wait_until(lambda: watcher.payloads(f"{BASE}/status") == [b"online"], what="status online")
    assert _connected(publisher)

    publisher.stop(timeout=2.0)
    wait_until(lambda: watcher.payloads(f"{BASE}/status")[-1:] == [b"offline"], what="status offline")
    late = mqtt_collector(mqtt_broker, [f"{BASE}/status"])
    wait_until(lambda: late.messages(), what="retained status")
    assert [(m.payload, m.retain) for m in late.messages()] == [(b"offline", True)]


def test_last_will_marks_a_killed_publisher_offline(
    mqtt_broker: MosquittoBroker, mqtt_collector: Collect, child_publisher: Callable[..., ChildPublisher]
) -> None:
    watcher = mqtt_collector(mqtt_broker, [f"{BASE}/status"])
    child = child_publisher({"host": mqtt_broker.host, "port": mqtt_broker.port, "device_id": DEVICE})
    child.wait_stats(lambda s: s["connected"], "child connected")
    wait_until(lambda: watcher.payloads(f"{BASE}/status") == [b"online"], what="status online")

    child.kill()  # no DISCONNECT is sent: the broker must fire the will
    wait_until(lambda: watcher.payloads(f"{BASE}/status") == [b"online", b"offline"], what="last will")
    late = mqtt_collector(mqtt_broker, [f"{BASE}/status"])
    wait_until(lambda: late.messages(), what="retained status")
    assert [(m.payload, m.retain) for m in late.messages()] == [(b"offline", True)]


def test_retained_state_is_republished_after_broker_restart(
    mqtt_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    publisher = make_publisher(_settings(mqtt_broker))
    state = _state(emotion="sad")
    publisher.publish_state(state)  # before the connection exists: remembered
    watcher = mqtt_collector(mqtt_broker, [f"{BASE}/state"])
    wait_until(lambda: watcher.messages(), what="state")
    assert watcher.messages()[0].json() == state
    jsonschema.validate(state, load_schema("state"))

    mqtt_broker.stop()  # no persistence: the broker forgets every retained message
    wait_until(lambda: not _connected(publisher), what="publisher to notice the outage")
    mqtt_broker.start()
    wait_until(lambda: _connected(publisher), what="publisher to reconnect")

    late = mqtt_collector(mqtt_broker, [f"{BASE}/state", f"{BASE}/status"])
    wait_until(lambda: late.last(f"{BASE}/state") and late.last(f"{BASE}/status"), what="retained topics")
    assert late.last(f"{BASE}/state").json() == state  # type: ignore[union-attr]
    assert late.last(f"{BASE}/state").retain  # type: ignore[union-attr]
    assert late.payloads(f"{BASE}/status") == [b"online"]

    paused = _state(paused=True)
    publisher.publish_state(paused)
    wait_until(lambda: late.last(f"{BASE}/state").json() == paused, what="new state")  # type: ignore[union-attr]


# ---------------------------------------------------------------- events


def test_events_arrive_in_order_and_match_the_schema(
    mqtt_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    watcher = mqtt_collector(mqtt_broker, [f"{BASE}/event"])
    publisher = make_publisher(_settings(mqtt_broker))
    events = [_event(seq) for seq in range(30)]
    for event in events:
        publisher.publish_event(event)
    wait_until(lambda: len(watcher.messages()) >= 30, what="30 events")
    assert publisher.flush(10.0)

    received = [m.json() for m in watcher.messages()]
    validator = jsonschema.Draft202012Validator(load_schema("event"))
    for payload in received:
        validator.validate(payload)
    assert _first_seen([e["event_id"] for e in received]) == [e["event_id"] for e in events]
    assert received[0] == events[0]
    assert not any(m.retain for m in watcher.messages())
    assert publisher.stats() == {"connected": True, "spool_pending": 0, "spool_dropped": 0,
                                 "spool_degraded": None, "published": 30}


def test_broker_outage_mid_stream_loses_nothing_and_keeps_order(
    mqtt_persistent_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    broker = mqtt_persistent_broker
    # A persistent session, so the watcher misses nothing while both it and the publisher reconnect.
    watcher = mqtt_collector(broker, [f"{BASE}/event"], client_id="watcher", clean_session=False)
    publisher = make_publisher(_settings(broker))
    sent: list[str] = []

    def send(count: int) -> None:
        for _ in range(count):
            event = _event(len(sent))
            sent.append(event["event_id"])
            publisher.publish_event(event)  # must neither block nor raise during the outage

    send(25)
    wait_until(lambda: len(watcher.messages()) >= 5, what="first events")
    broker.stop()
    send(25)
    wait_until(lambda: not _connected(publisher), what="publisher to notice the outage")
    send(10)
    assert publisher.stats()["spool_pending"] > 0
    broker.start()
    send(10)

    wait_until(lambda: set(_event_ids(watcher)) >= set(sent), what="every event after the outage")
    assert _first_seen(_event_ids(watcher)) == sent
    assert publisher.flush(10.0)
    assert publisher.stats()["spool_pending"] == 0


def test_events_in_flight_when_the_broker_crashes_are_resent(
    mqtt_persistent_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    broker = mqtt_persistent_broker
    watcher = mqtt_collector(broker, [f"{BASE}/event"], client_id="watcher", clean_session=False)
    publisher = make_publisher(_settings(broker))
    before = [_event(seq) for seq in range(5)]
    for event in before:
        publisher.publish_event(event)
    wait_until(lambda: len(_event_ids(watcher)) >= 5, what="events before the crash")

    broker.freeze()  # sent from here on, never acknowledged
    lost_in_flight = [_event(seq) for seq in range(5, 15)]
    for event in lost_in_flight:
        publisher.publish_event(event)
    time.sleep(0.3)  # let them reach the socket, so they really are in flight
    assert publisher.stats()["spool_pending"] == 10
    broker.crash()
    broker.start()

    expected = [e["event_id"] for e in before + lost_in_flight]
    wait_until(lambda: set(_event_ids(watcher)) >= set(expected), what="events that were in flight")
    assert _first_seen(_event_ids(watcher)) == expected
    assert publisher.flush(10.0)


def test_events_spooled_by_a_crashed_publisher_are_delivered_by_the_next(
    tmp_path: Path,
    mqtt_broker: MosquittoBroker,
    mqtt_collector: Collect,
    make_publisher: Callable[..., MqttPublisher],
    child_publisher: Callable[..., ChildPublisher],
) -> None:
    spool = tmp_path / "state" / "spool.sqlite"
    mqtt_broker.stop()
    ids = [new_event_id() for _ in range(12)]
    settings = {"host": mqtt_broker.host, "port": mqtt_broker.port, "device_id": DEVICE, "spool_path": str(spool)}
    child = child_publisher(settings, ids)
    child.wait_stats(lambda s: s["spool_pending"] == 12 and not s["connected"], "events spooled")
    child.kill()

    mqtt_broker.start()
    watcher = mqtt_collector(mqtt_broker, [f"{BASE}/event"])
    publisher = make_publisher(_settings(mqtt_broker, spool_path=str(spool)))
    wait_until(lambda: set(_event_ids(watcher)) >= set(ids), what="events from the crashed run")
    assert _first_seen(_event_ids(watcher)) == ids
    assert publisher.flush(10.0)
    assert publisher.stats()["spool_pending"] == 0


def test_spool_overflow_drops_the_oldest_and_counts(
    tmp_path: Path, mqtt_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    watcher = mqtt_collector(mqtt_broker, [f"{BASE}/event"])
    settings = _settings(mqtt_broker, spool_path=str(tmp_path / "spool.sqlite"), spool_max_events=5)
    publisher = make_publisher(settings, start=False)  # not connected yet: everything waits in the spool
    events = [_event(seq) for seq in range(8)]
    for event in events:
        publisher.publish_event(event)
    assert publisher.stats() == {"connected": False, "spool_pending": 5, "spool_dropped": 3, "published": 0,
                                 "spool_degraded": "event spool full (5 events): each new event drops the oldest"}

    publisher.start()
    wait_until(lambda: len(_event_ids(watcher)) >= 5, what="surviving events")
    assert publisher.flush(10.0)
    assert _first_seen(_event_ids(watcher)) == [e["event_id"] for e in events[3:]]
    assert publisher.stats()["spool_dropped"] == 3  # the count persists; it is not reset by delivery


def test_publish_event_rejects_events_without_id(mqtt_broker: MosquittoBroker) -> None:
    publisher = MqttPublisher(_settings(mqtt_broker), labels=LABELS, **MODEL)
    with pytest.raises(ValueError, match="event_id"):
        publisher.publish_event({"label": "happy"})
    publisher.stop()


# ---------------------------------------------------------------- authentication and TLS


def test_wrong_password_is_logged_clearly_and_retried(
    mqtt_tls_broker: MosquittoBroker,
    make_publisher: Callable[..., MqttPublisher],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_ser.mqtt")
    monkeypatch.setenv("EDGE_SER_TEST_MQTT_PASSWORD", "definitely-wrong")
    tls = mqtt_tls_broker.tls
    assert tls is not None
    settings = _settings(
        mqtt_tls_broker, tls=True, ca_file=str(tls.ca_file), username=tls.username,
        password_env="EDGE_SER_TEST_MQTT_PASSWORD",
    )  # fmt: skip
    publisher = make_publisher(settings)

    def refusals() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "refused the connection" in r.getMessage()]

    wait_until(lambda: len(refusals()) >= 3, what="three refused attempts")
    first = refusals()[0]
    assert first.levelno == logging.ERROR
    assert "not authorized" in first.getMessage().lower() or "bad user name" in first.getMessage().lower()
    assert tls.username in first.getMessage()
    assert not _connected(publisher)
    assert "definitely-wrong" not in caplog.text


def test_tls_with_password_file_delivers(
    mqtt_tls_broker: MosquittoBroker,
    mqtt_collector: Collect,
    make_publisher: Callable[..., MqttPublisher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_ser.mqtt")
    tls = mqtt_tls_broker.tls
    assert tls is not None
    watcher = mqtt_collector(mqtt_tls_broker, [f"{BASE}/event", f"{BASE}/status"])
    settings = _settings(
        mqtt_tls_broker, tls=True, ca_file=str(tls.ca_file), username=tls.username,
        password_file=str(tls.password_file),
    )  # fmt: skip
    publisher = make_publisher(settings)
    event = _event(0)
    publisher.publish_event(event)
    wait_until(lambda: watcher.payloads(f"{BASE}/event"), what="event over TLS")
    assert watcher.messages(f"{BASE}/event")[0].json() == event
    assert watcher.payloads(f"{BASE}/status") == [b"online"]
    assert tls.password not in caplog.text


def test_tls_with_the_wrong_ca_fails_with_a_clear_error(
    tmp_path: Path,
    mqtt_tls_broker: MosquittoBroker,
    make_publisher: Callable[..., MqttPublisher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_ser.mqtt")
    other_ca, _ = make_ca(tmp_path / "other", "other-ca")
    tls = mqtt_tls_broker.tls
    assert tls is not None
    settings = _settings(
        mqtt_tls_broker, tls=True, ca_file=str(other_ca), username=tls.username,
        password_file=str(tls.password_file),
    )  # fmt: skip
    publisher = make_publisher(settings)
    record = wait_until(
        lambda: next((r for r in caplog.records if "TLS certificate verification failed" in r.getMessage()), None),
        what="TLS verification error",
    )
    assert record.levelno == logging.ERROR
    assert str(other_ca) in record.getMessage()
    assert not _connected(publisher)


def test_unusable_secrets_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_SER_UNSET_VAR", raising=False)
    cases = {
        "password_file": MqttSettings(username="u", password_file=str(tmp_path / "missing")),
        "EDGE_SER_UNSET_VAR": MqttSettings(username="u", password_env="EDGE_SER_UNSET_VAR"),
        "no username": MqttSettings(password_env="HOME"),
        "TLS setup failed": MqttSettings(tls=True, ca_file=str(tmp_path / "missing-ca.pem")),
    }
    for message, settings in cases.items():
        publisher = MqttPublisher(settings, labels=LABELS, **MODEL)
        with pytest.raises(ConfigError, match=message):
            publisher.start()
        publisher.stop()
    with pytest.raises(ConfigError, match="device_id"):
        MqttPublisher(MqttSettings(device_id="a/b"), labels=LABELS, **MODEL)


# ---------------------------------------------------------------- commands


class PauseHandler:
    """What the daemon does with commands, reduced to a flag."""

    def __init__(self) -> None:
        self.paused = False
        self.seen: list[dict[str, Any]] = []

    def __call__(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.seen.append(cmd)
        if cmd["command"] == "pause":
            self.paused = True
        elif cmd["command"] == "resume":
            self.paused = False
        return {"ok": True, "state": _state(paused=self.paused)}


def _results(collector: MqttCollector) -> list[dict[str, Any]]:
    results = [json.loads(p) for p in collector.payloads(f"{BASE}/cmd/result")]
    return [r for r in results if r["id"] != READY_ID]


def _handled(handler: PauseHandler) -> list[dict[str, Any]]:
    return [cmd for cmd in handler.seen if cmd["id"] != READY_ID]


def test_malformed_commands_get_error_results_and_do_not_break_anything(
    mqtt_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    watcher = mqtt_collector(mqtt_broker, [f"{BASE}/cmd/result", f"{BASE}/event"])
    publisher = make_publisher(_settings(mqtt_broker))
    handler = PauseHandler()
    publisher.set_command_handler(handler)
    _wait_commands_ready(watcher)

    bad = [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"command": "dance", "id": "d1"}', "unknown command"),
        (b'{"command": "pause", "extra": true}', "unknown field"),
    ]
    for payload, _ in bad:
        watcher.publish(f"{BASE}/cmd", payload)
    wait_until(lambda: len(_results(watcher)) >= len(bad), what="error results")
    results = _results(watcher)
    schema = load_schema("cmd_result")
    for result, (_, message) in zip(results, bad, strict=True):
        jsonschema.validate(result, schema)
        assert result["ok"] is False
        assert message in result["error"]
    assert results[2]["id"] == "d1"
    assert results[2]["command"] == "dance"
    assert _handled(handler) == []  # nothing malformed reached the daemon

    publisher.publish_event(_event(0))  # still publishing
    wait_until(lambda: watcher.payloads(f"{BASE}/event"), what="event after bad commands")


def test_pause_resume_and_status_results(
    mqtt_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    watcher = mqtt_collector(mqtt_broker, [f"{BASE}/cmd/result"])
    publisher = make_publisher(_settings(mqtt_broker))
    handler = PauseHandler()
    publisher.set_command_handler(handler)
    _wait_commands_ready(watcher)

    commands = [{"command": "mute", "id": 1}, {"command": "status", "id": 2}, {"command": "unmute", "id": "three"}]
    for command in commands:
        watcher.publish(f"{BASE}/cmd", json.dumps(command))
    wait_until(lambda: len(_results(watcher)) >= 3, what="three results")
    results = _results(watcher)
    for result in results:
        jsonschema.validate(result, load_schema("cmd_result"))
        jsonschema.validate(result["state"], load_schema("state"))
    assert [(r["id"], r["command"], r["ok"], r["error"]) for r in results] == [
        (1, "pause", True, None),
        (2, "status", True, None),
        ("three", "resume", True, None),
    ]
    assert [r["state"]["paused"] for r in results] == [True, True, False]
    assert [c["command"] for c in _handled(handler)] == ["pause", "status", "resume"]  # aliases resolved

    def broken(cmd: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("microphone on fire")

    publisher.set_command_handler(broken)
    watcher.publish(f"{BASE}/cmd", json.dumps({"command": "pause", "id": 4}))
    wait_until(lambda: len(_results(watcher)) >= 4, what="result of a failing handler")
    failed = _results(watcher)[3]
    assert (failed["id"], failed["ok"]) == (4, False)
    assert "microphone on fire" in failed["error"]


def test_retained_command_is_not_replayed_on_connect(
    mqtt_broker: MosquittoBroker,
    mqtt_collector: Collect,
    make_publisher: Callable[..., MqttPublisher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    watcher = mqtt_collector(mqtt_broker, [f"{BASE}/cmd/result"])
    watcher.publish(f"{BASE}/cmd", json.dumps({"command": "pause", "id": "stale"}), retain=True)
    handler = PauseHandler()
    publisher = make_publisher(_settings(mqtt_broker))
    publisher.set_command_handler(handler)
    _wait_commands_ready(watcher)
    assert _handled(handler) == []
    assert _results(watcher) == []
    assert not handler.paused
    assert "ignoring retained message" in caplog.text


# ---------------------------------------------------------------- Home Assistant discovery


def test_discovery_configs_are_retained_and_resent_when_ha_comes_online(
    mqtt_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    sensor_topic = f"homeassistant/sensor/{DEVICE}/emotion/config"
    event_topic = f"homeassistant/event/{DEVICE}/utterance/config"
    commander = mqtt_collector(mqtt_broker, [f"{BASE}/cmd/result"])
    publisher = make_publisher(_settings(mqtt_broker))
    _wait_commands_ready(commander)  # also proves the homeassistant/status subscription is live

    ha = mqtt_collector(mqtt_broker, ["homeassistant/+/+/+/config"])
    wait_until(lambda: len(ha.messages()) >= len(HA_TOPICS), what="retained discovery configs")
    assert {m.topic for m in ha.messages()} == set(HA_TOPICS)
    assert all(m.retain for m in ha.messages())
    sensor = ha.last(sensor_topic).json()  # type: ignore[union-attr]
    event = ha.last(event_topic).json()  # type: ignore[union-attr]
    assert sensor["state_topic"] == sensor["json_attributes_topic"] == f"{BASE}/state"
    assert sensor["availability_topic"] == event["availability_topic"] == f"{BASE}/status"
    assert sensor["options"] == [*LABELS, "uncertain"]
    assert event["state_topic"] == f"{BASE}/event"
    assert event["event_types"] == [*LABELS, "uncertain"]
    configs = [ha.last(t).json() for t in HA_TOPICS]  # type: ignore[union-attr]
    assert len({c["unique_id"] for c in configs}) == len(HA_TOPICS)
    assert all(c["unique_id"].startswith(f"{NAMESPACE}_") for c in configs)  # namespaced by prefix and device
    assert all(c["device"] == sensor["device"] for c in configs)
    assert sensor["device"]["identifiers"] == [NAMESPACE]
    assert "ser-test" in sensor["device"]["model"]

    ha.clear()
    commander.publish("homeassistant/status", "offline")
    commander.publish("homeassistant/status", "online")
    wait_until(lambda: len(ha.messages()) >= len(HA_TOPICS), what="discovery re-sent after HA birth")
    assert {m.topic for m in ha.messages()} == set(HA_TOPICS)
    assert not any(m.retain for m in ha.messages())  # live delivery to an existing subscriber
    assert publisher.stats()["connected"]


def test_discovery_announces_groups_and_sanitises_the_node_id() -> None:
    configs = dict(
        discovery_messages(
            base_topic="edge-ser/hall.1", device_id="hall.1", discovery_prefix="ha", labels=LABELS,
            groups=["negative", "positive", "negative"], model_name="m", model_version="1",
        )
    )  # fmt: skip
    assert {"ha/sensor/hall_1/emotion/config", "ha/event/hall_1/utterance/config"} <= set(configs)
    kinds = [*LABELS, "negative", "positive", "uncertain"]
    assert configs["ha/event/hall_1/utterance/config"]["event_types"] == kinds
    assert configs["ha/sensor/hall_1/emotion/config"]["options"] == kinds
    assert configs["ha/sensor/hall_1/emotion/config"]["state_topic"] == "edge-ser/hall.1/state"
    # another prefix, the same device id: other unique ids and another HA device
    other = dict(discovery_messages(base_topic="lab/hall.1", device_id="hall.1", discovery_prefix="ha",
                                    labels=LABELS, model_name="m", model_version="1"))
    assert {c["unique_id"] for c in configs.values()}.isdisjoint(c["unique_id"] for c in other.values())
    assert other["ha/sensor/hall_1/emotion/config"]["device"]["identifiers"] == ["lab_hall_1"]


def test_discovery_disabled_publishes_no_configs(
    mqtt_broker: MosquittoBroker, mqtt_collector: Collect, make_publisher: Callable[..., MqttPublisher]
) -> None:
    commander = mqtt_collector(mqtt_broker, [f"{BASE}/cmd/result"])
    make_publisher(_settings(mqtt_broker, discovery=False))
    _wait_commands_ready(commander)  # connected and subscribed: discovery would have been sent by now
    ha = mqtt_collector(mqtt_broker, ["homeassistant/#", f"{BASE}/cmd/result"])
    commander.publish("homeassistant/status", "online")
    commander.publish(f"{BASE}/cmd", json.dumps({"command": "status", "id": "after-birth"}))
    # Handled in order by the publisher, delivered in order to `ha`: a re-send would precede this answer.
    wait_until(lambda: any(r["id"] == "after-birth" for r in _results(ha)), what="answer after HA birth")
    assert ha.messages("homeassistant/status")
    assert [m.topic for m in ha.messages() if m.topic.endswith("/config")] == []


# ---------------------------------------------------------------- the example broker ACL


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker using firmware_config/mosquitto/acl, with two devices and Home Assistant as users."""
    users = {DEVICE: "dev1-pw", "dev2": "dev2-pw", "homeassistant": "ha-pw"}
    yield from running_broker(tmp_path / "acl-broker", users=users,
                              acl_file=REPO / "firmware_config" / "mosquitto" / "acl")


def test_example_acl_confines_each_device_to_its_own_topics(
    tmp_path: Path,
    acl_broker: MosquittoBroker,
    mqtt_collector: Collect,
    make_publisher: Callable[..., MqttPublisher],
) -> None:
    broker = acl_broker
    ha = mqtt_collector(broker, ["edge-ser/#", "homeassistant/+/+/+/config"], username="homeassistant",
                        password="ha-pw")  # fmt: skip
    intruder = mqtt_collector(broker, [f"{BASE}/#"], username="dev2", password="dev2-pw")
    password_file = tmp_path / "dev1-password"
    password_file.write_text("dev1-pw\n")
    publisher = make_publisher(_settings(broker, username=DEVICE, password_file=str(password_file)))
    publisher.set_command_handler(PauseHandler())
    publisher.publish_event(_event(0))

    # Everything the device publishes reaches Home Assistant, and HA's commands reach the device.
    wait_until(lambda: ha.payloads(f"{BASE}/event") and ha.payloads(f"{BASE}/status"), what="device traffic")
    wait_until(lambda: len(ha.messages()) >= len(HA_TOPICS) + 2, what="discovery configs")  # + status + event
    intruder.publish(f"{BASE}/cmd", json.dumps({"command": "pause", "id": "intruder"}))
    _wait_commands_ready(ha)
    assert [r["id"] for r in _results(ha)] == []  # the intruder's command never arrived
    sensor_config = f"homeassistant/sensor/{DEVICE}/emotion/config"
    assert {m.topic for m in ha.messages()} >= set(HA_TOPICS)
    configs = len(ha.messages(sensor_config))
    ha.publish("homeassistant/status", "online")  # HA's birth message must reach the device
    wait_until(lambda: len(ha.messages(sensor_config)) > configs, what="discovery re-sent through the ACL")
    # ... and another device reads nothing of dev1's.
    assert intruder.messages() == []
    assert publisher.stats()["connected"]
