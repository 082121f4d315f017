"""Pytest fixtures over real mosquitto brokers (plain, persistent, TLS + password), the TLS
material they use, and a collecting subscriber.

The broker itself is edge_ser_testing.broker.MosquittoBroker (the daemon benchmark runs one too);
here it becomes fixtures that skip where mosquitto is not installed and stop it at teardown.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_ser_testing.broker import WAIT_S, MosquittoBroker, TlsMaterial, ToolMissing, require_tool, wait_until


def _require(name: str) -> str:
    """A program's path, or a skipped test where it is not installed."""
    try:
        return require_tool(name)
    except ToolMissing as exc:
        pytest.skip(str(exc))


def running_broker(workdir: Path, **options: Any) -> Iterator[MosquittoBroker]:
    """For a fixture to `yield from`: a started broker, stopped at teardown; skips the test where
    mosquitto is not installed."""
    try:
        broker = MosquittoBroker(workdir, **options)
    except ToolMissing as exc:
        pytest.skip(str(exc))
    broker.start()
    yield broker
    broker.stop()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([_require("openssl"), *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """Create a self-signed EC CA in ``directory``; returns (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=edge-ser test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return cert, key


def _make_server_cert(directory: Path, ca_cert: Path, ca_key: Path) -> tuple[Path, Path]:
    cert, key, csr = directory / "server.crt", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1", cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext), cwd=directory,
    )  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttCollector:
    """A subscriber that records every message, for assertions; reconnects by itself."""

    def __init__(
        self,
        host: str,
        port: int,
        topics: list[str],
        *,
        client_id: str | None = None,
        clean_session: bool = True,
        ca_file: Path | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"collector-{uuid.uuid4().hex[:8]}",
            clean_session=clean_session,
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async(host, port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(topic, 1) for topic in self._topics])

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(Received(message.topic, message.payload, bool(message.retain)))

    def wait_subscribed(self) -> None:
        wait_until(self._subscribed.is_set, what="collector subscription")
        self._subscribed.clear()

    def messages(self, topic: str | None = None) -> list[Received]:
        with self._lock:
            return [m for m in self._messages if topic is None or m.topic == topic]

    def payloads(self, topic: str) -> list[bytes]:
        return [m.payload for m in self.messages(topic)]

    def last(self, topic: str) -> Received | None:
        found = self.messages(topic)
        return found[-1] if found else None

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A plain broker without persistence: a restart forgets retained messages and sessions."""
    yield from running_broker(tmp_path / "broker")


@pytest.fixture
def mqtt_persistent_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker that keeps sessions and queued QoS 1 messages across stop()/start()."""
    yield from running_broker(tmp_path / "broker", persistent=True)


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    directory = tmp_path_factory.mktemp("mqtt-tls")
    ca_cert, ca_key = make_ca(directory, "ca")
    cert, key = _make_server_cert(directory, ca_cert, ca_key)
    username, password = "edge-device", "s3cret-Pa55"
    password_file = directory / "client-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return TlsMaterial(ca_cert, cert, key, username, password, password_file)


@pytest.fixture
def mqtt_tls_broker(tmp_path: Path, tls_material: TlsMaterial) -> Iterator[MosquittoBroker]:
    """TLS-only listener with a password file and no anonymous access."""
    yield from running_broker(tmp_path / "tls-broker", tls=tls_material)


@pytest.fixture
def mqtt_collector() -> Iterator[Callable[..., MqttCollector]]:
    """Factory: ``mqtt_collector(broker, ["topic/#"], ...)``; every collector is closed at teardown.

    On a TLS broker the collector logs in as the material's user unless ``username``/``password``
    say otherwise.
    """
    made: list[MqttCollector] = []

    def make(broker: MosquittoBroker, topics: list[str], **kwargs: Any) -> MqttCollector:
        if broker.tls is not None:
            kwargs.setdefault("ca_file", broker.tls.ca_file)
            kwargs.setdefault("username", broker.tls.username)
            kwargs.setdefault("password", broker.tls.password)
        collector = MqttCollector(broker.host, broker.port, topics, **kwargs)
        made.append(collector)
        collector.wait_subscribed()
        return collector

    yield make
    for collector in made:
        collector.close()
