"""Soak: hours of speech through the daemon's whole loop as fast as the machine goes, watching for
leaks. A benchmark, not a unit test (two hours of audio take minutes).

    python -m bench.soak                  # 7200 s of audio, the full result with every sample as JSON
    python -m bench.soak --seconds 60     # a quick check that it runs
    python -m bench.run_all --only soak   # the same 7200 s as a BENCHMARKS.md row (`make bench` runs it)

The daemon is the real one (Recogniser, Labeller, EMA, event and state payloads, sequence file in
a state directory, rate limit) with the real MQTT publisher's spool in memory; only the broker is
absent, so the publisher's spool is bounded small and its drop counter runs, which is the
long-offline path. Speech is one minute of real speech (RAVDESS when present, else espeak-ng),
looped. RSS, open file descriptors and threads are sampled every `--every` seconds of audio; the
growth is measured from the first sample after `--warmup` seconds of audio, when every lazy
import, cache and buffer has been allocated once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.context import RAVDESS, SAMPLE_RATE, Context, choose_model, load_speech
from bench.results import Target, figure
from edge_ser.app.config import load_config
from edge_ser.app.daemon import Daemon
from edge_ser.audio.source import AudioSource
from edge_ser.model.classifier import Classifier
from edge_ser.mqtt.publisher import MqttPublisher
from edge_ser.mqtt.settings import MqttSettings

NAME = "soak"
TITLE = "Soak: two hours of speech through the daemon loop as fast as it goes"
CHUNK = 1600  # 100 ms, the daemon's default read
TARGET_RSS_GROWTH_MB = 2.0
FULL_SECONDS, QUICK_SECONDS = 7200.0, 60.0


def process_figures() -> dict[str, float]:
    """RSS (MB), open file descriptors and threads of this process, from /proc."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "fds": len(os.listdir("/proc/self/fd")),
            "threads": int(fields["Threads"])}


class LoopedSpeech(AudioSource):
    """`seconds` of audio cut from a looped signal, as fast as the daemon takes it, sampling the
    process every `every` seconds of audio."""

    def __init__(self, signal: np.ndarray, seconds: float, every: float) -> None:
        super().__init__(SAMPLE_RATE)
        self.signal, self.total = signal, int(seconds * SAMPLE_RATE)
        self.every = int(every * SAMPLE_RATE)
        self.samples: list[dict[str, float]] = []

    def chunks(self) -> Iterator[np.ndarray]:
        sent, position = 0, 0
        while sent < self.total and not self.closed:
            if sent % self.every < CHUNK:
                self.samples.append({"audio_s": sent / SAMPLE_RATE, "wall_s": time.monotonic(), **process_figures()})
            chunk = self.signal[position : position + CHUNK]
            if len(chunk) < CHUNK:
                chunk = np.concatenate([chunk, self.signal[: CHUNK - len(chunk)]])
            position = (position + CHUNK) % len(self.signal)
            sent += CHUNK
            yield chunk
        self.samples.append({"audio_s": sent / SAMPLE_RATE, "wall_s": time.monotonic(), **process_figures()})


def soak(seconds: float, every: float, warmup: float, model: Path | None) -> dict[str, Any]:
    choice = choose_model(model)
    if choice.path is None:
        raise SystemExit(f"bench.soak: {choice.note}")
    with tempfile.TemporaryDirectory(prefix="edge-ser-soak-") as tmp:
        speech = load_speech((60,), RAVDESS, Path(tmp))
        cfg = load_config(None, {"model.path": str(choice.path), "mqtt.enabled": False, "state.dir": tmp,
                                 "speech_check.enabled": True})
        classifier = Classifier(cfg.model.path)
        publisher = MqttPublisher(MqttSettings(spool_max_events=1000), model_name="soak",
                                  model_version="0", labels=list(classifier.labels))
        source = LoopedSpeech(speech.signals[60], seconds, every)
        with open(os.devnull, "w") as sink:
            daemon = Daemon(cfg, source, classifier, publisher=publisher, stdout=sink)
            started = time.monotonic()
            daemon.run()
            wall = time.monotonic() - started
        publisher.stop()
        samples = source.samples
    base = next((s for s in samples if s["audio_s"] >= warmup), samples[-1])
    last = samples[-1]
    growth = last["rss_mb"] - base["rss_mb"]
    return {
        "audio_s": last["audio_s"], "wall_s": round(wall, 1), "speed_x_realtime": round(last["audio_s"] / wall, 1),
        "events": daemon.events, "rate_limited": daemon.rate_limit.dropped,
        "spool": publisher.stats(), "speech": speech.describe(), "model": choice.describe(),
        "warmup_audio_s": base["audio_s"], "rss_mb_after_warmup": round(base["rss_mb"], 1),
        "rss_mb_end": round(last["rss_mb"], 1), "rss_growth_mb": round(growth, 2),
        "fds": [base["fds"], last["fds"]], "threads": [base["threads"], last["threads"]],
        "pass": growth <= TARGET_RSS_GROWTH_MB and last["fds"] <= base["fds"] and last["threads"] <= base["threads"],
        "samples": samples, "active_threads": [t.name for t in threading.enumerate()],
    }


def run(ctx: Context) -> dict[str, Any]:
    """bench.run_all's entry: two hours of audio (a minute with --quick), the leak figures as rows."""
    seconds = QUICK_SECONDS if ctx.quick else FULL_SECONDS
    result = soak(seconds, every=seconds / 30, warmup=min(300.0, seconds / 2), model=ctx.model.path)
    detail = (f"{result['audio_s']:.0f} s of audio in {result['wall_s']:.0f} s ({result['speed_x_realtime']:.0f}x "
              f"real time), {result['events']} events; from {result['warmup_audio_s']:.0f} s of audio on")
    figures = [
        figure("rss_growth_mb", "RSS growth after warm-up", result["rss_growth_mb"], "MB",
               Target("<=", TARGET_RSS_GROWTH_MB), f"{result['rss_mb_after_warmup']} -> {result['rss_mb_end']} MB; "
               + detail),
        figure("fd_growth", "Open file descriptors, growth", result["fds"][1] - result["fds"][0], "",
               Target("<=", 0), f"{result['fds'][0]} -> {result['fds'][1]}"),
        figure("thread_growth", "Threads, growth", result["threads"][1] - result["threads"][0], "",
               Target("<=", 0), f"{result['threads'][0]} -> {result['threads'][1]}"),
    ]
    return {"figures": figures, "timings": {}, "soak": {k: v for k, v in result.items() if k != "samples"}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=7200.0, help="audio to push through (default 2 h)")
    p.add_argument("--every", type=float, default=60.0, help="sample RSS/fds/threads every this much audio")
    p.add_argument("--warmup", type=float, default=300.0, help="audio before the baseline sample")
    p.add_argument("--model", type=Path, help="int8 .tflite (default: the bundled model)")
    p.add_argument("--out", type=Path, help="write the full result (with every sample) as JSON here")
    args = p.parse_args(argv)
    result = soak(args.seconds, args.every, min(args.warmup, args.seconds / 2), args.model)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: v for k, v in result.items() if k not in ("samples", "speech", "model")}
    print(json.dumps(summary, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
