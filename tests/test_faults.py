"""Faults injected into real processes: the daemon as a subprocess, a real mosquitto, a real file
system. What is promised: the daemon keeps classifying, says what went wrong, counts what it had
to drop, and recovers by itself.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_ser_testing.broker import MosquittoBroker, wait_until
from tests.daemon_process import REPO, TINY_MODEL, DaemonProcess, synthetic_speech_wav
from tests.mqtt_fixtures import MqttCollector
from tests.test_daemon import BASE, DEVICE, UTTERANCES, config_file, events_of, mqtt_args, unique_ids


def test_a_corrupt_spool_at_start_is_set_aside_and_the_daemon_runs(
        tmp_path: Path, mqtt_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        daemon_runner: Callable[..., DaemonProcess]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    spool = state / f"spool.{DEVICE}.sqlite"
    spool.write_bytes(b"\x00garbage left by a power cut\n" * 500)
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/event"])
    config = config_file(tmp_path, f'[state]\ndir = "{state}"\n')
    wav = synthetic_speech_wav(tmp_path / "speech.wav")
    daemon = daemon_runner([*mqtt_args(mqtt_broker, config), "--file", str(wav), "--fast", "--stdout"])
    assert daemon.wait() == 0, daemon.stderr()
    log = daemon.stderr()
    assert "Traceback" not in log
    (line,) = [x for x in log.splitlines() if "is unreadable" in x]
    assert f"event spool {spool}" in line and "started an empty spool" in line
    assert len(list(state.glob(f"{spool.name}.corrupt-*"))) == 1
    wait_until(lambda: len(unique_ids(events_of(collector))) == UTTERANCES, what="events through the new spool")


def _limited_daemon(args: list[str], workdir: Path, max_file_bytes: int) -> subprocess.Popen[bytes]:
    """The daemon with a soft RLIMIT_FSIZE: past it every write fails with EFBIG, as on a full disk
    (Python ignores SIGXFSZ). The hard limit stays open so the test can lift the soft one."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, resource.RLIM_INFINITY))

    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "stdout.txt").open("wb") as out, (workdir / "stderr.txt").open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "edge_ser", "-v", "run", "--model", str(TINY_MODEL), *args],
                                cwd=REPO, stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=limit)


@pytest.mark.slow
def test_a_full_disk_drops_and_counts_events_and_the_daemon_recovers(
        tmp_path: Path, mqtt_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector]) -> None:
    collector = mqtt_collector(mqtt_broker, [f"{BASE}/event", f"{BASE}/state"])
    state = tmp_path / "state"
    config = config_file(tmp_path, f'[state]\ndir = "{state}"\n[limits]\nstate_interval_s = 0.5\n')
    wav = synthetic_speech_wav(tmp_path / "speech.wav", seconds=0.8)  # an utterance every 1.6 s
    workdir = tmp_path / "daemon"
    # 64 kB: the spool's write-ahead log outgrows it after a few events; the logs and the printed
    # events (a few hundred bytes each) do not within the test.
    proc = _limited_daemon([*mqtt_args(mqtt_broker, config), "--file", str(wav), "--loop", "--stdout"],
                           workdir, 64 * 1024)
    try:
        def spool() -> dict[str, Any]:
            last = collector.last(f"{BASE}/state")
            return {"dropped": 0, "degraded": False} if last is None else dict(last.json()["spool"])

        def dropped() -> int:
            return int(spool()["dropped"])

        wait_until(lambda: dropped() >= 2, timeout=60.0, what="events dropped on the full disk, in the state")
        assert proc.poll() is None, (workdir / "stderr.txt").read_text()
        degraded = spool()
        assert degraded["degraded"] is True
        assert degraded["error"].startswith(f"cannot write the event spool {state / f'spool.{DEVICE}.sqlite'}: ")
        printed_while_full = len((workdir / "stdout.txt").read_text().splitlines())
        assert "could not spool event" in (workdir / "stderr.txt").read_text()
        received_while_full = len(unique_ids(events_of(collector)))

        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        wait_until(lambda: len(unique_ids(events_of(collector))) >= received_while_full + 2, timeout=30.0,
                   what="events delivered again once there is space")
        wait_until(lambda: spool()["degraded"] is False, what="the degraded flag cleared once writes succeed")
        assert spool()["error"] is None
        # It kept classifying throughout: every utterance was printed, spooled or not.
        printed = [json.loads(x) for x in (workdir / "stdout.txt").read_text().splitlines()]
        assert len(printed) > printed_while_full
        assert [e["seq"] for e in printed] == list(range(len(printed)))
        final_dropped = dropped()
        assert final_dropped >= 2
        assert len(unique_ids(events_of(collector))) + final_dropped >= len(printed) - 2  # the rest in flight
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _in_order_within(sent: list[str], received: list[str]) -> bool:
    """Every id of `sent` is in `received`, in the same order (others may be between them)."""
    remaining = iter(received)
    return all(any(r == s for r in remaining) for s in sent)


@pytest.mark.slow
def test_a_flapping_broker_gets_every_event_in_order(
        tmp_path: Path, mqtt_persistent_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        daemon_runner: Callable[..., DaemonProcess]) -> None:
    """Mosquitto stopped and started every one to three seconds for 40 s while speech plays in real
    time: every event printed (and so spooled) arrives, in order, duplicates only as at-least-once
    allows. The broker keeps the watcher's session, so it queues what arrives while it is away."""
    broker = mqtt_persistent_broker
    collector = mqtt_collector(broker, [f"{BASE}/event"], client_id="flap-watcher", clean_session=False)
    wav = synthetic_speech_wav(tmp_path / "speech.wav", seconds=0.8)  # an utterance every 1.6 s
    daemon = daemon_runner([*mqtt_args(broker, config_file(tmp_path)), "--file", str(wav), "--loop", "--stdout"])
    wait_until(lambda: events_of(collector), what="a first event")
    rng = random.Random(13)
    flaps = 0
    deadline = time.monotonic() + 40.0
    while time.monotonic() < deadline:
        broker.stop() if flaps % 3 else broker.crash()  # a clean stop, and now and then a SIGKILL
        time.sleep(rng.uniform(1.0, 3.0))
        broker.start()
        flaps += 1
        time.sleep(rng.uniform(1.0, 3.0))
    printed = [e["event_id"] for e in daemon.events()]
    wait_until(lambda: set(printed) <= set(unique_ids(events_of(collector))), timeout=30.0,
               what="every event printed during the flapping")
    received = [e["event_id"] for e in events_of(collector)]
    assert _in_order_within(printed, list(dict.fromkeys(received)))
    duplicates = len(received) - len(set(received))
    print(f"flaps={flaps} printed={len(printed)} received={len(received)} duplicates={duplicates}")
    assert len(printed) >= 15 and flaps >= 8  # else this proved little
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_no_spooled_event(
        tmp_path: Path, mqtt_persistent_broker: MosquittoBroker, mqtt_collector: Callable[..., MqttCollector],
        daemon_runner: Callable[..., DaemonProcess]) -> None:
    """Speech as fast as possible, SIGKILLed at a random moment, restarted, six times: every event
    any run printed (an event is committed to the spool before it is printed) is delivered, in
    order, by that run or a later one."""
    broker = mqtt_persistent_broker
    collector = mqtt_collector(broker, [f"{BASE}/event"], client_id="kill-watcher", clean_session=False)
    config = config_file(tmp_path, f'[state]\ndir = "{tmp_path / "state"}"\n')
    wav = synthetic_speech_wav(tmp_path / "speech.wav")
    rng = random.Random(7)
    printed: list[str] = []
    for _ in range(6):
        daemon = daemon_runner([*mqtt_args(broker, config), "--file", str(wav), "--fast", "--loop", "--stdout"])
        daemon.wait_for_output('"event_id"')  # running and spooling
        time.sleep(rng.uniform(0.0, 1.5))
        daemon.kill()
        printed += [e["event_id"] for e in daemon.events()]
    last = daemon_runner([*mqtt_args(broker, config), "--file", str(wav), "--stdout"])  # drains the spool
    wait_until(lambda: set(printed) <= set(unique_ids(events_of(collector))), timeout=60.0,
               what="every event printed before a kill")
    assert last.wait() == 0
    received = unique_ids(events_of(collector))
    assert _in_order_within(printed, received)
    seqs = sorted({e["seq"] for e in events_of(collector)})
    print(f"kills=6 printed={len(printed)} received={len(received)} seq 0..{seqs[-1]}")
