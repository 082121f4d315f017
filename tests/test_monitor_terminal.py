"""The terminal view as a technician sees it: `edge-ser monitor --tui` in a real tmux pane (ANSI,
redrawn in place) and through a pipe (a dumb terminal: plain frames, no escape codes), fed by a real
mosquitto."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_ser_testing.broker import WAIT_S, MosquittoBroker, wait_until
from tests.daemon_process import DaemonProcess, synthetic_speech_wav
from tests.monitor_helpers import event_payload, state_payload
from tests.mqtt_fixtures import MqttCollector

pytestmark = pytest.mark.integration  # starts tmux and broker subprocesses itself

REPO = Path(__file__).resolve().parents[1]
PREFIX = "edge-ser"


def monitor_command(broker: MosquittoBroker) -> list[str]:
    return [sys.executable, "-m", "edge_ser", "monitor", "--tui", "--interval", "0.2",
            "--mqtt-host", broker.host, "--mqtt-port", str(broker.port)]


class Tmux:
    """One command in a detached tmux session on a private server: ``tmux(command)`` starts it and
    returns ``capture()``; `keys` types into it as a technician would; `running` says if it is still there."""

    def __init__(self, exe: str) -> None:
        self.command = [exe, "-L", f"edge-ser-test-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]

    def __call__(self, command: list[str]) -> Callable[[], str]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        subprocess.run([*self.command, "new-session", "-d", "-s", "mon", "-x", "120", "-y", "40",
                        " ".join(command)], env=env, check=True)
        return lambda: subprocess.run([*self.command, "capture-pane", "-p", "-t", "mon"], capture_output=True,
                                      text=True, check=True).stdout

    def keys(self, text: str) -> None:
        subprocess.run([*self.command, "send-keys", "-t", "mon", "-l", text], check=True)

    def running(self) -> bool:
        return subprocess.run([*self.command, "has-session", "-t", "mon"], capture_output=True).returncode == 0

    def stop(self) -> None:
        subprocess.run([*self.command, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    exe = shutil.which("tmux")
    if exe is None:
        pytest.skip("tmux is not installed (apt-get install tmux; `make deps` installs it)")
    session = Tmux(exe)
    yield session
    session.stop()


def pane_showing(capture: Callable[[], str], text: str) -> str:
    def shown() -> str | None:
        pane = capture()
        return pane if text in pane else None

    try:
        return wait_until(shown, what=f"{text!r} in the tmux pane")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the pane shows:\n{capture()}") from None


def test_tui_in_tmux_shows_the_current_emotion_and_redraws_in_place(
        tmux: Tmux, mqtt_broker: MosquittoBroker,
        mqtt_collector: Callable[..., MqttCollector]) -> None:
    pub = mqtt_collector(mqtt_broker, ["unused"])
    pub.publish(f"{PREFIX}/kiosk/status", "online", retain=True)
    pub.publish(f"{PREFIX}/kiosk/state", state_payload("kiosk", "sad", p=0.6), retain=True)
    capture = tmux(monitor_command(mqtt_broker))
    pane = pane_showing(capture, "now: sad 0.60")
    assert "edge-ser monitor: connected" in pane
    assert "kiosk  [online] [listening]" in pane

    pub.publish(f"{PREFIX}/kiosk/event", event_payload("kiosk", 1, "angry", p=0.9))
    pane = pane_showing(capture, "now: angry 0.90")
    assert "recent: angry(0.90)" in pane
    assert "now: sad" not in pane  # redrawn in place, not scrolled
    assert pane.count("edge-ser monitor:") == 1


def test_tui_on_a_dumb_terminal_prints_plain_frames(mqtt_broker: MosquittoBroker,
                                                    mqtt_collector: Callable[..., MqttCollector]) -> None:
    pub = mqtt_collector(mqtt_broker, ["unused"])
    pub.publish(f"{PREFIX}/robot/state", state_payload("robot", "happy", p=0.7), retain=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "dumb"}
    proc = subprocess.Popen(monitor_command(mqtt_broker), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    try:
        deadline = time.monotonic() + WAIT_S
        out = ""
        assert proc.stdout is not None
        while not ("now: happy 0.70" in out and out.endswith("-" * 40 + "\n")) and time.monotonic() < deadline:
            out += proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=WAIT_S)
    assert "now: happy 0.70" in out
    assert "happy      " + "#" * 17 + "." * 7 + " 0.70" in out  # ASCII bars: 0.7 of 24 cells
    assert "\x1b" not in out + rest
    assert proc.returncode == 0, err


def test_tui_keys_choose_a_device_and_reset_its_adaptation_like_a_new_visitor(
        tmp_path: Path, tmux: Tmux, mqtt_broker: MosquittoBroker,
        mqtt_collector: Callable[..., MqttCollector], daemon_runner: Callable[..., DaemonProcess],
        adapting_model: Path) -> None:
    """A real adapting daemon ("kiosk-b") listed second after another device: `2` chooses it, `r`
    sends it reset_adaptation over the broker, its result shows under it; `q` leaves the view."""
    watch = mqtt_collector(mqtt_broker, [f"{PREFIX}/+/cmd"])
    watch.publish(f"{PREFIX}/kiosk-a/status", "online", retain=True)
    config = tmp_path / "kiosk-b.toml"
    config.write_text('[device]\nid = "kiosk-b"\n[speech_check]\nenabled = false\n')
    daemon_runner(["--config", str(config), "--mqtt-host", mqtt_broker.host, "--mqtt-port", str(mqtt_broker.port),
                   "--file", str(synthetic_speech_wav(tmp_path / "visitor.wav")), "--loop",
                   "--state-dir", str(tmp_path / "state")], model=adapting_model)
    capture = tmux(monitor_command(mqtt_broker))
    pane = pane_showing(capture, "kiosk-b  [online]")
    assert "> 1 kiosk-a" in pane and "  2 kiosk-b" in pane and "r reset adaptation" in pane

    tmux.keys("2")
    pane_showing(capture, "> 2 kiosk-b")
    tmux.keys("r")
    pane = pane_showing(capture, "last command: reset_adaptation -> ok")
    assert "sent reset_adaptation to kiosk-b (id monitor-1)" in pane
    sent = [json.loads(p) for p in watch.payloads(f"{PREFIX}/kiosk-b/cmd")]
    assert sent == [{"command": "reset_adaptation", "id": "monitor-1"}]
    assert watch.payloads(f"{PREFIX}/kiosk-a/cmd") == []

    tmux.keys("q")
    wait_until(lambda: not tmux.running(), what="the monitor to quit on q")


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--tui", "--config", "nope.toml"], {}, "edge-ser: error: nope.toml: config file not found"),
    (["--mqtt-port", "1"], {"DISPLAY": ""}, "edge-ser: error: cannot open a window"),
], ids=["missing-config", "no-display"])
def test_monitor_mistakes_are_one_line_errors(tmp_path: Path, args: list[str], env: dict[str, str],
                                              message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "edge_ser", "monitor", *args], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
