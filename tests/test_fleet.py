"""Fleet scale: a thousand devices publish their events to one real mosquitto, and consumers on an
MQTT 5 shared subscription (`$share/fleet/edge-ser/+/event`) take every one of them, keeping up.

The broker is the distributed engine: there is no fleet server of ours to test, only that the MQTT
contract (QoS 1 events of at most 512 bytes, one topic per device) lets a broker and a consumer
group carry a fleet. The devices are simulated, since a thousand daemons do not fit on two cores:
each is a paho client publishing real `make_event` payloads as the daemon's publisher does (QoS 1,
compact JSON), and a handful of threads drive them all through paho's external-loop API (one
selector per thread) instead of two threads per client. Mosquitto drops QoS 1 messages for a
subscriber whose queue overflows (`max_queued_messages`, 1000 by default), so a consumer group that
fell behind would show up as lost events.
"""

from __future__ import annotations

import heapq
import json
import random
import resource
import selectors
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_ser.mqtt.publisher import MqttPublisher
from edge_ser.mqtt.settings import MqttSettings
from edge_ser.protocol.payloads import MAX_EVENT_BYTES, compact_json, make_event, make_state
from edge_ser_testing.broker import MosquittoBroker, wait_until
from tests.daemon_process import REPO
from tests.mqtt_fixtures import MqttCollector

DEVICES = 1000
EVENTS_PER_DEVICE = 5
INTERVAL_S = 2.0  # between one device's events: a fleet in which everyone talks at once
DEVICE_THREADS = 4
CONSUMERS = 2
GROUP_TOPIC = "$share/fleet/edge-ser/+/event"
LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
BRIDGE_CONF = REPO / "firmware_config" / "mosquitto" / "bridge.conf"
DEADLINE_S = 50.0  # the whole exchange; the test stays under a minute on a loaded two-core machine


class DeviceShare:
    """Some of the fleet's devices on one thread: paho clients on one selector, each publishing
    EVENTS_PER_DEVICE events INTERVAL_S apart from a random phase, QoS 1, as the daemon does."""

    def __init__(self, broker: MosquittoBroker, device_ids: list[str], seed: int) -> None:
        self._broker, self._rng = broker, random.Random(seed)
        self._selector = selectors.DefaultSelector()
        self._clients: dict[str, mqtt.Client] = {}
        self._connected: set[str] = set()
        self._last_misc = time.monotonic()
        self.acked = 0
        self.sent_ids: list[str] = []
        self.sizes: list[int] = []
        for device in device_ids:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{device}", protocol=mqtt.MQTTv311)
            client.user_data_set(device)
            client.on_connect = self._on_connect
            client.on_publish = self._on_publish
            self._clients[device] = client

    def _on_connect(self, client: mqtt.Client, device: str, flags: Any, reason: Any, properties: Any) -> None:
        assert not reason.is_failure, f"{device}: {reason}"
        self._connected.add(device)

    def _on_publish(self, client: mqtt.Client, device: str, mid: int, reason: Any, properties: Any) -> None:
        self.acked += 1

    def _serve_once(self) -> None:
        """One turn of the external loop: read what arrived, write what is queued, and once a
        second the keepalive and timeout work that loop_forever would do."""
        for key, _ in self._selector.select(timeout=0.01):
            key.data.loop_read()
        for client in self._clients.values():
            if client.want_write():
                client.loop_write()
        if time.monotonic() - self._last_misc >= 1.0:
            for client in self._clients.values():
                client.loop_misc()
            self._last_misc = time.monotonic()

    def _serve_until(self, done: Callable[[], bool], what: str, deadline: float) -> None:
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self._serve_once()

    def connect(self, deadline: float) -> None:
        for client in self._clients.values():
            client.connect(self._broker.host, self._broker.port, keepalive=60)
            sock = client.socket()
            assert sock is not None
            self._selector.register(sock, selectors.EVENT_READ, client)
        self._serve_until(lambda: len(self._connected) == len(self._clients), "CONNACKs", deadline)

    def publish_all(self, start: float, deadline: float) -> None:
        """Publish every event at its time, then serve until every one is acknowledged."""
        due = [(start + self._rng.uniform(0, INTERVAL_S) + k * INTERVAL_S, device, k)
               for device in self._clients for k in range(EVENTS_PER_DEVICE)]
        heapq.heapify(due)
        while due:
            while due and due[0][0] <= time.time():
                _, device, seq = heapq.heappop(due)
                self._publish(device, seq)
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out with {len(due)} events still to publish")
            self._serve_once()
        self._serve_until(lambda: self.acked == len(self.sent_ids), "PUBACKs", deadline)

    def _publish(self, device: str, seq: int) -> None:
        weights = [self._rng.random() for _ in LABELS]
        probabilities = {label: w / sum(weights) for label, w in zip(LABELS, weights, strict=True)}
        now = time.time()
        event = make_event(device_id=device, seq=seq, start=now - 1.5, end=now,
                           label=max(probabilities, key=probabilities.__getitem__), probabilities=probabilities,
                           windows=3, model_name="edge-ser-7class", model_version="3.0.0")
        payload = compact_json(event)
        info = self._clients[device].publish(f"edge-ser/{device}/event", payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"{device}: publish failed with {info.rc}"
        self.sent_ids.append(event["event_id"])
        self.sizes.append(len(payload.encode()))

    def close(self) -> None:
        for client in self._clients.values():
            client.disconnect()  # written at once: no loop thread, so paho writes as it queues
        self._selector.close()


class GroupConsumer:
    """One member of the shared subscription (MQTT 5), noting each event and when it arrived."""

    def __init__(self, broker: MosquittoBroker, name: str) -> None:
        self._lock = threading.Lock()
        self.received: list[tuple[str, bytes, float]] = []  # topic, payload, arrival
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda client, userdata, flags, reason, props: client.subscribe(GROUP_TOPIC, qos=1)
        self.client.on_subscribe = lambda client, userdata, mid, reasons, props: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=30, clean_start=True)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, message.payload, time.time()))

    def wait_subscribed(self) -> None:
        assert self._subscribed.wait(10.0), "the shared subscription was not acknowledged"

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _enough_file_descriptors(needed: int) -> None:
    """Each paho client holds a socket and a socket pair: raise the soft limit if it is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        assert hard == resource.RLIM_INFINITY or hard >= needed, f"RLIMIT_NOFILE hard limit {hard} < {needed}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.mark.slow
def test_a_thousand_devices_lose_no_event_to_a_shared_subscription_that_keeps_up(
        mqtt_broker: MosquittoBroker) -> None:
    _enough_file_descriptors(DEVICES * 4 + 256)
    began = time.monotonic()
    deadline = began + DEADLINE_S
    consumers = [GroupConsumer(mqtt_broker, f"fleet-consumer-{n}") for n in range(CONSUMERS)]
    for consumer in consumers:
        consumer.wait_subscribed()
    devices = [f"dev-{n:04d}" for n in range(DEVICES)]
    shares = [DeviceShare(mqtt_broker, devices[n::DEVICE_THREADS], seed=n) for n in range(DEVICE_THREADS)]
    try:
        with ThreadPoolExecutor(DEVICE_THREADS) as pool:
            for future in [pool.submit(share.connect, deadline) for share in shares]:
                future.result()
            connected = time.monotonic()
            start = time.time() + 0.2
            for future in [pool.submit(share.publish_all, start, deadline) for share in shares]:
                future.result()
        all_acked = time.time()
        sent = [event_id for share in shares for event_id in share.sent_ids]
        wait_until(lambda: sum(c.count() for c in consumers) >= len(sent),
                   timeout=max(1.0, deadline - time.monotonic()), what=f"{len(sent)} events at the consumers")
        drained = time.time()
    finally:
        for share in shares:
            share.close()
        for consumer in consumers:
            consumer.close()

    received = [(topic, json.loads(payload), arrival) for c in consumers for topic, payload, arrival in c.received]
    ids = Counter(event["event_id"] for _, event, _ in received)
    assert set(ids) == set(sent), f"lost {len(set(sent) - set(ids))} events"
    duplicates = sum(n - 1 for n in ids.values())
    assert len(sent) == DEVICES * EVENTS_PER_DEVICE
    for topic, event, _ in received:
        assert topic == f"edge-ser/{event['device_id']}/event"
    seqs: dict[str, set[int]] = {}
    for _, event, _ in received:
        seqs.setdefault(event["device_id"], set()).add(event["seq"])
    assert seqs == {device: set(range(EVENTS_PER_DEVICE)) for device in devices}
    # The group shares the load: every member took a real part of it, not one member all of it.
    shares_taken = [c.count() for c in consumers]
    assert min(shares_taken) > len(sent) / (CONSUMERS * 4), shares_taken
    # Keeping up: an event reaches the group soon after its device sent it, all through the run.
    lags = sorted(arrival - datetime.fromisoformat(event["end"]).timestamp() for _, event, arrival in received)
    p99 = lags[int(0.99 * (len(lags) - 1))]
    assert p99 < 2.0 and drained - all_acked < 2.0, (p99, drained - all_acked)
    sizes = [size for share in shares for size in share.sizes]
    assert max(sizes) <= MAX_EVENT_BYTES
    publish_s = all_acked - start
    print(f"\nfleet: {DEVICES} devices on {DEVICE_THREADS} threads, connected in {connected - began:.1f} s; "
          f"{len(sent)} events ({max(sizes)} B max) in {publish_s:.1f} s = {len(sent) / publish_s:.0f}/s; "
          f"{CONSUMERS} shared-subscription consumers took {shares_taken}, lost 0, duplicates {duplicates}; "
          f"lag median {lags[len(lags) // 2] * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms; "
          f"all in {time.monotonic() - began:.1f} s")


def _site_broker_with_the_example_bridge(workdir: Path, central: MosquittoBroker) -> MosquittoBroker:
    """A local broker running firmware_config/mosquitto/bridge.conf as shipped, but pointed at the
    test's central broker: its address, and without the TLS and login lines (the central broker
    here is plain and anonymous; TLS itself is tested in tests/test_security.py)."""
    site = MosquittoBroker(workdir)
    lines = []
    for line in BRIDGE_CONF.read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "address":
            line = f"address {central.host}:{central.port}"
        elif (key.startswith("bridge_") and key != "bridge_protocol_version") or key.startswith("remote_user"):
            continue
        lines.append(line)
    site.conf.write_text(site.conf.read_text() + "\n".join(lines) + "\n")
    return site


def test_the_example_bridge_carries_a_device_to_the_central_broker_and_commands_back(
        tmp_path: Path, mqtt_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector]) -> None:
    """A real MqttPublisher on a site broker; the site broker bridged to a central one with the
    shipped example: events reach a shared-subscription consumer on the central broker, the state
    arrives retained, and a command sent centrally is answered by the device."""
    central = mqtt_broker
    site = _site_broker_with_the_example_bridge(tmp_path / "site", central)
    site.start()
    publisher = MqttPublisher(MqttSettings(host=site.host, port=site.port, device_id="kitchen-1", discovery=False,
                                           reconnect_min_s=0.1, reconnect_max_s=0.5),
                              model_name="edge-ser-7class", model_version="3.0.0", labels=list(LABELS))
    consumer = GroupConsumer(central, "central-consumer")
    try:
        consumer.wait_subscribed()
        bridge_up = mqtt_collector(central, ["edge-ser/bridges/site-kitchen/state"])
        wait_until(lambda: bridge_up.payloads("edge-ser/bridges/site-kitchen/state")[-1:] == [b"1"],
                   what="the bridge's notification on the central broker")
        publisher.set_command_handler(lambda cmd: {"ok": True})
        publisher.start()
        wait_until(lambda: publisher.stats()["connected"], what="the device on the site broker")
        now = time.time()
        probabilities = dict.fromkeys(LABELS, 1 / len(LABELS))
        events = [make_event(device_id="kitchen-1", seq=seq, start=now, end=now + 1, label="neutral",
                             probabilities=probabilities, windows=2, model_name="edge-ser-7class",
                             model_version="3.0.0") for seq in range(3)]
        for event in events:
            publisher.publish_event(event)
        publisher.publish_state(make_state(device_id="kitchen-1", emotion="neutral", confidence=0.5,
                                           probabilities=probabilities, listening=True, paused=False,
                                           model_name="edge-ser-7class", model_version="3.0.0", timestamp=now))
        assert publisher.flush(10.0)
        wait_until(lambda: consumer.count() >= len(events), what="the events on the central broker")
        assert [json.loads(payload)["event_id"] for _, payload, _ in consumer.received] == \
            [e["event_id"] for e in events]
        late = mqtt_collector(central, ["edge-ser/+/state", "edge-ser/+/cmd/result"])  # after the fact
        state = wait_until(lambda: late.last("edge-ser/kitchen-1/state"), what="the retained state centrally")
        assert state.retain and state.json()["emotion"] == "neutral"
        late.publish("edge-ser/kitchen-1/cmd", json.dumps({"command": "status", "id": 7}))
        answer = wait_until(lambda: late.last("edge-ser/kitchen-1/cmd/result"), what="the command's answer")
        assert answer.json()["id"] == 7 and answer.json()["ok"] is True
    finally:
        consumer.close()
        publisher.stop(timeout=1.0)
        site.stop()
