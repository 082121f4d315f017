"""The microphone path for real: PyAudio -> ALSA pulse plugin -> PulseAudio virtual mic `vmic`,
with audio played into it by `paplay`, and the device vanishing and coming back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from edge_ser.audio.mic import MicSource
from edge_ser.protocol.payloads import load_schema
from edge_ser_testing.broker import MosquittoBroker, wait_until
from tests.audio_fixtures import espeak_wav
from tests.daemon_process import REPO, DaemonProcess, silence_wav, synthetic_speech_wav
from tests.mqtt_fixtures import MqttCollector
from tests.pulse_fixtures import VirtualMic

DEVICE = "mic-dev"
BASE = f"edge-ser/{DEVICE}"


def devices(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_ser", "devices", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_devices_lists_the_virtual_microphone(virtual_mic: VirtualMic, tmp_path: Path) -> None:
    listed = devices(virtual_mic.env())
    assert listed.returncode == 0, listed.stderr
    assert "pulse" in listed.stdout and "(default)" in listed.stdout
    assert "ALSA lib" not in listed.stderr  # PortAudio's probing noise is filtered
    assert devices(virtual_mic.env(), "--check", "--device", "pulse").returncode == 0
    assert devices(virtual_mic.env(), "--check", "--device", "no-such-mic").returncode == 1
    # Without a sound server this machine has no input at all: what scripts/run.sh checks.
    bare = {k: v for k, v in virtual_mic.env().items() if not k.startswith("PULSE_")}
    bare["XDG_RUNTIME_DIR"] = str(tmp_path)
    assert devices(bare, "--check").returncode == 1


def test_mic_source_resamples_from_the_device_rate(virtual_mic: VirtualMic, tmp_path: Path,
                                                   monkeypatch: object) -> None:
    """In-process: opened at 48 kHz (as a device that cannot do 16 kHz), delivered at 16 kHz."""
    for key, value in virtual_mic.env().items():
        monkeypatch.setenv(key, value)  # type: ignore[attr-defined]
    wav = synthetic_speech_wav(tmp_path / "one.wav", classes=(1,))
    source = MicSource("pulse", 16000, preferred_rate=48000, chunk_ms=50)
    got: list[np.ndarray] = []
    player = None
    plays: list[str] = []  # paplay's exit status and stderr, for the failure message
    after = 0  # samples captured since paplay finished: the sound server may still be delivering
    for chunk in source.chunks():
        got.append(np.asarray(chunk))
        if player is None and source.opened:
            player = virtual_mic.play(wav)
        elif player is not None and player.poll() is not None:
            after += len(chunk)
            heard = np.max(np.abs(np.concatenate(got))) > 0.05
            if heard or len(plays) == 3:
                source.close()
            elif after > 16000 * 5:
                # A freshly linked capture stream can miss a first playback on a loaded machine:
                # play again (three times at most) rather than call the path broken.
                plays.append(f"rc={player.returncode} {player.stderr.read().decode(errors='replace')}")
                player, after = virtual_mic.play(wav), 0
    assert source.opened is None  # closed again
    audio = np.concatenate(got)
    assert audio.dtype == np.float32  # resampled, hence float
    assert np.max(np.abs(audio)) > 0.05, f"the tone never came through; paplay runs: {plays}"
    assert source.health.ok and source.health.error is None


def test_virtual_microphone_to_events(virtual_mic: VirtualMic, tmp_path: Path,
                                      daemon_runner: Callable[..., DaemonProcess]) -> None:
    daemon = daemon_runner(["--device-id", DEVICE, "--no-mqtt", "--stdout", "--rate", "48000"],
                           env=virtual_mic.env())
    daemon.wait_for_output("microphone opened")
    # A freshly linked capture stream can miss the start of the first playback (see the test above);
    # a second of near-silence first keeps that from cutting an utterance that is then counted.
    virtual_mic.play_and_wait(silence_wav(tmp_path / "silence.wav", seconds=1.0))
    virtual_mic.play_and_wait(synthetic_speech_wav(tmp_path / "speech.wav"))
    wait_until(lambda: len(daemon.events()) == 4, what="one event per utterance")
    speech = espeak_wav(tmp_path / "espeak.wav", "Hello there. I am talking to the robot now.")
    virtual_mic.play_and_wait(speech)
    wait_until(lambda: len(daemon.events()) > 4, what="events for espeak-ng speech")
    daemon.send(signal.SIGINT)
    assert daemon.wait() == 0
    schema = load_schema("event")
    for event in daemon.events():
        jsonschema.validate(event, schema)
        assert event["device_id"] == DEVICE and event["windows"] >= 1
    assert "overflow" not in daemon.stderr().lower()


@pytest.mark.parametrize(("gone", "back", "cycles"), [("stop", "start", 1), ("unplug", "plug_in", 2)],
                         ids=["sound-server-dies", "microphone-unplugged"])
def test_a_microphone_that_goes_away_is_reported_and_reopened(
        pulse_factory: Callable[[], VirtualMic], tmp_path: Path, mqtt_broker: MosquittoBroker,
        mqtt_collector: Callable[..., MqttCollector], daemon_runner: Callable[..., DaemonProcess],
        gone: str, back: str, cycles: int) -> None:
    """The sound server dies (the stream stalls) and restarts; or it stays up while the microphone
    goes (pactl unload-module) and comes back, twice. Either way the state says so, the daemon
    reopens the microphone by itself and hears speech again."""
    mic = pulse_factory()
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/state", f"{BASE}/event"])
    daemon = daemon_runner(["--device-id", DEVICE, "--mqtt-host", mqtt_broker.host, "--mqtt-port",
                            str(mqtt_broker.port), "--device", "pulse"], env=mic.env())
    daemon.wait_for_output("microphone opened")

    def state() -> dict[str, Any]:
        last = collector.last(f"{BASE}/state")
        return json.loads(last.payload) if last else {}

    def events() -> int:
        return len(collector.payloads(f"{BASE}/event"))

    wait_until(lambda: state().get("listening") is True, what="listening before the microphone goes")
    for cycle in range(cycles):
        getattr(mic, gone)()
        down = wait_until(lambda: (s := state()) and not s["source"]["ok"] and s, what=f"source.ok false ({cycle})")
        assert down["listening"] is False and down["source"]["error"]
        if gone == "stop":
            assert "reconnecting" in str(down["source"]["error"])
        jsonschema.validate(down, load_schema("state"))
        assert daemon.alive
        getattr(mic, back)()
        wait_until(lambda: (s := state()) and s["source"]["ok"] and s["listening"], timeout=45.0,
                   what=f"source recovered ({cycle})")
        before = events()
        mic.play_and_wait(synthetic_speech_wav(tmp_path / f"speech{cycle}.wav", classes=((cycle + 2) % 3,)))
        wait_until(lambda seen=before: events() > seen, what=f"events after it came back ({cycle})")
    assert daemon.alive
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    assert "Traceback" not in daemon.stderr()


def test_mic_overflows_are_counted_and_survived(virtual_mic: VirtualMic, monkeypatch: object) -> None:
    """A consumer that stalls for longer than the capture queue holds loses audio, counts it, and
    then simply goes on."""
    for key, value in virtual_mic.env().items():
        monkeypatch.setenv(key, value)  # type: ignore[attr-defined]
    source = MicSource("pulse", 16000, chunk_ms=20)  # the queue holds 50 chunks = 1 s
    after_stall = 0
    for chunk in source.chunks():
        if source.opened and source.health.overflows == 0 and after_stall == 0:
            time.sleep(6.0)  # the daemon is busy: the callback keeps queueing (beyond any ALSA/Pulse buffer)
            after_stall = 1
        elif after_stall:
            after_stall += len(chunk)
            if after_stall > 16000:  # a further second of audio arrived after the overflow
                source.close()
    assert source.health.overflows > 0
    assert source.health.ok
