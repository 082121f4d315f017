"""Home Assistant's side of discovery against a real mosquitto: the Mute switch drives the device's own
pause/resume commands, the diagnostic entities read the retained state as HA renders their templates
(Jinja2, with HA's `to_json` filter), and `edge-ser unregister` removes every entity."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import jinja2
import pytest

from edge_ser.mqtt.discovery import ENTITIES
from edge_ser.mqtt.publisher import MqttPublisher
from edge_ser.mqtt.settings import MqttSettings
from edge_ser.protocol.payloads import make_state
from edge_ser_testing.broker import MosquittoBroker, wait_until
from tests.mqtt_fixtures import MqttCollector

DEVICE = "hall.1"
BASE = f"edge-ser/{DEVICE}"
LABELS = ["angry", "happy", "neutral", "sad"]
MODEL = {"model_name": "ser-test", "model_version": "0.0.1"}
CONFIGS = "homeassistant/+/+/+/config"

Collect = Callable[..., MqttCollector]


def _state(*, paused: bool = False, source_ok: bool = True, pending: int = 0,
           spool_degraded: str | None = None) -> dict[str, Any]:
    return make_state(device_id=DEVICE, emotion=None, confidence=None, probabilities={},
                      listening=source_ok and not paused, paused=paused, source_ok=source_ok,
                      source_error=None if source_ok else "device unplugged", spool_pending=pending,
                      spool_degraded=spool_degraded, timestamp=1_700_000_000.0, **MODEL)


def render(template: str, payload: dict[str, Any]) -> str:
    """A value template as HA renders it for an MQTT message: `value_json` is the payload."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps  # one of HA's own filters
    return env.from_string(template).render(value_json=payload, value=json.dumps(payload)).strip()


class Commands:
    """The daemon's command handling reduced to its pause flag; answers with the state it would publish."""

    def __init__(self) -> None:
        self.paused = False
        self.received: list[str] = []

    def __call__(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.received.append(cmd["command"])
        if cmd["command"] in ("pause", "resume"):
            self.paused = cmd["command"] == "pause"
        return {"ok": True, "state": _state(paused=self.paused)}


@pytest.fixture
def publisher(mqtt_broker: MosquittoBroker) -> Iterator[MqttPublisher]:
    pub = MqttPublisher(MqttSettings(host=mqtt_broker.host, port=mqtt_broker.port, device_id=DEVICE,
                                     reconnect_min_s=0.1, reconnect_max_s=0.5), labels=LABELS, **MODEL)
    yield pub
    pub.stop(timeout=1.0)


def _configs(mqtt_broker: MosquittoBroker, mqtt_collector: Collect) -> dict[str, dict[str, Any]]:
    ha = mqtt_collector(mqtt_broker, [CONFIGS])
    wait_until(lambda: len(ha.messages()) >= len(ENTITIES), what="retained discovery configs")
    return {m.topic.split("/")[1] + "/" + m.topic.split("/")[3]: m.json() for m in ha.messages()}


def test_the_mute_switch_pauses_and_resumes_the_device_and_shows_its_state(
        mqtt_broker: MosquittoBroker, mqtt_collector: Collect, publisher: MqttPublisher) -> None:
    commands = Commands()
    publisher.set_command_handler(commands)
    publisher.start()
    switch = _configs(mqtt_broker, mqtt_collector)["switch/mute"]
    assert switch["command_topic"] == f"{BASE}/cmd" and switch["state_topic"] == f"{BASE}/state"
    ha = mqtt_collector(mqtt_broker, [f"{BASE}/cmd/result", f"{BASE}/state"])
    for payload, paused, shown in ((switch["payload_on"], True, switch["state_on"]),
                                   (switch["payload_off"], False, switch["state_off"])):
        ha.clear()
        ha.publish(switch["command_topic"], payload)  # what HA sends when the switch is flipped
        result = wait_until(lambda: ha.payloads(f"{BASE}/cmd/result"), what="the command's result")[-1]
        assert json.loads(result)["ok"] is True
        assert commands.paused is paused
        publisher.publish_state(_state(paused=commands.paused))  # as the daemon does on pause and resume
        state = wait_until(lambda: ha.last(f"{BASE}/state"), what="the state").json()
        assert render(switch["value_template"], state) == shown


def test_the_new_speaker_button_resets_the_adaptation(mqtt_broker: MosquittoBroker, mqtt_collector: Collect,
                                                      publisher: MqttPublisher) -> None:
    commands = Commands()
    publisher.set_command_handler(commands)
    publisher.start()
    button = _configs(mqtt_broker, mqtt_collector)["button/new_speaker"]
    ha = mqtt_collector(mqtt_broker, [f"{BASE}/cmd/result"])
    ha.publish(button["command_topic"], button["payload_press"])  # what HA sends when it is pressed
    result = json.loads(wait_until(lambda: ha.payloads(f"{BASE}/cmd/result"), what="the command's result")[-1])
    assert result["command"] == "reset_adaptation" and commands.received == ["reset_adaptation"]


def test_diagnostic_entities_read_listening_source_and_spool_from_the_state(
        mqtt_broker: MosquittoBroker, mqtt_collector: Collect, publisher: MqttPublisher) -> None:
    publisher.start()
    configs = _configs(mqtt_broker, mqtt_collector)
    entities = [configs[name] for name in ("binary_sensor/listening", "binary_sensor/source",
                                           "sensor/spool_pending", "binary_sensor/events_lost")]
    for entity in entities:
        assert entity["entity_category"] == "diagnostic"
        assert entity["state_topic"] == f"{BASE}/state"
        assert entity["availability_topic"] == f"{BASE}/status"
    source, lost = entities[1], entities[3]
    assert source["device_class"] == lost["device_class"] == "problem"
    ha = mqtt_collector(mqtt_broker, [f"{BASE}/state"])
    full = "spool write failed: database or disk is full"
    for published, expect in ((_state(), ("ON", "OFF", "0", "OFF")),
                              (_state(source_ok=False, pending=42), ("OFF", "ON", "42", "OFF")),
                              (_state(paused=True, pending=3, spool_degraded=full), ("OFF", "OFF", "3", "ON"))):
        ha.clear()
        publisher.publish_state(published)
        state = wait_until(lambda: ha.last(f"{BASE}/state"), what="the state").json()
        assert tuple(render(entity["value_template"], state) for entity in entities) == expect
    attributes = json.loads(render(source["json_attributes_template"], _state(source_ok=False)))
    assert attributes["error"] == "device unplugged"
    assert json.loads(render(lost["json_attributes_template"], _state(spool_degraded=full)))["error"] == full


def test_unregister_removes_every_entity(mqtt_broker: MosquittoBroker, mqtt_collector: Collect,
                                         publisher: MqttPublisher) -> None:
    publisher.start()
    topics = set(_configs(mqtt_broker, mqtt_collector))
    assert len(topics) == len(ENTITIES) == 8
    publisher.stop(timeout=1.0)  # as the README says: stop the daemon first
    watcher = mqtt_collector(mqtt_broker, [CONFIGS])
    wait_until(lambda: len(watcher.messages()) >= len(ENTITIES), what="the retained configs")
    result = subprocess.run([sys.executable, "-m", "edge_ser", "unregister", "--device-id", DEVICE,
                             "--mqtt-host", mqtt_broker.host, "--mqtt-port", str(mqtt_broker.port)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    # HA's side: an empty payload on each config topic, which is how HA is told to delete an entity.
    wait_until(lambda: len([m for m in watcher.messages() if m.payload == b""]) >= len(ENTITIES),
               what="empty configs")
    emptied = {m.topic for m in watcher.messages() if m.payload == b""}
    assert emptied == {m.topic for m in watcher.messages() if m.payload}
    assert sorted(line.removeprefix("removed ") for line in result.stdout.splitlines()[:-1]) == sorted(emptied)
    # The broker's side: a client connecting now gets no retained config at all.
    late = mqtt_collector(mqtt_broker, [CONFIGS, f"{BASE}/cmd/result"])
    late.publish(f"{BASE}/cmd/result", "marker")  # arrives after any retained message would have
    wait_until(lambda: late.messages(f"{BASE}/cmd/result"), what="the marker")
    assert [m.topic for m in late.messages() if m.topic.endswith("/config")] == []


def test_unregister_without_a_broker_is_a_one_line_error() -> None:
    result = subprocess.run([sys.executable, "-m", "edge_ser", "unregister", "--mqtt-host", "127.0.0.1",
                             "--mqtt-port", "1"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("edge-ser: error: connection to 127.0.0.1:1 refused "
                                     "(is the broker running and listening there?)")
