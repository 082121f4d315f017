"""The real daemon on live-paced speech: CPU share, end-of-utterance -> subscriber latency, steady RSS.

Why this shape: the daemon is what runs on the device, so it is started exactly as a user would
(`python -m edge_ser run --stdin ...`) against a real mosquitto on a loopback port, and fed PCM on
stdin at real-time pace in 1024-sample chunks, as the device microphone delivers it. We write the
audio ourselves, so we know when each sample reached the daemon; the utterances it must find are
computed offline with `analyse` on the same signal (the chain is chunk-size invariant), and the
k-th event received is the k-th utterance. Latency is counted from the end of the utterance's
last speech frame, minus the gate's hangover (silence the daemon must hear before it may decide).

The same chunks go, at the same instants, to a bare Python process that only waits on the pipe and
reads it as the daemon's stdin source does: the floor any Python process pays on this host to wake
for every chunk. It moves with the host and its load (here, on a virtual machine: 0.12-0.13 % of a
core idle, 0.04-0.05 % beside two busy loops), and the daemon moves less (0.68-0.78 % against
0.40-0.61 %), so the ratio of the two is a reference that says how much of the daemon's figure is
the host's wake-up cost, not a figure independent of the host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from bench.context import REPO, Context
from bench.results import Target, figure
from bench.timing import summary
from edge_ser.audio.source import HEARTBEAT_S
from edge_ser.model.classifier import Classifier
from edge_ser.recognise.recogniser import Recogniser, analyse, gate_from_manifest
from edge_ser_testing.broker import MosquittoBroker, wait_until

NAME = "daemon"
TITLE = "Daemon on live-paced speech (stdin -> MQTT)"
CPU_PERCENT = Target("<=", 0.75)
LATENCY_BEYOND_HANGOVER_S = Target("<=", 0.1)
STEADY_RSS_MB = Target("<=", 75.0)
CHUNK = 1024  # samples per write: what the device's microphone delivers
DEVICE_ID = "bench"
TAIL_S = 1.5  # silence after the speech, so the last utterance ends by hangover, not by end of stream
WAIT_S = 30.0
RSS_EVERY_S = 1.0
# The floor: wait on the pipe at most a heartbeat at a time and read a chunk, as StdinSource does.
BARE_READER = ("import os, select, sys\nfd = sys.stdin.fileno()\nwhile True:\n"
               f"    if select.select([fd], [], [], {HEARTBEAT_S})[0] and not os.read(fd, {2 * CHUNK}):\n"
               "        break\n")
WARMUP_S = 2.0  # first audio pays one-off costs (first-use imports, caches): kept out of the steady CPU figure


class Subscriber:
    """Records (monotonic arrival time, payload) for every message under the device's topics."""

    def __init__(self, port: int) -> None:
        self.messages: dict[str, list[tuple[float, bytes]]] = {}
        self._lock = threading.Lock()
        # Not "edge-ser-<device id>": that is the daemon's own client id, and the broker would
        # disconnect one of two clients sharing an id.
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, *_: c.subscribe(f"edge-ser/{DEVICE_ID}/#", qos=1)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        with self._lock:
            self.messages.setdefault(msg.topic, []).append((now, msg.payload))

    def on(self, suffix: str) -> list[tuple[float, bytes]]:
        with self._lock:
            return list(self.messages.get(f"edge-ser/{DEVICE_ID}/{suffix}", []))

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def proc_cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process (fields 14-15 of /proc/PID/stat, after the command)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads_cpu_s(pid: int) -> float:
    """CPU seconds of a process's live threads to the nanosecond (/proc/PID/task/*/schedstat): the
    bare reader uses a few clock ticks a minute, too few for /proc/PID/stat's 10 ms resolution.
    Threads that ended are not counted; neither process starts or ends one while it is fed."""
    return sum(int((task / "schedstat").read_text().split()[0]) for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9


def proc_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def utterance_end_samples(signal: np.ndarray, classifier: Classifier) -> list[int]:
    """Sample index just after each utterance's last speech frame, as the daemon will segment it
    (with the model's own gate: the bench's daemon configures none)."""
    return [u.end for u in analyse(Recogniser.from_manifest(classifier), signal).utterances]


def offline_cpu_s(signal: np.ndarray, classifier: Classifier) -> float:
    """CPU seconds this process spends pushing the signal through the daemon's chain (gate, features,
    adaptation, model, smoothing) in the daemon's own chunk size, as fast as it goes: the work the
    daemon cannot avoid, measured in the same run on the same machine. The daemon's CPU then reads
    as a ratio to it (what reading stdin at live pace, MQTT and the daemon's threads add) instead of
    only as a share of whatever core this box has today."""
    start = time.process_time()
    analyse(Recogniser.from_manifest(classifier), signal, chunk=CHUNK)
    return time.process_time() - start


def feed_live(stdin: Any, pcm: np.ndarray, sample_rate: int, pid: int,
              floor: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Write PCM at real-time pace to the daemon and to the bare reader `floor`; return write
    times per chunk, CPU seconds of both and the daemon's RSS samples."""
    write_done, rss_kb = [], []
    floor_pid, floor_stdin = floor.pid, floor.stdin
    assert floor_stdin is not None
    cpu0, t0 = proc_cpu_s(pid), time.monotonic()
    exact0, floor0 = threads_cpu_s(pid), threads_cpu_s(floor_pid)
    warm_chunk = min(int(WARMUP_S * sample_rate) // CHUNK, len(pcm) // CHUNK // 2)  # short (quick) runs
    next_rss = t0
    for i, start in enumerate(range(0, len(pcm), CHUNK)):
        if i == warm_chunk:
            cpu_warm, t_warm = proc_cpu_s(pid), time.monotonic()
            exact_warm, floor_warm = threads_cpu_s(pid), threads_cpu_s(floor_pid)
        delay = t0 + (i + 1) * CHUNK / sample_rate - time.monotonic()  # a chunk exists once recorded
        if delay > 0:
            time.sleep(delay)
        data = pcm[start : start + CHUNK].astype("<i2").tobytes()
        stdin.write(data)
        stdin.flush()
        write_done.append(time.monotonic())
        floor_stdin.write(data)
        floor_stdin.flush()
        if write_done[-1] >= next_rss:
            rss_kb.append(proc_kb(pid, "VmRSS"))
            next_rss += RSS_EVERY_S
    cpu1, t1 = proc_cpu_s(pid), time.monotonic()
    exact1, floor1 = threads_cpu_s(pid), threads_cpu_s(floor_pid)
    return {"write_done": write_done, "cpu_s": cpu1 - cpu0, "wall_s": t1 - t0,
            "steady_cpu_s": cpu1 - cpu_warm, "steady_wall_s": t1 - t_warm,
            "exact_cpu_s": exact1 - exact0, "exact_steady_cpu_s": exact1 - exact_warm,
            "floor_cpu_s": floor1 - floor0, "floor_steady_cpu_s": floor1 - floor_warm,
            "rss_kb": rss_kb, "hwm_kb": proc_kb(pid, "VmHWM")}


def run(ctx: Context) -> dict[str, Any]:
    if ctx.model.path is None:
        return {"skipped": ctx.model.note, "figures": [], "timings": {}}
    classifier = Classifier(ctx.model.path)
    features, gate = classifier.manifest.features, gate_from_manifest(classifier.manifest, str(ctx.model.path))
    sr = features.sample_rate
    speech = ctx.speech.signals[max(ctx.speech.signals)]
    signal = np.concatenate([speech, np.zeros(int(TAIL_S * sr), np.float32)])
    ends = utterance_end_samples(signal, classifier)  # also the offline chain's warm-up (first-use imports)
    offline_s = offline_cpu_s(signal, classifier)
    pcm = np.clip(np.round(signal * 32768.0), -32768, 32767).astype(np.int16)
    log_path = ctx.work_dir / "daemon.log"
    command = [sys.executable, "-m", "edge_ser", "run", "--stdin", "--device-id", DEVICE_ID,
               "--model", str(ctx.model.path), "--mqtt-host", "127.0.0.1", "--state-dir",
               str(ctx.work_dir / "daemon-state"), "--log-level", "warning"]
    broker = MosquittoBroker(ctx.work_dir / "broker")  # the test suite's real-broker helper
    broker.start()
    try:
        with log_path.open("wb") as log:
            sub = Subscriber(broker.port)
            daemon = subprocess.Popen([*command, "--mqtt-port", str(broker.port)], stdin=subprocess.PIPE,
                                      stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
            floor = subprocess.Popen([sys.executable, "-c", BARE_READER], stdin=subprocess.PIPE)
            try:
                wait_until(lambda: any(p == b"online" for _, p in sub.on("status")), WAIT_S, "the daemon online")
                fed = feed_live(daemon.stdin, pcm, sr, daemon.pid, floor)
                wait_until(lambda: len(sub.on("event")) >= len(ends), 5.0, f"{len(ends)} events")
            finally:
                assert floor.stdin is not None
                floor.stdin.close()
                floor.wait(timeout=WAIT_S)
                daemon.stdin.close()
                try:
                    daemon.wait(timeout=WAIT_S)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
                sub.close()
    finally:
        broker.stop()
    events = sub.on("event")
    if len(events) != len(ends):
        raise RuntimeError(f"daemon published {len(events)} events for {len(ends)} utterances; "
                           f"log: {log_path.read_text()[-500:]}")
    hangover_s = gate.hangover_frames * features.hop_length / sr
    seqs = [json.loads(payload)["seq"] for _, payload in events]
    latency = [arrival - fed["write_done"][(end - 1) // CHUNK] for (arrival, _), end in zip(events, ends,
                                                                                              strict=True)]
    beyond = [x - hangover_s for x in latency]
    steady_cpu = 100.0 * fed["steady_cpu_s"] / fed["steady_wall_s"]
    whole_cpu = 100.0 * fed["cpu_s"] / fed["wall_s"]
    # CPU per second of audio: live-paced, the daemon's wall time is the audio's duration
    overhead = (fed["steady_cpu_s"] / fed["steady_wall_s"]) / (offline_s / (len(signal) / sr))
    floor_cpu = 100.0 * fed["floor_steady_cpu_s"] / fed["steady_wall_s"]
    exact_cpu = 100.0 * fed["exact_steady_cpu_s"] / fed["steady_wall_s"]
    steady = fed["rss_kb"][len(fed["rss_kb"]) // 2 :]
    steady_mb = summary(steady)["median"] / 1024
    figures = [figure("cpu_percent", "Daemon CPU, % of one core, live-paced speech", steady_cpu, "%",
                      CPU_PERCENT, f"{fed['steady_cpu_s']:.2f} CPU s over {fed['steady_wall_s']:.1f} s, "
                      f"after the first {WARMUP_S:g} s"),
               figure("cpu_over_offline", f"Daemon CPU / the same chain pushed {CHUNK} samples at a time in the "
                      "bench process, per second of audio", overhead, "x", None,
                      f"offline {offline_s:.3f} CPU s for {len(signal) / sr:.1f} s of audio"),
               figure("cpu_over_floor", "Daemon CPU / a bare Python reader of the same live stdin, same "
                      "chunks at the same instants", exact_cpu / floor_cpu if floor_cpu else float("nan"), "x",
                      None, f"daemon {exact_cpu:.3f} %, bare reader {floor_cpu:.3f} % (both from schedstat, to the "
                      "ns): this host's cost of waking Python for each chunk"),
               figure("cpu_percent_whole", "Daemon CPU incl. first audio (one-off imports)", whole_cpu, "%",
                      None, f"{fed['cpu_s']:.2f} CPU s over {fed['wall_s']:.1f} s")]
    if beyond:
        b = summary(beyond) | {"p99": float(np.percentile(beyond, 99))}
        figures += [
            figure("latency_p50_s", "End of utterance -> subscriber, beyond hangover, p50", b["median"], "s",
                   LATENCY_BEYOND_HANGOVER_S, f"{len(beyond)} utterances; hangover {hangover_s:.2f} s"),
            figure("latency_p99_s", "End of utterance -> subscriber, beyond hangover, p99", b["p99"], "s",
                   LATENCY_BEYOND_HANGOVER_S, f"max {max(beyond):.3f} s"),
        ]
    figures.append(figure("steady_rss_mb", "Daemon steady RSS (second half of the run)", steady_mb, "MB",
                          STEADY_RSS_MB, f"peak (VmHWM) {fed['hwm_kb'] / 1024:.1f} MB"))
    return {"figures": figures,
            "timings": {"latency_s": {**summary(latency), "raw": latency},
                        "latency_beyond_hangover_s": {**summary(beyond), "raw": beyond} if beyond else {},
                        "rss_kb": {"raw": fed["rss_kb"]},
                        **{key: fed[key] for key in ("cpu_s", "wall_s", "steady_cpu_s", "steady_wall_s",
                                                      "exact_cpu_s", "exact_steady_cpu_s", "floor_cpu_s",
                                                      "floor_steady_cpu_s")},
                        "offline_cpu_s": offline_s},
            "event_seqs": seqs, "command": " ".join(command),
            "notes": [f"PCM written on stdin in {CHUNK}-sample chunks at real-time pace, plus {TAIL_S} s of "
                      "silence; latency from the write of the chunk holding the utterance's last speech sample "
                      "to the subscriber's receipt, minus the hangover",
                      f"CPU = user+system time of the daemon process / wall time, from {WARMUP_S:g} s after the "
                      "first audio (start-up and first-use imports excluded; the whole-run figure keeps them)",
                      "bare reader = a Python process that only selects on its stdin and reads it, fed the same "
                      "chunks right after the daemon: the host's own cost of a wake-up per chunk, which on an "
                      "idle virtual machine was about three times what it was beside two busy loops"]}
