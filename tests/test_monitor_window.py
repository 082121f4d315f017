"""The Tk window under Xvfb, fed by a real mosquitto: two devices' events and states show up in its
labels, bars and timelines (read back through Tk), a command round-trips to the daemon's real
publisher, and the Recording tab analyses a WAV with the bundled model. Screenshots of both tabs
are saved as test artefacts in build/test-artefacts/ (the README's images come from there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_ser.audio.wavfile import write_wav
from edge_ser.model.classifier import Classifier
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.monitor.client import MonitorClient
from edge_ser.monitor.colours import colour
from edge_ser.monitor.devices import DeviceBoard
from edge_ser.monitor.recording import RecordingAnalyser
from edge_ser.mqtt.publisher import MqttPublisher
from edge_ser.mqtt.settings import MqttSettings
from edge_ser_testing.broker import WAIT_S, MosquittoBroker
from tests.monitor_helpers import LABELS, event_payload, state_payload
from tests.mqtt_fixtures import MqttCollector

tk = pytest.importorskip("tkinter", reason="Tk is not available in this Python (apt-get install tk-dev)")

pytestmark = pytest.mark.integration  # starts an X server (Xvfb) itself

REPO = Path(__file__).resolve().parents[1]
ARTEFACTS = REPO / "build" / "test-artefacts"
PREFIX = "edge-ser"


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private X server for this module: DISPLAY is set while it runs."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb; `make deps` installs it)")
    read, write = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1280x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not report a display number")
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    yield f":{number}"
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    proc.terminate()
    proc.wait(timeout=WAIT_S)


@pytest.fixture
def root(display: str) -> Iterator[Any]:
    window = tk.Tk()
    yield window
    window.destroy()


def pump(root: Any, check: Callable[[], Any], what: str) -> Any:
    """Run Tk's loop until ``check()`` is truthy (the window refreshes itself on a timer)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        root.update()
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def screenshot(root: Any, display: str, name: str) -> Path:
    from PIL import ImageGrab

    root.update()
    x, y, w, h = root.winfo_rootx(), root.winfo_rooty(), root.winfo_width(), root.winfo_height()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTEFACTS / name
    ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=display).save(out)
    return out


def bar_fraction(panel: Any, label: str) -> float:
    from edge_ser.monitor.window import BAR_W

    x1, _, x2, _ = panel.bars.coords(panel.bars.find_withtag(f"bar:{label}")[0])
    return float((x2 - x1) / BAR_W)


def test_window_shows_two_devices_and_sends_a_command(root: Any, display: str, mqtt_broker: MosquittoBroker,
                                                       mqtt_collector: Callable[..., MqttCollector]) -> None:
    from edge_ser.monitor.window import MonitorWindow

    kiosk = MqttPublisher(MqttSettings(host=mqtt_broker.host, port=mqtt_broker.port, device_id="kiosk",
                                       prefix=PREFIX, discovery=False),
                          model_name="test", model_version="1.0", labels=list(LABELS))
    kiosk.set_command_handler(lambda cmd: {"state": {"paused": cmd["command"] == "pause"}})
    kiosk.start()
    pub = mqtt_collector(mqtt_broker, ["unused"])
    pub.publish(f"{PREFIX}/robot/status", "online", retain=True)
    pub.publish(f"{PREFIX}/robot/state", state_payload("robot", "sad", p=0.55), retain=True)
    client = MonitorClient(MqttSettings(host=mqtt_broker.host, port=mqtt_broker.port, prefix=PREFIX),
                           DeviceBoard(PREFIX))
    client.start()
    try:
        window = MonitorWindow(root, client, lambda: RecordingAnalyser(DEFAULT_MODEL))
        for seq, label in enumerate(["neutral", "happy", "angry", "happy"], 1):
            pub.publish(f"{PREFIX}/kiosk/event", event_payload("kiosk", seq, label, p=0.8))
        pump(root, lambda: {"kiosk", "robot"} <= set(window.panels)
             and len(window.panels["kiosk"].timeline.find_withtag("utterance")) == 4, "both devices shown")

        robot, panel = window.panels["robot"], window.panels["kiosk"]
        assert window.connection.cget("text") == "connected"
        assert robot.emotion.cget("text") == "sad 0.55"
        assert robot.emotion.cget("foreground") == colour("sad")
        assert robot.status.cget("text") == "online · listening"
        assert bar_fraction(robot, "sad") == pytest.approx(0.55, abs=0.01)
        assert bar_fraction(robot, "happy") == pytest.approx(0.15, abs=0.01)
        assert panel.emotion.cget("text") == "happy 0.80"
        assert bar_fraction(panel, "happy") == pytest.approx(0.8, abs=0.01)
        blocks = panel.timeline.find_withtag("utterance")
        assert [panel.timeline.itemcget(b, "fill") for b in blocks] == [colour(x) for x in
                                                                       ("neutral", "happy", "angry", "happy")]

        panel.buttons["pause"].invoke()
        pump(root, lambda: "-> ok" in panel.result.cget("text"), "command result in the window")
        assert panel.result.cget("text").startswith("pause (id monitor-1) -> ok")
        pump(root, lambda: "paused" in panel.status.cget("text"), "paused state")
        screenshot(root, display, "monitor_window.png")

        mqtt_broker.stop()  # the window says so when the broker goes away
        pump(root, lambda: window.connection.cget("text").startswith("DISCONNECTED"), "disconnection shown")
    finally:
        client.stop()
        kiosk.stop(timeout=0.5)


def test_recording_tab_analyses_a_wav_with_the_bundled_model(root: Any, display: str, tmp_path: Path,
                                                              speech_16k: np.ndarray) -> None:
    pytest.importorskip("matplotlib", reason="the timeline image needs the 'plot' extra (matplotlib)")
    from edge_ser.monitor.window import MonitorWindow

    quiet = np.random.default_rng(2).standard_normal(16000).astype(np.float32) * 1e-3
    wav = tmp_path / "two.wav"
    write_wav(wav, np.concatenate([quiet, speech_16k, quiet, speech_16k, quiet]), 16000)
    window = MonitorWindow(root, None, lambda: RecordingAnalyser(DEFAULT_MODEL))
    window.tabs.select(window.recording.frame)
    window.recording.open_file(wav)
    result = pump(root, lambda: window.recording.last, "analysis shown")

    rows = [row.split() for row in window.recording.utterances.get(0, "end")]
    assert len(rows) == len(result.utterances) >= 2
    labels = Classifier(DEFAULT_MODEL).labels
    starts = [float(row[0]) for row in rows]
    # the two speech utterances get an emotion; a stretch of the quiet noise the gate may open on is
    # labelled "uncertain", as predict and the daemon label it
    assert all(row[5] in (*labels, "uncertain") and 0 < float(row[6]) <= 1 for row in rows), rows
    assert sum(row[5] in labels for row in rows) >= 2, rows
    assert starts == sorted(starts) and starts[0] > 0.9 and float(rows[-1][3]) < 5.0 + 2 * len(speech_16k) / 16000
    assert window.recording.message.cget("text").startswith("two.wav: ")
    assert window.recording.image is not None and window.recording.image.width() == 1200
    screenshot(root, display, "monitor_recording.png")

    window.recording.open_file(tmp_path / "missing.wav")
    pump(root, lambda: "missing.wav" in window.recording.message.cget("text")
         and "analysing" not in window.recording.message.cget("text"), "one-line error for a missing file")

