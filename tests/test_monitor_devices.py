"""The monitor's device-state model fed by a real mosquitto: retained messages on connect, the last
will, events, commands answered by the daemon's real publisher, malformed payloads, reconnects."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_ser.monitor.client import MonitorClient
from edge_ser.monitor.devices import DeviceBoard, Snapshot
from edge_ser.mqtt.publisher import MqttPublisher
from edge_ser.mqtt.settings import MqttSettings
from edge_ser_testing.broker import MosquittoBroker, TlsMaterial, wait_until
from tests.monitor_helpers import LABELS, event_payload, state_payload
from tests.mqtt_fixtures import MqttCollector

PREFIX = "edge-ser"


@pytest.fixture
def monitor() -> Iterator[Callable[..., MonitorClient]]:
    made: list[MonitorClient] = []

    def make(broker: MosquittoBroker, forget_offline_s: float = 300.0, **settings: Any) -> MonitorClient:
        client = MonitorClient(MqttSettings(host=broker.host, port=broker.port, prefix=PREFIX, **settings),
                               DeviceBoard(PREFIX, forget_offline_s))
        client.start()
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


def device(snapshot: Snapshot, device_id: str) -> Any:
    return next((d for d in snapshot.devices if d.device_id == device_id), None)


def wait_for(board: DeviceBoard, check: Callable[[Snapshot], Any], what: str) -> Snapshot:
    def ready() -> Snapshot | None:
        snapshot = board.snapshot()
        return snapshot if check(snapshot) else None

    return wait_until(ready, what=what)


def test_retained_status_and_state_are_shown_on_connect(mqtt_broker: MosquittoBroker,
                                                        mqtt_collector: Callable[..., MqttCollector],
                                                        monitor: Callable[..., MonitorClient]) -> None:
    pub = mqtt_collector(mqtt_broker, ["unused"])
    pub.publish(f"{PREFIX}/kiosk-1/status", "online", retain=True)
    pub.publish(f"{PREFIX}/kiosk-1/state", state_payload("kiosk-1", "sad", paused=True, p=0.6), retain=True)

    board = monitor(mqtt_broker).board
    snap = wait_for(board, lambda s: (d := device(s, "kiosk-1")) and d.emotion, "retained state of kiosk-1")
    d = device(snap, "kiosk-1")
    assert snap.connected and d.online is True
    assert (d.emotion, d.confidence, d.paused, d.listening) == ("sad", 0.6, True, False)
    assert d.probabilities["sad"] == 0.6 and set(d.probabilities) == set(LABELS)
    assert d.model == "test 1.0"


def test_events_of_two_devices_fill_their_timelines_and_repeats_are_dropped(
        mqtt_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        monitor: Callable[..., MonitorClient]) -> None:
    board = monitor(mqtt_broker).board
    wait_for(board, lambda s: s.connected, "monitor connection")
    pub = mqtt_collector(mqtt_broker, ["unused"])
    pub.publish(f"{PREFIX}/robot/event", event_payload("robot", 1, "happy", event_id="e1"))
    pub.publish(f"{PREFIX}/robot/event", event_payload("robot", 1, "happy", event_id="e1"))  # redelivery
    pub.publish(f"{PREFIX}/robot/event", event_payload("robot", 2, "angry", p=0.9, event_id="e2"))
    pub.publish(f"{PREFIX}/kiosk/event", event_payload("kiosk", 7, "neutral", event_id="k7"))

    snap = wait_for(board, lambda s: len(s.devices) == 2 and len(device(s, "robot").timeline) >= 2
                    and device(s, "kiosk").timeline, "events of both devices")
    robot = device(snap, "robot")
    assert [(u.seq, u.label) for u in robot.timeline] == [(1, "happy"), (2, "angry")]
    assert (robot.emotion, robot.confidence) == ("angry", 0.9)  # the newest utterance is current
    assert device(snap, "kiosk").timeline[0].label == "neutral"
    assert robot.online is None  # no status seen: shown as unknown, not as online


def test_an_offline_device_is_forgotten_after_a_while(mqtt_broker: MosquittoBroker,
                                                      mqtt_collector: Callable[..., MqttCollector],
                                                      monitor: Callable[..., MonitorClient]) -> None:
    board = monitor(mqtt_broker, forget_offline_s=1.0).board
    pub = mqtt_collector(mqtt_broker, ["unused"])
    pub.publish(f"{PREFIX}/gone/status", "offline")
    pub.publish(f"{PREFIX}/here/status", "online")
    wait_for(board, lambda s: (d := device(s, "gone")) and d.online is False and device(s, "here"), "both shown")
    snap = wait_for(board, lambda s: device(s, "gone") is None, "offline device forgotten")
    assert device(snap, "here").online is True  # an online device is never forgotten


def test_last_will_marks_a_device_offline_and_a_cleared_status_removes_it(
        mqtt_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        monitor: Callable[..., MonitorClient]) -> None:
    sub = shutil.which("mosquitto_sub")
    if sub is None:
        pytest.skip("mosquitto_sub is not installed (apt-get install mosquitto-clients)")
    board = monitor(mqtt_broker).board
    status = f"{PREFIX}/pi/status"
    pub = mqtt_collector(mqtt_broker, ["unused"])
    pub.publish("ready", "1", retain=True)
    # A device that dies without saying goodbye: the broker publishes its will. It is killed only
    # once it has printed the retained "ready", i.e. once it is connected and its will registered.
    proc = subprocess.Popen([sub, "-h", mqtt_broker.host, "-p", str(mqtt_broker.port), "-t", "ready",
                             "--will-topic", status, "--will-payload", "offline", "--will-retain", "--will-qos", "1"],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"1"
        pub.publish(status, "online", retain=True)
        wait_for(board, lambda s: (d := device(s, "pi")) and d.online, "pi online")
    finally:
        proc.kill()
        proc.wait()
    wait_for(board, lambda s: device(s, "pi").online is False, "pi offline from its last will")

    pub.publish(status, b"", retain=True)  # decommissioned: retained status cleared
    wait_for(board, lambda s: device(s, "pi") is None, "pi removed")


def test_malformed_payloads_are_ignored_with_a_warning(mqtt_broker: MosquittoBroker,
                                                       mqtt_collector: Callable[..., MqttCollector],
                                                       monitor: Callable[..., MonitorClient],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    board = monitor(mqtt_broker).board
    wait_for(board, lambda s: s.connected, "monitor connection")
    pub = mqtt_collector(mqtt_broker, ["unused"])
    pub.publish(f"{PREFIX}/kiosk/state", state_payload("kiosk", "happy"))
    bad = [("kiosk/state", b"{not json"), ("kiosk/event", b"[1, 2]"), ("kiosk/status", b"maybe"),
           ("kiosk/state", b'{"schema": "edge-ser/state/9"}'),
           ("kiosk/event", b'{"schema": "edge-ser/event/1", "event_id": "x", "label": "sad", "start": "t"}')]
    with caplog.at_level(logging.WARNING, logger="edge_ser.monitor"):
        for topic, payload in bad:
            pub.publish(f"{PREFIX}/{topic}", payload)
        pub.publish(f"{PREFIX}/kiosk/status", "online")  # still processed after the garbage
        snap = wait_for(board, lambda s: len(s.warnings) == len(bad) and device(s, "kiosk").online,
                        "warnings for every bad payload")
    assert all("ignored malformed payload" in w for w in snap.warnings)
    assert "kiosk/state: ignored malformed payload: not valid JSON" in snap.warnings[0]
    assert "seq must be an integer" in snap.warnings[-1]
    assert device(snap, "kiosk").emotion == "happy" and not device(snap, "kiosk").timeline
    assert sum("ignored malformed payload" in r.getMessage() for r in caplog.records) == len(bad)


def test_a_command_reaches_the_daemons_publisher_and_its_result_is_shown(
        mqtt_broker: MosquittoBroker, monitor: Callable[..., MonitorClient]) -> None:
    publisher = MqttPublisher(MqttSettings(host=mqtt_broker.host, port=mqtt_broker.port, device_id="kiosk",
                                           prefix=PREFIX, discovery=False),
                              model_name="test", model_version="1.0", labels=list(LABELS))
    received: list[dict[str, Any]] = []
    publisher.set_command_handler(lambda cmd: received.append(cmd) or {"state": {"paused": cmd["command"] == "pause"}})
    publisher.start()
    try:
        client = monitor(mqtt_broker)
        wait_for(client.board, lambda s: (d := device(s, "kiosk")) and d.online, "kiosk online")
        cmd_id = client.send_command("kiosk", "pause")
        snap = wait_for(client.board, lambda s: device(s, "kiosk").last_result, "command result")
    finally:
        publisher.stop()
    result = device(snap, "kiosk").last_result
    assert received == [{"command": "pause", "id": cmd_id}]
    assert (result["id"], result["command"], result["ok"]) == (cmd_id, "pause", True)
    assert device(snap, "kiosk").paused is True


def test_the_board_shows_a_lost_broker_and_reconnects(mqtt_broker: MosquittoBroker,
                                                      mqtt_collector: Callable[..., MqttCollector],
                                                      monitor: Callable[..., MonitorClient]) -> None:
    board = monitor(mqtt_broker, reconnect_min_s=1, reconnect_max_s=1).board
    wait_for(board, lambda s: s.connected, "monitor connection")
    mqtt_broker.stop()
    snap = wait_for(board, lambda s: not s.connected, "disconnection shown")
    assert snap.connection_error and str(mqtt_broker.port) in snap.connection_error
    mqtt_broker.start()
    wait_for(board, lambda s: s.connected, "reconnection")
    pub = mqtt_collector(mqtt_broker, ["unused"])
    pub.publish(f"{PREFIX}/kiosk/status", "online", retain=True)  # subscriptions came back too
    wait_for(board, lambda s: (d := device(s, "kiosk")) and d.online, "message after reconnect")


def test_monitor_logs_in_over_tls_with_the_daemons_password_file(mqtt_tls_broker: MosquittoBroker,
                                                                 tls_material: TlsMaterial,
                                                                 mqtt_collector: Callable[..., MqttCollector],
                                                                 monitor: Callable[..., MonitorClient]) -> None:
    pub = mqtt_collector(mqtt_tls_broker, ["unused"])
    pub.publish(f"{PREFIX}/secure/status", "online", retain=True)
    board = monitor(mqtt_tls_broker, tls=True, ca_file=str(tls_material.ca_file), username=tls_material.username,
                    password_file=str(tls_material.password_file)).board
    wait_for(board, lambda s: (d := device(s, "secure")) and d.online, "retained status over TLS")


def test_a_missing_password_file_is_a_one_line_config_error(tmp_path: Path) -> None:
    from edge_ser.errors import ConfigError

    settings = MqttSettings(username="u", password_file=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"cannot read MQTT password_file .*nope"):
        MonitorClient(settings, DeviceBoard(PREFIX)).start()
