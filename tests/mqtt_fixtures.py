"""Real mosquitto brokers (plain, persistent, TLS + password) and a collecting subscriber.

MQTT behaviour that matters here — retained messages, last wills, PUBACK timing, reconnects —
is exactly what mocks get wrong, so every MQTT test talks to a real broker on a free localhost
port. ``MosquittoBroker.stop()``/``start()`` restart it on the SAME port to simulate an outage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest

T = TypeVar("T")

WAIT_S = 10.0  # generous: the suite must pass on a loaded 2-core machine
_SBIN = "/usr/sbin:/usr/local/sbin"


def _tool(name: str) -> str | None:
    """Find a tool on PATH or in sbin (mosquitto lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which(name) or shutil.which(name, path=_SBIN)


def _require(name: str) -> str:
    path = _tool(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install mosquitto mosquitto-clients openssl)")
    return path


def wait_until(predicate: Callable[[], T], timeout: float = WAIT_S, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsMaterial:
    """Files for a TLS + password broker; ``password_file`` is the *client's* plain-text secret."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    username: str
    password: str
    password_file: Path


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


def write_passwd(path: Path, users: Mapping[str, str]) -> Path:
    """Create a mosquitto password file (hashed) for ``users``."""
    for index, (user, password) in enumerate(users.items()):
        create = ["-c"] if index == 0 else []
        subprocess.run(
            [_require("mosquitto_passwd"), "-b", *create, str(path), user, password],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    return path


class MosquittoBroker:
    """A mosquitto process on 127.0.0.1:<free port>, restartable on the same port.

    ``users`` (username -> password) turns off anonymous access on a plain listener; ``acl_file``
    adds an ACL; ``tls`` makes the listener TLS-only with the material's single user.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        persistent: bool = False,
        tls: TlsMaterial | None = None,
        users: Mapping[str, str] | None = None,
        acl_file: Path | None = None,
    ) -> None:
        self._binary = _require("mosquitto")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls = tls
        self.log_file = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} {self.host}",
            f"persistence {'true' if persistent else 'false'}",
            f"persistence_location {workdir}/",
            # With persistence on, save after every change, so even a SIGKILLed broker keeps sessions.
            "autosave_on_changes true",
            "autosave_interval 1",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to the `mosquitto` user, who cannot read tmp files
        if tls is not None:
            lines += [f"cafile {tls.ca_file}", f"certfile {tls.cert_file}", f"keyfile {tls.key_file}"]
            lines += ["require_certificate false"]
            users = {tls.username: tls.password}
        self.users = dict(users or {})
        if self.users:
            lines += ["allow_anonymous false", f"password_file {write_passwd(workdir / 'passwd', self.users)}"]
        else:
            lines.append("allow_anonymous true")
        if acl_file is not None:
            lines.append(f"acl_file {acl_file}")
        self.conf.write_text("\n".join(lines) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._proc is not None:
            return
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen([self._binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._accepting, what=f"mosquitto on port {self.port} (log: {self.log_file})")

    def _accepting(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise AssertionError(f"mosquitto exited with {self._proc.returncode}:\n{self.log_text()}")
        try:
            socket.create_connection((self.host, self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Terminate cleanly (a persistent broker saves its database on SIGTERM)."""
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGCONT)  # in case it was frozen
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing is read or acknowledged (a hung broker)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def crash(self) -> None:
        """SIGKILL: whatever the broker had not processed is gone; start() brings it back."""
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait(timeout=WAIT_S)
        self._proc = None

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


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
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mqtt_persistent_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker that keeps sessions and queued QoS 1 messages across stop()/start()."""
    broker = MosquittoBroker(tmp_path / "broker", persistent=True)
    broker.start()
    yield broker
    broker.stop()


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
    broker = MosquittoBroker(tmp_path / "tls-broker", tls=tls_material)
    broker.start()
    yield broker
    broker.stop()


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
