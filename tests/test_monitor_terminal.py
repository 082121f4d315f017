"""The terminal view as a technician sees it: `edge-ser monitor --tui` in a real tmux pane (ANSI,
redrawn in place) and through a pipe (a dumb terminal: plain frames, no escape codes), fed by a real
mosquitto."""

from __future__ import annotations

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
from tests.monitor_helpers import event_payload, state_payload
from tests.mqtt_fixtures import MqttCollector

pytestmark = pytest.mark.integration  # starts tmux and broker subprocesses itself

REPO = Path(__file__).resolve().parents[1]
PREFIX = "edge-ser"


def monitor_command(broker: MosquittoBroker) -> list[str]:
    return [sys.executable, "-m", "edge_ser", "monitor", "--tui", "--interval", "0.2",
            "--mqtt-host", broker.host, "--mqtt-port", str(broker.port)]


@pytest.fixture
def tmux() -> Iterator[Callable[..., str]]:
    """Run a command in a detached tmux session on a private server; yields ``capture()``."""
    exe = shutil.which("tmux")
    if exe is None:
        pytest.skip("tmux is not installed (apt-get install tmux; `make deps` installs it)")
    server = f"edge-ser-test-{uuid.uuid4().hex[:8]}"
    tmux_cmd = [exe, "-L", server, "-f", "/dev/null"]

    def start(command: list[str]) -> Callable[[], str]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        subprocess.run([*tmux_cmd, "new-session", "-d", "-s", "mon", "-x", "120", "-y", "40",
                        " ".join(command)], env=env, check=True)
        return lambda: subprocess.run([*tmux_cmd, "capture-pane", "-p", "-t", "mon"], capture_output=True,
                                      text=True, check=True).stdout

    yield start
    subprocess.run([*tmux_cmd, "kill-server"], capture_output=True, check=False)


def pane_showing(capture: Callable[[], str], text: str) -> str:
    def shown() -> str | None:
        pane = capture()
        return pane if text in pane else None

    try:
        return wait_until(shown, what=f"{text!r} in the tmux pane")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the pane shows:\n{capture()}") from None


def test_tui_in_tmux_shows_the_current_emotion_and_redraws_in_place(
        tmux: Callable[..., Callable[[], str]], mqtt_broker: MosquittoBroker,
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
