"""Security promises of SECURITY.md, checked against the real daemon and a real broker.

* A password never leaves its file: not in logs, published payloads, the state directory, error
  messages or the process' arguments.
* Nothing audio-like is published or written during a run: no audio files, only small payloads.
* TLS verifies the broker's certificate unless the user explicitly and visibly opts out.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_ser.mqtt.connect import Credentials
from edge_ser.mqtt.settings import MqttSettings
from edge_ser_testing.broker import MosquittoBroker, wait_until
from tests.daemon_process import DaemonProcess, synthetic_speech_wav
from tests.mqtt_fixtures import MqttCollector, running_broker

REPO = Path(__file__).resolve().parents[1]
DEVICE = "sec-dev"
BASE = f"edge-ser/{DEVICE}"
USER, PASSWORD = "edge-device", "Kn0wn-Secret-7781"
# One second of 16 kHz 16-bit mono is 32,000 bytes; the largest message (a discovery config) is
# far below a tenth of that, so anything this big would be carrying audio.
MAX_PAYLOAD = 3200
AUDIO_SUFFIXES = {".wav", ".raw", ".pcm", ".flac", ".ogg", ".mp3", ".npy"}


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A plain listener that admits only USER with PASSWORD."""
    yield from running_broker(tmp_path / "broker", users={USER: PASSWORD})


def test_a_run_leaks_no_password_and_nothing_audio_like(
        tmp_path: Path, password_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        daemon_runner: Callable[..., DaemonProcess]) -> None:
    collector = mqtt_collector(password_broker, ["#"], username=USER, password=PASSWORD)
    password_file = tmp_path / "mqtt-password"
    password_file.write_text(PASSWORD + "\n")
    state_dir = tmp_path / "state"
    config = tmp_path / "edge-ser.toml"
    config.write_text(f'[device]\nid = "{DEVICE}"\n[speech_check]\nenabled = false\n'
                      f'[state]\ndir = "{state_dir}"\n'
                      f'[mqtt]\nusername = "{USER}"\npassword_file = "{password_file}"\n'
                      f'reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n')
    wav = synthetic_speech_wav(tmp_path / "speech.wav")
    daemon = daemon_runner(["--config", str(config), "--mqtt-host", password_broker.host,
                            "--mqtt-port", str(password_broker.port), "--file", str(wav), "--loop", "--stdout"])
    cmdline = Path(f"/proc/{daemon.proc.pid}/cmdline").read_bytes().decode(errors="replace")
    wait_until(lambda: len(collector.payloads(f"{BASE}/event")) >= 3, timeout=30.0, what="three events")
    for payload in (b'{"command": "status", "id": 1}', b'{"command": "nope"}', b"\xff" * 2000):
        collector.publish(f"{BASE}/cmd", payload)
    wait_until(lambda: len(collector.payloads(f"{BASE}/cmd/result")) >= 3, what="command results")
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.stderr()

    # The secret: nowhere a log reader, a subscriber, a `ps` user or a backup of the state sees.
    places = {"argv": cmdline, "stdout": daemon.stdout(), "stderr (logs)": daemon.stderr()}
    for message in collector.messages():
        places[f"MQTT {message.topic}"] = message.topic + message.payload.decode(errors="replace")
    for path in state_dir.rglob("*"):
        places[str(path)] = path.read_bytes().decode(errors="replace")
    assert "connected to MQTT broker" in places["stderr (logs)"]  # the logs were really written
    leaks = [where for where, text in places.items() if PASSWORD in text]
    assert leaks == [], f"password found in {leaks}"

    # Privacy by default: the state directory holds the spool, the device's counter and (for a model
    # that adapts to its speaker) the adaptation statistics, a few numbers that are not audio.
    names = {p.name for p in state_dir.iterdir()}
    spool = f"spool.{DEVICE}.sqlite"
    assert names <= {spool, f"{spool}-wal", f"{spool}-shm", f"seq.{DEVICE}", f"adaptation.{DEVICE}.json"}, names
    assert f"seq.{DEVICE}" in names, names
    assert not [p for p in state_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES]
    sizes = {m.topic: len(m.payload) for m in collector.messages()}
    assert max(sizes.values()) <= MAX_PAYLOAD, sizes
    events = [json.loads(p) for p in collector.payloads(f"{BASE}/event")]
    assert all(len(json.dumps(e)) <= 512 for e in events)


def test_tls_verifies_the_broker_unless_explicitly_and_loudly_told_not_to(
        caplog: pytest.LogCaptureFixture) -> None:
    import ssl

    with caplog.at_level(logging.WARNING, logger="edge_ser.mqtt"):
        strict = Credentials(MqttSettings(tls=True))
    assert strict.tls_context is not None
    assert strict.tls_context.verify_mode == ssl.CERT_REQUIRED and strict.tls_context.check_hostname
    assert caplog.records == []
    with caplog.at_level(logging.WARNING, logger="edge_ser.mqtt"):
        lax = Credentials(MqttSettings(tls=True, tls_insecure=True))
    assert lax.tls_context is not None
    assert lax.tls_context.verify_mode == ssl.CERT_REQUIRED  # the chain is still checked
    assert not lax.tls_context.check_hostname
    assert any("hostname verification is OFF" in r.getMessage() for r in caplog.records)


def test_a_password_without_tls_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    with caplog.at_level(logging.WARNING, logger="edge_ser.mqtt"):
        Credentials(MqttSettings(username=USER, password_file=str(secret)))
    warnings = [r.getMessage() for r in caplog.records]
    assert any("sent unencrypted" in w for w in warnings), warnings
    assert not any(PASSWORD in w for w in warnings)
